"""JAX trainers: gradients by ``jax.value_and_grad``, on the CPU or a GPU.

Rules: ``eager`` calls the un-jitted step op by op; ``jit`` compiles one step
and loops in Python; ``scan`` compiles the whole loop into one program with
``lax.scan``. The seed's and linear's steps are written here; every other model
family's loss is its module's (problems: written once against the array API,
with ``jax.numpy`` as its namespace), differentiated by ``jax.value_and_grad``
over its parameters by name, in the same three loops. float64 runs inside ``jax.enable_x64(True)``, a context manager,
so JAX's global setting is never changed for other code in the process; every
other choice (compiler options) is made per compiled program, never
through JAX's config or ``XLA_FLAGS``. Losses stay on the device until the run
ends; ``run()`` blocks until they are ready.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import problems
from backends._core import FitResult, Problem, TrainConfig

VARIANTS = {"cpu": ("eager", "jit", "scan"), "gpu": ("eager", "jit", "scan")}


def unavailable(variant: str, device: str) -> str:
    if variant not in VARIANTS.get(device, ()):
        return f"no JAX variant {variant!r} on {device!r}"
    try:
        jax.devices(device)
    except RuntimeError:
        return f"JAX has no {device.upper()} device (jaxlib {jax.__version__}, default backend {jax.default_backend()})"
    return ""


#: Up to this many points a CPU fit is bound by XLA's per-kernel overhead rather than by memory.
SMALL_MAX_N = 10_000
#: XLA's CPU compiler splits every sum into partial sums in one kernel and their total in
#: another (its tree-reduction rewrite, for accuracy over long sums); at small n that doubles
#: the kernels an epoch launches and keeps the residual from fusing into its sums. Without
#: it a 100-point scan fit takes 150 instead of 260 µs (float32 and float64, 2-core CPU,
#: 2026-11-25). A compile option of these programs only: nothing global changes.
SMALL_CPU_OPTIONS = {"xla_disable_hlo_passes": "tree_reduction_rewriter"}
#: Steps per iteration of the compiled loop for small problems: XLA's loop costs more per
#: iteration than a 100-point step (float32, 100 points: 159 µs a fit unrolled 4 times,
#: 141 µs 8 times, 198 µs 16 times, where fusions start recomputing each other's sums).
UNROLL = 8


def _loss(w, b, x, y):
    """The seed's loss on x (n,) and a scalar w; problem linear's on X (n, d) and θ (d,) (a rank: traced apart)."""
    r = (x @ w if x.ndim == 2 else (x * x) * w) + b - y
    return (0.5 * r**2).sum()


_loss_and_grad = jax.value_and_grad(_loss, argnums=(0, 1))


def _step(w, b, x, y, lr):
    loss, (grad_w, grad_b) = _loss_and_grad(w, b, x, y)
    return w - lr * grad_w, b - lr * grad_b, loss


def _scan_fit(w, b, x, y, lr, *, epochs):
    def body(carry, _):
        w, b, loss = _step(*carry, x, y, lr)
        return (w, b), loss

    unroll = UNROLL if x.shape[0] <= SMALL_MAX_N else 1
    (w, b), losses = lax.scan(body, (w, b), length=epochs, unroll=unroll)
    return _pack(w, b, losses, _loss(w, b, x, y))


def _pack(w, b, losses, final):
    """One array ``[w, b, final_loss, losses...]`` (``[θ…, b, final_loss, losses...]`` for a vector θ): a single
    transfer to the host instead of four."""
    if jnp.ndim(w):
        return jnp.concatenate([w, jnp.stack([b, final]), losses])
    return jnp.concatenate([jnp.stack([w, b, final]), losses])


@functools.cache
def _program(variant: str, small_cpu: bool):
    """The jitted step or scan fit; small CPU problems get their own programs, with their own options."""
    options = SMALL_CPU_OPTIONS if small_cpu else None
    if variant == "scan":
        return jax.jit(_scan_fit, static_argnames="epochs", compiler_options=options)
    return jax.jit(_step, compiler_options=options)


def _precision(dtype: str):
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def _placed_on(device: jax.Device):
    """Host arrays (a small scan fit's) go to ``device``, whatever JAX's default device is. Only entered where the
    default is another device: under ``jax.default_device`` the 100-point scan fit took 5-25 µs (1-6%) longer, side
    by side (2026-12-02)."""
    default = jax.config.jax_default_device
    if default is None:
        default = jax.devices()[0]
    return contextlib.nullcontext() if default == device else jax.default_device(device)


@dataclass
class _Fit:
    variant: str
    dtype: str
    device: jax.Device
    x: Any  # (n,), working dtype: on the device, or on the host for a small CPU scan fit (see prepare)
    y: Any
    w0: np.generic  # host scalars in the working dtype: passed with each call, cheaper than device_put; θ (d,)
    b0: np.generic
    lr: np.generic
    epochs: int
    names: tuple[str, ...]  # the problem's parameters: its weights (w0), then its intercept (b0)

    def run(self):
        n = len(self.x)
        cpu = self.device.platform == "cpu"
        with _precision(self.dtype), _placed_on(self.device):
            args = (self.w0, self.b0, self.x, self.y, self.lr)
            if self.variant == "eager":
                step = _step
            else:
                program = _program(self.variant, cpu and n <= SMALL_MAX_N)
                if self.variant == "scan":
                    return jax.block_until_ready(program(*args, epochs=self.epochs))
                step = program
            w, b, losses = self.w0, self.b0, []
            for _ in range(self.epochs):
                w, b, loss = step(w, b, *args[2:])
                losses.append(loss)
            return jax.block_until_ready(_pack(w, b, jnp.stack(losses), _loss(w, b, self.x, self.y)))

    def result(self, raw) -> FitResult:
        packed = np.asarray(raw)  # [w, b, final_loss, losses...]; [θ…, b, final_loss, losses...] for a vector θ
        d = np.size(self.w0)
        weights = packed[:d] if np.ndim(self.w0) else packed[0]
        return FitResult.of(self.names, (weights, packed[d]), packed[d + 2 :], packed[d + 1])


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig):
    reason = unavailable(variant, device)
    if reason:
        raise ValueError(reason)
    return PREPARE.get(problem.model, _prepare_model)(variant, jax.devices(device)[0], problem, config)


def _prepare_quadratic(variant: str, dev: jax.Device, problem: Problem, config: TrainConfig) -> _Fit:
    """The seed's model: x as a flat (n,) array and a scalar weight (the loss squares x itself)."""
    dtype = np.dtype(config.dtype)
    w0, b0 = problem.params0.values()
    x = problem.x.astype(dtype, copy=False).ravel()
    return _placed(variant, dev, problem, config, x, dtype.type(w0), dtype.type(b0))


def _prepare_linear(variant: str, dev: jax.Device, problem: Problem, config: TrainConfig) -> _Fit:
    """Problem linear's model: X (n, d) and a weight vector θ (d,)."""
    dtype = np.dtype(config.dtype)
    theta0, b0 = problem.params0.values()
    x = problem.x.astype(dtype, copy=False)
    return _placed(variant, dev, problem, config, x, theta0.astype(dtype), dtype.type(b0))


def _placed(variant: str, dev: jax.Device, problem: Problem, config: TrainConfig, x: np.ndarray, w0: Any,
            b0: np.generic) -> _Fit:  # fmt: skip
    """The fit of any family, its data on the device where a call would move them each time."""
    dtype = np.dtype(config.dtype)
    # A problem's arrays are read-only and aligned to 64 bytes: data already in the working dtype go as they are,
    # and XLA's CPU client then uses them in place (backends._core.ALIGNMENT); a conversion's copy is copied again.
    y = problem.y.astype(dtype, copy=False).ravel()
    if not (variant == "scan" and dev.platform == "cpu" and problem.n <= SMALL_MAX_N):
        with _precision(config.dtype):
            x, y = jax.device_put((x, y), dev)
    # else: the one call takes the host arrays itself, ~10 µs, where a device_put here cost ~35 µs
    # (100 points, 2026-11-25): for a one-call fit that is a fifth of its time.
    return _Fit(variant, config.dtype, dev, x, y, w0, b0, dtype.type(config.lr), config.epochs,
                tuple(problem.params0))  # fmt: skip


@functools.cache
def _model_programs(loss) -> dict[str, Any]:
    """The step and the scan fit of a model's ``loss(xp, params, x, y)``, over its parameters (a dict), eager and
    compiled; made once per model (jit caches its programs per shape and dtype)."""
    value_and_grad = jax.value_and_grad(lambda params, x, y: loss(jnp, params, x, y))

    def step(params, x, y, lr):
        value, grads = value_and_grad(params, x, y)
        return {name: p - lr * grads[name] for name, p in params.items()}, value

    def scan_fit(params, x, y, lr, *, epochs):
        params, losses = lax.scan(lambda carry, _: step(carry, x, y, lr), params, length=epochs)
        return _pack_params(params, losses, loss(jnp, params, x, y))

    return {"eager": step, "jit": jax.jit(step), "scan": jax.jit(scan_fit, static_argnames="epochs")}


def _pack_params(params: dict, losses, final):
    """One array ``[every parameter's values…, final_loss, losses...]``: a single transfer to the host. The
    parameters in the order of their names (a pytree's, which is how a jitted function returns a dict)."""
    return jnp.concatenate([*(jnp.ravel(params[name]) for name in sorted(params)), jnp.stack([final]), losses])


@dataclass
class _ModelFit:
    """Any model family by its module's loss (problems), differentiated by JAX: ``eager``, ``jit`` or ``scan``."""

    variant: str
    dtype: str
    device: jax.Device
    loss: Any
    x: Any  # (n, d), working dtype, on the device
    y: Any  # (n,)
    params0: dict  # every parameter by name: host arrays in the working dtype
    lr: np.generic
    epochs: int

    def run(self):
        programs = _model_programs(self.loss)
        with _precision(self.dtype), _placed_on(self.device):
            if self.variant == "scan":
                return jax.block_until_ready(
                    programs["scan"](self.params0, self.x, self.y, self.lr, epochs=self.epochs)
                )
            step, params, losses = programs[self.variant], self.params0, []
            for _ in range(self.epochs):
                params, value = step(params, self.x, self.y, self.lr)
                losses.append(value)
            final = self.loss(jnp, params, self.x, self.y)
            return jax.block_until_ready(_pack_params(params, jnp.stack(losses), final))

    def result(self, raw) -> FitResult:
        packed, params, start = np.asarray(raw), {}, 0
        for name in sorted(self.params0):  # _pack_params' order
            shape = self.params0[name].shape
            params[name] = packed[start : start + math.prod(shape)].reshape(shape)
            start += math.prod(shape)
        return FitResult.from_arrays({name: params[name] for name in self.params0}, packed[start + 1 :], packed[start])


def _prepare_model(variant: str, dev: jax.Device, problem: Problem, config: TrainConfig) -> _ModelFit:
    """A model family by its module alone: its loss, written once against the array API, and JAX's gradient."""
    dtype = np.dtype(config.dtype)
    x, y = problem.x.astype(dtype, copy=False), problem.y.astype(dtype, copy=False).ravel()
    with _precision(config.dtype):
        x, y = jax.device_put((x, y), dev)
    params0 = {name: np.asarray(value, dtype=dtype) for name, value in problem.params0.items()}
    return _ModelFit(variant, config.dtype, dev, problems.get(problem.model).loss, x, y, params0,
                     dtype.type(config.lr), config.epochs)  # fmt: skip


#: The code of each model family (problems.MODELS): a new family is a new entry, never an edit of another's. The
#: seed's and linear's steps are hand-tuned here; any other family (``written_once``) runs its module's loss.
PREPARE = {"quadratic": _prepare_quadratic, "linear": _prepare_linear}

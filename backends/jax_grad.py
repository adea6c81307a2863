"""JAX trainers: gradients by ``jax.value_and_grad``, on the CPU or a GPU.

Rules: ``eager`` calls the un-jitted step op by op; ``jit`` compiles one step
and loops in Python; ``scan`` compiles the whole loop into one program with
``lax.scan``. float64 runs inside ``jax.enable_x64(True)``, a context manager,
so JAX's global setting is never changed for other code in the process. Losses
stay on the device until the run ends; ``run()`` blocks until they are ready.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

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


#: Up to this many points a fit is bound by XLA's per-operation overhead rather
#: than by memory, and two compile choices flip (measured, 2-core CPU, 2026-11-24).
SMALL_MAX_N = 10_000
#: Steps per iteration of the compiled loop for small problems. XLA's CPU loop
#: costs ~0.3 µs per iteration, more than a small epoch; unrolling 4 steps
#: nearly halves it (n=100, float32: 0.54 → 0.31 µs per epoch), while at 10⁶ points
#: unrolling is slower (618 → 739 µs), so large problems keep one step.
UNROLL = 4


def _loss(w, b, x2, y):
    r = x2 * w + b - y
    if r.shape[0] <= SMALL_MAX_N:
        # With the half outside the sum XLA fuses the square into the reduction:
        # float64 scan fits speed up 1.3× at n=100 and 1.7× at n=1000, while
        # at 10⁵–10⁶ points the same form is 12–20% slower than this one.
        return 0.5 * (r * r).sum()
    return (0.5 * r**2).sum()


_loss_and_grad = jax.value_and_grad(_loss, argnums=(0, 1))


def _step(w, b, x2, y, lr):
    loss, (grad_w, grad_b) = _loss_and_grad(w, b, x2, y)
    return w - lr * grad_w, b - lr * grad_b, loss


_jit_step = jax.jit(_step)


@partial(jax.jit, static_argnames="epochs")
def _scan_fit(w, b, x2, y, lr, epochs):
    def body(carry, _):
        w, b, loss = _step(*carry, x2, y, lr)
        return (w, b), loss

    unroll = UNROLL if x2.shape[0] <= SMALL_MAX_N else 1
    (w, b), losses = jax.lax.scan(body, (w, b), length=epochs, unroll=unroll)
    return _pack(w, b, losses, _loss(w, b, x2, y))


def _pack(w, b, losses, final):
    """One array ``[w, b, final_loss, losses...]``: a single transfer to the host instead of four."""
    return jnp.concatenate([jnp.stack([w, b, final]), losses])


def _precision(dtype: str):
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


@dataclass
class _Fit:
    variant: str
    dtype: str
    x2: jax.Array  # (n,), working dtype, on the device
    y: jax.Array
    w0: jax.Array  # ()
    b0: jax.Array
    lr: jax.Array
    epochs: int

    def run(self):
        with _precision(self.dtype):
            if self.variant == "scan":
                out = _scan_fit(self.w0, self.b0, self.x2, self.y, self.lr, self.epochs)
            else:
                step = _jit_step if self.variant == "jit" else _step
                w, b, losses = self.w0, self.b0, []
                for _ in range(self.epochs):
                    w, b, loss = step(w, b, self.x2, self.y, self.lr)
                    losses.append(loss)
                out = _pack(w, b, jnp.stack(losses), _loss(w, b, self.x2, self.y))
            return jax.block_until_ready(out)

    def result(self, raw) -> FitResult:
        packed = np.asarray(raw)
        return FitResult.from_arrays(packed[0], packed[1], packed[3:], packed[2])


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig):
    reason = unavailable(variant, device)
    if reason:
        raise ValueError(reason)
    dev = jax.devices(device)[0]
    dtype = np.dtype(config.dtype)
    x = problem.x.astype(dtype).ravel()
    with _precision(config.dtype):
        put = partial(jax.device_put, device=dev)
        return _Fit(
            variant=variant,
            dtype=config.dtype,
            x2=put(x * x),
            y=put(problem.y.astype(dtype).ravel()),
            w0=put(dtype.type(problem.w0)),
            b0=put(dtype.type(problem.b0)),
            lr=put(dtype.type(config.lr)),
            epochs=config.epochs,
        )

"""NumPy trainers with the tutorial's hand-derived gradients, on the CPU (NumPy) or a CUDA device (CuPy).

Rules: each loop is written once over an array module ``xp`` (``numpy`` or
``cupy``), so the CUDA trainers run the CPU ones' code. ``tutorial`` is the
tutorial's loop statement for statement, so in float64 on the CPU it
reproduces the tutorial bit for bit; ``fused`` computes the same per-sample
forward pass and gradients, but hoists the loop-invariant ``x²``, works on flat
arrays in preallocated buffers and reduces with BLAS dot products (a different
summation order, so agreement is to rounding, not to the bit). Nothing is
decided per epoch by device: the CPU loop pays nothing for the GPU one. On
CUDA, losses stay on the device until the run ends and ``run()`` synchronises
the device before returning. cupy is imported only when a CUDA trainer is
probed or prepared.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

import problems
from backends._core import FitResult, Problem, TrainConfig

VARIANTS = {"cpu": ("tutorial", "fused"), "cuda": ("tutorial", "fused")}
CUPY_MISSING = "cupy is not installed (pip install cupy-cuda12x or cupy-cuda13x)"


def unavailable(variant: str, device: str) -> str:
    if variant not in VARIANTS.get(device, ()):
        return f"no NumPy variant {variant!r} on {device!r}"
    return _cupy_unavailable() if device == "cuda" else ""


def _cupy_unavailable() -> str:
    if importlib.util.find_spec("cupy") is None:
        return CUPY_MISSING
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError without a driver, ImportError when CUDA libraries are missing
        return f"no CUDA device for cupy ({type(exc).__name__}: {exc})"
    if count == 0:
        return f"no CUDA device (cupy {cupy.__version__} sees none)"
    try:  # cupy compiles its kernels on first use: without NVRTC a device is no use to it
        int((cupy.arange(3) * 2).sum())
    except Exception as exc:
        return f"cupy cannot compute on the device, no NVRTC? ({type(exc).__name__}: {exc})"
    return ""


def array_module(device: str) -> ModuleType:
    """``numpy`` for the CPU, ``cupy`` for CUDA (imported here, on first use)."""
    return np if device == "cpu" else importlib.import_module("cupy")


@functools.cache
def loss_and_gradient_on(xp: ModuleType):
    """``loss_and_gradient`` over array module ``xp``; ``xp`` is bound once, so an epoch pays no lookup for it."""

    def loss_and_gradient(x, y, w, b):
        """The tutorial's loss and hand-derived gradients, operation for operation.

        ``∂L/∂w = Σ(w·x²+b−y)·x²`` and ``∂L/∂b = Σ(w·x²+b−y)`` for ``L = 0.5·Σ(w·x²+b−y)²``.
        """
        y_pred = xp.power(x, 2) * w + b
        loss = 0.5 * (y_pred - y) ** 2
        loss = loss.sum()
        grad_w = xp.sum((y_pred - y) * xp.power(x, 2))
        grad_b = xp.sum((y_pred - y))  # noqa: UP034 - the tutorial's statement, as written
        return loss, grad_w, grad_b

    return loss_and_gradient


loss_and_gradient = loss_and_gradient_on(np)


@functools.cache
def linear_loss_and_gradient_on(xp: ModuleType):
    """``linear_loss_and_gradient`` over array module ``xp``."""

    def linear_loss_and_gradient(x, y, w, b):
        """Problem ``linear``'s loss and hand-derived gradients, in the tutorial's style (x (n, d), w (d, 1)).

        ``∂L/∂θ = Xᵀ(X·θ+b−y)`` and ``∂L/∂b = Σ(X·θ+b−y)`` for ``L = 0.5·Σ(X·θ+b−y)²``.
        """
        y_pred = x @ w + b
        loss = 0.5 * (y_pred - y) ** 2
        loss = loss.sum()
        grad_w = x.T @ (y_pred - y)
        grad_b = xp.sum(y_pred - y)
        return loss, grad_w, grad_b

    return linear_loss_and_gradient


linear_loss_and_gradient = linear_loss_and_gradient_on(np)


@dataclass
class _Fit:
    """What every variant shares: the array module, and the hand-over to the host. ``names``: the problem's
    parameters (its weights, then its intercept), which ``result()`` gives back by name."""

    xp: ModuleType
    epochs: int
    names: tuple[str, ...]

    def _quiet(self):
        # Overflow is how divergence shows; it is reported in FitResult.diverged.
        # CuPy never warns on floating-point errors, and has no errstate.
        return np.errstate(over="ignore", invalid="ignore") if self.xp is np else contextlib.nullcontext()

    def _done(self, raw: tuple) -> tuple:
        if self.xp is not np:
            self.xp.cuda.Device().synchronize()
        return raw

    def result(self, raw) -> FitResult:
        w, b, losses, final = raw
        if self.xp is not np:  # one copy to the host for the whole history
            w = self.xp.asnumpy(w) if w.ndim else float(w)
            b, losses, final = float(b), self.xp.asnumpy(losses), float(final)
        return FitResult.of(self.names, (w, b), losses, final)


@dataclass
class _TutorialFit(_Fit):
    x: Any  # (n, 1), working dtype, on the device
    y: Any
    w0: Any  # (1, 1); (d, 1) for problem linear
    b0: Any
    lr: float
    linear: bool = False  # problem linear: x is (n, d)

    def run(self):
        x, y, lr = self.x, self.y, self.lr
        loss_and_gradient = (linear_loss_and_gradient_on if self.linear else loss_and_gradient_on)(self.xp)
        w, b = self.w0.copy(), self.b0.copy()
        losses = self.xp.empty(self.epochs)  # float64 holds every float32 loss exactly: no conversion in result()
        with self._quiet():
            for i in range(self.epochs):
                loss, grad_w, grad_b = loss_and_gradient(x, y, w, b)
                w -= lr * grad_w
                b -= lr * grad_b
                losses[i] = loss
            final = loss_and_gradient(x, y, w, b)[0]
        return self._done((w[:, 0] if self.linear else w[0, 0], b[0, 0], losses, final))


@dataclass
class _FusedFit(_Fit):
    """Fused: the residual in one preallocated buffer, the sums by ``dot``, scalars in the working dtype. The
    model's product is the features times w: ``multiply`` for the seed's x² (n,) and scalar w, BLAS's gemv
    (``dot``) for problem linear's X (n, d) and θ (d,); the rest of the loop is the same for both."""

    features: Any  # x² (n,) computed once, or X (n, d) C-contiguous; working dtype, on the device
    y: Any  # (n,)
    w0: Any  # scalars in the working dtype (NumPy scalars, or 0-d CuPy arrays); linear: θ0 (d,)
    b0: Any
    lr: Any
    half: Any

    def run(self):
        x, y, lr, half = self.features, self.y, self.lr, self.half
        product, dot = (self.xp.multiply if x.ndim == 1 else self.xp.dot), self.xp.dot
        w, b = self.w0, self.b0
        r = self.xp.empty_like(y)
        losses = self.xp.empty(self.epochs)  # float64: exact for float32 losses too
        with self._quiet():
            for i in range(self.epochs):
                product(x, w, out=r)
                r += b
                r -= y  # r = ŷ − y
                losses[i] = half * dot(r, r)
                w, b = w - lr * dot(r, x), b - lr * r.sum()
            product(x, w, out=r)
            r += b
            r -= y
            final = half * dot(r, r)
        return self._done((w, b, losses, final))


@dataclass
class _ModelFit(_Fit):
    """Any model family by its module's hand-derived gradient (``gradient(xp, params, x, y)``, written once
    against the array API), in the tutorial's loop: each epoch the loss and every parameter's gradient, then
    every parameter's step. ``namespace`` is the arrays' array-API namespace, taken once in prepare()."""

    namespace: Any
    gradient: Any
    x: Any  # (n, d), working dtype, on the device
    y: Any  # (n,)
    params0: dict  # every parameter by name, working dtype, on the device
    lr: float  # a Python float, as in the tutorial: the arrays keep their dtype

    def run(self):
        xp, gradient, x, y, lr = self.namespace, self.gradient, self.x, self.y, self.lr
        params = dict(self.params0)  # never written: every step makes new arrays
        losses = self.xp.empty(self.epochs)  # float64: exact for float32 losses too
        with self._quiet():
            for i in range(self.epochs):
                loss, grads = gradient(xp, params, x, y)
                params = {name: value - lr * grads[name] for name, value in params.items()}
                losses[i] = loss
            final = gradient(xp, params, x, y)[0]
        return self._done((params, losses, final))

    def result(self, raw) -> FitResult:
        params, losses, final = raw
        if self.xp is not np:  # one copy to the host for the whole history
            params = {name: self.xp.asnumpy(value) for name, value in params.items()}
            losses, final = self.xp.asnumpy(losses), float(final)
        return FitResult.from_arrays(params, losses, final)


#: From this size on, the CPU's fused loop works through the data in cache-sized blocks, on several threads.
#: Whole-array operations make six passes over memory an epoch once x and y outgrow the cache; block by
#: block, only the reads of x and y reach memory, and NumPy releases the GIL inside each operation, so
#: threads overlap their blocks. Below it, one thread on whole arrays is faster (a block costs ~7 calls).
BLOCKED_MIN_N = 1 << 17
#: Points per block: x, x², y and the residual of a block (4 × 2 MiB in float64) stay in cache, and each
#: operation is long enough that the threads seldom wait for the GIL between them (10⁷ points, 2 threads,
#: per epoch, float32/float64: 2¹³ points 17/17 ms, 2¹⁵ 6.3/9.6 ms, 2¹⁸ 4.2/7.6 ms; 2026-11-25).
BLOCK = 1 << 18


def cpu_threads() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class _BlockedFit(_Fit):
    """The fused loop for large data on the CPU: x² per block, in cache, instead of a precomputed array.

    Each thread sums a fixed, contiguous share of the blocks in order and the shares are added
    in order, so a fit's bits depend on its data, dtype and thread count only.
    """

    x: np.ndarray  # (n,), working dtype: the Problem's own array in float64, no copy
    y: np.ndarray
    w0: np.generic
    b0: np.generic
    lr: np.generic
    half: np.generic
    threads: int

    def _shares(self) -> list[tuple[int, int]]:
        """Each thread's contiguous run of whole blocks (the last one takes the remainder)."""
        n, blocks = len(self.x), -(-len(self.x) // BLOCK)
        bounds = [min(n, blocks * i // self.threads * BLOCK) for i in range(self.threads)] + [n]
        return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]

    def _sums(self, share: tuple[int, int], buffers: tuple[np.ndarray, np.ndarray], w, b, gradients: bool = True):
        """Loss sum and both gradient sums (or the loss alone) over a share of the points, block by block,
        in that share's own buffers."""
        (lo, hi), (q, r), x, y = share, buffers, self.x, self.y
        loss = grad_w = grad_b = x.dtype.type(0)
        for start in range(lo, hi, BLOCK):
            stop = min(start + BLOCK, hi)
            xb, qb, rb = x[start:stop], q[: stop - start], r[: stop - start]
            np.multiply(xb, xb, out=qb)  # x²
            np.multiply(qb, w, out=rb)
            rb += b
            rb -= y[start:stop]  # r = ŷ − y
            # einsum, not BLAS's dot: OpenBLAS splits a dot of more than 10,000 points over threads of its own,
            # which fought this loop's for the cores (float64: 12 instead of 7.6 ms an epoch) and would make
            # a fit's bits depend on BLAS's thread count.
            loss += np.einsum("i,i->", rb, rb)
            if gradients:
                grad_w += np.einsum("i,i->", rb, qb)
                grad_b += rb.sum()
        return loss, grad_w, grad_b

    def _epoch(self, pool, shares, buffers, w, b, gradients: bool = True):
        # The other threads take the first shares; this one the last, in step with them.
        work = list(zip(shares, buffers, strict=True))
        futures = [pool.submit(self._sums, share, buf, w, b, gradients) for share, buf in work[:-1]]
        last = self._sums(*work[-1], w, b, gradients)
        parts = [f.result() for f in futures] + [last]
        loss, grad_w, grad_b = parts[0]
        for part in parts[1:]:
            loss, grad_w, grad_b = loss + part[0], grad_w + part[1], grad_b + part[2]
        return loss, grad_w, grad_b

    def run(self):
        lr, half, w, b = self.lr, self.half, self.w0, self.b0
        shares = self._shares()
        buffers = [(np.empty(BLOCK, self.x.dtype), np.empty(BLOCK, self.x.dtype)) for _ in shares]  # x², r
        losses = np.empty(self.epochs)
        with self._quiet(), ThreadPoolExecutor(max(1, len(shares) - 1), thread_name_prefix="regbench") as pool:
            for i in range(self.epochs):
                loss, grad_w, grad_b = self._epoch(pool, shares, buffers, w, b)
                losses[i] = half * loss
                w, b = w - lr * grad_w, b - lr * grad_b
            final = half * self._epoch(pool, shares, buffers, w, b, gradients=False)[0]
        return w, b, losses, final


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig):
    if variant not in VARIANTS.get(device, ()):
        raise ValueError(unavailable(variant, device))
    return prepare_on(array_module(device), variant, problem, config)


def prepare_on(xp: ModuleType, variant: str, problem: Problem, config: TrainConfig):
    """The fit of ``variant`` on the device of array module ``xp``: the data is converted and moved here."""
    return PREPARE.get(problem.model, _prepare_model)(xp, variant, problem, config, np.dtype(config.dtype))


def _prepare_quadratic(xp: ModuleType, variant: str, problem: Problem, config: TrainConfig, dtype: np.dtype):
    """The seed's model: x (n, 1) and a scalar weight, its features x² (hoisted by ``fused``)."""
    names = tuple(problem.params0)
    w0, b0 = problem.params0.values()
    if variant == "tutorial":
        return _TutorialFit(
            xp=xp,
            epochs=config.epochs,
            names=names,
            # Read only, never written: a problem already in the working dtype is used as it is.
            x=xp.asarray(problem.x.astype(dtype, copy=False)),
            y=xp.asarray(problem.y.astype(dtype, copy=False)),
            w0=xp.full((1, 1), w0, dtype),
            b0=xp.full((1, 1), b0, dtype),
            lr=config.lr,  # a Python float, as in the tutorial: the arrays keep their dtype
        )
    if variant == "fused" and xp is np and problem.n >= BLOCKED_MIN_N:
        x, y = (a.astype(dtype, copy=False).ravel() for a in (problem.x, problem.y))  # float64: no copy
        return _BlockedFit(xp=xp, epochs=config.epochs, names=names, x=x, y=y, w0=dtype.type(w0),
                           b0=dtype.type(b0), lr=dtype.type(config.lr), half=dtype.type(0.5),
                           threads=cpu_threads())  # fmt: skip
    if variant == "fused":
        # NumPy scalars are the cheapest on the CPU; on CUDA 0-d device arrays keep
        # every update on the device without mixing host scalars into device operations.
        scalar = dtype.type if xp is np else (lambda v: xp.asarray(v, dtype=dtype))
        x = problem.x.astype(dtype, copy=False).ravel()
        return _FusedFit(
            xp=xp,
            epochs=config.epochs,
            names=names,
            features=xp.asarray(x * x),
            y=xp.asarray(problem.y.astype(dtype, copy=False).ravel()),
            w0=scalar(w0),
            b0=scalar(b0),
            lr=scalar(config.lr),
            half=scalar(0.5),
        )
    raise ValueError(f"no NumPy variant {variant!r}")


def _prepare_linear(xp: ModuleType, variant: str, problem: Problem, config: TrainConfig, dtype: np.dtype):
    """Problem linear's model: X (n, d) and a weight vector θ (d,)."""
    names = tuple(problem.params0)
    theta0, b0 = problem.params0.values()
    x = xp.asarray(np.ascontiguousarray(problem.x, dtype=dtype))
    if variant == "tutorial":
        return _TutorialFit(xp=xp, epochs=config.epochs, names=names, x=x,
                            y=xp.asarray(problem.y.astype(dtype, copy=False)),
                            w0=xp.asarray(theta0.astype(dtype).reshape(-1, 1)),
                            b0=xp.full((1, 1), b0, dtype), lr=config.lr, linear=True)  # fmt: skip
    if variant == "fused":
        scalar = dtype.type if xp is np else (lambda v: xp.asarray(v, dtype=dtype))
        y = xp.asarray(problem.y.astype(dtype, copy=False).ravel())
        return _FusedFit(xp=xp, epochs=config.epochs, names=names, features=x, y=y,
                         w0=xp.asarray(theta0.astype(dtype)), b0=scalar(b0), lr=scalar(config.lr),
                         half=scalar(0.5))  # fmt: skip
    raise ValueError(f"no NumPy variant {variant!r}")


def _prepare_model(xp: ModuleType, variant: str, problem: Problem, config: TrainConfig, dtype: np.dtype):
    """A model family by its module alone (problems: ``gradient`` written once against the array API), in the
    tutorial's loop; the fused loop is the seed's and linear's own."""
    if variant != "tutorial":
        raise ValueError(f"no fused NumPy loop for model {problem.model!r}: the tutorial variant runs it")
    gradient = getattr(problems.get(problem.model), "gradient", None)
    if gradient is None:
        raise ValueError(f"model {problem.model!r} has no hand-derived gradient for NumPy's manual trainers to run")
    x = xp.asarray(np.ascontiguousarray(problem.x, dtype=dtype))
    params0 = {name: xp.asarray(np.asarray(value, dtype=dtype)) for name, value in problem.params0.items()}
    return _ModelFit(xp=xp, epochs=config.epochs, names=tuple(problem.params0),
                     namespace=array_api_compat.array_namespace(x), gradient=gradient, x=x,
                     y=xp.asarray(problem.y.astype(dtype, copy=False).ravel()), params0=params0,
                     lr=config.lr)  # fmt: skip


#: The code of each model family (problems.MODELS): a new family is a new entry, never an edit of another's. The
#: seed's and linear's loops are hand-written here (the tutorial's, statement for statement, is the reference);
#: any other family (``written_once``) runs its module's gradient.
PREPARE = {"quadratic": _prepare_quadratic, "linear": _prepare_linear}

"""Numba trainers: the same per-sample gradient descent as one compiled native loop.

Rules: one pass over the data per epoch computes the loss and both gradients,
with no temporaries; arithmetic and accumulators stay in the working dtype
(constants are passed in that dtype, since Numba would promote Python floats to
float64). ``loop`` keeps IEEE order: its sums run strictly sequentially, so it
cannot use SIMD. ``simd`` lets LLVM reassociate the sums (what BLAS and XLA do
too), which vectorises them, and from ``PARALLEL_MIN_N`` points on splits each
epoch's pass across the CPU's threads: it is the implementation limit on a CPU
for this algorithm, drawn as such in the reports. Neither is a mathematical
shortcut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from backends._core import HostResult, Problem, TrainConfig

VARIANTS = {"cpu": ("loop", "simd")}
#: Below this size a parallel region costs more than it saves (measured: ~1.7 µs per epoch at n=100).
PARALLEL_MIN_N = 1 << 17


def unavailable(variant: str, device: str) -> str:
    return "" if variant in VARIANTS.get(device, ()) else f"no Numba variant {variant!r} on {device!r}"


def _make_trainer(fastmath, parallel: bool, cast):
    prange = numba.prange if parallel else range

    @numba.njit(fastmath=fastmath, parallel=parallel, nogil=True)
    def epoch(x, y, w, b, zero):  # pragma: no cover - compiled
        loss = zero
        grad_w = zero
        grad_b = zero
        for i in prange(x.shape[0]):
            x2 = x[i] * x[i]
            r = x2 * w + b - y[i]
            loss += r * r
            grad_w += r * x2
            grad_b += r
        return loss, grad_w, grad_b

    # The scalars arrive as Python floats and are cast to the working dtype here, once: a NumPy scalar made in
    # Python costs ~1.3 µs each, a tenth of what fit() adds to the 60 µs loop (issue 26's profile).
    @numba.njit(fastmath=fastmath, nogil=True)
    def train(x, y, w0, b0, lr0, epochs):  # pragma: no cover - compiled
        w, b, lr, half = cast(w0), cast(b0), cast(lr0), cast(0.5)
        zero = half - half
        losses = np.empty(epochs)  # float64 holds every float32 loss exactly: no conversion in result()
        for i in range(epochs):
            loss, grad_w, grad_b = epoch(x, y, w, b, zero)
            losses[i] = half * loss
            w -= lr * grad_w
            b -= lr * grad_b
        return w, b, losses, half * epoch(x, y, w, b, zero)[0]

    return train


_REASSOC = {"reassoc", "contract"}
_FASTMATH = {"loop": False, "simd": _REASSOC}
_TRAINERS = {
    (variant, parallel, dtype): _make_trainer(_FASTMATH[variant], parallel, getattr(np, dtype))
    for variant in VARIANTS["cpu"]
    for parallel in ((False, True) if variant == "simd" else (False,))
    for dtype in ("float32", "float64")
}


#: Problem linear: points per share of a parallel epoch (each share's gradient is summed apart, then in order).
LINEAR_SHARE = 1 << 12


def _make_linear_trainer(fastmath, parallel: bool):
    """Problem linear: one pass over X an epoch; ``r = X·θ + b − y`` per point, its gradient added as it goes.

    In parallel, the points are cut into fixed shares of LINEAR_SHARE, each summed into its own row of
    partial sums and the rows added in order: the bits depend on n and d only, not on the threads.
    """
    prange = numba.prange if parallel else range

    @numba.njit(fastmath=fastmath, nogil=True)
    def share(x, y, w, b, lo, hi, grad_w, zero):  # pragma: no cover - compiled
        loss = zero
        grad_b = zero
        for i in range(lo, hi):
            r = b
            for j in range(x.shape[1]):
                r += x[i, j] * w[j]
            r -= y[i]
            loss += r * r
            grad_b += r
            for j in range(x.shape[1]):
                grad_w[j] += r * x[i, j]
        return loss, grad_b

    @numba.njit(fastmath=fastmath, parallel=parallel, nogil=True)
    def epoch(x, y, w, b, parts, part_loss, part_b, zero):  # pragma: no cover - compiled
        shares = parts.shape[0]
        n = x.shape[0]
        for s in prange(shares):
            parts[s, :] = zero
            lo = s * n // shares
            hi = (s + 1) * n // shares
            part_loss[s], part_b[s] = share(x, y, w, b, lo, hi, parts[s], zero)
        grad_w = parts[0].copy()
        loss, grad_b = part_loss[0], part_b[0]
        for s in range(1, shares):
            loss += part_loss[s]
            grad_b += part_b[s]
            for j in range(grad_w.shape[0]):
                grad_w[j] += parts[s, j]
        return loss, grad_w, grad_b

    @numba.njit(fastmath=fastmath, nogil=True)
    def train(x, y, w, b, lr, half, losses, shares):  # pragma: no cover - compiled
        zero = half - half
        w = w.copy()
        parts = np.empty((shares, x.shape[1]), x.dtype)
        part_loss = np.empty(shares, x.dtype)
        part_b = np.empty(shares, x.dtype)
        for i in range(losses.shape[0]):
            loss, grad_w, grad_b = epoch(x, y, w, b, parts, part_loss, part_b, zero)
            losses[i] = half * loss
            for j in range(w.shape[0]):
                w[j] -= lr * grad_w[j]
            b -= lr * grad_b
        return w, b, half * epoch(x, y, w, b, parts, part_loss, part_b, zero)[0]

    return train


_LINEAR_TRAINERS = {
    ("loop", False): _make_linear_trainer(False, parallel=False),
    ("simd", False): _make_linear_trainer(_REASSOC, parallel=False),
    ("simd", True): _make_linear_trainer(_REASSOC, parallel=True),
}


@dataclass
class _Fit(HostResult):
    names: tuple[str, ...]
    train: Any
    x: np.ndarray  # (n,), working dtype
    y: np.ndarray
    w0: float
    b0: float
    lr: float
    epochs: int

    def run(self):
        return self.train(self.x, self.y, self.w0, self.b0, self.lr, self.epochs)


@dataclass
class _LinearFit(HostResult):
    names: tuple[str, ...]
    train: Any
    x: np.ndarray  # (n, d), working dtype
    y: np.ndarray  # (n,)
    w0: np.ndarray  # (d,)
    b0: np.generic
    lr: np.generic
    epochs: int
    shares: int  # the shares of an epoch's points (1: one sequential pass)

    def run(self):
        losses = np.empty(self.epochs)  # float64 holds every float32 loss exactly: no conversion in result()
        half = self.x.dtype.type(0.5)
        w, b, final = self.train(self.x, self.y, self.w0, self.b0, self.lr, half, losses, self.shares)
        return w, b, losses, final


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig):
    reason = unavailable(variant, device)
    if reason:
        raise ValueError(reason)
    return PREPARE[problem.model](variant, problem, config)


def _prepare_quadratic(variant: str, problem: Problem, config: TrainConfig) -> _Fit:
    """The seed's model: one pass over x an epoch, x² per point."""
    w0, b0 = problem.params0.values()
    parallel = variant == "simd" and problem.n >= PARALLEL_MIN_N
    return _Fit(
        names=tuple(problem.params0),
        train=_TRAINERS[(variant, parallel, config.dtype)],
        # A Problem's (n, 1) columns are contiguous: ravel is a view, and a float64 fit copies nothing.
        x=problem.x.astype(config.dtype, copy=False).ravel(),
        y=problem.y.astype(config.dtype, copy=False).ravel(),
        w0=float(w0),
        b0=float(b0),
        lr=config.lr,
        epochs=config.epochs,
    )


def _prepare_linear(variant: str, problem: Problem, config: TrainConfig) -> _LinearFit:
    """Problem linear's model: one pass over X an epoch, in shares of points where the parallel form pays."""
    theta0, b0 = problem.params0.values()
    dtype = np.dtype(config.dtype)
    # The parallel form from as many values of X as the seed's problem has points (its threads pay from there).
    parallel = variant == "simd" and problem.n * problem.d >= PARALLEL_MIN_N and problem.n >= 2 * LINEAR_SHARE
    return _LinearFit(
        names=tuple(problem.params0),
        train=_LINEAR_TRAINERS[(variant, parallel)],
        x=np.ascontiguousarray(problem.x, dtype=dtype),
        y=problem.y.astype(dtype, copy=False).ravel(),  # a (n, 1) column: ravel is a contiguous view
        w0=np.ascontiguousarray(theta0, dtype=dtype),
        b0=dtype.type(b0),
        lr=dtype.type(config.lr),
        epochs=config.epochs,
        shares=problem.n // LINEAR_SHARE if parallel else 1,
    )


#: The code of each model family (problems.MODELS): a new family is a new entry, never an edit of another's.
PREPARE = {"quadratic": _prepare_quadratic, "linear": _prepare_linear}

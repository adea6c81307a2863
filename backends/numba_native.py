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


@dataclass
class _Fit(HostResult):
    train: Any
    x: np.ndarray  # (n,), working dtype
    y: np.ndarray
    w0: float
    b0: float
    lr: float
    epochs: int

    def run(self):
        return self.train(self.x, self.y, self.w0, self.b0, self.lr, self.epochs)


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig):
    reason = unavailable(variant, device)
    if reason:
        raise ValueError(reason)
    parallel = variant == "simd" and problem.n >= PARALLEL_MIN_N
    return _Fit(
        train=_TRAINERS[(variant, parallel, config.dtype)],
        # A Problem's (n, 1) columns are contiguous: ravel is a view, and a float64 fit copies nothing.
        x=problem.x.astype(config.dtype, copy=False).ravel(),
        y=problem.y.astype(config.dtype, copy=False).ravel(),
        w0=problem.w0,
        b0=problem.b0,
        lr=config.lr,
        epochs=config.epochs,
    )

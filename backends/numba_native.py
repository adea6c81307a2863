"""Numba trainer: the same per-sample gradient descent as one compiled native loop.

Rules: one pass over the data per epoch computes the loss and both gradients,
with no temporaries; arithmetic and accumulators stay in the working dtype
(constants are passed in that dtype, since Numba would promote Python floats to
float64). It is the implementation limit on a CPU for this algorithm, drawn as
such in the reports; it is not a mathematical shortcut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from backends._core import FitResult, Problem, TrainConfig

FRAMEWORK = "numba"


def unavailable(variant: str, device: str) -> str:
    return "" if (variant, device) == ("loop", "cpu") else f"no Numba variant {variant!r} on {device!r}"


@numba.njit(cache=False, nogil=True)
def _train(x, y, w, b, lr, half, losses):  # pragma: no cover - compiled
    zero = half - half
    n = x.shape[0]
    for epoch in range(losses.shape[0] + 1):
        loss = zero
        grad_w = zero
        grad_b = zero
        for i in range(n):
            x2 = x[i] * x[i]
            r = x2 * w + b - y[i]
            loss += r * r
            grad_w += r * x2
            grad_b += r
        if epoch == losses.shape[0]:
            return w, b, half * loss  # the final loss, at the returned parameters
        losses[epoch] = half * loss
        w -= lr * grad_w
        b -= lr * grad_b
    return w, b, zero  # unreachable: the loop returns


@dataclass
class _Fit:
    x: np.ndarray  # (n,), working dtype
    y: np.ndarray
    w0: np.generic
    b0: np.generic
    lr: np.generic
    epochs: int

    def run(self):
        losses = np.empty(self.epochs, dtype=self.x.dtype)
        w, b, final = _train(self.x, self.y, self.w0, self.b0, self.lr, self.x.dtype.type(0.5), losses)
        return w, b, losses, final

    def result(self, raw) -> FitResult:
        return FitResult.from_arrays(*raw)


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig):
    reason = unavailable(variant, device)
    if reason:
        raise ValueError(reason)
    dtype = np.dtype(config.dtype)
    return _Fit(
        x=np.ascontiguousarray(problem.x.astype(dtype).ravel()),
        y=np.ascontiguousarray(problem.y.astype(dtype).ravel()),
        w0=dtype.type(problem.w0),
        b0=dtype.type(problem.b0),
        lr=dtype.type(config.lr),
        epochs=config.epochs,
    )

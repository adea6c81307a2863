"""NumPy trainers with the tutorial's hand-derived gradients.

Rules: ``tutorial`` is the tutorial's loop statement for statement, so in
float64 it reproduces the tutorial bit for bit; ``fused`` computes the same
per-sample forward pass and gradients, but hoists the loop-invariant ``x²``,
works on flat arrays in preallocated buffers and reduces with BLAS dot products
(a different summation order, so agreement is to rounding, not to the bit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends._core import HostResult, Problem, TrainConfig

VARIANTS = {"cpu": ("tutorial", "fused")}


def unavailable(variant: str, device: str) -> str:
    return "" if variant in VARIANTS.get(device, ()) else f"no NumPy variant {variant!r} on {device!r}"


def loss_and_gradient(x: np.ndarray, y: np.ndarray, w, b):
    """The tutorial's loss and hand-derived gradients, operation for operation.

    ``∂L/∂w = Σ(w·x²+b−y)·x²`` and ``∂L/∂b = Σ(w·x²+b−y)`` for ``L = 0.5·Σ(w·x²+b−y)²``.
    """
    y_pred = np.power(x, 2) * w + b
    loss = 0.5 * (y_pred - y) ** 2
    loss = loss.sum()
    grad_w = np.sum((y_pred - y) * np.power(x, 2))
    grad_b = np.sum((y_pred - y))  # noqa: UP034 - the tutorial's statement, as written
    return loss, grad_w, grad_b


@dataclass
class _TutorialFit(HostResult):
    x: np.ndarray  # (n, 1), working dtype
    y: np.ndarray
    w0: np.ndarray  # (1, 1)
    b0: np.ndarray
    lr: float
    epochs: int

    def run(self):
        x, y, lr = self.x, self.y, self.lr
        w, b = self.w0.copy(), self.b0.copy()
        losses = np.empty(self.epochs)  # float64 holds every float32 loss exactly: no conversion in result()
        # Overflow is how divergence shows; it is reported in FitResult.diverged.
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(self.epochs):
                loss, grad_w, grad_b = loss_and_gradient(x, y, w, b)
                w -= lr * grad_w
                b -= lr * grad_b
                losses[i] = loss
            final = loss_and_gradient(x, y, w, b)[0]
        return w[0, 0], b[0, 0], losses, final


@dataclass
class _FusedFit(HostResult):
    x2: np.ndarray  # (n,), working dtype, x² computed once
    y: np.ndarray
    w0: np.generic
    b0: np.generic
    lr: np.generic
    epochs: int

    def run(self):
        x2, y, lr = self.x2, self.y, self.lr
        w, b = self.w0, self.b0
        half = x2.dtype.type(0.5)
        r = np.empty_like(x2)
        losses = np.empty(self.epochs)  # float64: exact for float32 losses too
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(self.epochs):
                np.multiply(x2, w, out=r)
                r += b
                r -= y  # r = ŷ − y
                losses[i] = half * np.dot(r, r)
                w, b = w - lr * np.dot(r, x2), b - lr * r.sum()
            np.multiply(x2, w, out=r)
            r += b
            r -= y
            final = half * np.dot(r, r)
        return w, b, losses, final


def prepare(variant: str, device: str, problem: Problem, config: TrainConfig):
    dtype = np.dtype(config.dtype)
    if variant == "tutorial":
        return _TutorialFit(
            x=problem.x.astype(dtype),
            y=problem.y.astype(dtype),
            w0=np.full((1, 1), problem.w0, dtype),
            b0=np.full((1, 1), problem.b0, dtype),
            lr=config.lr,  # a Python float, as in the tutorial: NumPy keeps the array's dtype
            epochs=config.epochs,
        )
    if variant == "fused":
        x = problem.x.astype(dtype).ravel()
        return _FusedFit(
            x2=x * x,
            y=problem.y.astype(dtype).ravel(),
            w0=dtype.type(problem.w0),
            b0=dtype.type(problem.b0),
            lr=dtype.type(config.lr),
            epochs=config.epochs,
        )
    raise ValueError(unavailable(variant, device))

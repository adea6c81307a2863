"""A one-hidden-layer perceptron: ``ŷ = tanh(X·W1 + b1)·w2 + b2``, squared loss ``0.5·Σ(ŷ−y)²``, full batch.

Rules: the maths is written once against the Python array API standard (``xp``: NumPy, CuPy, torch or JAX
through array-api-compat, or array-api-strict in the tests), in ``loss`` and its hand-derived ``gradient``;
a backend owns the loop. The data and the initial parameters are drawn in NumPy from ``default_rng(seed)``,
so that every backend starts from the same numbers. ``X`` is uniform on [−1, 1]; the target is a smooth
function of it, ``y = sin(X·a) + noise·U[0, 1)`` with ``a`` uniform on [−1, 1]/√d. The initial weights are
uniform on ±1/√fan-in (the usual scale, so that tanh starts in its linear part), the biases zero.

Learning rate: ``lr = LR_SCALE/(n·(1 + h/4))``. The loss sums over the n points, so every second derivative
grows with n; the output layer's Hessian ``HᵀH`` (H the hidden activations, |H| ≤ 1, about 1/3 of h of them
active at the start) has its largest eigenvalue near ``n·(1 + h/4)`` at most, and the hidden layer's is smaller
(its gradient carries w2 ~ 1/√h). tests/test_models.py checks that every default size decreases its loss at
every step in float64.

Sizes: where the two matrix products (4·n·d·h FLOPs an epoch, forward and backward) dominate the element-wise
work (~10·n·h): d = 32, h = 64 at n = 1024 in the default run, whose float64 reference fit (800 epochs) takes
seconds on 2 cores (2026-12-03: 4 s; at n = 2048, h = 128 it took 47 s, float64 BLAS being slow at these
shapes there); larger under ``--sweep``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from problems import Data

NAME = "mlp"
MODEL = "mlp"
PARAMS = {"d": 32, "h": 64, "noise": 0.2}
DEFAULT_SIZES = ({"n": 1024, "d": 32, "h": 64},)
#: ``--full`` adds a size where the matrix products dominate more (16× the default's FLOPs per sample).
FULL_SIZES = ({"n": 4096, "d": 64, "h": 256},)
SWEEP_SIZES = ({"n": 4096, "d": 64, "h": 256},)
DRAWS = ""
LR_SCALE = 0.5


def parameters(d: int, h: int = 64, **params: Any) -> dict[str, tuple[int, ...]]:
    """The hidden layer's weights ``W1`` (d, h) and biases ``b1`` (h,); the output's weights ``w2`` (h,) and
    bias ``b2``."""
    return {"W1": (d, h), "b1": (h,), "w2": (h,), "b2": ()}


def make(n: int, seed: int, dtype: str = "float64", d: int = 32, h: int = 64, noise: float = 0.2) -> Data:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (n, d))
    a = rng.uniform(-1.0, 1.0, d) / np.sqrt(d)
    y = (np.sin(x @ a) + noise * rng.random(n)).reshape(n, 1)
    params0 = {"W1": rng.uniform(-1.0, 1.0, (d, h)) / np.sqrt(d), "b1": np.zeros(h),
               "w2": rng.uniform(-1.0, 1.0, h) / np.sqrt(h), "b2": 0.0}  # fmt: skip
    if dtype != "float64":
        x, y = x.astype(dtype), y.astype(dtype)
    return Data(x, y, params0)


def features(x):
    return x


def loss(xp, params, x, y):
    """``0.5·Σ(ŷ−y)²`` of x (n, d) and y (n,), in the namespace and dtype of the arrays given."""
    r = xp.tanh(x @ params["W1"] + params["b1"]) @ params["w2"] + params["b2"] - y
    return 0.5 * xp.sum(r * r)


def gradient(xp, params, x, y):
    """The loss and its hand-derived gradient: with ``H = tanh(X·W1 + b1)`` and ``r = H·w2 + b2 − y``,
    ``∂L/∂w2 = Hᵀr``, ``∂L/∂b2 = Σr``, ``G = (r w2ᵀ)⊙(1 − H²)``, ``∂L/∂W1 = XᵀG``, ``∂L/∂b1 = Σ_rows G``."""
    hidden = xp.tanh(x @ params["W1"] + params["b1"])
    r = hidden @ params["w2"] + params["b2"] - y
    back = r[:, None] * params["w2"][None, :] * (1 - hidden * hidden)
    grads = {"W1": x.T @ back, "b1": xp.sum(back, axis=0), "w2": hidden.T @ r, "b2": xp.sum(r)}
    return 0.5 * xp.sum(r * r), grads


def optimum(x: np.ndarray, y: np.ndarray) -> None:
    """None: a network's loss has no closed-form optimum (nor a unique one)."""
    return None


def lr(n: int, d: int = 32, h: int = 64, **params: Any) -> float:
    return LR_SCALE / (n * (1 + h / 4))


def flops(n: int, d: int = 32, h: int = 64, **params: Any) -> int:
    """FLOPs of one epoch, forward and backward: the two products with X (X·W1 and XᵀG, 2·n·d·h each), the
    output's and its gradient's (2·n·h each), and the element-wise work (tanh, 1 − H², the products: ~6·n·h)."""
    return 4 * n * d * h + 10 * n * h


def floor_bytes(n: int, itemsize: int, d: int = 32, h: int = 64, **params: Any) -> int:
    """X and y, read once (W1 is d·h values, in cache)."""
    return (d + 1) * n * itemsize

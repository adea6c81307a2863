"""The seed's problem, from the tutorial: ``y = w·x² + b`` on ``x = linspace(−1, 1, n)``.

Rules: the recipe is the tutorial's, draw for draw and operation for operation, so that its data, its
initial parameters and the float64 NumPy loop reproduce the tutorial bit for bit (tests/test_tutorial.py).
"""

from __future__ import annotations

import numpy as np

from problems import Data

NAME = "quadratic"
MODEL = "quadratic"
PARAMS = {"noise": 0.2}
#: The default run: the tutorial's 100 points, its seed's draws (bench.problems.tutorial); ``--full`` adds the
#: large problem (seed 0, as every other size).
DEFAULT_SIZES = ({"n": 100, "seed": 100},)
FULL_SIZES = ({"n": 10**6},)
SWEEP_SIZES = tuple({"n": 10**k} for k in range(2, 8))
#: lr·n of the tutorial (lr 1e-3 on 100 points): lr·λmax(Hessian) ≈ 0.11 at every size.
LR_TIMES_N = 0.1


def parameters(d: int = 1, **params) -> dict[str, tuple[int, ...]]:
    """``w`` and ``b``, two scalars: the seed's model takes one feature."""
    if d != 1:
        raise ValueError(f"x must have shape (n,) or (n, 1): the seed's model takes one feature, got {d}")
    return {"w": (), "b": ()}


def make(n: int, seed: int, dtype: str = "float64", noise: float = 0.2) -> Data:
    """The tutorial's recipe: ``RandomState(seed)`` draws as ``np.random.seed(seed)`` then ``np.random.rand``."""
    rng = np.random.RandomState(seed)
    x = np.linspace(-1, 1, n).reshape(n, 1)
    # The same expression, in the same order, as the tutorial: bit-identical y.
    y = 3 * np.power(x, 2) + 2 + noise * rng.rand(x.size).reshape(n, 1)
    w = rng.rand(1, 1)
    b = rng.rand(1, 1)
    if dtype != "float64":
        x, y = x.astype(dtype), y.astype(dtype)
    return Data(x, y, {"w": w.item(), "b": b.item()})


def features(x: np.ndarray) -> np.ndarray:
    return np.power(x, 2)


def curve(xp, params, x):
    """The fitted curve a report draws over the data: ``ŷ = w·x² + b`` at x (n, 1), as (n,)."""
    return x[:, 0] ** 2 * params["w"] + params["b"]


def loss(xp, params, x, y):
    """``0.5·Σ(w·x²+b−y)²`` of x (n, 1) and y (n,), in the namespace and dtype of the arrays given."""
    r = curve(xp, params, x) - y
    return 0.5 * xp.sum(r * r)


def gradient(xp, params, x, y):
    """The loss and its hand-derived gradient: ``∂L/∂w = Σ(w·x²+b−y)·x²``, ``∂L/∂b = Σ(w·x²+b−y)``."""
    x2 = x[:, 0] ** 2
    r = x2 * params["w"] + params["b"] - y
    return 0.5 * xp.sum(r * r), {"w": xp.sum(r * x2), "b": xp.sum(r)}


def optimum(x: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], float]:
    z = np.power(x[:, 0].astype(np.float64), 2)
    design = np.column_stack([z, np.ones_like(z)])
    yy = y[:, 0].astype(np.float64)
    (w, b), *_ = np.linalg.lstsq(design, yy, rcond=None)
    return {"w": float(w), "b": float(b)}, 0.5 * float(np.sum((w * z + b - yy) ** 2))


def lr(n: int, **params) -> float:
    return LR_TIMES_N / n


def flops(n: int, **params) -> int:
    """FLOPs of one epoch: the residual (3·n with x² hoisted), the loss and the two gradient sums (2·n each)."""
    return 9 * n


def floor_bytes(n: int, itemsize: int, **params) -> int:
    """x and y, read once."""
    return 2 * n * itemsize

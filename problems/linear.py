"""Least-squares linear regression with ``d`` features: ``y = X·θ* + b* + noise·U[0, 1)``.

``X ∈ ℝ^{n×d}`` is uniform on [−1, 1], ``θ*`` uniform on [−3, 3], ``b* = 2`` (the seed's intercept), all
from ``numpy.random.default_rng(seed)``; the initial ``θ0``, ``b0`` are uniform on [0, 1), as the tutorial's
``w, b`` are. The loss is ``0.5·Σ(X·θ + b − y)²``. The seed's model is the special case of one feature ``x²``.

Learning rate: ``lr = 0.1/(n + d)``. Gradient descent is stable while ``lr·λmax < 2``, λmax being the
largest eigenvalue of the Hessian ``ZᵀZ`` of the design ``Z = [X, 1]``. With features uniform on [−1, 1]
(mean 0, variance 1/3), ``E[ZᵀZ] = n·diag(1/3, …, 1/3, 1)``; the random coupling ``Xᵀ1`` (entries of size
√(n/3)) lifts the intercept's eigenvalue to about ``n + d/2``, and the feature block's largest is about
``(√n + √d)²/3 ≤ 2(n + d)/3`` (Marchenko-Pastur). So ``λmax ≲ n + d`` for every (n, d), and
``lr·λmax ≲ 0.1``: the seed's ``0.1/n`` where d ≪ n, and still stable where d ≥ n, where ``0.1/n`` diverges
(n = 1, d = 1024: λmax ≈ 360). tests/test_linear.py checks the bound against the Hessian's eigenvalues.
"""

from __future__ import annotations

import numpy as np

from problems import Data

NAME = "linear"
MODEL = "linear"
PARAMS = {"d": 16, "noise": 0.2}
#: The default run's problem (overhead-bound), and the medium one (streaming a matrix) that ``--full`` adds.
DEFAULT_SIZES = ({"n": 1000, "d": 16},)
FULL_SIZES = ({"n": 10**5, "d": 64},)
#: n·d up to 6.4·10⁷ values: d from 1 to 1024 at n·d = 10⁶, and the medium shape grown.
SWEEP_SIZES = (
    *({"n": 10**6 // d, "d": d} for d in (1, 16, 64, 256, 1024)),
    *({"n": n, "d": 64} for n in (10**3, 10**4, 10**5, 10**6)),
)
DRAWS = ""
B_STAR = 2.0
THETA_RANGE = 3.0


def parameters(d: int, **params) -> dict[str, tuple[int, ...]]:
    """``theta``, one weight per feature, and the intercept ``b``."""
    return {"theta": (d,), "b": ()}


def make(n: int, seed: int, dtype: str = "float64", d: int = 16, noise: float = 0.2) -> Data:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (n, d))
    theta = rng.uniform(-THETA_RANGE, THETA_RANGE, d)
    y = (x @ theta + B_STAR + noise * rng.random(n)).reshape(n, 1)
    w0 = rng.random(d)
    b0 = float(rng.random())
    if dtype != "float64":
        x, y, w0 = x.astype(dtype), y.astype(dtype), w0.astype(dtype)
    return Data(x, y, {"theta": w0, "b": b0})


def features(x: np.ndarray) -> np.ndarray:
    return x


def loss(xp, params, x, y):
    """``0.5·Σ(X·θ+b−y)²`` of X (n, d) and y (n,), in the namespace and dtype of the arrays given."""
    r = x @ params["theta"] + params["b"] - y
    return 0.5 * xp.sum(r * r)


def gradient(xp, params, x, y):
    """The loss and its hand-derived gradient: ``∂L/∂θ = Xᵀ(Xθ+b−y)``, ``∂L/∂b = Σ(Xθ+b−y)``."""
    r = x @ params["theta"] + params["b"] - y
    return 0.5 * xp.sum(r * r), {"theta": x.T @ r, "b": xp.sum(r)}


def optimum(x: np.ndarray, y: np.ndarray) -> tuple[dict[str, np.ndarray | float], float]:
    x = x.astype(np.float64, copy=False)
    yy = y[:, 0].astype(np.float64)
    design = np.column_stack([x, np.ones(len(x))])
    params, *_ = np.linalg.lstsq(design, yy, rcond=None)
    r = design @ params - yy
    return {"theta": params[:-1], "b": float(params[-1])}, 0.5 * float(r @ r)


def lr(n: int, d: int = 16, **params) -> float:
    return 0.1 / (n + d)


def flops(n: int, d: int = 16, **params) -> int:
    """FLOPs of one epoch: X·θ and Xᵀr (2·n·d each) and the residual's and loss's element-wise work (~4·n)."""
    return 4 * n * d + 4 * n


def floor_bytes(n: int, itemsize: int, d: int = 16, **params) -> int:
    """X and y, read once."""
    return (d + 1) * n * itemsize

"""Binary logistic regression on d features: the log-loss ``Σ[log(1 + e^z) − y·z]``, ``z = X·θ + b``.

Rules: the maths is written once against the Python array API standard (``xp``), in ``loss`` and its
hand-derived ``gradient``, stably: ``log(1 + e^z)`` is ``logaddexp(0, z)`` and the sigmoid ``exp(−log(1 +
e^−z))``, which neither overflows nor loses its small values in float32. The loss is summed over the samples,
as the seed's is, so that data-parallel shards add up. ``X`` is uniform on [−1, 1]; labels are drawn from the
model itself, ``y ~ Bernoulli(σ(X·θ* + b*))`` with θ* uniform on [−3, 3] and b* = 0.5, all from
``default_rng(seed)``; the initial θ0, b0 uniform on [0, 1) as the tutorial's w, b.

Learning rate: the Hessian is ``Zᵀ diag(σ(1 − σ)) Z`` with ``σ(1 − σ) ≤ 1/4`` and ``Z = [X, 1]``, whose largest
eigenvalue is ≲ n + d (problems.linear): ``lr = 1/(n + d)`` keeps ``lr·λmax ≲ 1/4``. The optimum (which exists
where the classes overlap, as labels drawn from the model do) is found by Newton's method in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from problems import Data

NAME = "logistic"
MODEL = "logistic"
PARAMS = {"d": 16}
DEFAULT_SIZES = ({"n": 4096, "d": 16},)
FULL_SIZES = ({"n": 10**5, "d": 64},)
SWEEP_SIZES = ({"n": 10**5, "d": 64},)
DRAWS = ""
B_STAR = 0.5
THETA_RANGE = 3.0
#: Newton's method: steps at most, and the gradient's size (relative to the data's) at which it has converged.
NEWTON_STEPS, NEWTON_TOL = 50, 1e-12


def parameters(d: int, **params: Any) -> dict[str, tuple[int, ...]]:
    """``theta``, one weight per feature, and the intercept ``b``."""
    return {"theta": (d,), "b": ()}


def make(n: int, seed: int, dtype: str = "float64", d: int = 16) -> Data:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (n, d))
    theta = rng.uniform(-THETA_RANGE, THETA_RANGE, d)
    p = 1 / (1 + np.exp(-(x @ theta + B_STAR)))
    y = (rng.random(n) < p).astype(np.float64).reshape(n, 1)
    params0 = {"theta": rng.random(d), "b": float(rng.random())}
    if dtype != "float64":
        x, y = x.astype(dtype), y.astype(dtype)
    return Data(x, y, params0)


def features(x):
    return x


def _softplus(xp, z):
    """``log(1 + e^z)``, stable for every z."""
    return xp.logaddexp(xp.zeros_like(z), z)


def loss(xp, params, x, y):
    """``Σ[log(1 + e^z) − y·z]`` of x (n, d) and labels y (n,) in {0, 1}."""
    z = x @ params["theta"] + params["b"]
    return xp.sum(_softplus(xp, z) - y * z)


def gradient(xp, params, x, y):
    """The loss and its hand-derived gradient: ``∂L/∂θ = Xᵀ(σ(z) − y)``, ``∂L/∂b = Σ(σ(z) − y)``."""
    z = x @ params["theta"] + params["b"]
    r = xp.exp(-_softplus(xp, -z)) - y  # σ(z) − y
    return xp.sum(_softplus(xp, z) - y * z), {"theta": x.T @ r, "b": xp.sum(r)}


def optimum(x: np.ndarray, y: np.ndarray) -> tuple[dict[str, Any], float] | None:
    """The log-loss's minimum by Newton's method in float64; None where it does not converge (separable data)."""
    design = np.column_stack([x.astype(np.float64), np.ones(len(x))])
    labels = y[:, 0].astype(np.float64)
    params = np.zeros(design.shape[1])
    for _ in range(NEWTON_STEPS):
        p = 1 / (1 + np.exp(-(design @ params)))
        grad = design.T @ (p - labels)
        hessian = design.T @ (design * (p * (1 - p))[:, None])
        params = params - np.linalg.solve(hessian, grad)
        if np.abs(grad).max() <= NEWTON_TOL * len(x):
            z = design @ params
            value = float(np.sum(np.logaddexp(0.0, z) - labels * z))
            return {"theta": params[:-1], "b": float(params[-1])}, value
    return None


def lr(n: int, d: int = 16, **params: Any) -> float:
    return 1.0 / (n + d)


def flops(n: int, d: int = 16, **params: Any) -> int:
    """FLOPs of one epoch: X·θ and Xᵀr (2·n·d each) and the element-wise work (~20·n with exp and log)."""
    return 4 * n * d + 20 * n


def floor_bytes(n: int, itemsize: int, d: int = 16, **params: Any) -> int:
    """X and y, read once."""
    return (d + 1) * n * itemsize

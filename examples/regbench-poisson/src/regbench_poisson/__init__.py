"""Poisson regression, ``y ~ Poisson(e^z)`` with ``z = X·θ + b``: a regbench model family written once.

The loss (the negative log-likelihood up to a constant, summed over the samples) and its gradient are written
against the Python array API standard (``xp``), so every autodiff trainer of regbench runs it from this one
definition and NumPy's manual trainer runs the hand-derived gradient. Nothing else of regbench changes.
"""

import numpy as np

from problems import Data

NAME = MODEL = "poisson"  # MODEL == NAME: a family of its own
PARAMS = {"d": 8}
DEFAULT_SIZES = ({"n": 2000, "d": 8},)
SWEEP_SIZES = ({"n": 100_000, "d": 8},)


def parameters(d, **params):
    return {"theta": (d,), "b": ()}


def make(n, seed, dtype="float64", d=8):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (n, d))
    rate = np.exp(x @ rng.uniform(-0.5, 0.5, d) + 0.5)
    y = rng.poisson(rate).astype(np.float64).reshape(n, 1)
    params0 = {"theta": rng.uniform(-0.1, 0.1, d), "b": 0.0}
    return Data(x.astype(dtype), y.astype(dtype), params0)


def features(x):
    return x


def loss(xp, params, x, y):
    z = x @ params["theta"] + params["b"]
    return xp.sum(xp.exp(z) - y * z)


def gradient(xp, params, x, y):
    z = x @ params["theta"] + params["b"]
    r = xp.exp(z) - y
    return xp.sum(xp.exp(z) - y * z), {"theta": x.T @ r, "b": xp.sum(r)}


def optimum(x, y):
    return None  # no closed form (Newton's method would find it; not needed to benchmark)


def lr(n, d=8, **params):
    return 0.1 / (n + d)  # the Hessian Zᵀdiag(e^z)Z: e^z ≲ 5 here, λmax ≲ 5(n + d)


def flops(n, d=8, **params):
    return 4 * n * d + 6 * n


def floor_bytes(n, itemsize, d=8, **params):
    return (d + 1) * n * itemsize

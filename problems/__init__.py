"""The problems (workloads) regbench trains: each defined once, in one module that imports no framework.

Rules: this is the lowest floor beside ``records``: it imports NumPy only. A problem module declares

- ``NAME``: the problem's name, as a saved record's ``problem.name`` carries it;
- ``PARAMS``: its parameters beyond the size ``n`` and the seed, with their defaults (``{"noise": 0.2}``);
- ``DEFAULT_SIZES`` and ``SWEEP_SIZES``: the parameters (``n`` included) of the default run's and of the
  sweep's problems;
- ``make(n, seed, dtype="float64", **params) -> Data``: the data and the initial parameters, drawn from a
  seeded generator and converted once to the working dtype (float64: the draws as they are);
- ``features(x)``: the design matrix the model is linear in (``x²`` for the seed's model, ``X`` for linear);
- ``loss(x, y, w, b)`` and ``gradient(x, y, w, b) -> (∂L/∂w, ∂L/∂b)``: the loss ``0.5·Σ(ŷ−y)²`` and its
  hand-derived gradient, in NumPy (the reference's);
- ``optimum(x, y) -> (w*, b*, L*)``: the closed-form least-squares optimum, in float64 (None where a problem
  has none);
- ``lr(n, **params)``: the learning rate the benchmarks use at a size, stable for every size;
- ``floor_bytes(n, itemsize, **params)``: the bytes one epoch must read at least (its data, once);
- ``DRAWS``: what a report draws for it beside the loss curves (``"curve"``: the fitted curve over the data;
  ``""``: nothing more).

``w`` is a float for a one-feature model and a vector of ``d`` floats otherwise; ``b`` is a float. The
problems known here are listed in ``MODULES``; ``register`` adds another (a plugin's, or a test's toy).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import NamedTuple

import numpy as np

#: The problems regbench knows, by name: the module defining each, imported on first use.
MODULES: dict[str, str] = {"quadratic": "problems.quadratic", "linear": "problems.linear"}
#: What every problem module defines (``tests/test_problems.py`` holds each module to it).
CONTRACT = ("NAME", "PARAMS", "DEFAULT_SIZES", "SWEEP_SIZES", "DRAWS", "make", "features", "loss", "gradient",
            "optimum", "lr", "floor_bytes")  # fmt: skip


class Data(NamedTuple):
    """A problem's data and initial parameters: ``x`` (n, 1) or (n, d), ``y`` (n, 1), ``w0`` scalar or (d,)."""

    x: np.ndarray
    y: np.ndarray
    w0: float | np.ndarray
    b0: float


def names() -> tuple[str, ...]:
    """Every known problem's name, the seed's first; imports no problem module."""
    return tuple(MODULES)


def get(name: str) -> ModuleType:
    """The module of problem ``name``; ValueError naming the known ones for any other name."""
    if name not in MODULES:
        raise ValueError(f"unknown problem {name!r}; known problems: {', '.join(MODULES)}")
    return importlib.import_module(MODULES[name])


def register(module: ModuleType) -> None:
    """Add a problem module (one that declares the whole contract) under its ``NAME``."""
    missing = [attr for attr in CONTRACT if not hasattr(module, attr)]
    if missing:
        raise ValueError(f"problem module {module.__name__} lacks {', '.join(missing)}")
    MODULES[module.NAME] = module.__name__


def unregister(name: str) -> None:
    """Forget a registered problem (the seed's and linear stay)."""
    if name in ("quadratic", "linear"):
        raise ValueError(f"problem {name!r} is built in")
    MODULES.pop(name, None)

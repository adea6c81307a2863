"""Accuracy metrics of a fit: distance to the least-squares optimum and agreement with a reference.

Rules: pure NumPy on host values; every parameter is compared by its name,
whatever the model (its problem's ``params0`` names); non-finite inputs (a
diverged fit) give non-finite metrics rather than exceptions, so a report can
show them as such.
"""

from __future__ import annotations

import functools
import math

import numpy as np

import problems
from backends._core import FitResult, Problem, TrainConfig, flat
from backends._registry import REFERENCE_ID, get_trainer


def reference_fit(problem: Problem, config: TrainConfig) -> FitResult:
    """The tutorial's NumPy loop in float64 on the same problem, epochs and lr: what every fit is compared with."""
    return _reference_fit(problem, config.epochs, config.lr)  # one per epochs and lr: dtype, workers do not matter


@functools.lru_cache(maxsize=16)
def _reference_fit(problem: Problem, epochs: int, lr: float) -> FitResult:
    return get_trainer(REFERENCE_ID).fit(problem, TrainConfig(epochs=epochs, lr=lr, dtype="float64"))


@functools.lru_cache(maxsize=16)
def least_squares(problem: Problem) -> tuple[dict[str, np.ndarray], float] | None:
    """The optimum of the problem's loss: every parameter by name, and the loss there, in float64 (its model's
    ``optimum``: closed-form least squares, Newton's method for logistic); None where the model has none."""
    found = problems.get(problem.model).optimum(problem.x, problem.y)
    if found is None:
        return None
    params, loss = found
    return {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}, float(loss)


def _relative(got: np.ndarray, want: np.ndarray) -> float:
    """‖got − want‖₂ / ‖want‖₂ (0 where they are equal, inf where only ``want`` is 0; NaN where either is)."""
    diff = float(np.linalg.norm(np.ravel(got - want)))
    scale = float(np.linalg.norm(np.ravel(want)))
    if diff == 0:
        return 0.0
    return diff / scale if scale else math.inf


def optimum_gap(result: FitResult, problem: Problem) -> dict:
    """How far a fit stopped from the optimum: in all parameters at once (Euclidean), in loss, and per parameter
    (``params``: by name, the optimum's value and the relative distance to it); None each where the model has no
    optimum (an MLP)."""
    found = least_squares(problem)
    if found is None:
        return {
            "loss_opt": None,
            "opt_distance": None,
            "loss_gap": None,
            "params": {name: {} for name in result.params},
        }
    optimum, loss_opt = found
    params = {name: {"optimum": optimum[name], "opt_rel": _relative(value, optimum[name])}
              for name, value in result.params.items()}  # fmt: skip
    return {
        "loss_opt": loss_opt,
        "opt_distance": float(np.linalg.norm(flat(result.params) - flat(optimum))),
        "loss_gap": result.final_loss - loss_opt,
        "params": params,
    }


def agreement(result: FitResult, reference: FitResult) -> dict:
    """The largest relative difference over the loss history, and per parameter (``params``: by name) the largest
    absolute difference and the relative norm of the difference."""
    if result.losses.shape != reference.losses.shape:
        raise ValueError(f"loss histories differ in length: {result.losses.shape} vs {reference.losses.shape}")
    if list(result.params) != list(reference.params):
        raise ValueError(f"parameters differ: {list(result.params)} vs {list(reference.params)}")
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.abs(result.losses - reference.losses)
        rel = np.where(diff == 0, 0.0, diff / np.abs(reference.losses))
    params = {}
    for name, value in result.params.items():
        want = reference.params[name]
        params[name] = {"ref_diff": float(np.max(np.abs(value - want))), "ref_rel": _relative(value, want)}
    return {"ref_loss_rel": float(np.max(rel)), "params": params}  # NaN where a history has NaN: np.max propagates it

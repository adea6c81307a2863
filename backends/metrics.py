"""Accuracy metrics of a fit: distance to the least-squares optimum and agreement with a reference.

Rules: pure NumPy on host values; non-finite inputs (a diverged fit) give
non-finite metrics rather than exceptions, so a report can show them as such.
"""

from __future__ import annotations

import functools

import numpy as np

import problems
from backends._core import FitResult, Problem, TrainConfig
from backends._registry import REFERENCE_ID, get_trainer


def reference_fit(problem: Problem, config: TrainConfig) -> FitResult:
    """The tutorial's NumPy loop in float64 on the same problem, epochs and lr: what every fit is compared with."""
    return _reference_fit(problem, config.epochs, config.lr)  # one per epochs and lr: dtype, workers do not matter


@functools.lru_cache(maxsize=16)
def _reference_fit(problem: Problem, epochs: int, lr: float) -> FitResult:
    return get_trainer(REFERENCE_ID).fit(problem, TrainConfig(epochs=epochs, lr=lr, dtype="float64"))


@functools.lru_cache(maxsize=16)
def least_squares(problem: Problem) -> tuple[float | np.ndarray, float, float]:
    """Closed-form optimum ``(w*, b*, loss*)`` of the problem's ``0.5·Σ(ŷ−y)²``, in float64 (problems' optimum)."""
    return problems.get(problem.model).optimum(problem.x, problem.y)


def optimum_gap(result: FitResult, problem: Problem) -> dict[str, float]:
    """How far a fit stopped from the optimum: in parameters (Euclidean) and in loss.

    ``w_opt`` is the optimum's w for the seed's model; for a model of d features, whose θ* is a vector,
    the record keeps the distance alone (``w_opt`` None).
    """
    w_opt, b_opt, loss_opt = least_squares(problem)
    if np.ndim(w_opt):
        distance = float(np.linalg.norm(result.params - np.append(w_opt, b_opt)))
        w_opt = None
    else:
        distance = float(np.hypot(result.w - w_opt, result.b - b_opt))
    return {
        "w_opt": w_opt,
        "b_opt": b_opt,
        "loss_opt": loss_opt,
        "opt_distance": distance,
        "loss_gap": result.final_loss - loss_opt,
    }


def agreement(result: FitResult, reference: FitResult) -> dict[str, float]:
    """|Δw| (the largest over a vector θ), |Δb| and the largest relative difference over the loss history."""
    if result.losses.shape != reference.losses.shape:
        raise ValueError(f"loss histories differ in length: {result.losses.shape} vs {reference.losses.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.abs(result.losses - reference.losses)
        rel = np.where(diff == 0, 0.0, diff / np.abs(reference.losses))
    return {
        "ref_dw": float(np.max(np.abs(result.w - reference.w))),
        "ref_db": abs(result.b - reference.b),
        "ref_loss_rel": float(np.max(rel)),  # NaN where a history has NaN: np.max propagates it
    }

"""regbench backends: the tutorial's gradient descent, one Trainer per framework and style.

Rules: ``import backends`` imports no framework (torch, jax, numba); a trainer
imports its framework when first probed or used. Every trainer runs the same
algorithm on the same ``Problem`` and ``TrainConfig``: full-batch gradient
descent on ``0.5·Σ(ŷ−y)²`` of the problem's model (``problems``: the seed's
``ŷ = w·x² + b``, or ``linear``'s ``ŷ = X·θ + b``), for the problems its spec
declares.
"""

from backends._core import (
    DTYPES,
    Availability,
    FitResult,
    HostResult,
    PreparedFit,
    Problem,
    TrainConfig,
    Trainer,
    flat,
    make_linear_problem,
    make_named_problem,
    make_problem,
    seed_problem,
)
from backends._registry import (
    REFERENCE_ID,
    TrainerUnavailable,
    available,
    get_trainer,
    trainer_ids,
)
from backends.spec import TrainerSpec

__all__ = [
    "DTYPES",
    "REFERENCE_ID",
    "Availability",
    "FitResult",
    "HostResult",
    "PreparedFit",
    "Problem",
    "TrainConfig",
    "Trainer",
    "TrainerSpec",
    "TrainerUnavailable",
    "available",
    "flat",
    "get_trainer",
    "make_linear_problem",
    "make_named_problem",
    "make_problem",
    "seed_problem",
    "trainer_ids",
]

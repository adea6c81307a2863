"""regbench backends: the tutorial's gradient descent, one Trainer per framework and style.

Rules: ``import backends`` imports no framework (torch, jax, numba); a trainer
imports its framework when first probed or used. Every trainer runs the same
algorithm on the same ``Problem`` and ``TrainConfig``: full-batch gradient
descent on ``0.5·Σ(ŷ−y)²`` of the problem's model (``problems``: the seed's
``ŷ = w·x² + b``, or ``linear``'s ``ŷ = X·θ + b``), for the problems its spec
declares. The names exported here (``__all__``) are all that bench/ and regbench/
use of backends: its modules named ``_x`` are its own (tests/test_layers.py).
"""

from typing import Any

from backends._cluster import Cluster, split_endpoint
from backends._cluster import nodes as cluster_nodes
from backends._core import (
    DTYPES,
    SEED,
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
from backends._memory import proc_kib, total_memory
from backends._registry import (
    REFERENCE_ID,
    RegisteredTrainer,
    TrainerUnavailable,
    available,
    broken,
    get_trainer,
    prepare_fails,
    roles_of,
    runs,
    source_of,
    spec_of,
    specs,
    trainer_ids,
    twin_of,
    with_role,
)
from backends.families import families
from backends.spec import TrainerSpec

__all__ = [
    "DTYPES",
    "MAX_WORKERS_PER_CORE",
    "REFERENCE_ID",
    "SEED",
    "Availability",
    "Cluster",
    "FitResult",
    "HostResult",
    "PreparedFit",
    "Problem",
    "RegisteredTrainer",
    "TrainConfig",
    "Trainer",
    "TrainerSpec",
    "TrainerUnavailable",
    "announced_group",
    "available",
    "broken",
    "cluster_nodes",
    "die_with_parent",
    "families",
    "flat",
    "get_trainer",
    "make_linear_problem",
    "make_named_problem",
    "make_problem",
    "prepare_fails",
    "proc_kib",
    "rendezvous_store",
    "roles_of",
    "runs",
    "seed_problem",
    "source_of",
    "spec_of",
    "specs",
    "split_endpoint",
    "start_agent",
    "total_memory",
    "trainer_ids",
    "twin_of",
    "usable_cores",
    "with_role",
]


#: What backends._process_group gives bench and regbench: imported on first use (see __getattr__).
_PROCESS_GROUP = ("MAX_WORKERS_PER_CORE", "die_with_parent", "usable_cores")
#: What backends._torchrun gives regbench's other nodes (also run as __main__ on node 0).
_TORCHRUN = ("announced_group", "rendezvous_store", "start_agent")


def __getattr__(name: str) -> Any:
    # These are imported on first use: a data-parallel worker runs their module as __main__
    # (python -m backends._process_group), which its package must not have imported already.
    if name in _PROCESS_GROUP:
        from backends import _process_group

        return getattr(_process_group, name)
    if name in _TORCHRUN:
        from backends import _torchrun

        return getattr(_torchrun, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

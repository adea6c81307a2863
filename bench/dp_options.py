"""pytest options of the data-parallel trainers and of the scaling study; bench/conftest.py calls these.

Rules: ``--workers N`` (default 2) is the worker count of every data-parallel
trainer in the main benchmarks (on each node, across nodes); single-process trainers always run with 1.
The scaling study (bench/test_scaling.py, marker ``scaling``) is deselected
unless ``--scaling`` or ``--full`` is given; it runs every ``--scaling-workers`` count at
every ``--scaling-sizes`` n in every ``--scaling-dtypes`` dtype.
"""

from __future__ import annotations

import os

import pytest

from backends import cluster_nodes, spec_of
from bench.option_types import dtype_list, positive_ints, worker_count

DEFAULT_WORKERS = 2
DEFAULT_SCALING_SIZES = "1000,100000,1000000,10000000"
DEFAULT_SCALING_DTYPES = "float32"


def default_scaling_workers(cpus: int | None = None) -> str:
    """1, 2, 4, … up to the CPU count, and the CPU count itself."""
    cpus = cpus or os.cpu_count() or 1
    counts = [1 << i for i in range(cpus.bit_length()) if 1 << i <= cpus]
    return ",".join(map(str, sorted({*counts, cpus})))


def add_options(parser) -> None:
    group = parser.getgroup("regbench")
    group.addoption("--workers", type=worker_count, default=DEFAULT_WORKERS,
                    help=f"worker processes of the data-parallel trainers [{DEFAULT_WORKERS}]")  # fmt: skip
    group.addoption("--scaling", action="store_true",
                    help="run the scaling study of the data-parallel trainers (bench/test_scaling.py; --full runs it "
                    "too)")  # fmt: skip
    group.addoption("--scaling-sizes", type=positive_ints, default=DEFAULT_SCALING_SIZES,
                    help=f"comma-separated sizes of the scaling study [{DEFAULT_SCALING_SIZES}]")  # fmt: skip
    group.addoption("--scaling-workers", type=positive_ints, default=default_scaling_workers(),
                    help=f"comma-separated worker (and thread) counts [{default_scaling_workers()}]")  # fmt: skip
    group.addoption("--scaling-dtypes", type=dtype_list, default=DEFAULT_SCALING_DTYPES,
                    help=f"comma-separated dtypes of the scaling study [{DEFAULT_SCALING_DTYPES}]")  # fmt: skip


def configure(config) -> None:
    config.addinivalue_line("markers", "scaling: the data-parallel scaling study (runs with --scaling)")


def generate_tests(metafunc) -> None:
    option = metafunc.config.getoption
    if "scaling_n" in metafunc.fixturenames:
        sizes = option("--scaling-sizes")
        metafunc.parametrize("scaling_n", sizes, ids=[f"n{n}" for n in sizes])
    if "scaling_workers" in metafunc.fixturenames:
        counts = option("--scaling-workers")
        metafunc.parametrize("scaling_workers", counts, ids=[f"w{k}" for k in counts])
    if "scaling_dtype" in metafunc.fixturenames:
        dtypes = option("--scaling-dtypes")
        metafunc.parametrize("scaling_dtype", dtypes)


def collection_modifyitems(config, items) -> None:
    """Mark the scaling study, and deselect it without ``--scaling`` or ``--full`` (a study of the full run)."""
    scaling = [item for item in items if item.path.name == "test_scaling.py"]
    for item in scaling:
        item.add_marker(pytest.mark.scaling)
    if scaling and not (config.getoption("--scaling") or config.getoption("--full")):
        config.hook.pytest_deselected(items=scaling)
        items[:] = [item for item in items if item not in scaling]


def problem_workers(trainer_id: str) -> int:
    """The workers of a data-parallel trainer on the other problems (bench/test_problems.py): one on each node
    (on one machine, one: those problems time the trainer's own cost, not its scaling); 1 for any other."""
    spec = spec_of(trainer_id)
    return cluster_nodes() if spec is not None and spec.distributed else 1


def workers_for(trainer_id: str, config) -> int:
    """``--workers`` for a data-parallel trainer, 1 for any other; across nodes (``regbench run --nnodes N``,
    backends._cluster) ``--workers`` on each node, so N times as many in all."""
    spec = spec_of(trainer_id)
    return config.getoption("--workers") * cluster_nodes() if spec is not None and spec.distributed else 1

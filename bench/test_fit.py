"""The fit study: every problem at each of its sizes, every trainer that runs it × dtype, and their bandwidth floor.

Rules: the problems and their sizes are the problem modules' own (problems.MODULES, ``DEFAULT_SIZES``, under
``--full`` ``FULL_SIZES`` too, and under ``--sweep`` the sweep's: bench.problems.default_problems), the seed's
first: the tutorial's problem is the ``quadratic`` problem at its default size ``{"n": 100, "seed": 100}``, by the
same path as any other. A new problem is benchmarked, and swept, here without a change to this file or to reports. A
trainer that does not run a problem is not collected for it (its spec says which it runs); one that cannot run here
is skipped with the reason, and so is every size whose data in the working dtype would take over a quarter of this
machine's RAM (bench.problems.too_large). How each problem is timed (which trainers, how many seconds of rounds, the
data-parallel groups' workers) is its ``bench.problems.timing``, stated there once: the seed's problem is timed by
every trainer with the run's budget and ``--workers``; the others without the eager baselines but the reference, at
most PROBLEM_BUDGET_S of rounds, their data-parallel fits (one worker a node: the harness's own cost, not a scaling)
a study of the full run (marked ``full``). The tutorial's fits measure each compiling trainer's cold start in the
full run; ``--quick`` keeps them alone (bench.conftest). Each size the run times also times one streaming read of
exactly that problem's ``floor_bytes`` (``test_floor``: Numba on the CPU, a CUDA copy marked gpu; at most
PROBLEM_BUDGET_S of rounds), its record naming the problem: the floor its rows are held against. Every record is of
kind "fit" (the study); the problem and its size's role (``size``) are its own fields.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from backends import roles_of, runs, spec_of
from bench.dp_options import problem_workers
from bench.floor import run_floor
from bench.gpu import gpu_info
from bench.harness import run_benchmark
from bench.params import trainer_params
from bench.problems import (
    PROBLEM_BUDGET_S,
    PROBLEM_DTYPES,
    data_bytes,
    default_problems,
    is_tutorial,
    named,
    problem_config,
    timing,
    too_large,
)
from records.roles import BASELINE, REFERENCE

#: The devices of the floor, with the framework each reads with (bench.floor), for regbench run's one process per
#: framework (bench.isolation).
FLOOR_DEVICES = (
    ("cpu", [pytest.mark.framework("numba")]),
    ("cuda", [pytest.mark.gpu, pytest.mark.framework("torch")]),
)


def _label(sizes: dict) -> str:
    return ",".join(f"{key}{value}" for key, value in sizes.items())


def _params(sizes_run: list[tuple[str, dict]]) -> list:
    params = []
    for name, sizes in sizes_run:
        how = timing(name)
        for param in trainer_params(dtypes=PROBLEM_DTYPES):
            trainer_id, dtype = param.values
            roles = roles_of(trainer_id)
            if runs(trainer_id, name) and (how.baselines or BASELINE not in roles or REFERENCE in roles):
                study = [pytest.mark.full] if spec_of(trainer_id).distributed and not how.workers_option else []
                params.append(pytest.param(name, sizes, trainer_id, dtype, id=f"{name}-{_label(sizes)}-{param.id}",
                                           marks=[*param.marks, *study]))  # fmt: skip
    return params


def _floor_params(sizes_run: list[tuple[str, dict]]) -> list:
    return [pytest.param(name, sizes, device, dtype, id=f"{name}-{_label(sizes)}-{device}-{dtype}", marks=marks)
            for name, sizes in sizes_run for device, marks in FLOOR_DEVICES
            for dtype in PROBLEM_DTYPES]  # fmt: skip


def pytest_generate_tests(metafunc):
    # The sizes depend on --sweep and --sweep-sizes, which a decorator's parameters, made at import, cannot see.
    option = metafunc.config.getoption
    sizes_run = default_problems(option("--sweep"), option("--sweep-sizes"), option("--full"))
    if metafunc.function is test_fit:
        metafunc.parametrize(("problem", "sizes", "trainer_id", "dtype"), _params(sizes_run))
    elif metafunc.function is test_floor:
        metafunc.parametrize(("problem", "sizes", "device", "dtype"), _floor_params(sizes_run))


def _runnable(problem: str, sizes: dict, dtype: str):
    """The workload and its configuration; skipped where its data would not fit this machine's sanity cap."""
    why = too_large(problem, **sizes, dtype=dtype)
    if why:
        pytest.skip(why)
    workload = named(problem, **sizes)
    return workload, problem_config(workload, dtype)


def test_fit(benchmark, problem, sizes, trainer, dtype, workers, rounds, budget, cold_start, depth):
    workload, config = _runnable(problem, sizes, dtype)
    config = replace(config, workers=workers if timing(problem).workers_option else problem_workers(trainer.id))
    benchmark.group = f"{workload.record.label}: n={workload.problem.n}, {config.epochs} epochs"
    run_benchmark(benchmark, "fit", trainer, workload, config, rounds, budget_s=timing(problem).rounds_s(budget),
                  measure_cold_start=cold_start and is_tutorial(problem, sizes), depth=depth)  # fmt: skip


def test_floor(benchmark, problem, sizes, device, dtype, rounds, budget):
    if device == "cuda" and not gpu_info():
        pytest.skip("no CUDA device seen by torch or cupy")
    workload, config = _runnable(problem, sizes, dtype)
    benchmark.group = f"{workload.record.label}: n={workload.problem.n}, {config.epochs} epochs"
    run_floor(benchmark, workload.problem.n, dtype, device, rounds, min(budget, PROBLEM_BUDGET_S),
              data_bytes=data_bytes(problem, **sizes, dtype=dtype), problem=workload.record)  # fmt: skip

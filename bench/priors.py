"""What a benchmark is expected to cost the run before any run of it was seen: the progress line's prior.

Rules: a prior is a rough wall time in seconds from what the benchmark is (its trainer's spec, its kind, the
run's depth, whether it is its framework's first compile of the run), never from a clock; ``regbench run``
replaces it by what the storage's earlier runs of the same benchmark took where it has them (regbench.estimates),
and the progress line scales either by how the run's finished benchmarks compared with theirs (bench.progress).
The numbers are those of a default run on a quiet 2-core machine with empty compile caches (2026-12-04: its
benchmarks' ``wall_s`` summed to 219 s against these priors' 233 s, single benchmarks within 4×): a torch.compile
graph costs ~8 s and the first one ~22 s more, JAX's eager loop 4 s a fit, a data-parallel group's start seconds
with torchrun (torch), one without (JAX).
"""

from __future__ import annotations

import pytest

from backends import spec_of
from bench.params import of_item
from bench.problems import PROBLEM_BUDGET_S, is_tutorial, timing
from bench.rounds import ROUND_BUDGET_S
from records.roles import BASELINE

#: A benchmark's first call, probe and peak memory, beyond its rounds' budget (a problem's its
#: ``bench.problems.timing``'s, a floor's at most PROBLEM_BUDGET_S: bench/test_fit.py).
BASE_S = 0.2
#: What its trainer adds: a first call that compiles (torch.compile's graphs: 7 to 15 s; JAX's jit and scan ~1 s;
#: Numba's loops ~0.5 s), and once a run the framework's first compile (inductor builds its precompiled headers:
#: the seed's first graph took 35 s, its second 15).
COMPILE_S = {"torch": 8.0, "jax": 1.0, "numba": 0.5}
FIRST_COMPILE_S = {"torch": 22.0}
OTHER_COMPILE_S = 3.0
#: A cold start: a fresh process, its framework's import and its compile with empty caches (a full run, 2026-12-04:
#: ~30 s for torch.compile, a few seconds for JAX and Numba).
COLD_START_S = {"torch": 30.0, "jax": 5.0, "numba": 3.0}
OTHER_COLD_START_S = 30.0
#: Per fit, where the fits are slow: JAX's eager loop (~4 s a fit, quiet; other baselines OTHER_BASELINE_S in
#: all); a slow benchmark makes ``fits`` of them (its first call, its fewest rounds, peak memory).
BASELINE_FIT_S = {"jax": 4.0}
OTHER_BASELINE_S = 1.0
#: A data-parallel group's start and close (torch's through torchrun's agent: ~4 s; JAX's ~1 s) and each of its
#: ``fits`` (torch's eager loop with an all-reduce an epoch: ~1 s at the tutorial's size; JAX's scan 0.25 s).
DISTRIBUTED_S = {"torch": 4.0, "jax": 1.0}
DISTRIBUTED_FIT_S = {"torch": 1.0, "jax": 0.25}
OTHER_DISTRIBUTED_S = 4.0
#: A benchmark off the CPU: on a machine without the device it is skipped at once.
DEVICE_S = 0.2


def slow_at_the_tutorial_size(trainer_id: str) -> bool:
    """Whether each fit of this trainer takes about a second or more even at the tutorial's 100 points: a
    data-parallel group's (its processes' start besides), or a baseline whose fits are slow (BASELINE_FIT_S:
    JAX's eager loop). A quick run leaves them to the default run (bench.conftest)."""
    spec = spec_of(trainer_id)
    return spec is not None and (spec.distributed or (BASELINE in spec.roles and spec.import_name in BASELINE_FIT_S))


def prior_s(item: pytest.Item, cold_start: bool, budget_s: float = ROUND_BUDGET_S, fits: int = 5,
            first_compile: bool = False) -> float:  # fmt: skip
    """The prior of ``item`` (``cold_start``: the run measures a compiling trainer's cold start; ``budget_s``: its
    seconds of timed rounds; ``fits``: the whole fits a slow benchmark makes at the run's depth; ``first_compile``:
    it is its framework's first compiling benchmark of the run)."""
    params = of_item(item)
    if "problem" in params:  # bench/test_fit.py: a floor's rounds are capped, and the other problems'
        budget_s = (
            timing(params["problem"]).rounds_s(budget_s) if "trainer_id" in params else min(budget_s, PROBLEM_BUDGET_S)
        )
    spec = spec_of(params["trainer_id"]) if "trainer_id" in params else None
    if spec is None:  # the bandwidth floor, the native loop's threads: a few rounds of a read
        return BASE_S + budget_s if params.get("device", "cpu") == "cpu" else DEVICE_S
    if spec.device != "cpu":
        return DEVICE_S
    framework = spec.import_name
    seconds = BASE_S + budget_s
    if spec.compiles:  # a cold start is measured by the tutorial's fits alone (bench/test_fit.py)
        measured = cold_start and "problem" in params and is_tutorial(params["problem"], params["sizes"])
        seconds += COMPILE_S.get(framework, OTHER_COMPILE_S) + (
            COLD_START_S.get(framework, OTHER_COLD_START_S) if measured else 0.0
        )
        seconds += FIRST_COMPILE_S.get(framework, 0.0) if first_compile else 0.0
    if BASELINE in spec.roles:
        seconds += BASELINE_FIT_S[framework] * fits if framework in BASELINE_FIT_S else OTHER_BASELINE_S
    if spec.distributed:
        seconds += DISTRIBUTED_S.get(framework, OTHER_DISTRIBUTED_S) + DISTRIBUTED_FIT_S.get(framework, 1.0) * fits
    return seconds


def first_compiles(items: list[pytest.Item]) -> set[int]:
    """The positions in ``items`` of each framework's first benchmark whose trainer compiles on this CPU."""
    seen, first = set(), set()
    for index, item in enumerate(items):
        trainer_id = of_item(item).get("trainer_id")
        spec = spec_of(trainer_id) if trainer_id else None
        if spec is not None and spec.compiles and spec.device == "cpu" and spec.import_name not in seen:
            seen.add(spec.import_name)
            first.add(index)
    return first

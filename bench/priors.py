"""What a benchmark is expected to cost the run before any run of it was seen: the progress line's prior.

Rules: a prior is a rough wall time in seconds from what the benchmark is (its trainer's spec, its kind, the
run's depth), never from a clock; ``regbench run`` replaces it by what the storage's earlier runs of the same
benchmark took where it has them (regbench.estimates), and the progress line scales either by how the run's
finished benchmarks compared with theirs (bench.progress). The numbers are the order of magnitude measured on
a 2-core machine with empty compile caches: a torch.compile graph costs ~20 s, JAX's eager loop
seconds a fit, a data-parallel group's start seconds.
"""

from __future__ import annotations

import pytest

from backends import spec_of
from bench.problems import PROBLEM_BUDGET_S
from bench.rounds import ROUND_BUDGET_S
from records.roles import BASELINE

#: A benchmark's first call, probe and peak memory, beyond its rounds' budget (a problem's at most
#: PROBLEM_BUDGET_S: bench/test_problems.py).
BASE_S = 0.2
#: What its trainer adds: a first call that compiles (torch.compile's graphs: 6 to 50 s, 20 on average in a
#: default run with empty caches, 2026-12-03; JAX's jit and scan ~1.5 s; Numba's loops ~0.5 s), an eager
#: baseline's slow fits, a data-parallel group's worker processes, a cold start's fresh process.
COMPILE_S = {"torch": 20.0, "jax": 1.5, "numba": 0.5}
OTHER_COMPILE_S = 3.0
#: Per fit, where the fits are slow: JAX's eager loop (~5 s a fit, quiet), a data-parallel group's (~1 s, beside
#: the group's start); a slow benchmark makes ``fits`` of them (its first call, its fewest rounds, peak memory).
BASELINE_FIT_S = {"jax": 6.0}
OTHER_BASELINE_S = 1.0
DISTRIBUTED_S, DISTRIBUTED_FIT_S = 4.0, 1.0
COLD_START_S = 30.0
#: A benchmark off the CPU: on a machine without the device it is skipped at once.
DEVICE_S = 0.2


def prior_s(item: pytest.Item, cold_start: bool, budget_s: float = ROUND_BUDGET_S, fits: int = 5) -> float:
    """The prior of ``item`` (``cold_start``: the run measures a compiling trainer's cold start; ``budget_s``: its
    seconds of timed rounds; ``fits``: the whole fits a slow benchmark makes at the run's depth)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "problem" in params:  # bench/test_problems.py: the other problems' rounds are capped
        budget_s = min(budget_s, PROBLEM_BUDGET_S)
    spec = spec_of(params["trainer_id"]) if "trainer_id" in params else None
    if spec is None:  # the bandwidth floor, the native loop's threads: a few rounds of a read
        return BASE_S + budget_s if params.get("device", "cpu") == "cpu" else DEVICE_S
    if spec.device != "cpu":
        return DEVICE_S
    seconds = BASE_S + budget_s
    if spec.compiles:
        seconds += COMPILE_S.get(spec.import_name, OTHER_COMPILE_S) + (COLD_START_S if cold_start else 0.0)
    if BASELINE in spec.roles:
        seconds += BASELINE_FIT_S[spec.import_name] * fits if spec.import_name in BASELINE_FIT_S else OTHER_BASELINE_S
    if spec.distributed:
        seconds += DISTRIBUTED_S + DISTRIBUTED_FIT_S * fits
    return seconds

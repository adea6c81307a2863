"""The default run's other problems: every trainer that runs one × dtype, at each of the problem's default sizes.

Rules: the problems and their sizes are the problem modules' own (problems.MODULES, ``DEFAULT_SIZES``): a new
problem is benchmarked here without a change to this file. A trainer that does not run a problem is not
collected for it (its spec says which it runs); one that cannot run here is skipped with the reason. In
``PROBLEM_DTYPES`` only (float32), with at most PROBLEM_BUDGET_S of rounds each, and without the eager
baselines but the reference (JAX's eager loop took 8 s a fit at n = 1000, d = 16), for the run's time. The
seed's problem keeps its own benchmarks (test_fit.py, test_sweep.py). No cold start is measured: the seed's
problem measures each compiling trainer's. Deselected by ``--quick``, which times the seed's problem alone.
"""

from __future__ import annotations

import pytest

from backends._registry import roles_of, runs
from bench.harness import run_benchmark
from bench.params import trainer_params
from bench.problems import PROBLEM_BUDGET_S, PROBLEM_DTYPES, default_problems, named, problem_config
from records.roles import BASELINE, REFERENCE


def _params() -> list:
    params = []
    for name, sizes in default_problems():
        label = ",".join(f"{key}{value}" for key, value in sizes.items())
        for param in trainer_params(dtypes=PROBLEM_DTYPES):
            trainer_id, dtype = param.values
            roles = roles_of(trainer_id)
            if runs(trainer_id, name) and (BASELINE not in roles or REFERENCE in roles):
                params.append(pytest.param(name, sizes, trainer_id, dtype, id=f"{name}-{label}-{param.id}",
                                           marks=param.marks))  # fmt: skip
    return params


@pytest.mark.parametrize(("problem", "sizes", "trainer_id", "dtype"), _params())
def test_problem(benchmark, problem, sizes, trainer, dtype, rounds, budget):
    workload = named(problem, **sizes)
    config = problem_config(workload, dtype)
    benchmark.group = f"{workload.record.label}: n={workload.problem.n}, {config.epochs} epochs"
    run_benchmark(benchmark, "problem", trainer, workload, config, rounds, budget_s=min(budget, PROBLEM_BUDGET_S))

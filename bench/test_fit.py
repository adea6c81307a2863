"""The main benchmark: every trainer of the quadratic family × dtype on the tutorial's problem (100 points, 800
epochs, lr 1e-3)."""

from __future__ import annotations

import pytest

import backends
from bench.harness import run_benchmark
from bench.params import trainer_params
from bench.problems import MODEL, tutorial


@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(model=MODEL))
def test_fit(benchmark, trainer, dtype, workers, rounds, budget, cold_start, depth):
    config = backends.TrainConfig(dtype=dtype, workers=workers)
    benchmark.group = f"tutorial: n={tutorial().problem.n}, {config.epochs} epochs"
    run_benchmark(
        benchmark,
        "fit",
        trainer,
        tutorial(),
        config,
        rounds,
        measure_cold_start=cold_start,
        budget_s=budget,
        depth=depth,
    )

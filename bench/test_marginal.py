"""What one more epoch costs, and what a fit costs before and after its epochs, at n = 10⁷ (``--marginal-n``).

Rules: whole ``fit()`` calls are timed, as a user makes them, at two epoch
counts (``bench.problems.MARGINAL_EPOCHS``); reports.targets derives the cost
per epoch and the fixed cost from the pair. Only the trainers that can be the
fastest of their backend run here (not the baselines, whose epochs at this size
take seconds) and the native loops they are held against.
"""

from __future__ import annotations

import pytest

import backends
from bench.harness import run_fit_benchmark
from bench.params import trainer_params
from bench.problems import LR_TIMES_N, MARGINAL_EPOCHS, marginal_trainers, sized


@pytest.mark.sweep
@pytest.mark.parametrize("epochs", MARGINAL_EPOCHS, ids=[f"epochs{e}" for e in MARGINAL_EPOCHS])
@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(marginal_trainers()))
def test_marginal(benchmark, trainer, dtype, epochs, marginal_n, rounds, budget):
    config = backends.TrainConfig(epochs=epochs, lr=LR_TIMES_N / marginal_n, dtype=dtype)
    benchmark.group = f"marginal: n={marginal_n}, {epochs} epochs"
    # The data in the working dtype, made so by the problem (a float32 fit() converts nothing): the fixed cost is the
    # trainer's own.
    run_fit_benchmark(benchmark, "marginal", trainer, sized(marginal_n, dtype), config, rounds, budget)

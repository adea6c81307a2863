"""The size sweep (``--sweep``): where does a compiled variant or a GPU start to pay?

Rules: n runs over 10² … 10⁷ (``--sweep-sizes``); the learning rate is scaled as
lr = 0.1/n, the tutorial's lr·n, which keeps lr·λmax(Hessian) ≈ 0.11 at every
size, so every run converges at the same rate. Sizes from 10⁶ up run 100 epochs
instead of 800 (recorded in ``extra_info['epochs']`` and the group name).
"""

from __future__ import annotations

import functools

import pytest

import backends
from backends.testing import trainer_params
from bench.harness import run_benchmark

LR_TIMES_N = 0.1
LARGE_N, LARGE_EPOCHS = 10**6, 100


@functools.cache
def sweep_problem(n: int) -> backends.Problem:
    return backends.make_problem(n, seed=0)


def sweep_config(n: int, dtype: str) -> backends.TrainConfig:
    return backends.TrainConfig(epochs=LARGE_EPOCHS if n >= LARGE_N else 800, lr=LR_TIMES_N / n, dtype=dtype)


@pytest.mark.sweep
@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params())
def test_sweep(benchmark, trainer, dtype, sweep_n, rounds):
    config = sweep_config(sweep_n, dtype)
    benchmark.group = f"sweep: n={sweep_n}, {config.epochs} epochs"
    run_benchmark(benchmark, trainer, sweep_problem(sweep_n), config, rounds)

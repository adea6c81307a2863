"""Larger problems: where does a compiled variant or a GPU start to pay, and how close to the memory floor?

Rules: every run times the large problem (``bench.problems.LARGE_N``);
``--sweep`` runs n over 10² … 10⁷ instead (``--sweep-sizes``), with the
problems and configurations of ``bench.problems``. Beside the
trainers, each size times reading x and y once on the CPU (and on a CUDA
device, through a device-to-device copy): the bandwidth floor under any epoch.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

import backends
from bench.floor import run_floor
from bench.gpu import gpu_info
from bench.harness import run_benchmark
from bench.params import trainer_params
from bench.problems import MODEL, sized, sweep_config


@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(model=MODEL))
def test_sweep(benchmark, trainer, dtype, sweep_n, workers, rounds, budget):
    config = replace(sweep_config(sweep_n, dtype), workers=workers)
    benchmark.group = f"sweep: n={sweep_n}, {config.epochs} epochs"
    run_benchmark(benchmark, "sweep", trainer, sized(sweep_n), config, rounds, budget_s=budget)


@pytest.mark.parametrize("dtype", backends.DTYPES)
# The framework each floor reads with (bench.floor), for regbench run's one process per framework (bench.isolation).
@pytest.mark.parametrize(
    "device",
    [
        pytest.param("cpu", marks=pytest.mark.framework("numba")),
        pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.framework("torch")]),
    ],
)
def test_floor(benchmark, device, dtype, sweep_n, rounds, budget):
    if device == "cuda" and not gpu_info():
        pytest.skip("no CUDA device seen by torch or cupy")
    benchmark.group = f"sweep: n={sweep_n}, {sweep_config(sweep_n, dtype).epochs} epochs"
    run_floor(benchmark, sweep_n, dtype, device, rounds, budget)

"""The scaling study: time per epoch of the data-parallel trainers over worker counts and sizes (``--scaling``).

Rules: deselected unless ``--scaling`` (bench.dp_options). At each n of
``--scaling-sizes`` and dtype of ``--scaling-dtypes``, with the problems and
configurations of the size sweep (bench.problems): every
data-parallel trainer with each ``--scaling-workers`` count; its single-process
twin (the same steps in one process); and the native SIMD loop
(the registry's CPU limit) with each count as its thread count, the reference
for what a second core can give a memory-bound epoch. Every record carries
``workers`` and ``threads``; a data-parallel one also the all-reduce's own cost,
measured inside its group (``allreduce_s``). reports/scaling.py derives the
speed-ups, efficiencies and crossovers.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest

from backends import spec_of, specs, twin_of, with_role
from bench.harness import run_benchmark
from bench.params import GPU_DEVICES, require_trainer
from bench.problems import MODEL, sized, sweep_config
from records.roles import CPU_LIMIT

DATA_PARALLEL = tuple(spec.id for spec in specs() if spec.distributed and MODEL in spec.problems)
TWINS = tuple(dict.fromkeys(twin_of(tid) for tid in DATA_PARALLEL))
(NATIVE_SIMD,) = with_role(CPU_LIMIT, "cpu")  # the native SIMD loop


def _params(ids):
    return [pytest.param(tid, marks=[pytest.mark.gpu] if tid.rsplit("-", 1)[1] in GPU_DEVICES else []) for tid in ids]


def _group(n: int, dtype: str) -> str:
    return f"scaling: n={n}, {dtype}, {sweep_config(n, dtype).epochs} epochs"


@pytest.mark.parametrize("trainer_id", _params(DATA_PARALLEL))
def test_scaling(benchmark, trainer, scaling_dtype, scaling_n, scaling_workers, rounds):
    config = replace(sweep_config(scaling_n, scaling_dtype), workers=scaling_workers)
    try:
        trainer.prepare(sized(scaling_n).problem, config).close()  # starts nothing: checks the count fits here
    except ValueError as exc:  # more workers than GPUs, say
        pytest.skip(str(exc))
    benchmark.group = _group(scaling_n, scaling_dtype)
    # Each worker computes on one thread (backends.torch_dp, jax_dp).
    run_benchmark(benchmark, "scaling", trainer, sized(scaling_n), config, rounds, threads=1)


@pytest.mark.parametrize("trainer_id", _params(TWINS))
def test_scaling_single(benchmark, trainer, scaling_dtype, scaling_n, rounds):
    benchmark.group = _group(scaling_n, scaling_dtype)
    config = sweep_config(scaling_n, scaling_dtype)
    run_benchmark(benchmark, "scaling_single", trainer, sized(scaling_n), config, rounds)  # the framework's threads


@contextlib.contextmanager
def numba_threads(count: int):
    """Numba's parallel regions on ``count`` threads inside the block; the previous count restored after it.

    ``numba.set_num_threads`` holds for the calling thread's later parallel
    regions, process-wide in effect here, so it must not leak into the next benchmark.
    """
    import numba

    if count > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"Numba has {numba.config.NUMBA_NUM_THREADS} threads, not {count}")
    previous = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@pytest.mark.framework(spec_of(NATIVE_SIMD).backend)
def test_scaling_native(benchmark, scaling_dtype, scaling_n, scaling_workers, rounds):
    trainer = require_trainer(NATIVE_SIMD)
    benchmark.group = _group(scaling_n, scaling_dtype)
    with numba_threads(scaling_workers):
        config = sweep_config(scaling_n, scaling_dtype)
        run_benchmark(benchmark, "scaling_native", trainer, sized(scaling_n), config, rounds, threads=scaling_workers)

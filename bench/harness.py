"""Timing of one trainer on one problem, as pytest-benchmark records it.

Rules: data conversion and transfer happen in ``prepare()``, outside the timed
region; the first ``run()`` (compilation + one training) is timed on its own and
stored as ``first_call_s``, never mixed into the statistics; every timed round is
one complete training that returns only when the device is done (``run()``
synchronises). Rounds follow a time budget, so slow variants get fewer.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time

import backends
from backends import metrics

LIBRARIES = ("regbench", "numpy", "torch", "jax", "jaxlib", "numba", "pytest-benchmark")


def library_versions() -> dict[str, str | None]:
    """Installed version of each library the results depend on (None where absent)."""
    versions = {}
    for dist in LIBRARIES:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


JAX_ASYNC_DISPATCH = "jax_cpu_enable_async_dispatch"


def set_jax_cpu_dispatch(asynchronous: bool) -> None:
    """Choose how JAX dispatches CPU computations in this benchmark process (a no-op without JAX).

    Benchmark processes run them inline (``asynchronous=False``): with JAX's
    default asynchronous dispatch a 100-point ``scan`` fit takes ~0.33 ms
    instead of ~0.24 ms on this 2-core machine, and the host work right after it
    (building the result) runs ~10× slower while JAX's worker threads hold the
    other core. The flag is process-wide and read once, when JAX creates its CPU
    client, so call this before any JAX computation; the trainers never set it.
    """
    if importlib.util.find_spec("jax") is None:
        return
    import jax

    jax.config.update(JAX_ASYNC_DISPATCH, asynchronous)


def jax_cpu_dispatch() -> str | None:
    """How this process dispatches JAX's CPU computations ("async" or "inline"); None without JAX."""
    if importlib.util.find_spec("jax") is None:
        return None
    import jax

    return "async" if jax.config.read(JAX_ASYNC_DISPATCH) else "inline"


#: Time budget per benchmark (seconds of timed rounds), and the bounds on rounds.
ROUND_BUDGET_S = 1.5
MIN_ROUNDS = 5
MAX_ROUNDS = 1000


def choose_rounds(warm_call_s: float) -> int:
    """Enough rounds for a stable median within the budget; at least MIN_ROUNDS even for slow variants."""
    return max(MIN_ROUNDS, min(MAX_ROUNDS, int(ROUND_BUDGET_S / max(warm_call_s, 1e-9))))


def run_benchmark(
    benchmark,
    trainer: backends.Trainer,
    problem: backends.Problem,
    config: backends.TrainConfig,
    rounds: int | None = None,
) -> backends.FitResult:
    """Time ``trainer`` on ``problem``; store what it computed and how accurate it is in ``extra_info``."""
    prepared = trainer.prepare(problem, config)
    start = time.perf_counter()
    prepared.run()
    first_call_s = time.perf_counter() - start
    if rounds is None:
        start = time.perf_counter()
        prepared.run()
        rounds = choose_rounds(time.perf_counter() - start)
    raw = benchmark.pedantic(prepared.run, rounds=rounds, iterations=1, warmup_rounds=0)
    result = prepared.result(raw)
    benchmark.extra_info.update(
        trainer=trainer.id,
        backend=trainer.backend,
        device=trainer.device,
        variant=trainer.variant,
        dtype=config.dtype,
        problem=problem.name,
        n=problem.n,
        epochs=config.epochs,
        lr=config.lr,
        w=result.w,
        b=result.b,
        final_loss=result.final_loss,
        diverged=result.diverged,
        first_call_s=first_call_s,
        **metrics.optimum_gap(result, problem),
        **metrics.agreement(result, metrics.reference_fit(problem, config)),
        losses=result.losses.tolist(),
    )
    return result

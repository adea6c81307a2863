"""The one timing engine of regbench: what pytest-benchmark records for one trainer on one problem.

Rules: this module is the only place that times a fit. Data conversion and
transfer happen in ``prepare()``, timed apart as ``prepare_s``; the first
``run()`` (compilation + one training) is timed on its own as
``first_call_s``, never mixed into the statistics; every timed round is one
complete training that returns only when the device is done (``run()``
synchronises). Rounds follow a time budget, so slow variants get fewer.
Between rounds, untimed, ``result()`` is timed on the round's output
(``result_s``: what ``fit()`` adds to the loop); on a GPU, CUDA events around
each round give its GPU time (``gpu_time_s``). After the rounds: the peak
memory of one whole ``fit()`` above what the process held before it, and, for
trainers that compile, a fresh process with empty compile caches: its first
call (``cold_start_s``) and its warm ``fit()`` calls (``fresh_fit_s``, what a
user's own process gets), then a second one with the caches the first filled
(``warm_start_s``; see bench.cold_start). Whole ``fit()`` calls at two
epoch counts give the fixed and the marginal cost (``run_fit_benchmark``).
Nothing here changes a framework's settings: the benchmark processes keep
every default, as a user's process does.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import importlib.metadata
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

import backends
from backends import metrics
from backends._core import proc_kib
from backends._registry import BASELINE, spec_of, specs
from backends.gpu import DeviceTimer, event_timer

LIBRARIES = ("regbench", "numpy", "torch", "jax", "jaxlib", "numba", "numba-cuda", "cupy-cuda13x", "cupy-cuda12x",
             "scipy", "pytest-benchmark")  # fmt: skip


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


def jax_cpu_dispatch() -> str | None:
    """How this process dispatches JAX's CPU computations ("async", JAX's default, or "inline"); None without JAX.

    Read, never set: the benchmark processes keep every framework's defaults, as a user's process does.
    """
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


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


class _Rounds:
    """pytest-benchmark's target and set-up: one ``run()`` a timed round, ``result()`` timed between rounds.

    ``result()`` is timed on the previous round's output in the next round's
    untimed set-up: right after a run, as ``fit()`` calls it, so that what a
    run leaves behind (JAX's dispatch threads, cold caches) counts as it would
    for a user. Keeping the output costs the timed region one store.
    """

    def __init__(self, prepared: backends.PreparedFit, timer: DeviceTimer | None = None) -> None:
        self.prepared = prepared
        self.timer = timer
        self.last: list = [None]
        self.result_s: list[float] = []
        self.gpu_s: list[float] = []
        if timer is not None:
            self.target = self._target_with_events

    def target(self):
        self.last[0] = out = self.prepared.run()
        return out

    def _target_with_events(self):
        # Events on the GPU's timeline around the run; their elapsed time is read between rounds.
        self.timer.start()
        self.last[0] = out = self.prepared.run()
        self.timer.mark()
        return out

    def setup(self) -> None:
        if self.last[0] is not None:
            self.result_s.append(_timed(lambda: self.prepared.result(self.last[0]))[1])
            self.last[0] = None
            if self.timer is not None:
                self.gpu_s.append(self.timer.elapsed())


# --- the problems -------------------------------------------------------------------------------------------------

#: The large problem of every run, and the sizes from which fits run LARGE_EPOCHS instead of 800.
LARGE_N, LARGE_EPOCHS = 10**6, 20
#: lr = 0.1/n, the tutorial's lr·n, keeps lr·λmax(Hessian) ≈ 0.11 at every size: every size converges alike.
LR_TIMES_N = 0.1


@functools.cache
def sweep_problem(n: int) -> backends.Problem:
    return backends.make_problem(n, seed=0)


def sweep_config(n: int, dtype: str) -> backends.TrainConfig:
    return backends.TrainConfig(epochs=LARGE_EPOCHS if n >= LARGE_N else 800, lr=LR_TIMES_N / n, dtype=dtype)


# --- memory -------------------------------------------------------------------------------------------------------

CPU_MEMORY_METHOD = "VmHWM after malloc_trim and a reset through /proc/self/clear_refs, in the benchmark process"
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None


def _host_peak(fn: Callable[[], object]) -> tuple[int | None, str]:
    """Peak resident memory that ``fn()`` adds to the process, in bytes.

    Memory an earlier benchmark freed may still be resident in the allocator's
    free lists, where a new allocation would reuse it unseen: ``malloc_trim``
    hands it back to the kernel first, then the high-water mark is reset to the
    current resident size, so the peak is this call's own.
    """
    try:
        if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
            _LIBC.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = proc_kib("/proc/self/status", "VmRSS")
    except OSError as exc:
        fn()
        return None, f"not measured: resetting the peak resident size failed ({exc})"
    fn()
    return max(0, proc_kib("/proc/self/status", "VmHWM") - before) * 1024, CPU_MEMORY_METHOD


def _torch_cuda_peak(fn: Callable[[], object]) -> tuple[int | None, str]:
    import torch

    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    return max(0, torch.cuda.max_memory_allocated() - before), "torch.cuda.max_memory_allocated (caching allocator)"


def peak_memory(trainer: backends.Trainer, fn: Callable[[], object]) -> tuple[int | None, str]:
    """Peak memory one call of ``fn`` adds, on the trainer's device, and how it was measured."""
    if trainer.device == "cpu":
        return _host_peak(fn)
    if trainer.backend == "torch":
        return _torch_cuda_peak(fn)
    fn()
    return None, f"not measured: no allocator statistics read for {trainer.backend} on {trainer.device}"


# --- cold start ---------------------------------------------------------------------------------------------------

#: Environment variables that point each framework's on-disk compile cache at an empty folder.
CACHE_ENV = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR", "NUMBA_CACHE_DIR")
COLD_START_TIMEOUT_S = 300


def cold_start(trainer: backends.Trainer, problem: backends.Problem, config: backends.TrainConfig) -> dict:
    """Two fresh processes, one after the other, sharing compile caches that start empty (see bench.cold_start).

    The first one's first ``run()`` is ``cold_start_s``, and its warm ``fit()`` calls give ``fresh_fit_s``
    (their median) and ``fresh_fits`` (each); the second one's first ``run()``, with the caches the first
    one filled, is ``warm_start_s``.
    """
    if problem.name != "tutorial":
        raise ValueError("cold starts are measured on the tutorial's problem only")
    cmd = [sys.executable, "-m", "bench.cold_start", trainer.id, config.dtype, str(config.epochs), repr(config.lr),
           f"--workers={config.workers}"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="regbench-cold-") as tmp:
        env = {**os.environ, **{var: os.path.join(tmp, var.lower()) for var in CACHE_ENV}}
        spec = spec_of(trainer.id)
        fits = [] if spec is None or not spec.distributed else ["--no-fits"]  # a data-parallel fit() starts a group
        cold, warm = (_fresh_process(trainer, cmd + extra, env) for extra in (fits, ["--no-fits"]))
    fresh = cold["fresh_fit_s"]
    return {"cold_start_s": cold["first_call_s"], "warm_start_s": warm["first_call_s"],
            "fresh_fit_s": statistics.median(fresh) if fresh else None, "fresh_fits": fresh}  # fmt: skip


def _fresh_process(trainer: backends.Trainer, cmd: list[str], env: dict) -> dict:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=COLD_START_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"cold start of {trainer.id} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the benchmark ------------------------------------------------------------------------------------------------


def run_benchmark(
    benchmark,
    trainer: backends.Trainer,
    problem: backends.Problem,
    config: backends.TrainConfig,
    rounds: int | None = None,
    measure_cold_start: bool = False,
) -> backends.FitResult:
    """Time ``trainer`` on ``problem``; store what it computed, how accurate it was, what it cost in ``extra_info``."""
    prepared, prepare_s = _timed(lambda: trainer.prepare(problem, config))
    # A data-parallel fit holds a group of worker processes: shut down as soon as its rounds are done, or fail.
    with contextlib.closing(prepared) if hasattr(prepared, "close") else contextlib.nullcontext():
        _, first_call_s = _timed(prepared.run)
        if rounds is None:
            rounds = choose_rounds(_timed(prepared.run)[1])
        # The GPU work of a data-parallel fit happens in its workers: no events in this process.
        spec = spec_of(trainer.id)
        on_gpu_here = trainer.device != "cpu" and not (spec and spec.distributed)
        timer = event_timer(trainer.backend) if on_gpu_here else None
        timed = _Rounds(prepared, timer)
        raw = benchmark.pedantic(timed.target, setup=timed.setup, rounds=rounds, iterations=1, warmup_rounds=0)
        timed.setup()  # the last round's result()
        result = prepared.result(raw)
        # The group's own measurements: all-reduce cost, the workers' peak memory (backends._workers).
        group_info = prepared.bench_info() if hasattr(prepared, "bench_info") else {}
    peak_bytes, memory_method = peak_memory(trainer, lambda: trainer.fit(problem, config))
    fresh = {"cold_start_s": None, "warm_start_s": None, "fresh_fit_s": None}
    if measure_cold_start and spec and spec.compiles:
        fresh = cold_start(trainer, problem, config)
    data_bytes = 2 * problem.n * np.dtype(config.dtype).itemsize
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
        workers=config.workers,
        w=result.w,
        b=result.b,
        final_loss=result.final_loss,
        diverged=result.diverged,
        prepare_s=prepare_s,
        first_call_s=first_call_s,
        result_s=statistics.median(timed.result_s),
        # The GPU's own time of a round, from CUDA events; JAX has no event API: its GPU time is its wall time.
        gpu_time_s=statistics.median(timed.gpu_s) if timed.gpu_s else None,
        **fresh,
        peak_bytes=peak_bytes,
        data_bytes=data_bytes,
        memory_method=memory_method,
        **metrics.optimum_gap(result, problem),
        **metrics.agreement(result, metrics.reference_fit(problem, config)),
        losses=result.losses.tolist(),
    )
    benchmark.extra_info.update(group_info)  # workers, allreduce_s, worker_peak_bytes of a data-parallel fit
    return result


# --- whole fits: the fixed and the marginal cost -----------------------------------------------------------------

#: The size and the two epoch counts of the marginal-cost study (bench/test_marginal.py).
MARGINAL_N, MARGINAL_EPOCHS = 10**7, (5, 25)


def marginal_trainers() -> tuple[str, ...]:
    """The study's trainers: every one-process CPU trainer that can be its framework's fastest, and the native
    loops they are held against; not the baselines, whose epochs at this size take seconds."""
    return tuple(s.id for s in specs() if s.device == "cpu" and not s.distributed and BASELINE not in s.roles)


def run_fit_benchmark(benchmark, trainer: backends.Trainer, problem: backends.Problem, config: backends.TrainConfig,
                      rounds: int | None = None) -> backends.FitResult:  # fmt: skip
    """Time whole ``fit()`` calls, as a user makes them: conversion, set-up, the epochs and the result.

    Two epoch counts of the same fit give its cost per epoch (the difference over
    the extra epochs) and its fixed cost (the rest): reports.targets. The first
    call (compilation) is timed apart, as ``first_call_s``.
    """
    _, first_call_s = _timed(lambda: trainer.fit(problem, config))
    if rounds is None:
        rounds = choose_rounds(_timed(lambda: trainer.fit(problem, config))[1])
    result = benchmark.pedantic(lambda: trainer.fit(problem, config), rounds=rounds, iterations=1, warmup_rounds=0)
    benchmark.extra_info.update(
        trainer=trainer.id, backend=trainer.backend, device=trainer.device, variant=trainer.variant,
        dtype=config.dtype, problem=problem.name, n=problem.n, epochs=config.epochs, lr=config.lr,
        workers=config.workers, first_call_s=first_call_s, w=result.w, b=result.b, final_loss=result.final_loss,
        diverged=result.diverged, data_bytes=2 * problem.n * np.dtype(config.dtype).itemsize,
    )  # fmt: skip
    return result


# --- the bandwidth floor ------------------------------------------------------------------------------------------


def streaming_reads(n: int, dtype: str) -> dict[str, Callable[[], object]]:
    """Calls that read x and y (n values each) once and do nothing else, by method.

    Numba's reassociated, vectorised sum on one thread and on all of them (the
    machinery of the native SIMD limit, with no arithmetic beyond the read);
    NumPy's sum where Numba is absent.
    """
    x = np.linspace(-1, 1, n, dtype=dtype)
    y = np.ones(n, dtype=dtype)
    if importlib.util.find_spec("numba") is None:
        return {"numpy sum of x and y": lambda: x.sum() + y.sum()}
    serial, parallel = _numba_reader(False), _numba_reader(True)
    return {
        "numba fastmath sum of x and y, one thread": lambda: serial(x, y),
        "numba fastmath sum of x and y, parallel": lambda: parallel(x, y),
    }


def _numba_reader(parallel: bool):
    import numba

    prange = numba.prange if parallel else range

    @numba.njit(fastmath=True, parallel=parallel, nogil=True)
    def read(x, y):  # pragma: no cover - compiled
        total = x[0] - x[0]
        for i in prange(x.shape[0]):
            total += x[i] + y[i]
        return total

    return read


def device_copy(n: int, dtype: str) -> Callable[[], object]:
    """A device-to-device copy of x and y on the first CUDA device (torch's, else CuPy's), synchronised.

    A copy reads and writes every byte once, so reading x and y takes half of it.
    """
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            src = torch.ones(2 * n, dtype=getattr(torch, dtype), device="cuda")
            dst = torch.empty_like(src)
            return lambda: (dst.copy_(src), torch.cuda.synchronize())
    import cupy

    src = cupy.ones(2 * n, dtype=dtype)
    dst = cupy.empty_like(src)
    return lambda: (dst.__setitem__(Ellipsis, src), cupy.cuda.Device().synchronize())


#: Calls of each read whose median chooses the faster one.
FLOOR_PROBES = 7


def run_floor(benchmark, n: int, dtype: str, device: str = "cpu", rounds: int | None = None) -> None:
    """Time reading x and y once at size n on ``device``: the floor of an epoch's time.

    On the CPU, the faster method of ``streaming_reads`` (on a small or busy
    machine a parallel region can cost more than it saves, threads being woken
    per call); on a GPU, a device-to-device copy, which moves the bytes twice.
    """
    if device == "cpu":
        reads = streaming_reads(n, dtype)
    else:
        reads = {"device-to-device copy, half its time": device_copy(n, dtype)}
    first_call_s = max(_timed(read)[1] for read in reads.values())
    probes = {method: statistics.median(_timed(read)[1] for _ in range(FLOOR_PROBES)) for method, read in reads.items()}
    method = min(probes, key=probes.get)
    read = reads[method]
    if rounds is None:
        rounds = choose_rounds(probes[method])
    benchmark.pedantic(read, rounds=rounds, iterations=1, warmup_rounds=0)
    data_bytes = 2 * n * np.dtype(dtype).itemsize
    median = benchmark.stats.stats.median if benchmark.stats else probes[method]  # None with --benchmark-disable
    floor_s = median / (1 if device == "cpu" else 2)
    benchmark.extra_info.update(
        n=n, dtype=dtype, device=device, data_bytes=data_bytes, method=method, first_call_s=first_call_s,
        floor_s=floor_s, bandwidth_Bps=data_bytes / floor_s,
    )  # fmt: skip

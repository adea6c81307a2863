"""The one timing engine of regbench: what pytest-benchmark records for one trainer on one problem.

Rules: this module is the only place that times a fit, and its record
(records.model.FitRecord, one ``model_dump``) is everything a reader of the
saved run learns about it: the trainer as its spec says (backend, method,
variant, device, roles, data-parallel twin), the problem, the configuration,
what the fit computed and what it cost. Data conversion and transfer happen in
``prepare()``, timed apart as ``prepare_s``; the first ``run()`` (compilation
+ one training) is timed on its own as ``first_call_s``, never mixed into the
statistics; every timed round is one complete training that returns only when
the device is done (``run()`` synchronises); the share of the machine's CPU time that
other processes took meanwhile is read around them (bench.contention). Between rounds, untimed,
``result()`` is timed on the round's output (``result_s``: what ``fit()`` adds
to the loop); on a GPU, CUDA events around each round give its GPU time
(``gpu_time_s``). After the rounds: the peak memory of one whole ``fit()``
(bench.memory; for a data-parallel fit its workers', read in the group that ran
the rounds, not a second group) and, for trainers that compile, the cold start
(bench.cold_start). Whole ``fit()`` calls at two epoch counts give the fixed
and the marginal cost (``run_fit_benchmark``). The run's depth (``depth``) sets the
fewest rounds (bench.rounds.least_rounds); a quick run measures no peak memory (one
more fit), nor does the default run of a slow fit (bench.rounds.measures_memory). Where nothing compiles, the
first call sizes the rounds instead of one more call, in a quick run and
wherever the first call shows that the rounds will be the fewest anyway. Nothing here changes a
framework's settings.
"""

from __future__ import annotations

import contextlib
import statistics

import backends
from backends import metrics, source_of, spec_of, twin_of
from bench.cold_start import cold_start
from bench.contention import OthersCpu
from bench.gpu import DeviceTimer, event_timer
from bench.isolation import loaded_frameworks
from bench.memory import DISTRIBUTED_MEMORY, SLOW_FIT_MEMORY, peak_memory
from bench.problems import Workload, data_bytes, epoch_flops, fitted_curve
from bench.rounds import MIN_ROUNDS, ROUND_BUDGET_S, choose_rounds, least_rounds, measures_memory, timed
from records.model import FitRecord, ParamRecord


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
            self.result_s.append(timed(lambda: self.prepared.result(self.last[0]))[1])
            self.last[0] = None
            if self.timer is not None:
                self.gpu_s.append(self.timer.elapsed())


def _record(kind: str, trainer: backends.Trainer, workload: Workload, config: backends.TrainConfig,
            result: backends.FitResult, accuracy: tuple[dict, ...] = (), **measured) -> FitRecord:  # fmt: skip
    """The record of one benchmark: who ran on what, what it computed (``accuracy``: metrics' dicts, whose
    ``params`` are per parameter; ``measured``: what it cost)."""
    spec = spec_of(trainer.id)
    problem = workload.problem
    per_param: dict[str, dict] = {name: {} for name in result.params}
    for metric in accuracy:
        measured.update({key: value for key, value in metric.items() if key != "params"})
        for name, values in metric["params"].items():
            per_param[name].update(values)
    fitted = {name: ParamRecord.of(value, **per_param[name]) for name, value in result.params.items()}
    params = {key: value for key, value in workload.record.params.items() if key != "seed"}
    floor = data_bytes(workload.record.name, dtype=config.dtype, **params)  # as the problem's floor benchmark reads
    flops = epoch_flops(workload.record.name, **params)
    return FitRecord(
        kind=kind, problem=workload.record, trainer=trainer.id, backend=spec.backend, method=spec.method,
        variant=spec.variant, device=spec.device, roles=list(spec.roles), distributed=spec.distributed,
        twin=twin_of(trainer.id), compiles=spec.compiles, source=source_of(trainer.id).release,
        color=spec.color or None, workers=config.workers, dtype=config.dtype, n=problem.n,
        epochs=config.epochs, lr=config.lr, size=workload.size, params=fitted, final_loss=result.final_loss,
        diverged=result.diverged, data_bytes=floor, flops=flops, loaded_frameworks=loaded_frameworks(),
        data_dtype=None if problem.dtype == "float64" else problem.dtype,
        curve=fitted_curve(workload, result.params), **measured,
    )  # fmt: skip


def run_benchmark(benchmark, kind: str, trainer: backends.Trainer, workload: Workload, config: backends.TrainConfig,
                  rounds: int | None = None, measure_cold_start: bool = False,
                  threads: int | None = None, budget_s: float = ROUND_BUDGET_S,
                  depth: str = "full") -> FitRecord:  # fmt: skip
    """Time ``trainer`` on ``workload``; its record (what it computed, how accurate, what it cost) in ``extra_info``.

    ``rounds``: timed rounds, or None for as many as fit in ``budget_s`` (bench.rounds).

    ``threads``: the threads the trainer computes on, where the benchmark set them (None: the framework's choice).
    """
    problem = workload.problem
    spec = spec_of(trainer.id)
    quick = depth == "quick"
    prepared, prepare_s = timed(lambda: trainer.prepare(problem, config))
    # A data-parallel fit holds a group of worker processes: shut down as soon as its rounds are done, or fail.
    with contextlib.closing(prepared) if hasattr(prepared, "close") else contextlib.nullcontext():
        _, first_call_s = timed(prepared.run)
        probe_s = None  # a warm call's time, where the rounds are chosen by it
        if rounds is None:
            # A trainer that compiles nothing has run warm already, nearly: its first call sizes the rounds where
            # a quick run asks for few, or where it gets the fewest anyway (JAX's eager loop: seconds a call).
            warm = not spec.compiles and (quick or first_call_s * MIN_ROUNDS >= budget_s)
            probe_s = first_call_s if warm else timed(prepared.run)[1]
            rounds = choose_rounds(probe_s, budget_s, least_rounds(depth, probe_s))
        # The GPU work of a data-parallel fit happens in its workers: no events in this process.
        timer = event_timer(spec.gpu_runtime) if trainer.device != "cpu" and not spec.distributed else None
        timed_rounds = _Rounds(prepared, timer)
        # What other processes took of the machine meanwhile: a data-parallel group's workers are the fit's own.
        with OthersCpu(getattr(prepared, "pids", ())) as others_cpu:
            raw = benchmark.pedantic(timed_rounds.target, setup=timed_rounds.setup, rounds=rounds, iterations=1,
                                     warmup_rounds=0)  # fmt: skip
        timed_rounds.setup()  # the last round's result()
        result = prepared.result(raw)
        # The group's own measurements: all-reduce cost, the workers' peak memory (backends._data_parallel).
        group_info = prepared.bench_info() if hasattr(prepared, "bench_info") else {}
        kept = ("allreduce_s", "worker_peak_bytes", "nodes")
        group_info = {key: group_info[key] for key in kept if key in group_info}
    if quick:
        peak_bytes, memory_method = None, None
    elif spec.distributed:  # its memory is its workers' (worker_peak_bytes), read in the group that ran the rounds
        peak_bytes, memory_method = None, DISTRIBUTED_MEMORY
    elif not measures_memory(depth, probe_s):
        peak_bytes, memory_method = None, SLOW_FIT_MEMORY
    else:
        peak_bytes, memory_method = peak_memory(trainer, lambda: trainer.fit(problem, config))
    fresh = {}
    if measure_cold_start and spec.compiles:
        fresh = cold_start(trainer, problem, config, spec.distributed)
        for each in ("fresh_fits", "fresh_runs"):  # each warm call's time: their medians are the record's
            fresh.pop(each)
    record = _record(
        kind, trainer, workload, config, result,
        threads=threads, prepare_s=prepare_s, first_call_s=first_call_s,
        result_s=statistics.median(timed_rounds.result_s),
        # The GPU's own time of a round, from CUDA events; JAX has no event API: its GPU time is its wall time.
        gpu_time_s=statistics.median(timed_rounds.gpu_s) if timed_rounds.gpu_s else None,
        peak_bytes=peak_bytes, memory_method=memory_method, others_cpu=others_cpu.value,
        losses=result.losses.tolist(),
        accuracy=(metrics.optimum_gap(result, problem),
                  metrics.agreement(result, metrics.reference_fit(problem, config))),
        **fresh, **group_info,
    )  # fmt: skip
    benchmark.extra_info.update(record.model_dump())
    return record


def run_fit_benchmark(benchmark, kind: str, trainer: backends.Trainer, workload: Workload,
                      config: backends.TrainConfig, rounds: int | None = None,
                      budget_s: float = ROUND_BUDGET_S) -> FitRecord:  # fmt: skip
    """Time whole ``fit()`` calls, as a user makes them: conversion, set-up, the epochs and the result.

    Two epoch counts of the same fit give its cost per epoch (the difference over
    the extra epochs) and its fixed cost (the rest): reports.targets. The first
    call (compilation) is timed apart, as ``first_call_s``; the peak memory of one
    more call is measured after the rounds.
    """
    problem = workload.problem
    _, first_call_s = timed(lambda: trainer.fit(problem, config))
    if rounds is None:
        rounds = choose_rounds(timed(lambda: trainer.fit(problem, config))[1], budget_s)
    result = benchmark.pedantic(lambda: trainer.fit(problem, config), rounds=rounds, iterations=1, warmup_rounds=0)
    peak_bytes, memory_method = peak_memory(trainer, lambda: trainer.fit(problem, config))
    record = _record(kind, trainer, workload, config, result, first_call_s=first_call_s, peak_bytes=peak_bytes,
                     memory_method=memory_method)  # fmt: skip
    benchmark.extra_info.update(record.model_dump())
    return record

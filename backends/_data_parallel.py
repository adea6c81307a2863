"""Data-parallel fits: a PreparedFit whose training runs on a WorkerGroup, one contiguous shard per worker.

Rules: this module imports no framework; it sits on backends._process_group
(processes, liveness, shutdown) and knows the fit protocol: shard payloads, the
worker methods every data-parallel backend provides (``train``,
``measure_allreduce``, ``peak_bytes``) and how their replies become results. A
backend states its workers' footprint (``Footprint``) and ``shard_payloads``
refuses, before converting anything or starting a process, a worker count the
machine cannot hold. ``hang_timeout_s`` passes through to the group, and so
does ``torchrun``: a backend whose framework has a launcher (torch) has its
groups started by torchrun's agent on one node too. Across nodes
(backends._cluster: ``regbench run --nnodes N``) ``config.workers`` counts
every node's workers, the same number on each, and every group is started by
torchrun's agents (backends._torchrun); a fit says how many nodes it spanned
(``bench_info``).
"""

from __future__ import annotations

import math
import socket
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from backends import _cluster
from backends._core import FitResult
from backends._process_group import WorkerError, WorkerGroup, check_group_size

#: All-reduces timed by ``measure_allreduce`` when no count is given.
ALLREDUCE_ROUNDS = 200


def shard_bounds(n: int, k: int) -> list[tuple[int, int]]:
    """``k`` contiguous ``[start, stop)`` ranges covering ``range(n)``; the first ``n % k`` are one longer."""
    if k < 1:
        raise ValueError(f"workers must be positive, got {k}")
    base, extra = divmod(n, k)
    bounds, start = [], 0
    for rank in range(k):
        stop = start + base + (rank < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


class Footprint(NamedTuple):
    """A backend's estimate of one worker's peak memory: ``base`` bytes plus ``per_shard_byte`` × its shard's x bytes.

    Measured by ``worker_peak_bytes`` (VmHWM) on 2 CPU workers, float64, 2026-12: torch 241 MiB with 50 points
    a shard, 400 MiB with 10⁶ (x² and autograd's temporaries: ~20× the shard); JAX 241 and 285 MiB (~5.5×).
    """

    base: int
    per_shard_byte: float

    def worker_bytes(self, n: int, workers: int, itemsize: int) -> int:
        return int(self.base + self.per_shard_byte * math.ceil(n / workers) * itemsize)


def loopback_interface() -> str | None:
    """The name of the loopback interface ("lo" on Linux), None where it cannot be found."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return None
    return next((name for name in names if name == "lo" or name.startswith("lo")), None)


def shard_payloads(problem: Any, config: Any, footprint: Footprint, **common: Any) -> list[dict[str, Any]]:
    """What each worker needs: its contiguous shard of x (whole rows) and y in the working dtype, and the run's
    settings.

    ``model`` names the problem's family (problems.MODELS), whose worker code trains it (its own for the
    seed's and linear's, else its module's loss); ``params0`` its initial parameters by name, in order.

    ``counts`` (every rank's shard length) lets a worker pad its shard to the
    longest one where its framework needs equal shapes. First, ``config.workers``
    workers of ``footprint`` must fit this machine (``check_group_size``): the
    coordinator's part is the converted data and its shards, 2 × 2 arrays.
    """
    dtype = np.dtype(config.dtype)
    nodes = _cluster.nodes()
    if config.workers % nodes:
        raise ValueError(f"workers={config.workers}: not a multiple of the {nodes} nodes (torchrun starts as many "
                         "on every node)")  # fmt: skip
    check_group_size(config.workers // nodes, footprint.worker_bytes(problem.n, config.workers, dtype.itemsize),
                     coordinator_bytes=2 * (problem.d + 1) * problem.n * dtype.itemsize)  # fmt: skip
    # Views where the problem is in the working dtype already: the shards below are the copies.
    x = problem.x.astype(dtype, copy=False)
    y = problem.y.astype(dtype, copy=False).ravel()
    bounds = shard_bounds(problem.n, config.workers)
    counts = [stop - start for start, stop in bounds]
    return [
        {"x": np.ascontiguousarray(x[start:stop]), "y": np.ascontiguousarray(y[start:stop]), "counts": counts,
         "params0": dict(problem.params0), "lr": config.lr, "epochs": config.epochs, "dtype": config.dtype,
         "model": problem.model, **common}
        for start, stop in bounds
    ]  # fmt: skip


class DataParallelFit:
    """A PreparedFit whose training runs on a persistent WorkerGroup.

    The group starts in the first ``run()`` (process launch, rendezvous and any
    compilation count in the first call, as a compile does elsewhere) and stays
    up for every later run until ``close()``. ``run()`` is one complete training
    on every worker, from the "go" until rank 0's result is back: ``(values,
    losses, final_loss)`` as host values, ``values`` every parameter in order. Use it as a context manager, or call
    ``close()``; a fit that is collected or outlived by the interpreter is
    closed too.
    """

    def __init__(
        self,
        factory: str,
        payloads: list[dict[str, Any]],
        env: Mapping[str, str] | None = None,
        hang_timeout_s: float | None = None,
        torchrun: bool = False,
    ) -> None:
        self.factory = factory
        self.workers = len(payloads)
        self.names = tuple(payloads[0]["params0"])  # the problem's parameters, in the order run() returns them
        self._payloads: list[dict[str, Any]] | None = payloads
        self._env = dict(env or {})
        self._hang_timeout_s = hang_timeout_s
        self._torchrun = torchrun
        self.cluster = _cluster.current()  # None: one node
        self.group: WorkerGroup | None = None

    def _group(self) -> WorkerGroup:
        if self.group is None:
            if self._payloads is None:
                raise WorkerError("this data-parallel fit is closed")
            self.group = WorkerGroup(self.factory, self._payloads, self._env, hang_timeout_s=self._hang_timeout_s,
                                     cluster=self.cluster, torchrun=self._torchrun)  # fmt: skip
            self._payloads = None  # the workers hold the shards now
        return self.group

    def run(self) -> tuple[tuple, np.ndarray, float]:
        return self._group().call("train")[0]

    def result(self, raw: Any) -> FitResult:
        values, losses, final = raw
        return FitResult.of(self.names, values, losses, final)

    def measure_allreduce(self, rounds: int = ALLREDUCE_ROUNDS) -> float:
        """Seconds of one all-reduce of an epoch's parts (loss, ∂w, ∂b) inside this group (rank 0's mean)."""
        return self._group().call("measure_allreduce", rounds)[0]

    def worker_peak_bytes(self) -> int | None:
        """The largest peak resident size (VmHWM) of any worker so far."""
        peaks = [p for p in self._group().call("peak_bytes") if p is not None]
        return max(peaks) if peaks else None

    def bench_info(self) -> dict[str, Any]:
        """What a benchmark records beside the timings: worker and node counts, all-reduce cost, the workers' peak
        memory."""
        return {
            "workers": self.workers,
            "nodes": self.cluster.nnodes if self.cluster is not None else 1,
            "allreduce_s": self.measure_allreduce(),
            "allreduce_rounds": ALLREDUCE_ROUNDS,
            "worker_peak_bytes": self.worker_peak_bytes(),
        }

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (empty before the first run)."""
        return self.group.pids if self.group is not None else []

    def close(self) -> None:
        self._payloads = None
        if self.group is not None:
            self.group.close()

    def __enter__(self) -> DataParallelFit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

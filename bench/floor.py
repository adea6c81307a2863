"""The bandwidth floor: the time to read the data once, under which no epoch can go.

Rules: a floor reads exactly the bytes it is given: the seed's x and y (2·n
values) by default, a problem's ``floor_bytes`` at its size otherwise, and its
record names that problem. On the CPU, the faster of a one-thread and a
parallel streaming read (on a small or busy machine a parallel region can cost
more than it saves, threads being woken per call); on a CUDA device, half a
device-to-device copy, which moves the bytes twice. Its record
(records.model.FloorRecord) says which.
"""

from __future__ import annotations

import importlib.util
import statistics
from collections.abc import Callable

import numpy as np

from bench.isolation import loaded_frameworks
from bench.rounds import ROUND_BUDGET_S, choose_rounds, timed
from records.model import FloorRecord, ProblemRecord


def _halves(values: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """``values`` values as two arrays, x and the rest: the seed's x (linspace) and y of n points each for 2·n; for an
    odd count x holds the one more."""
    x = np.linspace(-1, 1, values - values // 2, dtype=dtype)
    y = np.ones(values // 2, dtype=dtype)
    return x, y


def streaming_reads(values: int, dtype: str, what: str = "x and y") -> dict[str, Callable[[], object]]:
    """Calls that read ``values`` values (``what``: the seed's x and y are 2·n) once and do nothing else, by method.

    Numba's reassociated, vectorised sum on one thread and on all of them (the
    machinery of the native SIMD limit, with no arithmetic beyond the read);
    NumPy's sum where Numba is absent.
    """
    x, y = _halves(values, dtype)
    if importlib.util.find_spec("numba") is None:
        return {f"numpy sum of {what}": lambda: x.sum() + y.sum()}
    serial, parallel = _numba_reader(False), _numba_reader(True)
    return {
        f"numba fastmath sum of {what}, one thread": lambda: serial(x, y),
        f"numba fastmath sum of {what}, parallel": lambda: parallel(x, y),
    }


def _numba_reader(parallel: bool):
    import numba

    prange = numba.prange if parallel else range

    @numba.njit(fastmath=True, parallel=parallel, nogil=True)
    def read(x, y):  # pragma: no cover - compiled
        total = x[0] - x[0]
        for i in prange(y.shape[0]):
            total += x[i] + y[i]
        if x.shape[0] > y.shape[0]:  # an odd count: x's last value
            total += x[-1]
        return total

    return read


def device_copy(values: int, dtype: str) -> Callable[[], object]:
    """A device-to-device copy of ``values`` values on the first CUDA device (torch's, else CuPy's), synchronised.

    A copy reads and writes every byte once, so reading them takes half of it.
    """
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            src = torch.ones(values, dtype=getattr(torch, dtype), device="cuda")
            dst = torch.empty_like(src)
            return lambda: (dst.copy_(src), torch.cuda.synchronize())
    import cupy

    src = cupy.ones(values, dtype=dtype)
    dst = cupy.empty_like(src)
    return lambda: (dst.__setitem__(Ellipsis, src), cupy.cuda.Device().synchronize())


#: Calls of each read whose median chooses the faster one.
FLOOR_PROBES = 7


def run_floor(benchmark, n: int, dtype: str, device: str = "cpu", rounds: int | None = None,
              budget_s: float = ROUND_BUDGET_S, *, data_bytes: int | None = None,
              problem: ProblemRecord | None = None) -> None:  # fmt: skip
    """Time reading the data of a problem of size n once on ``device``: the floor of an epoch's time (see the
    module's rules). ``data_bytes``: what ``problem``'s epoch reads (its ``floor_bytes``); by default, and with no
    problem, the seed's x and y of n points."""
    itemsize = np.dtype(dtype).itemsize
    if data_bytes is None:
        data_bytes = 2 * n * itemsize
    if data_bytes <= 0 or data_bytes % itemsize:
        raise ValueError(f"a floor reads whole {dtype} values, not {data_bytes} bytes")
    values = data_bytes // itemsize
    if device == "cpu":
        reads = streaming_reads(values, dtype, "x and y" if problem is None else "its data")
    else:
        reads = {"device-to-device copy, half its time": device_copy(values, dtype)}
    first_call_s = max(timed(read)[1] for read in reads.values())
    probes = {method: statistics.median(timed(read)[1] for _ in range(FLOOR_PROBES)) for method, read in reads.items()}
    method = min(probes, key=probes.get)
    read = reads[method]
    if rounds is None:
        rounds = choose_rounds(probes[method], budget_s)
    benchmark.pedantic(read, rounds=rounds, iterations=1, warmup_rounds=0)
    median = benchmark.stats.stats.median if benchmark.stats else probes[method]  # None with --benchmark-disable
    floor_s = median / (1 if device == "cpu" else 2)
    record = FloorRecord(n=n, dtype=dtype, device=device, data_bytes=data_bytes, method=method,
                         first_call_s=first_call_s, floor_s=floor_s, bandwidth_Bps=data_bytes / floor_s,
                         loaded_frameworks=loaded_frameworks(), problem=problem)  # fmt: skip
    benchmark.extra_info.update(record.model_dump())

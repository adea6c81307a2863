"""The bandwidth floor: the time to read the data once, under which no epoch can go.

Rules: on the CPU, the faster of a one-thread and a parallel streaming read (on
a small or busy machine a parallel region can cost more than it saves, threads
being woken per call); on a CUDA device, half a device-to-device copy, which
moves the bytes twice. Its record (records.model.FloorRecord) says which.
"""

from __future__ import annotations

import importlib.util
import statistics
from collections.abc import Callable

import numpy as np

from bench.isolation import loaded_frameworks
from bench.rounds import ROUND_BUDGET_S, choose_rounds, timed
from records.model import FloorRecord


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


def run_floor(benchmark, n: int, dtype: str, device: str = "cpu", rounds: int | None = None,
              budget_s: float = ROUND_BUDGET_S) -> None:  # fmt: skip
    """Time reading x and y once at size n on ``device``: the floor of an epoch's time (see the module's rules)."""
    if device == "cpu":
        reads = streaming_reads(n, dtype)
    else:
        reads = {"device-to-device copy, half its time": device_copy(n, dtype)}
    first_call_s = max(timed(read)[1] for read in reads.values())
    probes = {method: statistics.median(timed(read)[1] for _ in range(FLOOR_PROBES)) for method, read in reads.items()}
    method = min(probes, key=probes.get)
    read = reads[method]
    if rounds is None:
        rounds = choose_rounds(probes[method], budget_s)
    benchmark.pedantic(read, rounds=rounds, iterations=1, warmup_rounds=0)
    data_bytes = 2 * n * np.dtype(dtype).itemsize
    median = benchmark.stats.stats.median if benchmark.stats else probes[method]  # None with --benchmark-disable
    floor_s = median / (1 if device == "cpu" else 2)
    record = FloorRecord(n=n, dtype=dtype, device=device, data_bytes=data_bytes, method=method,
                         first_call_s=first_call_s, floor_s=floor_s, bandwidth_Bps=data_bytes / floor_s,
                         loaded_frameworks=loaded_frameworks())  # fmt: skip
    benchmark.extra_info.update(record.model_dump())

"""The machine's matrix-product rate at a model's shapes: the denominator of a compute limit.

Rules: NumPy's BLAS (the one NumPy's trainers call), with the threads it takes by default (as the trainers get
them), never set; the two products an epoch of problem ``mlp`` makes with its data at its first default size
(``X·W1``, (n, d)·(d, h), and ``XᵀG``, (d, n)·(n, h): 4·n·d·h FLOPs), float32 and float64, each timed as the
median of REPEATS after a warm-up. Read once per process that saves a run (bench.environment), well under a
second. A row's compute limit is its model's FLOPs an epoch over this rate (reports.load).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import problems

REPEATS = 15
DTYPES = ("float32", "float64")


def _seconds(x: np.ndarray, w: np.ndarray, g: np.ndarray) -> float:
    """The median time of one epoch's two products (X·W1, then XᵀG)."""
    times = []
    for _ in range(REPEATS + 1):  # the first is a warm-up
        start = time.perf_counter()
        x @ w
        x.T @ g
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def matmul_rate() -> dict:
    """``{"shape": [n, d, h], "float32": FLOP/s, "float64": FLOP/s}`` at mlp's first default size."""
    sizes = {**problems.get("mlp").PARAMS, **problems.get("mlp").DEFAULT_SIZES[0]}
    n, d, h = sizes["n"], sizes["d"], sizes["h"]
    rng = np.random.default_rng(0)
    out: dict = {"shape": [n, d, h]}
    for dtype in DTYPES:
        x, w, g = (rng.uniform(-1, 1, shape).astype(dtype) for shape in ((n, d), (d, h), (n, h)))
        out[dtype] = 4 * n * d * h / _seconds(x, w, g)
    return out

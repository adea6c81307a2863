"""``python -m bench.fit_overhead``: what a whole ``fit()`` of the reference loops costs over their bare loop.

The compiled loop called as a plain Numba user calls it (arrays made once, scalars as Python floats) against
``trainer.fit(problem, config)``, interleaved call by call so that a drift of the machine falls on both alike;
medians of ``--calls`` each, on the tutorial's problem. The benchmarks hold the same ratio in a user's fresh
process as the ``fit overhead`` target (reports.targets); this is the quick look, in one process.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import backends
from backends import with_role
from records.roles import CPU_LIMIT, NATIVE_LOOP


def measure(trainer_id: str, dtype: str, calls: int) -> tuple[float, float]:
    """(median bare loop, median fit()) in seconds."""
    problem, config = backends.seed_problem(dtype), backends.TrainConfig(dtype=dtype)  # data in the working dtype
    trainer = backends.get_trainer(trainer_id)
    trainer.fit(problem, config)  # compiles
    loop = trainer.prepare(problem, config).train
    x, y = (np.ascontiguousarray(a.ravel().astype(dtype)) for a in (problem.x, problem.y))
    args = (x, y, problem.w0, problem.b0, config.lr, config.epochs)
    bare, fit = [], []
    for _ in range(calls):
        start = time.perf_counter()
        loop(*args)
        middle = time.perf_counter()
        trainer.fit(problem, config)
        bare.append(middle - start)
        fit.append(time.perf_counter() - middle)
    return statistics.median(bare), statistics.median(fit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    for trainer_id in (*with_role(NATIVE_LOOP, "cpu"), *with_role(CPU_LIMIT, "cpu")):
        for dtype in backends.DTYPES:
            bare, fit = measure(trainer_id, dtype, args.calls)
            print(f"{trainer_id} {dtype}: loop {bare * 1e6:.1f} µs, fit() {fit * 1e6:.1f} µs, {fit / bare:.3f}×")


if __name__ == "__main__":
    main()

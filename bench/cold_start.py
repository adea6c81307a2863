"""A trainer in a fresh process, as a user's script meets it: ``python -m bench.cold_start TRAINER DTYPE EPOCHS LR``.

Rules: started by ``cold_start()`` (below) with every framework's on-disk
compile cache pointed at an empty folder; imports ``backends`` and nothing
else of regbench, changes no framework setting, and prints one JSON line. The
first ``run()`` is timed (compilation or capture + one training on the
tutorial's problem), not the imports or ``prepare()``; then whole ``fit()``
calls, each one timed (``fresh_fit_s``): what a user's process gets once the
trainer is warm, interleaved call by call with the bare ``run()`` of the first
prepared fit (``fresh_run_s``), so that what fit() adds over its loop is a ratio
of two medians taken side by side in one process: measured against another
process's rounds, it carried that process's own drift (the same loop took
72 µs in one process and 91 µs in the next, 2026-12-02).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import backends
from bench.parent_watch import PARENT_ENV, guard

#: Warm fit() calls (each beside a run()): until this many, or until the time budget is spent (at least MIN_FITS).
MAX_FITS, MIN_FITS, BUDGET_S = 300, 5, 1.0


#: Environment variables that point each framework's on-disk compile cache at an empty folder.
CACHE_ENV = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR", "NUMBA_CACHE_DIR")
COLD_START_TIMEOUT_S = 300


def cold_start(trainer: backends.Trainer, problem: backends.Problem, config: backends.TrainConfig,
               distributed: bool) -> dict:  # fmt: skip
    """Two fresh processes, one after the other, sharing compile caches that start empty.

    The first one's first ``run()`` is ``cold_start_s``, the median of its warm ``fit()`` calls (``fresh_fits``,
    each) ``fresh_fit_s`` and that of the bare ``run()`` calls between them (``fresh_runs``) ``fresh_run_s``; the
    second one's first ``run()``, with the caches the first one filled, is ``warm_start_s``.
    """
    if problem.name != "tutorial":
        raise ValueError("cold starts are measured on the tutorial's problem only")
    cmd = [sys.executable, "-m", "bench.cold_start", trainer.id, config.dtype, str(config.epochs), repr(config.lr),
           f"--workers={config.workers}"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="regbench-cold-") as tmp:
        # The child dies with this process (parent_watch.guard).
        env = {**os.environ, **{var: os.path.join(tmp, var.lower()) for var in CACHE_ENV},
               PARENT_ENV: str(os.getpid())}  # fmt: skip
        fits = ["--no-fits"] if distributed else []  # a data-parallel fit() starts a group
        cold, warm = (_fresh_process(trainer, cmd + extra, env) for extra in (fits, ["--no-fits"]))
    fit_times, run_times = cold["fresh_fit_s"], cold["fresh_run_s"]
    return {"cold_start_s": cold["first_call_s"], "warm_start_s": warm["first_call_s"],
            "fresh_fit_s": statistics.median(fit_times) if fit_times else None, "fresh_fits": fit_times,
            "fresh_run_s": statistics.median(run_times) if run_times else None, "fresh_runs": run_times}  # fmt: skip


def _fresh_process(trainer: backends.Trainer, cmd: list[str], env: dict) -> dict:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=COLD_START_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"cold start of {trainer.id} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.split("\n\n")[0])
    p.add_argument("trainer")
    p.add_argument("dtype")
    p.add_argument("epochs", type=int)
    p.add_argument("lr", type=float)
    p.add_argument("--workers", type=int, default=1, help="worker processes of a data-parallel trainer [1]")
    p.add_argument("--no-fits", dest="fits", action="store_false", help="time the first call only")
    # (A data-parallel fit() starts its worker group anew: cold_start() asks for no fits of those.)
    args = p.parse_args(argv)
    guard()  # no orphan: it dies with the benchmark process that started it, even one SIGKILLed
    config = backends.TrainConfig(epochs=args.epochs, lr=args.lr, dtype=args.dtype, workers=args.workers)
    # The data in the working dtype, as a user makes them: the warm fit() calls convert nothing.
    trainer, problem = backends.get_trainer(args.trainer), backends.seed_problem(args.dtype)
    prepared = trainer.prepare(problem, config)
    start = time.perf_counter()
    prepared.run()
    first_call_s = time.perf_counter() - start
    if hasattr(prepared, "close"):  # a data-parallel fit's workers
        prepared.close()
    fits: list[float] = []
    runs: list[float] = []
    whole, bare = (lambda: trainer.fit(problem, config), fits), (prepared.run, runs)
    deadline = time.perf_counter() + BUDGET_S
    while args.fits and (len(fits) < MIN_FITS or (len(fits) < MAX_FITS and time.perf_counter() < deadline)):
        # Each goes first every other pair: neither always finds the caches the other left.
        for call, times in (whole, bare) if len(fits) % 2 == 0 else (bare, whole):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
    print(json.dumps({"trainer": args.trainer, "first_call_s": first_call_s, "fresh_fit_s": fits, "fresh_run_s": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

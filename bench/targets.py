"""The speed targets, measured side by side in one process: ``python -m bench.targets``.

Rules: every ratio is one of medians measured in this process, with rounds
interleaved across trainers so that drift on a shared machine hits them alike;
compilation is paid by a warm-up call before timing and reported apart. A
trainer is timed as a user calls it: ``run()`` is the bare training loop,
``fit()`` adds conversion (``prepare()``, timed too) and the result. Peak
memory is read in a fresh process per trainer, from the kernel's high-water
mark after resetting it. Exit status 1 when a required target is not met.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

import backends
from bench.harness import jax_cpu_dispatch, library_versions, set_jax_cpu_dispatch

SMALL_N, LARGE_N, LARGE_EPOCHS, MEMORY_N = 100, 10**6, 20, 10**7
#: The native loop is the baseline of the speed targets; the SIMD limit is a
#: reference, shown in every table and judged by none (a whole 100-point fit of
#: it takes ~18 µs, so even the ~1.4 µs any Python call needs to build a result
#: is 7% of it).
NATIVE, LIMIT = "numba-native-loop-cpu", "numba-native-simd-cpu"
OVERHEAD_BOUND, MEMORY_BOUND = 0.05, 4


@dataclass(frozen=True)
class Timing:
    prepare_s: float  # conversion and transfer: excluded from fit's overhead
    run_s: float  # the bare training loop
    result_s: float  # what fit() adds on top: building the FitResult
    first_call_s: float  # compilation + one run


def phased_fit(trainer: backends.Trainer, problem: backends.Problem, config: backends.TrainConfig) -> dict:
    """``trainer.fit(problem, config)`` step by step, as fit() does it, timing each step."""
    t0 = time.perf_counter()
    prepared = trainer.prepare(problem, config)
    t1 = time.perf_counter()
    raw = prepared.run()
    t2 = time.perf_counter()
    prepared.result(raw)
    t3 = time.perf_counter()
    return {"prepare": t1 - t0, "run": t2 - t1, "result": t3 - t2}


def time_side_by_side(calls: dict[str, Callable[[], dict]], budget_s: float, min_rounds: int) -> dict[str, dict]:
    """Median of each phase of each call; rounds interleaved across calls, fewer for slow ones (≥ min_rounds)."""
    estimates = {key: sum(call().values()) for key, call in calls.items()}
    rounds = {k: max(min_rounds, min(500, int(budget_s / max(t, 1e-9)))) for k, t in estimates.items()}
    samples: dict[str, list[dict]] = {k: [] for k in calls}
    for r in range(max(rounds.values())):
        for key, call in calls.items():
            if r < rounds[key]:
                samples[key].append(call())
    return {k: pd.DataFrame(v).median().to_dict() for k, v in samples.items()}


def measure(trainer_ids: list[str], problem: backends.Problem, config: backends.TrainConfig, budget_s: float,
            min_rounds: int) -> dict[str, Timing]:  # fmt: skip
    calls, first = {}, {}
    for tid in trainer_ids:
        trainer = backends.get_trainer(tid)
        prepared = trainer.prepare(problem, config)
        start = time.perf_counter()
        prepared.run()  # compilation, measured apart
        first[tid] = time.perf_counter() - start
        calls[tid] = lambda t=trainer: phased_fit(t, problem, config)
    medians = time_side_by_side(calls, budget_s, min_rounds)
    return {tid: Timing(m["prepare"], m["run"], m["result"], first[tid]) for tid, m in medians.items()}


def usable() -> list[str]:
    """Every trainer that can run here on the CPU."""
    return [tid for tid, a in backends.available().items() if a.ok and tid.endswith("-cpu")]


@dataclass(frozen=True)
class Target:
    """The fastest of ``candidates`` (an id prefix) against ``baseline``: a speed-up (≥ bound) or a ratio (≤ bound)."""

    large: bool  # at the large size (per epoch) rather than the tutorial's 100 points
    what: str
    candidates: str
    baseline: str
    speedup: bool
    bound: float | None  # None: shown, not judged


TARGETS = (
    Target(False, "NumPy: speed-up over the tutorial loop", "numpy-", "numpy-manual-tutorial-cpu", True, 3),
    Target(False, "torch CPU: speed-up over the eager autograd loop", "torch-", "torch-autograd-eager-cpu", True, 5),
    Target(False, "JAX: time / native loop", "jax-", NATIVE, False, 6),
    Target(False, "JAX: time / SIMD native limit", "jax-", LIMIT, False, None),
    *(Target(True, f"{b}: time per epoch / native loop", f"{b}-", NATIVE, False, 3) for b in ("numpy", "torch", "jax")),
    *(Target(True, f"{b}: time per epoch / SIMD native limit", f"{b}-", LIMIT, False, None)
      for b in ("numpy", "torch", "jax")),
)  # fmt: skip


def judge(target: Target, timings: dict[str, Timing]) -> dict:
    candidates = {k: t.run_s for k, t in timings.items() if k.startswith(target.candidates) and k != target.baseline}
    fastest = min(candidates, key=candidates.get)
    base = timings[target.baseline].run_s
    ratio = base / candidates[fastest] if target.speedup else candidates[fastest] / base
    met = None
    if target.bound is not None:
        met = bool(ratio >= target.bound) if target.speedup else bool(ratio <= target.bound)
    op = "≥" if target.speedup else "≤"
    return {"target": target.what, "fastest": fastest, "measured": ratio,
            "required": "" if target.bound is None else f"{op} {target.bound:g}×", "met": met}  # fmt: skip


def speed_rows(dtype: str, budget_s: float, min_rounds: int, large_n: int) -> tuple[list[dict], dict]:
    rows, timings = [], {}
    for large, n, epochs in ((False, SMALL_N, 800), (True, large_n, LARGE_EPOCHS)):
        config = backends.TrainConfig(epochs=epochs, lr=0.1 / n, dtype=dtype)
        timings[n] = measure(usable(), backends.make_problem(n, 0), config, budget_s, min_rounds)
        rows += [{"dtype": dtype, "n": n, **judge(t, timings[n])} for t in TARGETS if t.large == large]
    return rows, timings


def overhead_rows(timings: dict[str, dict[int, dict[str, Timing]]]) -> list[dict]:
    rows = []
    for dtype, by_n in timings.items():
        for n, by_trainer in by_n.items():
            for tid, t in by_trainer.items():
                overhead = t.result_s / t.run_s
                rows.append({"dtype": dtype, "n": n, "trainer": tid, "first_call_s": t.first_call_s,
                             "prepare_s": t.prepare_s, "run_s": t.run_s, "result_s": t.result_s,
                             "overhead": overhead,
                             "met": None if tid == LIMIT else bool(overhead < OVERHEAD_BOUND)})  # fmt: skip
    return rows


def memory_probe(trainer_id: str, n: int) -> dict:
    """Run in a fresh process: the peak resident memory a float32 fit adds, from the kernel's high-water mark."""
    problem = backends.make_problem(n, 0)
    trainer = backends.get_trainer(trainer_id)
    config = backends.TrainConfig(epochs=3, lr=0.1 / n, dtype="float32")
    for warm_n in (1000, 2000):  # compile for a generic size first (torch marks n dynamic on the second)
        trainer.fit(backends.make_problem(warm_n, 0), backends.TrainConfig(epochs=3, lr=1e-4, dtype="float32"))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident size
    baseline = _status_kb("VmRSS")
    trainer.fit(problem, config)
    peak = _status_kb("VmHWM")
    data = 2 * n * np.dtype("float32").itemsize
    return {"trainer": trainer_id, "n": n, "added_bytes": (peak - baseline) * 1024, "data_bytes": data}


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def fast_paths(timings: dict[int, dict[str, Timing]], n: int) -> set[str]:
    """The fastest CPU variant of each framework backend at size n, and the native loop."""
    best = {}
    for tid, t in timings[n].items():
        backend = tid.split("-", 1)[0]
        if backend == "numba":
            continue
        if backend not in best or t.run_s < timings[n][best[backend]].run_s:
            best[backend] = tid
    return set(best.values()) | {NATIVE}


def memory_rows(n: int, judged: set[str], jax_async_dispatch: bool) -> list[dict]:
    """Peak memory of every CPU trainer; the verdict is on the fast paths (the speed targets' subject)."""
    if not os.path.exists("/proc/self/clear_refs"):
        return [{"trainer": "all", "met": None, "note": "needs Linux /proc to read peak memory"}]
    rows = []
    for tid in usable():
        cmd = [sys.executable, "-m", "bench.targets", "--memory-probe", tid, "--memory-n", str(n)]
        cmd += ["--jax-async-dispatch"] if jax_async_dispatch else []
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        probe = json.loads(out.strip().splitlines()[-1])
        ratio = probe["added_bytes"] / probe["data_bytes"]
        rows.append({"dtype": "float32", "n": n, "trainer": tid, "added_MB": probe["added_bytes"] / 2**20,
                     "data_MB": probe["data_bytes"] / 2**20, "ratio": ratio,
                     "met": bool(ratio < MEMORY_BOUND) if tid in judged else None})  # fmt: skip
    return rows


def environment() -> str:
    import platform

    versions = [f"{dist} {v}" for dist, v in library_versions().items() if v]
    dispatch = jax_cpu_dispatch()
    if dispatch:
        versions.append(f"JAX CPU dispatch {dispatch}")
    return f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
           f"Python {platform.python_version()}, {', '.join(versions)}"  # fmt: skip


def fmt(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".3g")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.targets", description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timed rounds per trainer and size [1.0]")
    p.add_argument("--min-rounds", type=int, default=5, help="rounds even for the slowest trainer [5]")
    p.add_argument("--large-n", type=int, default=LARGE_N, help=f"the large size [{LARGE_N}]")
    p.add_argument("--memory-n", type=int, default=MEMORY_N, help=f"size of the memory check [{MEMORY_N}]")
    p.add_argument("--jax-async-dispatch", action="store_true", help="keep JAX's default asynchronous CPU dispatch")
    p.add_argument("--memory-probe", metavar="TRAINER", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    set_jax_cpu_dispatch(asynchronous=args.jax_async_dispatch)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.memory_n)))
        return 0

    print(f"# regbench speed targets — {environment()}\n", flush=True)
    speed, timings = [], {}
    for dtype in backends.DTYPES:
        rows, timings[dtype] = speed_rows(dtype, args.budget, args.min_rounds, args.large_n)
        speed += rows
    speed_df = pd.DataFrame(speed)
    print("## Speed (ratios of medians, measured side by side)\n")
    print(fmt(speed_df), "\n")
    over = pd.DataFrame(overhead_rows(timings))
    print(f"## What fit() adds over the bare training loop (conversion and compilation excluded),"
          f" < {OVERHEAD_BOUND:.0%}; the SIMD limit is shown, not judged\n")  # fmt: skip
    print(fmt(over), "\n")
    judged = fast_paths(timings["float32"], args.large_n)
    memory = pd.DataFrame(memory_rows(args.memory_n, judged, args.jax_async_dispatch))
    print(
        f"## Peak resident memory a float32 fit adds at n={args.memory_n}, < {MEMORY_BOUND}× the data (x and y in"
        " float32), judged on each framework backend's fastest variant at the large size and on the native loop\n"
    )
    print(fmt(memory), "\n")
    verdicts = pd.concat([speed_df["met"], over["met"], memory["met"]]).dropna()
    unmet = int((~verdicts.astype(bool)).sum())
    print(f"{len(verdicts) - unmet} of {len(verdicts)} targets met" + ("" if not unmet else f"; {unmet} not met"))
    return 1 if unmet else 0


if __name__ == "__main__":
    raise SystemExit(main())

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

SMALL_N, LARGE_N, LARGE_EPOCHS, MEMORY_N = 100, 10**6, 20, 10**7
NATIVE, LIMIT = "numba-native-loop-cpu", "numba-native-simd-cpu"


@dataclass(frozen=True)
class Timing:
    prepare_s: float  # conversion and transfer: excluded from fit's overhead
    run_s: float  # the bare training loop
    result_s: float  # what fit() adds on top: building the FitResult
    first_call_s: float  # compilation + one run


def time_side_by_side(calls: dict[str, dict[str, Callable]], budget_s: float, min_rounds: int) -> dict[str, dict]:
    """Median seconds of each named callable; rounds interleaved, fewer for slow ones (at least min_rounds)."""
    estimates = {}
    for key, fns in calls.items():
        start = time.perf_counter()
        fns["run"]()
        estimates[key] = time.perf_counter() - start
    rounds = {k: max(min_rounds, min(500, int(budget_s / max(t, 1e-9)))) for k, t in estimates.items()}
    samples = {k: {name: [] for name in fns} for k, fns in calls.items()}
    for r in range(max(rounds.values())):
        for key, fns in calls.items():
            if r >= rounds[key]:
                continue
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                samples[key][name].append(time.perf_counter() - start)
    return {k: {name: float(np.median(v)) for name, v in s.items()} for k, s in samples.items()}


def measure(trainer_ids: list[str], problem: backends.Problem, config: backends.TrainConfig, budget_s: float,
            min_rounds: int) -> dict[str, Timing]:  # fmt: skip
    calls, first = {}, {}
    for tid in trainer_ids:
        trainer = backends.get_trainer(tid)
        prepared = trainer.prepare(problem, config)
        start = time.perf_counter()
        prepared.run()  # compilation, measured apart
        first[tid] = time.perf_counter() - start
        raw = prepared.run()
        # fit() is prepare() + run() + result(): timing the parts is exact where a difference of
        # medians of fit() and run() would drown a microsecond in the noise of the loop.
        calls[tid] = {
            "run": prepared.run,
            "prepare": lambda t=trainer: t.prepare(problem, config),
            "result": lambda p=prepared, r=raw: p.result(r),
        }
    medians = time_side_by_side(calls, budget_s, min_rounds)
    return {tid: Timing(m["prepare"], m["run"], m["result"], first[tid]) for tid, m in medians.items()}


def usable(prefix: str) -> list[str]:
    return [tid for tid, a in backends.available().items() if a.ok and tid.startswith(prefix) and tid.endswith("-cpu")]


def speed_rows(dtype: str, budget_s: float, min_rounds: int, large_n: int) -> tuple[list[dict], dict]:
    rows = []
    timings = {}
    for n, epochs in ((SMALL_N, 800), (large_n, LARGE_EPOCHS)):
        problem = backends.make_problem(n, 0)
        config = backends.TrainConfig(epochs=epochs, lr=0.1 / n, dtype=dtype)
        ids = usable("")
        t = measure(ids, problem, config, budget_s, min_rounds)
        timings[n] = t

        def best(prefix, exclude=(), t=t):
            candidates = {k: v.run_s for k, v in t.items() if k.startswith(prefix) and k not in exclude}
            return min(candidates.items(), key=lambda kv: kv[1]) if candidates else (None, np.nan)

        def row(what, fastest, ratio, op, bound):
            met = None if bound is None else bool(ratio >= bound if op == "≥" else ratio <= bound)
            rows.append({"dtype": dtype, "n": n, "target": what, "fastest": fastest, "measured": ratio,
                         "required": "" if bound is None else f"{op} {bound:g}×", "met": met})  # fmt: skip

        native, limit = t[NATIVE].run_s, t[LIMIT].run_s
        if n == SMALL_N:
            tid, s = best("numpy-", exclude=("numpy-manual-tutorial-cpu",))
            row("NumPy: speed-up over the tutorial loop", tid, t["numpy-manual-tutorial-cpu"].run_s / s, "≥", 3)
            tid, s = best("torch-")
            row(
                "torch CPU: speed-up over the eager autograd loop", tid, t["torch-autograd-eager-cpu"].run_s / s, "≥", 5
            )
            tid, s = best("jax-")
            row("JAX: time / native loop", tid, s / native, "≤", 6)
            row("JAX: time / SIMD native limit", tid, s / limit, "", None)
        else:
            for backend in ("numpy-", "torch-", "jax-"):
                tid, s = best(backend)
                row(f"{backend[:-1]}: time per epoch / native loop", tid, s / native, "≤", 3)
                row(f"{backend[:-1]}: time per epoch / SIMD native limit", tid, s / limit, "", None)
    return rows, timings


def overhead_rows(timings: dict[str, dict[int, dict[str, Timing]]]) -> list[dict]:
    rows = []
    for dtype, by_n in timings.items():
        for n, by_trainer in by_n.items():
            for tid, t in by_trainer.items():
                rows.append({"dtype": dtype, "n": n, "trainer": tid, "first_call_s": t.first_call_s,
                             "prepare_s": t.prepare_s, "run_s": t.run_s, "result_s": t.result_s,
                             "overhead": t.result_s / t.run_s})  # fmt: skip
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
    """The fastest CPU variant of each backend at size n, and both native loops."""
    best = {}
    for tid, t in timings[n].items():
        backend = tid.split("-", 1)[0]
        if backend not in best or t.run_s < timings[n][best[backend]].run_s:
            best[backend] = tid
    return set(best.values()) | {NATIVE, LIMIT}


def memory_rows(n: int, judged: set[str]) -> list[dict]:
    """Peak memory of every CPU trainer; the verdict is on the fast paths (the speed targets' subject)."""
    if not os.path.exists("/proc/self/clear_refs"):
        return [{"trainer": "all", "met": None, "note": "needs Linux /proc to read peak memory"}]
    rows = []
    for tid in usable(""):
        cmd = [sys.executable, "-m", "bench.targets", "--memory-probe", tid, "--memory-n", str(n)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        probe = json.loads(out.strip().splitlines()[-1])
        ratio = probe["added_bytes"] / probe["data_bytes"]
        rows.append({"dtype": "float32", "n": n, "trainer": tid, "added_MB": probe["added_bytes"] / 2**20,
                     "data_MB": probe["data_bytes"] / 2**20, "ratio": ratio,
                     "met": bool(ratio < 4) if tid in judged else None})  # fmt: skip
    return rows


def environment() -> str:
    import importlib.metadata as md
    import platform

    versions = []
    for dist in ("numpy", "torch", "jax", "jaxlib", "numba"):
        try:
            versions.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            pass
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
    p.add_argument("--memory-probe", metavar="TRAINER", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
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
    over["met"] = over["overhead"] < 0.05
    print("## What fit() adds over the bare training loop (conversion and compilation excluded), < 5%\n")
    print(fmt(over), "\n")
    memory = pd.DataFrame(memory_rows(args.memory_n, fast_paths(timings["float32"], args.large_n)))
    print(
        f"## Peak resident memory a float32 fit adds at n={args.memory_n}, < 4× the data (x and y in float32),"
        " judged on each backend's fastest variant at the large size\n"
    )
    print(fmt(memory), "\n")
    verdicts = pd.concat([speed_df["met"], over["met"], memory["met"]]).dropna()
    unmet = int((~verdicts.astype(bool)).sum())
    print(f"{len(verdicts) - unmet} of {len(verdicts)} targets met" + ("" if not unmet else f"; {unmet} not met"))
    return 1 if unmet else 0


if __name__ == "__main__":
    raise SystemExit(main())

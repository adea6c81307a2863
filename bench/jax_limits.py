"""``python -m bench.jax_limits {hlo,epoch,dispatch}``: the evidence behind the JAX targets restated (issue 35).

Rules: a measurement, never a test (a timed unit test fails on a noisy machine); every figure is a ratio of medians
taken side by side, interleaved call by call, in one process. Each condition runs in a fresh child process of its
own; a child may pin itself to CPUs (``os.sched_setaffinity``, before JAX is imported) or switch JAX's asynchronous
dispatch off, both in that child only, as a user's own script could: the library and the benchmarks change neither.

- ``hlo``: the compiled large-problem program (``as_text()``): the kernels of one epoch, each with the parts XLA splits
  it into for its thread pool (``outer_dimension_partitions``; none: XLA does not split it) and the bytes it moves.
- ``epoch``: at n = 10⁷ (``--n``), per epoch (the difference of whole fits at 5 and 25 epochs, as the marginal study
  takes it) JAX's scan, the CPU limit and the native loop; beside them one read of as many bytes as x and y by XLA's
  reduction, by Numba on one thread and by Numba on every CPU, and the threads the reduction ran on: in a process
  pinned to one CPU and in one on all of them.
- ``dispatch``: at the tutorial's size, a warm ``fit()`` of JAX's scan against the native loop's in a fresh process,
  under JAX's default (asynchronous dispatch) and with it off (``jax_cpu_enable_async_dispatch``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

JAX, LIMIT, NATIVE = "jax-grad-scan-cpu", "numba-native-simd-cpu", "numba-native-loop-cpu"
FEW, MANY = 5, 25  # epochs of the two whole fits whose difference is the cost of 20 epochs
#: What one HLO kernel of the loop body moves: every array operand read once, an array result written once.
_ARRAY = re.compile(r"f(32|64)\[(\d+)\]")


def _median_interleaved(calls: dict[str, object], repeats: int) -> dict[str, float]:
    """The median time of each call, calls interleaved round by round (each round in turn starting elsewhere)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for i in range(repeats):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _thread_ns() -> dict[str, int]:
    """Each thread of this process: the nanoseconds it has run on a CPU (``/proc/self/task/*/schedstat``)."""
    out = {}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat") as f:
                out[task] = int(f.read().split()[0])
        except OSError:  # a thread that ended meanwhile
            continue
    return out


def threads_during(call, calls: int = 15) -> float:
    """How many threads besides the caller ran for at least a tenth of the others' CPU time during one call (median
    over ``calls``): whether they split the work or spin while waiting, the counters cannot tell."""
    import threading

    me, counts = str(threading.get_native_id()), []
    for _ in range(calls):
        before = _thread_ns()
        call()
        after = _thread_ns()
        ran = [after[t] - before.get(t, 0) for t in after if t != me]
        counts.append(sum(1 for ns in ran if ns > 0.1 * max(sum(ran), 1)))
    return statistics.median(counts)


def _large_program(n: int, dtype: str):
    """The scan trainer's compiled program at n points, as ``fit()`` compiles it, and its arguments."""
    import jax
    import numpy as np

    from backends import jax_grad

    x, y = np.linspace(-1, 1, n, dtype=dtype), np.ones(n, dtype=dtype)
    kind = np.dtype(dtype).type
    with jax_grad._precision(dtype):
        args = (kind(3), kind(2), *jax.device_put((x, y)), kind(1e-8))
        return jax_grad._program("scan", False).lower(*args, epochs=MANY).compile(), args


def hlo(n: int, dtype: str) -> dict:
    """The kernels of the loop body of the compiled program: name, kind, XLA's partitions, MB moved."""
    compiled, _ = _large_program(n, dtype)
    text = compiled.as_text()
    body = text[text.index("%wide.region_0") :].split("\n}\n")[0] if "%wide.region_0" in text else text
    kernels = []
    for line in body.splitlines():
        found = re.match(r"\s*(?:ROOT )?%(\S+) = (\S+) fusion\((.*?)\), kind=(\w+)", line)
        if not found:
            continue
        name, result, operands, kind = found.groups()
        parts = re.search(r'"outer_dimension_partitions":\[([^\]]*)\]', line)
        partitions = int(parts.group(1).strip('"')) if parts and parts.group(1) else 1
        width = 4 if dtype == "float32" else 8
        arrays = [int(m.group(2)) for m in _ARRAY.finditer(result)]
        read = sum(_operand_size(body, operand.strip().lstrip("%")) for operand in operands.split(","))
        kernels.append({"kernel": name, "kind": "YNNPACK" if "__ynn_fusion" in line else kind, "partitions": partitions,
                        "MB": (read + sum(a for a in arrays if a > 1)) * width / 1e6})  # fmt: skip
    return {"n": n, "dtype": dtype, "kernels": kernels, "MB_per_epoch": sum(k["MB"] for k in kernels)}


def _operand_size(body: str, name: str) -> int:
    """The values an operand of the loop body holds (0 for a scalar), from its definition."""
    found = re.search(rf"%{re.escape(name)} = f(?:32|64)\[(\d+)\]", body)
    return int(found.group(1)) if found and int(found.group(1)) > 1 else 0


def epoch(n: int, dtype: str, repeats: int) -> dict:
    """Per-epoch costs at n points in this process (the CPUs it may use): the trainers, and one read of x and y (the
    bytes of the native loop's epoch) by XLA's reduction, by Numba on one thread and by Numba on every CPU."""
    import jax
    import jax.numpy as jnp

    import backends
    from bench.floor import streaming_reads
    from bench.problems import LR_TIMES_N, sized

    problem = sized(n, dtype).problem
    calls = {}
    for trainer_id in (JAX, LIMIT, NATIVE):
        trainer = backends.get_trainer(trainer_id)
        for epochs in (FEW, MANY):
            config = backends.TrainConfig(epochs=epochs, lr=LR_TIMES_N / n, dtype=dtype)
            trainer.fit(problem, config)  # compiles
            calls[f"{trainer_id}/{epochs}"] = lambda t=trainer, c=config: t.fit(problem, c)
    one, every = streaming_reads(2 * n, dtype).values()  # as many bytes as x and y
    from backends import jax_grad

    with jax_grad._precision(dtype):
        xy = jax.device_put((problem.x, problem.y))
        read = jax.jit(lambda x, y: jnp.sum(x + y))  # one reduction over both: a YNNPACK fusion, as in the epoch
        calls.update({"XLA's reduction": lambda: read(*xy).block_until_ready(), "Numba, one thread": one,
                      "Numba, every CPU": every})  # fmt: skip
        for call in calls.values():
            call()
        median = _median_interleaved(calls, repeats)
        threads = threads_during(calls["XLA's reduction"])
    per_epoch = {t: (median[f"{t}/{MANY}"] - median[f"{t}/{FEW}"]) / (MANY - FEW) for t in (JAX, LIMIT, NATIVE)}
    reads = {k: median[k] for k in ("XLA's reduction", "Numba, one thread", "Numba, every CPU")}
    return {"cpus": len(os.sched_getaffinity(0)), "n": n, "dtype": dtype, "per_epoch_s": per_epoch, "read_s": reads,
            "reduction_threads": threads}  # fmt: skip


def dispatch(dtype: str, asynchronous: bool, seconds: float) -> dict:
    """A warm fit() of JAX's scan and of the native loop at the tutorial's size, interleaved, in this process."""
    import jax

    import backends

    if not asynchronous:
        jax.config.update("jax_cpu_enable_async_dispatch", False)  # this child process only
    problem, config = backends.seed_problem(dtype), backends.TrainConfig(dtype=dtype)
    trainers = {t: backends.get_trainer(t) for t in (JAX, NATIVE)}
    for trainer in trainers.values():
        trainer.fit(problem, config)
    calls = {t: lambda tr=tr: tr.fit(problem, config) for t, tr in trainers.items()}
    repeats = max(20, int(seconds / (sum(_median_interleaved(calls, 5).values()))))
    fit_s = _median_interleaved(calls, repeats)
    return {"dtype": dtype, "async_dispatch": asynchronous, "fit_s": fit_s, "ratio": fit_s[JAX] / fit_s[NATIVE]}


def _child(args: list[str], cpus: list[int] | None = None) -> dict:
    """One measurement in a fresh process (pinned to ``cpus`` before anything is imported)."""
    cmd = [sys.executable, "-m", "bench.jax_limits", "--child", json.dumps(cpus), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.jax_limits", description=__doc__.split("\n\n")[0])
    p.add_argument("study", choices=("hlo", "epoch", "dispatch"))
    p.add_argument("--dtype", action="append", choices=("float32", "float64"), help="[both]")
    p.add_argument("--n", type=int, default=10**7, help="points of the large problem [10⁷]")
    p.add_argument("--repeats", type=int, default=7, help="whole fits of each kind per process (epoch) [7]")
    p.add_argument("--processes", type=int, default=3, help="fresh processes per condition (dispatch) [3]")
    p.add_argument("--synchronous", action="store_true", help=argparse.SUPPRESS)  # a dispatch child's condition
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    dtypes = args.dtype or ["float32", "float64"]
    if args.child is not None:  # one measurement in this fresh process, printed as one JSON line
        cpus = json.loads(args.child)
        if cpus:
            os.sched_setaffinity(0, cpus)
        if args.study == "epoch":
            print(json.dumps(epoch(args.n, dtypes[0], args.repeats)))
        else:
            print(json.dumps(dispatch(dtypes[0], not args.synchronous, 1.0)))
        return 0
    if args.study == "hlo":
        for dtype in dtypes:
            found = hlo(args.n, dtype)
            print(f"{dtype}, n = {args.n}: one epoch of {JAX}, {found['MB_per_epoch']:.0f} MB moved")
            for k in found["kernels"]:
                print(f"  {k['kernel']:<28} {k['kind']:<8} {k['partitions']} partition(s)  {k['MB']:.0f} MB")
        return 0
    if args.study == "epoch":
        every = sorted(os.sched_getaffinity(0))
        for dtype in dtypes:
            for cpus in (every[:1], every):
                found = _child(["epoch", "--dtype", dtype, "--n", str(args.n), "--repeats", str(args.repeats)], cpus)
                e, reads = found["per_epoch_s"], found["read_s"]
                line = ", ".join(f"{t} {s * 1e3:.2f} ms" for t, s in e.items())
                read = ", ".join(f"{t} {s * 1e3:.2f} ms" for t, s in reads.items())
                print(f"{dtype}, n = {args.n}, {found['cpus']} CPU(s): per epoch {line}; JAX / CPU limit "
                      f"{e[JAX] / e[LIMIT]:.2f}×, JAX / native loop {e[JAX] / e[NATIVE]:.2f}×; one read of x and y: "
                      f"{read}; threads besides the caller that ran during one XLA reduction: "
                      f"{found['reduction_threads']:g}")  # fmt: skip
        return 0
    for dtype in dtypes:
        for asynchronous in (True, False):
            condition = ["dispatch", "--dtype", dtype] + ([] if asynchronous else ["--synchronous"])
            ratios = [_child(condition)["ratio"] for _ in range(args.processes)]
            mode = "asynchronous (JAX's default)" if asynchronous else "synchronous"
            print(
                f"{dtype}, dispatch {mode}: JAX's fit() / the native loop's, per fresh process: "
                + ", ".join(f"{r:.2f}×" for r in ratios)
                + f" (median {statistics.median(ratios):.2f}×)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

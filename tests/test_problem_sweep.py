"""The other problems under ``--sweep`` (issue 22): every size of theirs collected with its bandwidth floor, a floor
that reads exactly a problem's ``floor_bytes`` and names it, and a report with a scaling table per problem."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import problems
from bench import problems as bench_problems
from bench.floor import run_floor, streaming_reads
from records.model import SEED_PROBLEM, Benchmark, FloorRecord
from reports import render, tables, targets
from reports.load import load
from reports.render import build
from reports.summary import summarize

ROOT = Path(__file__).resolve().parents[1]
(CURRENT,) = (ROOT / "tests" / "data" / "v4").glob("*/*.json")  # the current schema


def _label(sizes: dict) -> str:
    return ",".join(f"{key}{value}" for key, value in sizes.items())


def test_sweep_collects_every_problem_at_every_size_with_its_floor():
    """``pytest bench --sweep --collect-only``: linear at each DEFAULT_SIZES and SWEEP_SIZES entry, once, with a
    trainer's benchmark and a CPU and a CUDA floor each in both dtypes, as every problem, the seed's too."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-B", "-m", "pytest", "bench", "--sweep", "--collect-only", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    nodes = [line for line in proc.stdout.splitlines() if "::" in line]
    linear = problems.get("linear")
    sizes = list(linear.DEFAULT_SIZES) + [s for s in linear.SWEEP_SIZES if s not in linear.DEFAULT_SIZES]
    assert len(sizes) == len(linear.SWEEP_SIZES) + 1  # the default size, then the sweep's
    for size in sizes:
        label = f"linear-{_label(size)}"
        floors = [node for node in nodes if node.startswith(f"bench/test_fit.py::test_floor[{label}-")]
        assert floors == [f"bench/test_fit.py::test_floor[{label}-{device}-{dtype}]"
                          for device in ("cpu", "cuda") for dtype in ("float32", "float64")]  # fmt: skip
        assert f"bench/test_fit.py::test_fit[{label}-numpy-manual-fused-cpu-float64]" in nodes
    problem_floors = [node for node in nodes if node.startswith("bench/test_fit.py::test_floor[")]
    every = [(name, size) for name, size in bench_problems.default_problems(sweep=True)]
    seed = problems.get(SEED_PROBLEM)
    # the seed's tutorial and its six sweep sizes; linear's; mlp's and logistic's default and sweep sizes
    assert len(every) == len(seed.DEFAULT_SIZES) + len(seed.SWEEP_SIZES) + len(sizes) + 2 * 2
    assert len(problem_floors) == 2 * 2 * len(every)  # a CPU and a CUDA floor, in both dtypes
    assert "bench/test_fit.py::test_floor[quadratic-n10000000-cpu-float32]" in nodes  # the seed's, as any other's
    assert "bench/test_fit.py::test_fit[quadratic-n10000000-jax-grad-eager-cpu-float32]" in nodes  # every trainer


def test_sweep_sizes_pick_the_other_problems_sweep_sizes_too():
    """``--sweep-sizes`` given: the other problems' SWEEP_SIZES of those n only, beside their DEFAULT_SIZES."""
    linear = problems.get("linear")
    picked = bench_problems.default_problems(True, [1000, 10**6])
    assert [sizes for name, sizes in picked if name == "linear"] == [
        *linear.DEFAULT_SIZES,
        *(s for s in linear.SWEEP_SIZES if s["n"] in (1000, 10**6) and s not in linear.DEFAULT_SIZES),
    ]
    assert [s for name, s in bench_problems.default_problems(True, [7]) if name == "linear"] == list(
        linear.DEFAULT_SIZES
    )
    assert bench_problems.default_problems(False, [1000]) == bench_problems.default_problems()


class FakeBenchmark:
    """pytest-benchmark's fixture as run_floor uses it, with ``--benchmark-disable``'s stats (None)."""

    stats = None

    def __init__(self) -> None:
        self.extra_info: dict = {}
        self.calls = 0

    def pedantic(self, fn, rounds, iterations, warmup_rounds):
        for _ in range(rounds):
            fn()
            self.calls += 1


@pytest.mark.parametrize("values", [2000, 17001])
def test_a_streaming_read_reads_exactly_that_many_values(values):
    """x = linspace(−1, 1) sums to 0 and y to its length: a read of an odd count must not leave x's last value out."""
    for method, read in streaming_reads(values, "float64").items():
        assert read() == pytest.approx(values // 2, abs=1e-6), method


def test_a_problem_s_floor_records_its_floor_bytes_and_its_problem():
    n, d, dtype = 1000, 16, "float32"
    bench = FakeBenchmark()
    expected = problems.get("linear").floor_bytes(n, 4, d=d)
    assert bench_problems.data_bytes("linear", n, dtype, d=d) == expected == 17 * n * 4  # X and y, once
    record = bench_problems.problem_record("linear", n, d=d)
    run_floor(bench, n, dtype, rounds=3, data_bytes=expected, problem=record)
    info = FloorRecord.model_validate(bench.extra_info)
    assert bench.calls == 3
    assert (info.n, info.dtype, info.device, info.data_bytes) == (n, dtype, "cpu", expected)
    assert info.problem == record == bench_problems.named("linear", n, d=d).record
    assert info.problem_label == "linear(d=16)"
    assert info.bandwidth_Bps == pytest.approx(expected / info.floor_s)
    assert "its data" in info.method
    seed = FakeBenchmark()
    run_floor(seed, n, dtype, rounds=3)  # the seed's: x and y of n points, saved as before floors named a problem
    assert "problem" not in seed.extra_info
    assert seed.extra_info["data_bytes"] == 2 * n * 4
    assert "x and y" in seed.extra_info["method"]
    assert FloorRecord.model_validate(seed.extra_info).problem_label == SEED_PROBLEM == bench_problems.MODEL


def test_a_size_over_a_quarter_of_the_ram_is_skipped_with_why(monkeypatch):
    monkeypatch.setattr(bench_problems, "total_memory", lambda: 4 * 65 * 10**6 * 4 - 1)
    assert bench_problems.too_large("linear", 10**5, "float32", d=64) == ""
    why = bench_problems.too_large("linear", 10**6, "float32", d=64)
    assert why.startswith("linear(d=64) at n=1000000: its data take 0.242 GiB in float32, over 25% of")
    monkeypatch.setattr(bench_problems, "total_memory", lambda: None)  # unknown: run
    assert bench_problems.too_large("linear", 10**6, "float32", d=64) == ""


def _with_linear_sweep(tmp_path: Path) -> Path:
    """The committed run with linear(d=64) timed at two sizes, its floor at each, and linear(d=1)'s floor at
    n = 1000, which reads as many bytes as the seed's x and y at n = 1000."""
    data = json.loads(CURRENT.read_text())
    sweep = next(
        b for b in data["benchmarks"] if b["name"] == "test_fit[quadratic-n1000-numpy-manual-fused-cpu-float32]"
    )
    floor = next(b for b in data["benchmarks"] if b["name"] == "test_floor[quadratic-n1000-cpu-float32]")

    def stats(median: float) -> dict:
        return {**floor["stats"], "median": median, "min": median, "q1": median, "q3": median, "iqr": 0.0,
                "data": [median] * 3, "rounds": 3}  # fmt: skip

    for n, per_epoch in ((10000, 1.5e-4), (1000, 2e-5)):  # saved larger first: the table sorts the sizes
        record = bench_problems.problem_record("linear", n, d=64).model_dump()
        fit = copy.deepcopy(sweep)
        fit["extra_info"].update(kind="fit", problem=record, n=n, data_bytes=65 * n * 4)
        fit.update(name=f"test_fit[linear-n{n},d64-numpy-manual-fused-cpu-float32]", stats=stats(800 * per_epoch))
        data["benchmarks"].append(fit)
        read = copy.deepcopy(floor)
        read["extra_info"].update(n=n, data_bytes=65 * n * 4, floor_s=per_epoch / 10, problem=record)
        read.update(name=f"test_floor[linear-n{n},d64-cpu-float32]", stats=stats(per_epoch / 10))
        data["benchmarks"].append(read)
    wide = copy.deepcopy(floor)
    wide["extra_info"].update(floor_s=1.0, problem=bench_problems.problem_record("linear", 1000, d=1).model_dump())
    wide.update(name="test_floor[linear-n1000,d1-cpu-float32]", stats=stats(1.0))
    data["benchmarks"].append(wide)
    for bench in data["benchmarks"]:
        Benchmark.model_validate(bench)
    path = tmp_path / CURRENT.parent.name / "0002_sweep.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def test_report_has_a_scaling_table_per_problem_and_the_seed_s_keeps_its_own_floors(tmp_path):
    runs = load([_with_linear_sweep(tmp_path)])
    assert set(runs.floor["problem"]) == {SEED_PROBLEM, "linear(d=64)", "linear(d=1)"}
    # Each row is held against its own problem's floor of as many bytes, once: the seed's, not linear(d=1)'s.
    seed_floor = json.loads(CURRENT.read_text())["benchmarks"]
    seed_floor = next(b for b in seed_floor if b["name"] == "test_floor[quadratic-n1000-cpu-float32]")
    seed_floor = seed_floor["extra_info"]["floor_s"]
    sweep = tables.scaled(runs)  # the seed's fits beyond the tutorial's
    sweep = sweep[sweep["dtype"] == "float32"]
    assert list(sweep["floor_s"]) == [seed_floor]
    linear = runs.table[runs.table["problem"] == "linear(d=64)"].set_index("n")
    assert linear["floor_s"].to_dict() == pytest.approx({1000: 2e-6, 10000: 1.5e-5})
    assert len(runs.table) == len(load([CURRENT]).table) + 2

    out_tables, pngs = build(runs)
    scaled = out_tables["problem linear(d=64) scaling"]
    assert list(scaled.columns) == ["machine", "trainer", "dtype", 1000, 10000]
    assert list(scaled["trainer"]) == [f"{tables.PROBLEM_FLOOR_LABEL} (cpu)", "numpy-manual-fused-cpu"]
    assert scaled.iloc[0][[1000, 10000]].tolist() == pytest.approx([2e-6, 1.5e-5])
    assert scaled.iloc[1][[1000, 10000]].tolist() == pytest.approx([2e-5, 1.5e-4])
    assert "problem-linear-d-64-scaling.png" in pngs
    assert not [png for png in pngs if png.startswith("problem-linear-d-64-n")]  # the scaling chart stands for them
    seed = out_tables["scaling"]
    assert list(seed.columns) == ["machine", "trainer", "dtype", 1000]  # no column of linear's floor at 10⁴
    floors = seed[seed["trainer"].str.startswith("bandwidth floor")]
    assert list(floors["trainer"]) == [f"{tables.FLOOR_LABEL} (cpu)"] * 2  # float32 and float64: the seed's alone
    assert seed.loc[floors.index, 1000].tolist() == pytest.approx(
        tables.floors(runs, at=[1000]).sort_values("dtype")["floor_s"].tolist()
    )
    assert set(out_tables["bandwidth"]["problem"]) == {SEED_PROBLEM, "linear(d=64)", "linear(d=1)"}
    md = render._markdown(out_tables, pngs, [], summarize(runs, targets.judge(runs)))
    section = md.split("## Problem linear(d=64): time per epoch against n (the bandwidth floor first)\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    assert section.index(tables.PROBLEM_FLOOR_LABEL) < section.index("| numpy-manual-fused-cpu")
    assert "](problem-linear-d-64-scaling.png)" in section
    scaling = md.split("## Scaling: time per epoch against n", 1)[1].split("\n## ", 1)[0]
    assert tables.PROBLEM_FLOOR_LABEL not in scaling

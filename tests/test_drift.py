"""reports.drift, and ``regbench compare`` with it, on synthetic runs: a machine that slowed down between two runs.

The fixture run NEW (its fits and bandwidth floors) with 40 lognormal rounds (sigma 5 %) a benchmark, saved twice:
BASE as it is, NEW with every benchmark, floors included, ``HOG`` times slower (a CPU hog during NEW), and with
one trainer ``planted`` times slower on top.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regbench.cli import main
from reports import drift
from reports.compare import compare_runs
from reports.load import load
from reports.stats import SAME, SLOWER, UNRELIABLE, Method
from tests.test_history import FIRST, with_samples
from tests.test_reports import NEW

HOG = 1.3


def run(folder: Path, name: str, seed: int, machine: float = 1.0, planted: float = 1.0,
        others_cpu: float | None = None) -> Path:  # fmt: skip
    """``others_cpu``: the share of the CPUs other processes took during the planted trainer's rounds."""

    def factor(bench: str) -> float:
        return machine * (planted if bench == FIRST else 1.0)

    data = with_samples(NEW, seed, factor)
    data["benchmarks"] = [b for b in data["benchmarks"] if b["name"].startswith(("test_fit[", "test_floor["))]
    for bench in data["benchmarks"]:
        if bench["extra_info"].get("floor_s"):
            bench["extra_info"]["floor_s"] *= machine
        elif others_cpu is not None:
            bench["extra_info"]["others_cpu"] = others_cpu if bench["name"] == FIRST else 0.01
    path = folder / "Linux-CPython-3.11-64bit" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def judged(base: Path, new: Path):
    b, n = load([base]), load([new])
    raw = compare_runs(b, n)
    return raw, drift.discounted(raw, drift.between_runs(b, n), Method())


def labels(result) -> list[str]:
    return result.table["verdict"].tolist()


def test_the_yardsticks_measure_the_machines_drift(tmp_path):
    moved = drift.between_runs(load([run(tmp_path, "0001_a.json", 1)]), load([run(tmp_path, "0002_b.json", 2, HOG)]))
    assert moved.median == pytest.approx(HOG, rel=0.03)
    names = list(moved.ratios)
    assert sum(name.startswith("bandwidth floor cpu") for name in names) == 4
    assert sum("numba-native" in name for name in names) == 4  # the native loop and the CPU limit, both dtypes
    assert moved.line().startswith("the machine's yardsticks moved +30% (median of 8 benchmarks")


def test_a_drift_alone_is_never_called_slower(tmp_path):
    raw, result = judged(run(tmp_path, "0001_a.json", 1), run(tmp_path, "0002_b.json", 2, HOG))
    assert labels(raw).count(SLOWER) >= 6  # what compare said before it knew of the drift
    assert SLOWER not in labels(result)
    unsure = result.table[result.table["reason"].str.startswith("unsure")]
    assert len(unsure) == labels(raw).count(SLOWER)
    assert (unsure["verdict"] == "unreliable").all()
    assert unsure["reason"].str.contains(r"within the machine's drift \(yardsticks \+30%\)").all()
    assert unsure["reason"].str.endswith("regbench ab pairs the two in time").all()


def test_a_slowdown_well_beyond_the_drift_is_still_slower(tmp_path):
    _, result = judged(run(tmp_path, "0001_a.json", 1), run(tmp_path, "0002_b.json", 2, HOG, planted=2.0))
    slower = result.table[result.table["verdict"] == SLOWER]
    assert slower["trainer"].tolist() == ["numpy-manual-tutorial-cpu"]
    assert slower["dtype"].tolist() == ["float32"]


def test_a_machine_that_did_not_move_changes_no_verdict(tmp_path):
    raw, result = judged(run(tmp_path, "0001_a.json", 1), run(tmp_path, "0002_b.json", 2, planted=1.3))
    assert labels(result) == labels(raw)
    assert labels(result).count(SLOWER) == 1
    assert set(labels(result)) <= {SAME, SLOWER, UNRELIABLE}


def test_runs_without_common_yardsticks_are_judged_as_before(tmp_path):
    base, new = load([run(tmp_path, "0001_a.json", 1)]), load([run(tmp_path, "0002_b.json", 2, HOG)])
    new.table = new.table[new.table["native"] == ""]
    new.floor = new.floor.iloc[0:0]
    assert drift.between_runs(base, new) is None
    raw = compare_runs(base, new)
    assert drift.discounted(raw, None, Method()) is raw


def test_compare_says_how_the_machine_moved(tmp_path, capsys):
    base, new = run(tmp_path, "0001_a.json", 1), run(tmp_path, "0002_b.json", 2, HOG)
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "machine: the machine's yardsticks moved +30%" in out.splitlines()[3]
    assert main(["compare", str(base), str(new), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["yardsticks"]["ratio"] == pytest.approx(HOG, rel=0.03)
    assert document["yardsticks"]["count"] == 8
    assert SLOWER not in document["verdicts"]


@pytest.mark.parametrize(("others_cpu", "verdict", "status"), [(0.45, UNRELIABLE, 0), (0.03, SLOWER, 1)])
def test_a_benchmark_that_ran_beside_another_job_is_unsure(tmp_path, capsys, others_cpu, verdict, status):
    """A slower benchmark whose rounds shared the CPUs with another job (a share no yardstick feels) is unsure; the
    same slow-down on a quiet machine is still slower."""
    base = run(tmp_path, "0001_a.json", 1, others_cpu=0.01)
    new = run(tmp_path, "0002_b.json", 2, planted=1.3, others_cpu=others_cpu)
    assert main(["compare", str(base), str(new), "--format", "json"]) == status
    rows = [r for r in json.loads(capsys.readouterr().out)["rows"] if r["ratio"] > 1.2]
    assert [(r["trainer"], r["dtype"], r["verdict"]) for r in rows] == [("numpy-manual-tutorial-cpu", "float32",
                                                                          verdict)]  # fmt: skip
    if verdict == UNRELIABLE:
        assert rows[0]["reason"] == ("unsure: other processes took 1% (BASE) and 45% (NEW) of the CPUs during its "
                                     "rounds, over 10%; regbench ab pairs the two in time")  # fmt: skip

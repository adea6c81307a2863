"""reports/scaling.py on a hand-made study, and the options that drive the study and the data-parallel trainers."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.dp_options import default_scaling_workers
from regbench import cli
from regbench import run as supervisor
from reports import scaling
from tests.fake_pytest import FakePytest

DP = "torch-autograd-dp-cpu"


def record(kind, trainer, n, workers, threads, median_s, allreduce_s=None, epochs=800):
    # What the records say of each trainer: its native role, device and data-parallel twin.
    native = "CPU limit" if trainer == "numba-native-simd-cpu" else ""
    twin = "torch-autograd-eager-cpu" if trainer == DP else None
    return {"machine": "m", "run": "0001_x", "kind": kind, "trainer": trainer, "native": native, "device": "cpu",
            "twin": twin, "dtype": "float32", "n": n, "epochs": epochs, "workers": workers, "threads": threads,
            "median_s": median_s, "per_epoch_s": median_s / epochs, "allreduce_s": allreduce_s,
            "worker_peak_bytes": None, "diverged": False}  # fmt: skip


@pytest.fixture
def study_records() -> pd.DataFrame:
    rows = [
        # n=100: two workers are slower (the all-reduce dominates); n=10⁷: 1.5× faster.
        record("scaling", DP, 100, 1, 1, 0.08, 1e-5),
        record("scaling", DP, 100, 2, 1, 0.40, 2e-4),
        record("scaling", DP, 10**5, 1, 1, 0.80, 1e-5),
        record("scaling", DP, 10**5, 2, 1, 0.50, 2e-4),
        record("scaling", DP, 10**7, 1, 1, 3.0, 1e-5, epochs=20),
        record("scaling", DP, 10**7, 2, 1, 2.0, 2e-4, epochs=20),
        record("scaling_single", "torch-autograd-eager-cpu", 100, 1, None, 0.05),
        record("scaling_native", "numba-native-simd-cpu", 10**7, 1, 1, 1.3, epochs=20),
        record("scaling_native", "numba-native-simd-cpu", 10**7, 1, 2, 1.0, epochs=20),
    ]
    return pd.DataFrame(rows, columns=scaling.COLUMNS)


def test_speedup_and_efficiency(study_records):
    table = scaling.study(study_records).set_index(["trainer", "n", "count"])
    assert table.loc[(DP, 10**7, 2), "speedup"] == pytest.approx(1.5)
    assert table.loc[(DP, 10**7, 2), "efficiency"] == pytest.approx(0.75)
    assert table.loc[(DP, 100, 2), "allreduce_share"] == pytest.approx(2e-4 / (0.40 / 800))
    assert table.loc[("numba-native-simd-cpu", 10**7, 2), "speedup"] == pytest.approx(1.3)


def test_crossover_is_the_start_of_the_faster_tail(study_records):
    found = scaling.crossovers(scaling.study(study_records)).set_index("trainer")
    assert found.loc[DP, "beats_one_from_n"] == 10**5
    assert found.loc[DP, "speedup_at_largest_n"] == pytest.approx(1.5)


def test_targets(study_records):
    judged = scaling.targets(study_records, scaling.study(study_records)).set_index("trainer")
    speed, overhead = judged.iloc[0], judged.iloc[1]
    assert speed["measured"] == pytest.approx(1.5)
    assert speed["limit"] == pytest.approx(0.8 * 1.3)
    assert speed["met"]
    assert overhead["limit"] == pytest.approx(3 * (2e-4 * 800 + 0.05))  # 0.63 s
    assert overhead["measured"] == pytest.approx(0.40)
    assert overhead["met"]


def test_chart_draws_both_panels(study_records):
    fig = scaling.chart(scaling.study(study_records))
    assert len(fig.axes) == 2
    assert all(ax.lines for ax in fig.axes)


def test_default_worker_counts():
    assert default_scaling_workers(1) == "1"
    assert default_scaling_workers(2) == "1,2"
    assert default_scaling_workers(6) == "1,2,4,6"


def test_run_passes_workers_to_the_benchmarks(monkeypatch, tmp_path):
    commands: list[list[str]] = []

    class Fails(FakePytest):  # the plan passes, the benchmarks fail: stop before the report
        status = 1

    Fails.commands = commands

    monkeypatch.setattr(supervisor.subprocess, "Popen", Fails)
    assert cli.main(["run", "--workers", "3", "--storage", str(tmp_path), "--", "-k", "dp"]) == 1
    assert len(commands) == 2  # the plan, then the one framework's process
    for cmd in commands:
        at = cmd.index("--workers=3")
        assert cmd[at : at + 3] == ["--workers=3", "-k", "dp"]
    with pytest.raises(SystemExit):
        cli.main(["run", "--workers", "0"])

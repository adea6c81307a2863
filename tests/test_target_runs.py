"""reports.target_runs and ``regbench targets`` over several runs: met, not met, undecided, provisional."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from regbench.cli import main
from reports import target_runs
from reports.targets import COLUMNS
from tests.test_history import with_samples
from tests.test_records import V4


def speed(run: str, values: dict[str, float]) -> dict[str, pd.DataFrame]:
    """One run's speed targets: each ``≤ 3×``, measured as given (NaN: not measured)."""
    rows = [{"machine": "m", "run": run, "dtype": "float32", "n": 100, "target": what,
             "trainer": "" if np.isnan(v) else "numpy-manual-fused-cpu", "against": "", "measured": v,
             "required": "≤ 3×", "met": None if np.isnan(v) else bool(v <= 3)}
            for what, v in values.items()]  # fmt: skip
    return {"speed targets": pd.DataFrame(rows, columns=COLUMNS)}


NAN = float("nan")


def test_a_target_over_runs_is_met_not_met_or_undecided_by_its_interval():
    runs = [speed("r1", {"a": 1.0, "b": 4.0, "c": 2.5, "d": NAN, "e": NAN}),
            speed("r2", {"a": 1.2, "b": 5.0, "c": 3.2, "d": 2.0, "e": NAN}),
            speed("r3", {"a": 1.1, "b": 6.0, "c": 2.8, "d": NAN, "e": NAN})]  # fmt: skip
    table = target_runs.over_runs(runs)["speed targets"].set_index("target")
    assert table.loc["a", ["measured", "low", "high", "runs", "verdict"]].tolist() == [1.1, 1.0, 1.2, 3, "met"]
    assert table.loc["b", "verdict"] == "not met"
    assert table.loc["b", "met"] is False
    assert (table.loc["c", "verdict"], table.loc["c", "met"]) == ("undecided", None)  # 2.5 … 3.2 straddles 3
    assert table.loc["d", "verdict"] == "met (provisional: 1 run)"
    assert table.loc["e", "verdict"] == "not measured"
    assert target_runs.counts({"t": table.reset_index()}) == {"met": 2, "not met": 1, "undecided": 1,
                                                               "not measured": 1}  # fmt: skip
    line = target_runs.line({"t": table.reset_index()}, ["r1", "r2", "r3"])
    assert line == ("targets over 3 runs (r1, r2, r3): 2 of 4 met; 1 not met; 1 undecided; "
                    "1 not measured (regbench run --full judges them: e)")  # fmt: skip


def test_one_run_is_provisional():
    table = target_runs.over_runs([speed("r1", {"a": 1.0})])
    assert table["speed targets"]["verdict"].tolist() == ["met (provisional: 1 run)"]
    assert target_runs.line(table, ["r1"]).startswith("targets provisional: over 1 run (r1)")


def save(folder, number: int, seed: int, quick: bool = False):
    data = with_samples(V4, seed)  # a run of the current schema, whose facts (records.model.RunFacts) say quick
    data["regbench"]["quick"] = quick
    path = folder / "Linux-CPython-3.11-64bit" / f"{number:04d}_r{number}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    """Four full runs and a newer quick one of one machine."""
    folder = tmp_path_factory.mktemp("storage")
    for number in range(1, 5):
        save(folder, number, number)
    save(folder, 5, 5, quick=True)
    return folder


def test_targets_judges_the_newest_three_full_runs(storage, capsys):
    status = main(["targets", "--storage", str(storage)])
    out = capsys.readouterr().out
    assert status in (0, 1)
    (last,) = [line for line in out.splitlines() if line.startswith("targets ")]
    assert last.startswith("targets over 3 runs (0002_r2, 0003_r3, 0004_r4): ")
    assert "| verdict" in out
    assert status == (1 if re.search(r"; \d+ not met", last) else 0)


def test_targets_runs_option_and_one_named_run(storage, capsys):
    assert main(["targets", "--storage", str(storage), "--runs", "2"]) in (0, 1)
    assert "targets over 2 runs (0003_r3, 0004_r4)" in capsys.readouterr().out
    assert main(["targets", "1", "--storage", str(storage)]) in (0, 1)
    assert "targets provisional: over 1 run (0001_r1)" in capsys.readouterr().out


def test_a_target_measured_by_some_runs_only_is_one_row_at_its_measured_size():
    """The targets name their sizes by role (reports.targets.At): a run that did not measure one has no n for it, and
    over runs the target is still one row, at the size the runs that measured it name."""
    measured = speed("r1", {"a": 1.0})
    unmeasured = speed("r2", {"a": NAN})
    unmeasured["speed targets"]["n"] = ""
    table = target_runs.over_runs([measured, unmeasured])["speed targets"]
    assert table[["n", "target", "runs", "verdict"]].values.tolist() == [[100, "a", 1, "met (provisional: 1 run)"]]
    alone = target_runs.over_runs([unmeasured])["speed targets"]
    assert alone[["n", "target", "verdict"]].values.tolist() == [["", "a", "not measured"]]

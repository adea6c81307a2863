"""Reports from saved runs: loader, tables, charts, HTML/Markdown, compare's verdicts and bad input.

The fixtures under tests/data/storage are real `pytest bench` output; tests/data/regenerate.sh remakes them.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from regbench.cli import main
from reports import tables
from reports.load import LoadError, load
from reports.render import write_atomic

STORAGE = Path(__file__).parent / "data" / "storage"
MACHINE = next(STORAGE.iterdir())
BASE, NEW = sorted(MACHINE.glob("*.json"))
CHARTS = ("time.png", "speedup.png", "losses.png", "fit.png", "scaling.png", "history.png")


def benchmarks(path: Path, floor: bool = False) -> list[dict]:
    """The trainers' benchmarks of a saved run (or, with ``floor``, its bandwidth-floor ones)."""
    return [b for b in json.loads(path.read_text())["benchmarks"] if b["name"].startswith("test_floor[") == floor]


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def save_variant(tmp_path: Path, name: str, change) -> Path:
    """A copy of the NEW run with ``change(data)`` applied, as a regression would look."""
    data = json.loads(NEW.read_text())
    change(data)
    path = tmp_path / MACHINE.name / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def benchmark_name(row) -> str:
    """The name a fixture run (schema 0) gave a row's benchmark: the tutorial's fits (n = 100) test_fit, the seed's
    larger sizes (kind "fit" since schema 4) test_sweep, the marginal study's test_marginal."""
    test = "sweep" if row["kind"] == "fit" and row["n"] != 100 else row["kind"]
    size = "" if test == "fit" else f"n{row['n']}-"
    epochs = f"-epochs{row['epochs']}" if row["kind"] == "marginal" else ""
    return f"test_{test}[{size}{row['trainer']}-{row['dtype']}{epochs}]"


def test_loader_takes_the_latest_run_and_matches_the_json():
    runs = load([STORAGE])
    assert set(runs.table["run"]) == {NEW.stem}
    by_name = {b["name"]: b for b in benchmarks(NEW)}
    assert len(runs.table) == len(by_name)
    for _, row in runs.table.iterrows():
        bench = by_name[benchmark_name(row)]
        assert row["median_s"] == bench["stats"]["median"]
        assert row["w"] == bench["extra_info"]["w"]
        assert row["per_epoch_s"] == bench["stats"]["median"] / bench["extra_info"]["epochs"]
        np.testing.assert_array_equal(row["losses"], bench["extra_info"].get("losses", []))  # none for whole fits
    assert len(load([STORAGE], latest=False).table) == len(benchmarks(BASE)) + len(benchmarks(NEW))
    floors = {(b["extra_info"]["n"], b["extra_info"]["dtype"]): b for b in benchmarks(NEW, floor=True)}
    assert len(floors) == len(runs.floor) == 4  # two sizes, two dtypes
    for _, row in runs.floor.iterrows():
        bench = floors[(row["n"], row["dtype"])]
        assert row["floor_s"] == bench["stats"]["median"]
        assert row["bandwidth_Bps"] == bench["extra_info"]["bandwidth_Bps"]
    sweep = runs.table[runs.table["kind"] == "sweep"]
    assert (sweep["floor_fraction"] == sweep["floor_s"] / sweep["per_epoch_s"]).all()


def test_speed_table_is_relative_to_the_numpy_tutorial_loop():
    runs = load([NEW])
    speed = tables.speed(runs)
    fit = {(b["extra_info"]["trainer"], b["extra_info"]["dtype"]): b["stats"]["median"]
           for b in benchmarks(NEW) if b["name"].startswith("test_fit[")}  # fmt: skip
    for _, row in speed.dropna(subset=["median_s"]).iterrows():
        ref = fit[("numpy-manual-tutorial-cpu", row["dtype"])]
        assert row["speedup"] == pytest.approx(ref / fit[(row["trainer"], row["dtype"])])
    # A skipped trainer is never a row of the speed table (so never shows a time): the report lists it apart.
    assert "jax-grad-scan-gpu" in set(runs.skipped["trainer"])
    assert "jax-grad-scan-gpu" not in set(speed["trainer"])
    assert speed["median_s"].notna().all()


@pytest.mark.slow  # a whole report (~6 s)
def test_diverged_fit_gets_no_speed_up(tmp_path):
    def diverge(data):
        data["benchmarks"][0]["extra_info"]["diverged"] = True

    path = save_variant(tmp_path, "0003_diverged.json", diverge)
    speed = tables.speed(load([path]))
    trainer = benchmarks(NEW)[0]["extra_info"]["trainer"]
    row = speed[(speed["trainer"] == trainer) & (speed["status"] == "diverged")]
    assert len(row) == 1
    assert row["speedup"].isna().all()
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "diverged" in (tmp_path / "out" / "report.md").read_text()


def test_report_writes_every_file(tmp_path, capsys):
    before = fingerprint(STORAGE)
    assert main(["report", str(STORAGE), "--out", str(tmp_path / "r")]) == 0
    out = tmp_path / "r"
    assert str(out / "report.html") in capsys.readouterr().out
    for name in CHARTS:
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert matplotlib.image.imread(out / name).shape[0] > 200
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == len(benchmarks(NEW))
    assert sorted(csv["median_s"]) == sorted(b["stats"]["median"] for b in benchmarks(NEW))
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(CHARTS)
    assert "src='http" not in html
    tables = ["Environment", "Speed: one", "Accuracy", "Scaling", "Share of the bandwidth floor", "The bandwidth floor",
              "History", "Targets: speed", "Targets: the large problem", "Cost per epoch", "Targets: what fit() adds",
              "Targets: a whole fit()", "Targets: peak memory"]  # fmt: skip
    for title in tables:
        assert re.search(f"<h2 id='[a-z-]+'>{re.escape(title)}", html), title  # every section, the history too
    assert html.count("<table") == len(tables) + 1  # and the summary's table of the fastest trainers
    md = (out / "report.md").read_text()
    for name in CHARTS:
        assert f"]({name})" in md
    assert "| numpy-manual-tutorial-cpu" in md
    assert fingerprint(STORAGE) == before  # storage is never modified


def test_scaling_table_has_one_column_per_size():
    scaling = tables.scaling(load([NEW]))
    assert list(scaling.columns) == [1000, 10000]
    assert (scaling.to_numpy() > 0).all()


def test_compare_same_run_passes(capsys):
    assert main(["compare", str(NEW), str(NEW)]) == 0
    assert "ok:" in capsys.readouterr().out


def test_compare_finds_by_number_and_name(capsys):
    assert main(["compare", "1", "new", "--storage", str(STORAGE), "--max-slowdown", "100"]) == 0


def test_compare_without_raw_samples_does_not_judge_speed(tmp_path, capsys):
    def slow(data):
        for bench in data["benchmarks"]:
            bench["stats"].pop("data")
        for key in ("median", "min", "max", "mean", "q1", "q3"):
            data["benchmarks"][0]["stats"][key] *= 1.5

    # Without raw samples no test is possible, so no verdict (tests/test_history.py holds the statistical
    # verdicts on files with samples).
    base = save_variant(tmp_path, "0001_base.json", lambda data: [b["stats"].pop("data") for b in data["benchmarks"]])
    assert main(["compare", str(base), str(save_variant(tmp_path, "0003_slow.json", slow))]) == 0
    out = capsys.readouterr().out
    assert "1.5×" in out
    assert "unreliable: no raw samples in BASE" in out


def test_compare_flags_drift(tmp_path, capsys):
    def drift(data):
        data["benchmarks"][1]["extra_info"]["w"] += 1e-3

    path = save_variant(tmp_path, "0003_drift.json", drift)
    assert main(["compare", str(NEW), str(path), "--max-slowdown", "100"]) == 1
    assert "drift" in capsys.readouterr().out
    assert main(["compare", str(NEW), str(path), "--max-slowdown", "100", "--max-drift", "1"]) == 0


def test_compare_lists_new_and_missing_trainers(tmp_path, capsys):
    def drop_first(data):
        data["benchmarks"] = data["benchmarks"][1:]

    path = save_variant(tmp_path, "0003_fewer.json", drop_first)
    assert main(["compare", str(NEW), str(path), "--max-slowdown", "100"]) == 1
    assert "missing from NEW:\n  fit numpy-manual-tutorial-cpu float32 (quadratic, n=100," in capsys.readouterr().out
    assert main(["compare", str(NEW), str(path), "--allow-missing"]) == 0
    assert main(["compare", str(path), str(NEW), "--max-slowdown", "100"]) == 0
    assert "new in NEW:\n  fit numpy-manual-tutorial-cpu float32 (quadratic, n=100," in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), ("{not json", "not readable as JSON"), ('{"a": 1}', "not a pytest-benchmark file")],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path, capsys, content, message):
    path = tmp_path / "0001_bad.json"
    if content is not None:
        path.write_text(content)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert str(path) in err
    assert message in err
    assert not (tmp_path / "out").exists()


def test_empty_storage(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no saved benchmark runs" in capsys.readouterr().err


@pytest.mark.slow  # a whole report (~4 s)
def test_good_files_are_reported_beside_a_bad_one(tmp_path, capsys):
    bad = tmp_path / "0009_bad.json"
    bad.write_text("[]")
    assert main(["report", str(NEW), str(bad), "--out", str(tmp_path / "out")]) == 0
    assert str(bad) in capsys.readouterr().err
    assert str(bad) in (tmp_path / "out" / "report.md").read_text()


def test_compare_unknown_run(capsys):
    assert main(["compare", "0042", "new", "--storage", str(STORAGE)]) == 2
    assert "0042" in capsys.readouterr().err


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "x.md", "not bytes")  # the write itself fails
    assert list(tmp_path.iterdir()) == []


def test_loader_raises_when_nothing_is_readable(tmp_path):
    with pytest.raises(LoadError, match="no such file"):
        load([tmp_path / "missing"])


@pytest.mark.parametrize("command", [[], ["report"], ["compare"], ["history"], ["run"], ["list"]])
def test_help(command, capsys):
    # In this process: the same parser as `python -m regbench` (whose entry point test_python_m_regbench_is_the_cli
    # checks once), without a fresh interpreter a command.
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage: regbench" in capsys.readouterr().out


def test_python_m_regbench_is_the_cli():
    out = subprocess.run([sys.executable, "-m", "regbench", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "usage: regbench" in out.stdout


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "numpy-manual-tutorial-cpu" in out
    assert "torch-autograd-eager-cuda" in out
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["numpy-manual-tutorial-cpu"].endswith(" | problems: quadratic, linear + any model written once")
    assert lines["numpy-manual-fused-cpu"].endswith(" | problems: quadratic, linear")
    assert lines["torch-autograd-dp-cpu"].endswith(" | problems: quadratic, linear + any model written once")

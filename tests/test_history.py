"""compare, history and the newest-readable fallback on the saved-run fixtures, with raw samples added.

The fixtures (tests/data/storage) hold real runs of 5 rounds a benchmark. Copies get synthetic rounds (fixed
seeds) around each benchmark's median, or lose their rounds, as files saved without raw samples do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from regbench import store
from regbench.cli import main
from reports.history import collect
from reports.load import read
from tests.test_reports import BASE, MACHINE, NEW, STORAGE, benchmarks, fingerprint

TRAINER_BENCHMARKS = len(benchmarks(NEW))  # every benchmark of the fixture but the bandwidth floor's

ROUNDS = 40


def with_samples(path: Path, seed: int, factor=lambda name: 1.0, n: int = ROUNDS) -> dict:
    """The saved run at ``path`` with ``n`` lognormal rounds (sigma 5 %) per benchmark, times ``factor(name)``."""
    data = json.loads(path.read_text())
    rng = np.random.default_rng(seed)
    for bench in data["benchmarks"]:
        stats = bench["stats"]
        stats["data"] = (stats["median"] * factor(bench["name"]) * rng.lognormal(0, 0.05, n)).tolist()
        stats["median"], stats["rounds"] = float(np.median(stats["data"])), n
    return data


def without_samples(path: Path) -> dict:
    """The saved run at ``path`` as files saved without --benchmark-save-data are: no ``stats["data"]``."""
    data = json.loads(path.read_text())
    for bench in data["benchmarks"]:
        bench["stats"].pop("data", None)
    return data


def save(folder: Path, name: str, data: dict) -> Path:
    path = folder / MACHINE.name / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


FIRST = "test_fit[numpy-manual-tutorial-cpu-float32]"


def slower_first(name: str) -> float:
    return 1.3 if name == FIRST else 1.0


def test_old_files_without_raw_samples_are_unreliable_not_a_crash(tmp_path, capsys):
    base = save(tmp_path, "0001_a.json", without_samples(BASE))
    new = save(tmp_path, "0002_b.json", without_samples(NEW))
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert out.count("unreliable: no raw samples in BASE") == TRAINER_BENCHMARKS
    assert f"verdicts: {TRAINER_BENCHMARKS} unreliable" in out


def test_header_names_the_test_level_threshold_and_interval(tmp_path, capsys):
    base = save(tmp_path, "0001_a.json", with_samples(NEW, 1))
    new = save(tmp_path, "0002_b.json", with_samples(NEW, 2))
    assert main(["compare", str(base), str(new), "--threshold", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "Mann–Whitney U test" in out
    assert "α = 0.01" in out
    assert "threshold 20%" in out
    assert "99% percentile-bootstrap CI of median(NEW)/median(BASE)" in out
    assert "environment: same library versions" in out
    assert f"verdicts: {TRAINER_BENCHMARKS} same" in out


def test_a_significant_slow_down_fails(tmp_path, capsys):
    base = save(tmp_path, "0001_a.json", with_samples(NEW, 1))
    new = save(tmp_path, "0002_b.json", with_samples(NEW, 2, slower_first))
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    first = ["fit", "100", "default", "numpy-manual-tutorial-cpu", "float32"]  # the tutorial's size: its role shown
    (line,) = [row for row in out.splitlines() if row.split()[:5] == first]
    assert line.split()[-2:] == ["slower", "ok"]
    assert "FAIL: 1 slower beyond 10%" in out
    # The other way round it is faster, which passes.
    assert main(["compare", str(new), str(base)]) == 0
    assert "1 faster" in capsys.readouterr().out


def test_three_rounds_are_unreliable_and_pass(tmp_path, capsys):
    base = save(tmp_path, "0001_a.json", with_samples(NEW, 1, n=3))
    new = save(tmp_path, "0002_b.json", with_samples(NEW, 2, lambda name: 2.0, n=3))
    assert main(["compare", str(base), str(new)]) == 0
    assert "unreliable: BASE has 3 rounds (< 5)" in capsys.readouterr().out


def test_only_like_is_compared_with_like(tmp_path, capsys):
    data = with_samples(NEW, 2)
    data["benchmarks"][0]["extra_info"]["epochs"] = 400  # another setup: never paired with BASE's 800 epochs
    data["benchmarks"][0]["extra_info"]["losses"] = data["benchmarks"][0]["extra_info"]["losses"][:400]
    data["benchmarks"][0]["stats"]["data"] = [1e-9] * ROUNDS  # so fast it would pass for "faster" if paired
    unavailable = data["machine_info"]["regbench"]["unavailable"]
    unavailable["numba-native-simd-cpu"] = "numba has no SIMD here"
    data["benchmarks"] = [b for b in data["benchmarks"] if "numba-native-simd" not in b["name"]]
    base = save(tmp_path, "0001_a.json", with_samples(NEW, 1))
    new = save(tmp_path, "0002_b.json", data)
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    assert "faster" not in out.split("verdicts:")[1]
    tutorial = "numpy-manual-tutorial-cpu float32 (quadratic, n=100"
    assert f"fit {tutorial}, 800 epochs, lr=0.001): NEW ran it with 400 epochs, lr=0.001 (not comparable)" in out
    assert f"new in NEW:\n  fit {tutorial}, 400 epochs, lr=0.001)" in out
    simd = "numba-native-simd-cpu float64 (quadratic, n=100, 800 epochs, lr=0.001)"
    assert f"{simd}: skipped in NEW (numba has no SIMD here)" in out
    # The 400-epoch one and 10 SIMD ones (fit, two sweep sizes, two epoch counts of the marginal study).
    assert "FAIL: 11 missing from NEW" in out
    assert main(["compare", str(base), str(new), "--allow-missing"]) == 0


def test_environment_changes_are_listed(tmp_path, capsys):
    data = with_samples(NEW, 2)
    data["machine_info"]["regbench"]["versions"]["numpy"] = "9.0.0"
    data["machine_info"]["regbench"]["gpu"] = "NVIDIA H100"
    data["machine_info"]["regbench"]["torch_threads"] = 16
    data["machine_info"]["cpu"]["brand_raw"] = "AMD EPYC"
    old = with_samples(NEW, 1)
    old["machine_info"]["cpu"]["brand_raw"] = "Intel(R) Xeon(R) Processor"
    base = save(tmp_path, "0001_a.json", old)
    assert main(["compare", str(base), str(save(tmp_path, "0002_b.json", data))]) == 0
    header = capsys.readouterr().out.splitlines()[2]
    for change in ("numpy 2.4.6 → 9.0.0", "CPU: Intel(R) Xeon(R) Processor → AMD EPYC", "GPU: none → NVIDIA H100",
                   "torch threads: 2 → 16"):  # fmt: skip
        assert change.replace("numpy ", "numpy: ") in header


def test_drift_still_fails(tmp_path, capsys):
    data = with_samples(NEW, 2)
    data["benchmarks"][1]["extra_info"]["w"] += 1e-3
    base = save(tmp_path, "0001_a.json", with_samples(NEW, 1))
    assert main(["compare", str(base), str(save(tmp_path, "0002_b.json", data))]) == 1
    assert "FAIL: 1 accuracy change(s)" in capsys.readouterr().out


UNREADABLE = {
    "empty": ("", "not readable as JSON"),
    "truncated": (NEW.read_text()[:5000], "not readable as JSON"),
    "not pytest-benchmark's": ('{"results": []}', "not a pytest-benchmark file"),
    "newer format": (None, "written by pytest-benchmark 6.0.0, a newer format than the installed 5.3.1"),
}


def unreadable(kind: str) -> str:
    text, _ = UNREADABLE[kind]
    if text is None:
        data = json.loads(NEW.read_text())
        data["version"] = "6.0.0"
        text = json.dumps(data)
    return text


@pytest.fixture
def storage_with_bad_newest(tmp_path, request):
    storage = tmp_path / "storage"
    folder = storage / MACHINE.name
    folder.mkdir(parents=True)
    save(storage, "0001_base.json", with_samples(BASE, 1))
    save(storage, "0002_new.json", with_samples(NEW, 2, slower_first))
    bad = folder / "0003_bad.json"
    bad.write_text(unreadable(request.param))
    return storage, bad, UNREADABLE[request.param][1]


#: A report and a history each (~10 s): the slow tier.
@pytest.mark.parametrize(
    "storage_with_bad_newest",
    [pytest.param(k, marks=pytest.mark.slow) for k in UNREADABLE],
    indirect=True,
)
def test_report_and_history_use_the_newest_readable_run(storage_with_bad_newest, tmp_path, capsys):
    storage, bad, why = storage_with_bad_newest
    before = fingerprint(storage)
    assert main(["report", str(storage), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err.count(str(bad)) == 1  # warned once, though the report and its history both read it
    assert why in err
    csv = (tmp_path / "out" / "results.csv").read_text()
    assert "0002_new" in csv
    assert "0003_bad" not in csv
    assert main(["history", str(storage)]) == 0
    captured = capsys.readouterr()
    assert f"regbench: skipped {bad}" in captured.err
    assert "0002_new" in captured.out
    # compare given the bad file by name fails with the reason, on one line.
    assert main(["compare", "1", "bad", "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(bad) in err
    assert why in err
    assert fingerprint(storage) == before


@pytest.mark.slow  # a report and a history chart over several runs (~15 s)
def test_history_flags_steps_and_version_changes(tmp_path, capsys):
    storage = tmp_path / "storage"
    save(storage, "0001_a.json", with_samples(NEW, 1))
    save(storage, "0002_b.json", with_samples(NEW, 2))
    third = with_samples(NEW, 3, slower_first)
    third["machine_info"]["regbench"]["versions"]["numpy"] = "9.0.0"
    save(storage, "0003_c.json", third)
    before = fingerprint(storage)
    past = collect(read([storage]))
    table = past.table
    assert list(dict.fromkeys(table["run"])) == ["0001_a", "0002_b", "0003_c"]
    flagged = table[table["step"] != ""]
    assert list(zip(flagged["run"], flagged["trainer"], flagged["dtype"], flagged["step"], strict=True)) == [
        ("0003_c", "numpy-manual-tutorial-cpu", "float32", "slower")
    ]
    assert set(table.loc[table["run"] == "0003_c", "versions_changed"]) == {"numpy 2.4.6 → 9.0.0"}
    assert set(table.loc[table["run"] != "0003_c", "versions_changed"]) == {""}
    assert main(["history", str(storage), "--out", str(tmp_path / "h")]) == 0
    out = capsys.readouterr().out
    assert "0003_c: numpy 2.4.6 → 9.0.0" in out
    assert " ▲" in out
    assert (tmp_path / "h" / "history.png").read_bytes().startswith(b"\x89PNG")
    assert len((tmp_path / "h" / "history.csv").read_text().splitlines()) == 1 + 3 * TRAINER_BENCHMARKS
    assert main(["report", str(storage), "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## History" in md
    assert "](history.png)" in md
    assert fingerprint(storage) == before


def test_a_single_run_has_no_history_section(tmp_path):
    assert main(["report", str(NEW), "--out", str(tmp_path / "r")]) == 0
    assert "History" not in (tmp_path / "r" / "report.md").read_text()
    assert not (tmp_path / "r" / "history.png").exists()


def test_history_of_nothing_readable_is_one_line(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001_x.json").write_text("{")
    assert main(["history", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "0001_x.json: not readable as JSON" in err


def test_staged_runs_take_the_next_free_number_and_never_overwrite(tmp_path, monkeypatch):
    storage = tmp_path / "storage"
    save(storage, "0001_a.json", {"taken": 1})
    staged = []
    for name in ("x", "y"):
        staging = store.staging_folder(storage)
        save(staging, f"0001_{name}.json", {"run": name})
        staged.append(staging)
    assert all(s.name.startswith(".") for s in staged)  # hidden: loaders skip it
    # Another run takes 0002 between our listing and our link: we move on to 0003.
    real = store._next_number
    calls = []

    def stale(folder):
        calls.append(folder)
        if len(calls) == 1:
            (folder / "0002_other.json").write_text("{}")
            return 2
        return real(folder)

    monkeypatch.setattr(store, "_next_number", stale)
    (first,) = store.commit(staged[0], storage)
    monkeypatch.setattr(store, "_next_number", real)
    (second,) = store.commit(staged[1], storage)
    for staging in staged:
        store.discard(staging)
    assert (first.name, second.name) == ("0003_x.json", "0004_y.json")
    assert json.loads(first.read_text()) == {"run": "x"}
    assert json.loads((storage / MACHINE.name / "0002_other.json").read_text()) == {}
    assert sorted(os.listdir(storage)) == [MACHINE.name]
    assert sorted(os.listdir(storage / MACHINE.name)) == [
        ".regbench.lock", "0001_a.json", "0002_other.json", "0003_x.json", "0004_y.json"]  # fmt: skip


def test_fixtures_are_untouched():
    assert {p.name for p in MACHINE.iterdir()} == {BASE.name, NEW.name}
    assert all(p.stat().st_size < 1_500_000 for p in STORAGE.rglob("*.json"))

"""``regbench compare --format {text,markdown,json}`` on the committed fixture runs (tests/data/storage).

The JSON document is parsed and held to the fixtures' numbers and to the text's verdicts; the Markdown is
parsed as a GitHub-flavoured table; every format exits with the same status (0 ok, 1 failed, 2 unusable input).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from regbench.cli import main
from reports.compare_format import FORMATS, markdown_table
from tests.test_history import FIRST, ROUNDS, TRAINER_BENCHMARKS, save, slower_first, with_samples, without_samples
from tests.test_reports import BASE, NEW, benchmark_name, benchmarks, save_variant


@functools.cache
def _compare(argv: tuple[str, ...]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["compare", *argv])
    return status, out.getvalue()


def compare(capsys, *argv) -> tuple[int, str]:
    """``regbench compare ARGV``'s status and stdout; each command line is run once a session (the bootstrap
    intervals of 51 benchmarks take seconds), its output the same every time (fixed seed)."""
    result = _compare(tuple(map(str, argv)))
    capsys.readouterr()
    return result


def as_json(capsys, *argv) -> tuple[int, dict]:
    status, out = compare(capsys, *argv, "--format", "json")

    def refuse(constant):  # NaN and infinity are not JSON: a strict parser would refuse the document
        raise AssertionError(f"{constant} in the JSON document")

    return status, json.loads(out, parse_constant=refuse)


@pytest.fixture(scope="module")
def slowed(tmp_path_factory) -> tuple[Path, Path]:
    """BASE and NEW with 40 rounds a benchmark; NEW's numpy-manual-tutorial-cpu float32 fit 1.3× slower."""
    folder = tmp_path_factory.mktemp("slowed")
    base = save(folder, "0001_a.json", with_samples(NEW, 1))
    return base, save(folder, "0002_b.json", with_samples(NEW, 2, slower_first))


@pytest.fixture(scope="module")
def unjudged(tmp_path_factory) -> tuple[Path, Path]:
    """The committed runs without raw samples: no bootstrap, so fast; every speed verdict unreliable."""
    folder = tmp_path_factory.mktemp("unjudged")
    return save(folder, "0001_a.json", without_samples(BASE)), save(folder, "0002_b.json", without_samples(NEW))


def variant(tmp_path: Path, name: str, change) -> Path:
    """A copy of NEW without raw samples (accuracy and missing benchmarks are judged without them), changed."""

    def changed(data):
        change(data)
        for bench in data["benchmarks"]:
            bench["stats"].pop("data")

    return save_variant(tmp_path, name, changed)


def test_json_of_the_committed_runs_matches_the_fixtures_and_the_text(capsys):
    text_status, text = compare(capsys, BASE, NEW)
    status, doc = as_json(capsys, BASE, NEW)
    assert status == text_status == doc["exit_status"]
    assert (doc["base"], doc["new"]) == (str(BASE), str(NEW))
    saved = {side: {b["name"]: b for b in benchmarks(path)} for side, path in (("base", BASE), ("new", NEW))}
    assert len(doc["rows"]) == len(saved["base"].keys() & saved["new"].keys())
    for row in doc["rows"]:
        name = benchmark_name(row)
        base, new = saved["base"][name], saved["new"][name]
        assert row["base_median_s"] == base["stats"]["median"]
        assert row["new_median_s"] == new["stats"]["median"]
        assert row["base_rounds"] == len(base["stats"]["data"])
        assert (row["epochs"], row["lr"]) == (new["extra_info"]["epochs"], new["extra_info"]["lr"])
        assert row["verdict"] in {"slower", "faster", "same", "unreliable"}
        assert bool(row["reason"]) == (row["verdict"] == "unreliable")  # an undecided verdict says why
        assert row["accuracy_ok"] == (row["accuracy"] == "ok")
    counted = pd.Series([row["verdict"] for row in doc["rows"]]).value_counts().to_dict()
    assert doc["verdicts"] == counted
    assert "verdicts: " + ", ".join(f"{n} {v}" for v, n in doc["verdicts"].items()) in text
    assert doc["summary"] == text.splitlines()[-1]
    assert doc["result"] == ("FAIL" if status else "ok")


def test_json_names_a_significant_slow_down(capsys, slowed):
    status, doc = as_json(capsys, *slowed)
    assert status == doc["exit_status"] == 1
    assert doc["result"] == "FAIL"
    assert doc["reasons"] == ["1 slower beyond 10%"]
    assert doc["summary"] == "FAIL: 1 slower beyond 10%"
    assert doc["thresholds"] == {"threshold": 0.1, "band": [1 / 1.1, 1.1], "max_drift": 1e-4, "allow_missing": False}
    assert doc["method"]["alpha"] == 0.01
    assert doc["method"]["confidence"] == 0.99
    assert "Mann–Whitney U" in doc["method"]["test"]
    assert doc["environment"] == []
    assert (doc["added"], doc["missing"]) == ([], [])
    assert len(doc["rows"]) == TRAINER_BENCHMARKS
    (slow,) = [row for row in doc["rows"] if benchmark_name(row) == FIRST]
    assert slow["verdict"] == "slower"
    assert (slow["base_rounds"], slow["new_rounds"]) == (ROUNDS, ROUNDS)
    assert slow["p_value"] < 0.01
    assert 1.1 < slow["ci_low"] <= slow["ratio"] <= slow["ci_high"]
    assert slow["ratio"] == pytest.approx(1.3, rel=0.05)
    assert doc["verdicts"] == {"same": TRAINER_BENCHMARKS - 1, "slower": 1}
    # The other way round it is faster, which passes.
    status, doc = as_json(capsys, *reversed(slowed))
    assert status == doc["exit_status"] == 0
    assert doc["result"] == "ok"
    assert doc["reasons"] == []
    assert doc["verdicts"]["faster"] == 1


def test_json_lists_missing_added_and_accuracy_changes(tmp_path, capsys):
    def drop_first_and_drift(data):
        data["benchmarks"] = data["benchmarks"][1:]
        data["benchmarks"][0]["extra_info"]["w"] += 1e-3

    new = variant(tmp_path, "0002_new.json", lambda data: None)
    path = variant(tmp_path, "0003_fewer.json", drop_first_and_drift)
    status, doc = as_json(capsys, new, path)
    assert status == doc["exit_status"] == 1
    assert doc["reasons"] == ["1 accuracy change(s)", "1 missing from NEW"]
    tutorial = "fit numpy-manual-tutorial-cpu float32 (quadratic, n=100, 800 epochs, lr=0.001)"
    assert doc["missing"] == [f"{tutorial}: not in NEW"]
    assert doc["added"] == []
    (drifted,) = [row for row in doc["rows"] if not row["accuracy_ok"]]
    assert drifted["accuracy"] == "drift > 0.0001"
    assert drifted["drift"] > 1e-4
    assert benchmark_name(drifted) == benchmarks(NEW)[1]["name"]
    # Missing ones allowed, the accuracy change still fails; the other way round, the benchmark is new.
    status, doc = as_json(capsys, new, path, "--allow-missing")
    assert (status, doc["reasons"], doc["thresholds"]["allow_missing"]) == (1, ["1 accuracy change(s)"], True)
    status, doc = as_json(capsys, path, new, "--max-drift", "1")
    assert (status, doc["result"], doc["missing"]) == (0, "ok", [])
    assert doc["added"] == ["fit numpy-manual-tutorial-cpu float32 (quadratic, n=100, 800 epochs, lr=0.001)"]


def test_json_without_raw_samples_has_null_intervals(capsys, unjudged):
    status, doc = as_json(capsys, *unjudged)
    assert status == doc["exit_status"] == 0
    for row in doc["rows"]:
        assert row["verdict"] == "unreliable"
        assert row["reason"].startswith("no raw samples in BASE")
        assert row["ci_low"] is row["ci_high"] is row["p_value"] is None
        assert row["ratio"] == pytest.approx(row["new_median_s"] / row["base_median_s"])


def test_json_splits_environment_changes(tmp_path, capsys, unjudged):
    data = without_samples(NEW)
    data["machine_info"]["regbench"]["versions"]["numpy"] = "9.0.0"
    data["machine_info"]["regbench"]["torch_threads"] = 16
    _, doc = as_json(capsys, unjudged[0], save(tmp_path, "0002_b.json", data))
    assert {"what": "numpy", "base": "2.4.6", "new": "9.0.0"} in doc["environment"]
    assert {"what": "torch threads", "base": "2", "new": "16"} in doc["environment"]


def table_rows(markdown: str) -> list[list[str]]:
    """The one table of a Markdown document, its cells split on unescaped pipes."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append(line)
    assert all(not line.startswith("|") for line in lines[start + len(block) :]), "one table"
    rows = []
    for line in block:
        assert line.endswith(" |"), line
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_markdown_is_a_table_with_the_verdicts(capsys, slowed):
    status, out = compare(capsys, *slowed, "--format", "markdown")
    assert status == 1
    header, separator, *rows = table_rows(out)
    assert header[-2:] == ["verdict", "accuracy"]
    assert {"kind", "n", "trainer", "dtype", "ratio", "ci_low", "ci_high", "p_value"} <= set(header)
    assert len(separator) == len(header)
    assert all(re.fullmatch(r":?-{3,}:?", cell) for cell in separator)
    assert len(rows) == TRAINER_BENCHMARKS
    assert all(len(row) == len(header) for row in rows)
    column = dict(zip(header, zip(*rows, strict=True), strict=True))
    assert sorted(set(column["verdict"])) == ["same", "slower"]
    (slow,) = [row for row in rows if row[header.index("verdict")] == "slower"]
    assert slow[header.index("trainer")] == "numpy-manual-tutorial-cpu"
    assert slow[header.index("dtype")] == "float32"
    assert "epochs" in header  # the marginal study's two epoch counts are told apart
    lines = out.splitlines()
    assert lines[0] == "### regbench compare: FAIL"
    assert lines[2] == f"- compare: BASE {slowed[0]} → NEW {slowed[1]}"
    assert "Mann–Whitney U test" in lines[3]
    assert lines[4] == "- environment: same library versions, CPU, GPU and threads"
    assert f"verdicts: {TRAINER_BENCHMARKS - 1} same, 1 slower" in lines
    assert lines[-1] == "**FAIL**: 1 slower beyond 10%"


def test_markdown_lists_missing_and_passes_when_allowed(tmp_path, capsys, unjudged):
    path = variant(tmp_path, "0003_fewer.json", lambda data: data["benchmarks"].pop(0))
    status, out = compare(capsys, unjudged[1], path, "--format", "markdown")
    assert status == 1
    tutorial = "fit numpy-manual-tutorial-cpu float32 (quadratic, n=100, 800 epochs, lr=0.001)"
    assert f"missing from NEW:\n\n- {tutorial}" in out
    status, out = compare(capsys, unjudged[1], path, "--allow-missing", "--format", "markdown")
    assert status == 0
    assert out.splitlines()[0] == "### regbench compare: ok"
    assert out.splitlines()[-1].startswith("**ok**: no significant slow-down beyond 10%")


def test_markdown_cells_escape_pipes_and_newlines():
    table = markdown_table(pd.DataFrame({"a": ["x | y", "two\nlines"], "n": [1, 22]}))
    assert table.splitlines() == ["| a | n |", "| :--- | ---: |", "| x \\| y | 1 |", "| two lines | 22 |"]
    assert [len(row) for row in table_rows(table)] == [2, 2, 2, 2]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_exits_alike(capsys, slowed, unjudged, fmt):
    assert compare(capsys, *unjudged, "--format", fmt)[0] == 0
    assert compare(capsys, *slowed, "--format", fmt)[0] == 1
    # Unusable input: one line on stderr, nothing on stdout, in every format.
    assert main(["compare", str(NEW), "/no/such/run.json", "--format", fmt]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "/no/such/run.json" in captured.err


def test_text_is_the_default(capsys, unjudged):
    assert compare(capsys, *unjudged) == compare(capsys, *unjudged, "--format", "text")


def test_an_unknown_format_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", str(NEW), str(NEW), "--format", "html"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "invalid choice: 'html'" in err

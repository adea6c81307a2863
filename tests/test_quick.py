"""``regbench run --quick`` for real (a ``-k`` subset of the tutorial's problem), its progress lines, its record,
and ``compare`` refusing to pair a quick run with a deeper one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from regbench.cli import main

#: A real `regbench run --quick` (its processes, its report): the slow tier.
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
#: Two trainers that run anywhere, and their CUDA twins, which run or skip: both kinds of progress line.
SUBSET = "numpy-manual-tutorial"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    work = tmp_path_factory.mktemp("quick")
    # Not a terminal, and no colour forced: what a CI log gets.
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PY_COLORS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "regbench", "run", "--quick", "--storage", str(work / "s"), "--out",
           str(work / "r"), "--", "-k", SUBSET]  # fmt: skip
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    saved = sorted((work / "s").glob("*/*.json"))
    assert len(saved) == 1
    return work, proc, saved[0]


def test_one_progress_line_per_benchmark_and_no_control_characters(quick):
    _, proc, saved = quick
    lines = [line for line in proc.stdout.splitlines() if re.match(r"\[\s*\d+/\d+\] ", line)]
    assert len(lines) == 2, proc.stdout  # two trainers, in a quick run's one dtype
    for index, line in enumerate(lines, 1):
        assert line.startswith(f"[{index}/2] numpy-manual-tutorial-"), line
        assert re.search(r": (median \S+ \S+ \(\d+ rounds\)|skipped \(.+\)) · ", line), line
        assert line.endswith(" left") or (index == 2 and " · done in " in line), line
    assert all(re.search(r" float32[ :]", line) for line in lines)
    assert "\x1b" not in proc.stdout
    assert "\r" not in proc.stdout
    # pytest's summary and regbench's last lines still reach the user.
    assert re.search(r"\d+ passed", proc.stdout)
    assert f"saved: {saved}" in proc.stdout
    assert "report: " in proc.stdout.splitlines()[-1]


def test_the_quick_run_is_marked_and_times_the_tutorial_alone(quick):
    _, _, saved = quick
    data = json.loads(saved.read_text())
    assert data["regbench"]["quick"] is True
    assert data["regbench"]["depth"] == "quick"
    fits = data["benchmarks"]
    assert {b["extra_info"]["kind"] for b in fits} == {"fit"}  # no sweep, floor or marginal study
    assert {b["extra_info"]["trainer"] for b in fits} <= {"numpy-manual-tutorial-cpu", "numpy-manual-tutorial-cuda"}
    assert {b["extra_info"]["dtype"] for b in fits} == {"float32"}
    assert all(b["extra_info"].get("cold_start_s") is None for b in fits)


def test_compare_refuses_a_quick_run_against_a_full_one(quick, tmp_path, capsys):
    _, _, saved = quick
    full = json.loads(saved.read_text())
    full["regbench"]["quick"] = False
    path = tmp_path / saved.parent.name / "0002_full.json"
    path.parent.mkdir()
    path.write_text(json.dumps(full))
    for base, new in ((saved, path), (path, saved)):
        assert main(["compare", str(base), str(new)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "is a quick run" in err
        assert "compare a quick run with a quick run only" in err
    # Quick with quick: compared as usual (same samples, so no verdict of a slow-down).
    assert main(["compare", str(saved), str(saved)]) == 0

"""One process per framework (bench.isolation, regbench.merge): the plan, the merged file, the records that say
which frameworks their process had loaded, and whether a trainer's figure moves when other frameworks were
imported, probed or run before it in its process (regbench.coresidence, judged by reports.stats)."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from backends import specs
from bench.coresidence import CONDITIONS
from records.model import validate_run
from regbench import coresidence
from regbench.merge import merge

ROOT = Path(__file__).resolve().parents[1]
RUN = next((ROOT / "tests" / "data" / "v4").glob("*/0001_v4.json"))


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PY_COLORS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.slow  # pytest collecting every study in a fresh process
def test_the_plan_names_each_benchmark_s_framework(tmp_path):
    """Every benchmark of every study (the sweep, the floor, the scaling study too) belongs to one framework."""
    plan_path = tmp_path / "plan.json"
    cmd = [sys.executable, "-B", "-m", "pytest", str(ROOT / "bench"), "--collect-only", "-q", "-p", "no:cacheprovider",
           "--sweep", "--scaling", f"--regbench-plan={plan_path}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    plan = json.loads(plan_path.read_text())
    frameworks = {entry["nodeid"]: entry["framework"] for entry in plan["benchmarks"]}
    assert set(frameworks.values()) <= {spec.backend for spec in specs()}
    assert {f for node, f in frameworks.items() if "test_floor[" in node and "-cpu-" in node} == {"numba"}
    assert {f for node, f in frameworks.items() if "test_floor[" in node and "-cuda-" in node} == {"torch"}
    assert {f for node, f in frameworks.items() if "test_scaling_native" in node} == {"numba"}
    for node, framework in frameworks.items():
        trainer = re.search(r"\[([a-z]+)-[a-z]+-[a-z]+-(cpu|cuda|gpu)", node)
        if trainer:
            assert framework == trainer.group(1), node


def test_merged_parts_keep_every_benchmark_outcome_and_problem():
    run = json.loads(RUN.read_text())
    half = len(run["benchmarks"]) // 2
    parts = [{**run, "benchmarks": run["benchmarks"][:half]}, {**run, "benchmarks": run["benchmarks"][half:]}]
    outcomes = run["regbench"]["outcomes"]
    merged = merge(parts, [outcomes[:1], outcomes[1:]], ["numpy", "torch"])
    validate_run(merged)
    assert merged["benchmarks"] == run["benchmarks"]
    assert merged["regbench"]["outcomes"] == outcomes
    assert merged["regbench"]["problems"] == run["regbench"]["problems"]  # the same data from both parts, once
    assert merged["regbench"]["processes"] == ["numpy", "torch"]
    assert merged["machine_info"] == run["machine_info"]  # each part's facts, united: here the same facts twice


def test_merged_machine_facts_are_each_framework_s_own():
    """Each process records the facts of the frameworks it imported: the run has every one of them."""
    run = json.loads(RUN.read_text())
    env = run["machine_info"]["regbench"]
    torch_env = {k: v for k, v in env.items() if not k.startswith("jax_")}
    jax_env = {k: v for k, v in env.items() if not k.startswith("torch_")}
    parts = [{**run, "machine_info": {**run["machine_info"], "regbench": e}} for e in (torch_env, jax_env)]
    merged = merge(parts, [[], []], ["torch", "jax"])
    assert merged["machine_info"]["regbench"] == env


QUICK = ("numpy-manual-tutorial-cpu", "jax-grad-scan-cpu", "numba-native-loop-cpu")


@pytest.mark.slow
def test_regbench_run_measures_each_framework_in_a_process_of_its_own(tmp_path):
    cmd = [sys.executable, "-m", "regbench", "run", "--quick", "--storage", str(tmp_path / "s"), "--out",
           str(tmp_path / "r"), "--", "-k", " or ".join(QUICK)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (saved,) = (tmp_path / "s").glob("*/*.json")
    run = json.loads(saved.read_text())
    assert run["regbench"]["processes"] == ["numpy", "jax", "numba"]
    loaded = {b["extra_info"]["trainer"]: b["extra_info"]["loaded_frameworks"] for b in run["benchmarks"]}
    assert loaded == {"numpy-manual-tutorial-cpu": [], "jax-grad-scan-cpu": ["jax"], "numba-native-loop-cpu": ["numba"]}
    # One numbering over the three processes: 1/3, 2/3, 3/3.
    progress = re.findall(r"^\[(\d+)/(\d+)\] (\S+)", proc.stdout, flags=re.M)
    assert [(int(i), int(n)) for i, n, _ in progress] == [(1, 3), (2, 3), (3, 3)], proc.stdout
    assert "each framework in a process of its own (numpy, jax, numba)" in (tmp_path / "r" / "report.md").read_text()


@pytest.mark.slow  # 8 fresh processes
def test_the_coresidence_measurement_judges_every_condition():
    """``python -m regbench.coresidence`` times a trainer in fresh processes under each condition and judges each
    against ``alone``. What it measures is a figure for docs/measuring.md, not a pass mark: a timed unit test
    would fail on a noisy machine (CI saw the native loop 1.32× slower with torch and JAX imported, 2026-12-02),
    so the test holds the measurement's shape and its statistics to the rounds it took."""
    measured = coresidence.times("numba-native-loop-cpu", rounds=20, repeats=2)
    assert set(measured) == set(CONDITIONS)
    assert all(len(t) == 40 and min(t) > 0 for t in measured.values()), measured
    judged = coresidence.verdicts(measured)
    assert set(judged) == set(CONDITIONS) - {"alone"}
    for condition, verdict in judged.items():
        assert (verdict.base_rounds, verdict.new_rounds) == (40, 40), condition
        expected = statistics.median(measured[condition]) / statistics.median(measured["alone"])
        assert verdict.ratio == pytest.approx(expected), condition

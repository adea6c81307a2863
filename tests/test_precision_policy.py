"""The GPU precision policy: recorded with a run on a GPU, stated beside its GPU rows in the report, and a reason for
``regbench compare`` to refuse two runs that ran under different ones (issue 37, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import environment
from records.model import Environment
from regbench.cli import main

V1 = next((Path(__file__).parent / "data" / "v1").iterdir()) / "0001_v1.json"
POLICY = {
    "torch_matmul_allow_tf32": False,
    "torch_float32_matmul_precision": "highest",
    "torch_deterministic_algorithms": False,
    "jax_default_matmul_precision": None,
    "NVIDIA_TF32_OVERRIDE": None,
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
}


def saved(tmp_path: Path, name: str, policy: dict | None, on_gpu: bool = True) -> Path:
    """The v1 fixture run, saved as ``name``: with ``on_gpu``, its fused NumPy fits are the CUDA trainer's, on an
    H200; ``policy`` is its recorded precision policy (None: none recorded, as in files saved before it was)."""
    data = json.loads(V1.read_text())
    env = data["machine_info"]["regbench"]
    if on_gpu:
        env["gpu"] = {"name": "NVIDIA H200", "total_memory_bytes": 150_000_000_000}
        for bench in data["benchmarks"]:
            info = bench["extra_info"]
            if info.get("trainer") == "numpy-manual-fused-cpu":
                info.update(trainer="numpy-manual-fused-cuda", device="cuda")
    if policy is not None:
        env["precision"] = policy
    path = tmp_path / "storage" / "machine" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_a_run_on_a_gpu_records_the_policy_in_force(monkeypatch):
    monkeypatch.setattr(environment, "gpu_info", lambda: {"name": "NVIDIA H200"})
    monkeypatch.setenv("NVIDIA_TF32_OVERRIDE", "0")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    policy = environment.machine_record()["precision"]
    assert policy["NVIDIA_TF32_OVERRIDE"] == "0"
    assert policy["CUBLAS_WORKSPACE_CONFIG"] is None
    assert Environment.model_validate(environment.machine_record()).precision == policy  # the record takes it as is
    monkeypatch.setattr(environment, "gpu_info", dict)
    assert "precision" not in environment.machine_record()  # no GPU: no GPU policy to state


def report_md(tmp_path: Path, run: Path) -> str:
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out)]) == 0
    return (out / "report.md").read_text()


def test_the_report_states_the_policy_beside_the_gpu_rows(tmp_path):
    md = report_md(tmp_path, saved(tmp_path, "0001_gpu", POLICY))
    (line,) = [line for line in md.splitlines() if line.startswith("- **GPU precision policy**: ")]
    assert "torch_matmul_allow_tf32=False, torch_float32_matmul_precision=highest" in line
    assert "jax_default_matmul_precision=None" in line  # JAX's default
    assert line.endswith("; environment: CUBLAS_WORKSPACE_CONFIG=:4096:8")  # the unset variables are not listed
    assert md.index("GPU precision policy") < md.index("## Environment")
    assert "| numpy-manual-fused-cuda " in md


@pytest.mark.parametrize(("policy", "on_gpu", "shown"), [(None, True, ["not recorded"]), (POLICY, False, [])],
                         ids=["gpu-rows-without-a-policy", "no-gpu-rows"])  # fmt: skip
def test_the_report_says_when_no_policy_was_recorded_and_only_beside_gpu_rows(tmp_path, policy, on_gpu, shown):
    md = report_md(tmp_path, saved(tmp_path, "0001_run", policy, on_gpu))
    prefix = "- **GPU precision policy**: "
    assert [line.removeprefix(prefix) for line in md.splitlines() if line.startswith(prefix)] == shown


def test_compare_refuses_runs_under_different_policies_naming_the_difference(tmp_path, capsys):
    base = saved(tmp_path, "0001_base", POLICY)
    new = saved(tmp_path, "0002_tf32", {**POLICY, "torch_matmul_allow_tf32": True, "NVIDIA_TF32_OVERRIDE": "1"})
    for first, second, change in ((base, new, "False → True"), (new, base, "True → False")):
        assert main(["compare", str(first), str(second)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "different GPU precision policies" in err
        assert f"torch_matmul_allow_tf32 {change}" in err
        assert "NVIDIA_TF32_OVERRIDE" in err
        assert "torch_float32_matmul_precision" not in err  # only what differs is named


@pytest.mark.parametrize(
    ("base_policy", "new_policy"),
    [(None, None), (POLICY, POLICY), (None, POLICY), ({**POLICY, "a_later_switch": "x"}, POLICY)],
    ids=["neither-recorded", "the-same", "one-recorded", "a-switch-one-side-lacks"],
)
def test_compare_pairs_runs_whose_policies_do_not_differ(tmp_path, capsys, base_policy, new_policy):
    base = saved(tmp_path, "0001_base", base_policy)
    new = saved(tmp_path, "0002_new", new_policy)
    assert main(["compare", str(base), str(new)]) == 0
    out = capsys.readouterr().out
    assert "precision policies" not in out
    assert ("GPU precision: none → " in out) == (base_policy is None and new_policy is not None)

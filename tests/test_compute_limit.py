"""The compute limit beside the bandwidth floor: the machine's matrix-product rate (bench.compute, in the machine
record), each record's FLOPs an epoch, and the report's roofline for a problem its matrix products bound."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from bench.compute import matmul_rate
from bench.problems import epoch_flops
from records.model import validate_run
from reports import charts, render, tables
from reports.load import load

(V4,) = (Path(__file__).parent / "data" / "v4").glob("*/*.json")


def test_the_matrix_product_rate_is_measured_at_the_mlp_s_shapes():
    found = matmul_rate()
    assert found["shape"] == [1024, 32, 64]  # mlp's first default size: n, d, h
    assert found["float32"] > 1e8
    assert found["float64"] > 1e8


def test_an_epoch_s_flops_are_its_model_s():
    assert epoch_flops("mlp", 1024, d=32, h=64) == 4 * 1024 * 32 * 64 + 10 * 1024 * 64
    assert epoch_flops("linear", 1000) == 4 * 1000 * 16 + 4 * 1000  # its default d


def _run_with_an_mlp(tmp_path: Path, flops: int, rates: dict) -> Path:
    """The committed run, the seed's float32 fit at n = 1000 made an mlp's problem of ``flops`` an epoch, and the
    machine's rate ``rates``; the row reads as many bytes as the seed's floor of that size, which is its floor."""
    data = json.loads(V4.read_text())
    name = "test_fit[quadratic-n1000-numpy-manual-fused-cpu-float32]"
    sweep = next(b for b in data["benchmarks"] if b["name"] == name)
    floor = next(b for b in data["benchmarks"] if b["name"] == "test_floor[quadratic-n1000-cpu-float32]")
    row = copy.deepcopy(sweep)
    params = {"n": 1000, "seed": 0, "d": 32, "h": 64, "noise": 0.2}
    row["extra_info"].update(kind="fit", problem={"name": "mlp", "params": params}, flops=flops,
                             data_bytes=floor["extra_info"]["data_bytes"])  # fmt: skip
    row["name"] = "test_fit[mlp-n1000-numpy-manual-fused-cpu-float32]"
    data["benchmarks"].append(row)
    data["machine_info"]["regbench"]["matmul"] = {"shape": [1024, 32, 64], **rates}
    validate_run(data)
    path = tmp_path / V4.parent.name / "0001_mlp.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def test_a_compute_bound_problem_is_held_against_its_roofline(tmp_path):
    path = _run_with_an_mlp(tmp_path, flops=10**9, rates={"float32": 1e10, "float64": 5e9})
    runs = load([path])
    row = runs.table[runs.table["problem"] == "mlp(d=32,h=64)"].iloc[0]
    assert row["compute_s"] == pytest.approx(0.1)  # 10⁹ FLOPs at 10¹⁰ FLOP/s (float32)
    assert row["floor_s"] > 0
    assert row["roofline_s"] == pytest.approx(max(0.1, row["floor_s"]))
    speed = tables.speed(runs, "mlp(d=32,h=64)")
    assert speed.iloc[0]["roofline_ratio"] == pytest.approx(row["per_epoch_s"] / row["roofline_s"])
    assert speed.iloc[0]["mfu"] == pytest.approx(0.1 / row["per_epoch_s"])
    shown = tables.present(speed)
    assert {"compute limit", "× roofline", "MFU"} <= set(shown.columns)


def test_a_problem_its_data_bound_shows_no_compute_limit(tmp_path):
    """FLOPs that take less than twice the floor's read: no compute columns (the rate is an MLP's)."""
    path = _run_with_an_mlp(tmp_path, flops=1, rates={"float32": 1e10, "float64": 5e9})
    runs = load([path])
    assert "compute_s" not in tables.speed(runs, "mlp(d=32,h=64)").columns


def test_runs_without_a_rate_or_flops_have_no_compute_limit():
    runs = load([V4.parents[2] / "v1"])  # a run saved before the machine record had the rate
    assert runs.table["compute_s"].isna().all()
    assert runs.table["roofline_s"].isna().all()
    assert load([V4]).table["compute_s"].gt(0).all()  # the current run has both: every CPU row its limit


def test_the_report_draws_a_compute_bound_problem_s_epochs_against_its_compute_limit(tmp_path):
    """A section per problem: the mlp's has its chart of time per epoch against the compute limit, whose marks
    are the rows' compute limits; it draws no fitted curve (its records hold none), and a problem that reading
    its data bounds gets no compute chart."""
    runs = load([_run_with_an_mlp(tmp_path / "bound", flops=10**9, rates={"float32": 1e10, "float64": 5e9})])
    _, pngs = render.build(runs)
    assert "problem-mlp-d-32-h-64-compute.png" in pngs
    assert "problem-mlp-d-32-h-64-fit.png" not in pngs
    rows = runs.table[runs.table["problem"] == "mlp(d=32,h=64)"]
    marks = charts.compute_chart(rows).axes[0].collections[0].get_offsets()
    assert marks[:, 0].tolist() == pytest.approx(rows["compute_s"].tolist())
    _, pngs = render.build(
        load([_run_with_an_mlp(tmp_path / "data", flops=1, rates={"float32": 1e10, "float64": 5e9})])
    )
    assert not any(name.endswith("-compute.png") for name in pngs)

"""The saved record (records/): the current schema read back whole, schemas 0, 1 and 2 upgraded (and reported and
compared as they were), a newer schema refused, each file read once."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import backends
import problems
from backends import spec_of, twin_of
from records import upgrade
from records.model import SCHEMA_VERSION, FitRecord, InvalidRecord, validate_run
from regbench.cli import main
from reports import load as loader

DATA = Path(__file__).parent / "data"
V0 = sorted((DATA / "storage").glob("*/*.json"))
(V1,) = (DATA / "v1").glob("*/*.json")  # schema 1: a fit's parameters as w and b
(V2,) = (DATA / "v2").glob("*/*.json")  # schema 2: the other problems' fits of kind "problem", sizes without roles
(V3,) = (DATA / "v3").glob("*/*.json")  # schema 3: the seed's sweep of kind "sweep"
(V4,) = (DATA / "v4").glob("*/*.json")  # the current schema


def test_the_committed_current_run_validates_and_round_trips():
    data = json.loads(V4.read_text())
    run = validate_run(data)
    assert upgrade.schema_of(data) == SCHEMA_VERSION
    assert run.model_dump()["benchmarks"][0]["extra_info"] == data["benchmarks"][0]["extra_info"]
    kinds = {b.kind for b in run.benchmarks}
    assert kinds == {"fit", "floor", "marginal"}
    sizes = {(b.extra_info.problem.label, b.extra_info.n, b.extra_info.size) for b in run.fits if b.kind == "fit"}
    assert sizes == {("quadratic", 100, "default"), ("quadratic", 1000, "sweep")}
    floors = {(b.extra_info.problem.label, b.extra_info.n) for b in run.benchmarks if b.kind == "floor"}
    assert floors == {("quadratic", 100), ("quadratic", 1000)}  # each names its problem, the seed's too


@pytest.mark.parametrize("path", V0, ids=lambda p: p.name)
def test_schema_0_files_are_upgraded_with_what_the_registry_said(path):
    data = json.loads(path.read_text())
    before = copy.deepcopy(data)
    run = validate_run(data)
    assert data == before  # the upgrade copies; the file's data is never changed
    for bench in run.fits:
        info = bench.extra_info
        spec = spec_of(info.trainer)  # the fixture's trainers have not changed roles since schema 0
        assert (tuple(info.roles), info.compiles, info.distributed) == (spec.roles, spec.compiles, spec.distributed)
        assert info.method == spec.method
        assert info.twin == twin_of(info.trainer)
        test = bench.name.split("[")[0].removeprefix("test_")
        assert info.kind == ("fit" if test == "sweep" else test)  # the seed's sweep: the fit study since schema 4
        seed = 100 if test == "fit" else 0
        assert info.size == ("default" if test == "fit" else "full" if info.n == 10**6 else "sweep")
        assert info.problem.model_dump() == {"name": "quadratic", "params": {"n": info.n, "seed": seed, "noise": 0.2}}
    skipped = {o.trainer: o.reason for o in run.regbench.outcomes}
    assert skipped == data["machine_info"]["regbench"]["unavailable"]
    (tutorial,) = run.regbench.problems
    seed = backends.seed_problem()  # the recipe the upgrade remakes the tutorial's data by
    assert (tutorial.x, tutorial.y) == (seed.x[:, 0].tolist(), seed.y[:, 0].tolist())


def test_a_current_file_is_not_upgraded():
    data = json.loads(V4.read_text())
    assert upgrade.upgrade(data) is data


def test_a_loss_history_must_have_one_value_per_epoch():
    data = json.loads(V4.read_text())
    fit = next(b for b in data["benchmarks"] if b["extra_info"]["kind"] == "fit")
    fit["extra_info"]["losses"] = fit["extra_info"]["losses"][:-1]
    with pytest.raises(InvalidRecord, match=r"losses has 799 values, not one per epoch \(800\)"):
        validate_run(data)


def test_a_record_is_written_whole_by_one_model():
    info = json.loads(V4.read_text())["benchmarks"][0]["extra_info"]
    assert FitRecord.model_validate(info).model_dump() == info


@pytest.mark.slow  # a whole report, its history over 50 runs
def test_report_over_50_runs_reads_each_file_once(tmp_path, monkeypatch):
    storage = tmp_path / "storage" / V4.parent.name
    storage.mkdir(parents=True)
    for number in range(1, 51):
        shutil.copy(V4, storage / f"{number:04d}_run.json")
    reads: list[Path] = []
    real = loader._read

    def counted(path):
        reads.append(path)
        return real(path)

    monkeypatch.setattr(loader, "_read", counted)
    assert main(["report", str(tmp_path / "storage"), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in reads) == sorted(p.name for p in storage.iterdir())  # 50 files, each once
    assert "History" in (tmp_path / "out" / "report.md").read_text()


def test_a_row_s_floor_is_the_read_of_as_many_bytes(tmp_path):
    """The floor reads the seed's x and y of n points. Linear's X at the same n is d times larger: under
    ``--sweep`` both exist at n = 1000, and linear's row must not be given the seed's floor."""
    data = json.loads(V4.read_text())
    sweep = next(b for b in data["benchmarks"] if b["extra_info"]["size"] == "sweep")
    wide = copy.deepcopy(sweep)
    info = wide["extra_info"]
    info.update(kind="fit", problem={"name": "linear", "params": {"n": 1000, "seed": 0, "d": 16}},
                data_bytes=17 * 1000 * (4 if info["dtype"] == "float32" else 8))  # fmt: skip
    wide["name"] = wide["fullname"] = "test_problem[wide]"
    data["benchmarks"].append(wide)
    (tmp_path / V4.parent.name).mkdir()
    path = tmp_path / V4.parent.name / V4.name
    path.write_text(json.dumps(data))
    table = loader.load([path]).table
    seed_row = table[(table["problem"] == "quadratic") & (table["n"] == 1000) & (table["dtype"] == info["dtype"])]
    seed_row = seed_row.iloc[0]
    linear_row = table[table["problem"] == "linear(d=16)"].iloc[0]
    assert seed_row["n"] == linear_row["n"] == 1000
    assert seed_row["floor_s"] > 0  # the floor of its 2 × 1000 values
    assert pd.isna(linear_row["floor_s"])  # none of 17 × 1000 values was measured


def test_schema_1_files_get_their_parameters_by_name():
    data = json.loads(V1.read_text())
    before = copy.deepcopy(data)
    run = validate_run(data)
    assert data == before  # the upgrade copies
    for bench in run.fits:
        info, old = bench.extra_info, next(b for b in data["benchmarks"] if b["name"] == bench.name)["extra_info"]
        assert list(info.params) == ["w", "b"]
        w, b = info.params["w"], info.params["b"]
        assert (w.shape, w.values, w.ref_diff, b.values, b.ref_diff) == ([], [old["w"]], old["ref_dw"], [old["b"]],
                                                                         old["ref_db"])  # fmt: skip
        if old.get("w_opt") is not None:
            assert (w.optimum, b.optimum) == ([old["w_opt"]], [old["b_opt"]])
            assert w.opt_rel == pytest.approx(abs(old["w"] - old["w_opt"]) / abs(old["w_opt"]))
        assert w.ref_rel is None  # schema 1 kept |Δw| alone: the relative norm is not made up
    assert run.regbench.schema_version == SCHEMA_VERSION


def test_a_schema_1_linear_record_keeps_theta_by_name():
    data = json.loads(V1.read_text())
    info = next(b for b in data["benchmarks"] if b["extra_info"]["kind"] == "fit")["extra_info"]
    info.update(problem={"name": "linear", "params": {"n": info["n"], "seed": 0, "d": 3, "noise": 0.2}},
                theta=[3.0, 0.0, 4.0], w=5.0, w_opt=None, ref_dw=0.5)  # fmt: skip
    theta = validate_run(data).fits[0].extra_info.params["theta"]
    assert (theta.shape, theta.norm, theta.values, theta.ref_diff) == ([3], 5.0, [3.0, 0.0, 4.0], 0.5)


def test_a_file_of_a_newer_schema_is_refused_in_one_line(tmp_path, capsys):
    data = json.loads(V4.read_text())
    data["regbench"]["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(InvalidRecord, match=rf"^written by a newer regbench \(record schema {SCHEMA_VERSION + 1}; "
                       rf"this one reads schemas 0 to {SCHEMA_VERSION}\): pip install -U regbench$"):  # fmt: skip
        validate_run(data)
    path = tmp_path / V4.parent.name / "0002_newer.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "newer regbench" in err
    assert "pip install -U regbench" in err


@pytest.mark.slow  # two whole reports (~5 s each)
@pytest.mark.parametrize(("folder", "expected"), [("storage", "v0-report.md"), ("v1", "v1-report.md")])
def test_older_runs_report_as_they_did(tmp_path, folder, expected):
    """The report of the schema-0 and schema-1 fixtures (tests/data/expected): the seed's w and b, their optimum
    and their differences from the reference as schema 1's regbench wrote them. The files were first written by
    that regbench (de1b4dd) and were equal to schema 2's report byte for byte (6203e69); they were written again
    once the speed tables gained a column of the data's size beside the peak memory (issue 36), once the notes
    named the parameters by name rather than as (w, b) (issue 33), once a target the run did not measure was no
    longer counted "not met" and the summary said it judged one run (issue 35), once two JAX targets were restated
    at the limits the evidence names, marked so, with a note that points to it (issue 35), and once the targets took
    their sizes from the records' size roles rather than restating them (issue 32: a target the run did not measure
    shows no n), and once the seed's sweep became the fit study's (issue 32: the history table's rows read kind
    "fit" with their size's role in a column of its own, the tutorial's "default", the sweep's "sweep"; ``compare``'s
    JSON the same, each row with its ``size``), the only changes."""
    assert main(["report", str(DATA / folder), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.md").read_text() == (DATA / "expected" / expected).read_text()


@pytest.mark.slow  # bootstrap intervals
def test_older_runs_compare_as_they_did_and_with_the_current_schema(capsys, monkeypatch):
    root = DATA.parents[1]
    monkeypatch.chdir(root)  # the expected output names the files as given, from the checkout's root
    base, new = (str(path.relative_to(root)) for path in V0)
    assert main(["compare", base, new, "--format", "json"]) == 1  # the fixture's planted regression
    assert capsys.readouterr().out == (DATA / "expected" / "v0-compare.json").read_text()
    # A schema-1, -2 and -3 file against a schema-4 file of the same trainers: every benchmark paired (the seed's
    # sweep of kind "sweep" with its fits of the same size), none missing.
    for old in (V1, V2, V3):
        status = main(["compare", str(old), str(V4), "--format", "json"])
        found = json.loads(capsys.readouterr().out)
        assert status in (0, 1)  # a speed verdict either way: the two were measured on different days
        paired = {(r["kind"], r["n"], r["trainer"], r["dtype"]) for r in found["rows"]}
        infos = [b.extra_info for b in validate_run(json.loads(old.read_text())).fits]
        assert paired == {(info.kind, info.n, info.trainer, info.dtype) for info in infos}
        assert ("fit", 1000, "numpy-manual-fused-cpu", "float64") in paired
        assert not found["missing"], old.name
        assert {r["accuracy"] for r in found["rows"]} == {"ok"}  # the same fits, compared parameter by parameter


def test_schema_2_fits_of_the_other_problems_read_as_fits_with_their_size_s_role():
    """Schema 2 named the other problems' fits' kind "problem" and said no size's role before late in its life:
    they read as kind "fit" with their problem, and every fit of a built-in problem gets its size's role, so that
    the targets find the tutorial (the seed's default size) and linear's medium size (its full one) as before."""
    data = json.loads(V2.read_text())
    fit = next(b for b in data["benchmarks"] if b["extra_info"]["kind"] == "fit")
    medium = copy.deepcopy(fit)
    medium["name"] = "test_problem[linear-n100000,d64-numpy-manual-fused-cpu-float32]"
    medium["extra_info"].update(kind="problem", problem={"name": "linear", "params": {"n": 10**5, "seed": 0, "d": 64,
                                "noise": 0.2}}, n=10**5, losses=[])  # fmt: skip
    medium["extra_info"].pop("curve", None)  # the seed's curve at 100 points: not linear's
    data["benchmarks"].append(medium)
    before = copy.deepcopy(data)
    run = validate_run(data)
    assert data == before  # the upgrade copies
    assert run.regbench.schema_version == SCHEMA_VERSION
    infos = {bench.name: bench.extra_info for bench in run.fits}
    assert (infos[medium["name"]].kind, infos[medium["name"]].problem.label) == ("fit", "linear(d=64)")
    assert infos[medium["name"]].size == "full"
    roles = {(info.kind, info.n): info.size for info in infos.values() if info.problem.name == "quadratic"}
    assert roles == {("fit", 100): "default", ("fit", 1000): "sweep", ("marginal", 20000): "sweep"}
    assert {b.extra_info.kind for b in run.benchmarks} == {"fit", "floor", "marginal"}


def test_schema_3_sweeps_read_as_the_seed_s_fits_at_their_sizes():
    """Schema 3 timed the seed's problem beyond the tutorial's size by a study of its own, kind "sweep", whose
    100 points (seed 0) said size "default": they read as kind "fit" of size "sweep" (or "full" at n = 10⁶), so
    that the tutorial's rows (the targets', the report's lead) are the tutorial's fits alone, and a sweep's 100
    points, as configured as the tutorial's (lr 0.1/100, 800 epochs), are another benchmark (IDENTITY's size)."""
    data = json.loads(V3.read_text())
    large = copy.deepcopy(next(b for b in data["benchmarks"] if b["extra_info"]["kind"] == "sweep"))
    small = copy.deepcopy(large)
    large["name"], small["name"] = "test_sweep[n1000000-large]", "test_sweep[n100-small]"
    large["extra_info"].update(n=10**6, size="full", problem={"name": "quadratic", "params": {"n": 10**6, "seed": 0,
                               "noise": 0.2}})  # fmt: skip
    small["extra_info"].update(n=100, lr=0.1 / 100, size="default", problem={"name": "quadratic", "params": {
                               "n": 100, "seed": 0, "noise": 0.2}})  # fmt: skip
    data["benchmarks"] += [large, small]
    before = copy.deepcopy(data)
    run = validate_run(data)
    assert data == before  # the upgrade copies
    infos = {bench.name: bench.extra_info for bench in run.fits}
    assert (infos[large["name"]].kind, infos[large["name"]].size) == ("fit", "full")
    assert (infos[small["name"]].kind, infos[small["name"]].size) == ("fit", "sweep")
    swept = [b for b in before["benchmarks"] if b["extra_info"]["kind"] == "sweep"]
    assert {(infos[b["name"]].kind, infos[b["name"]].size) for b in swept} >= {("fit", "sweep")}
    tutorial = [info for info in infos.values() if info.kind == "fit" and info.size == "default"]
    assert tutorial
    assert {(info.n, info.problem.params["seed"]) for info in tutorial} == {(100, 100)}
    swept = infos[small["name"]]
    twin = next(info for info in tutorial if (info.trainer, info.dtype) == (swept.trainer, swept.dtype))
    assert (twin.n, twin.epochs, twin.lr) == (100, 800, 1e-3) == (swept.n, swept.epochs, swept.lr)


@pytest.mark.parametrize("path", [V4, V3, V2, V1, V0[0]], ids=["v4", "v3", "v2", "v1", "v0"])
def test_a_small_fit_keeps_the_fitted_curve_its_problem_draws(path):
    """Every fit of a problem whose data the run kept holds its fitted curve, the model's prediction at each x:
    the problem module's ``curve`` (the seed's w·x² + b) for the current schema, the same upgraded from schemas 0
    and 1 (which drew only that model); the larger fits, whose data the run did not keep, hold none."""
    run = validate_run(json.loads(path.read_text()))
    kept = {json.dumps(p.problem.model_dump(), sort_keys=True): np.asarray(p.x) for p in run.regbench.problems}
    drawn = 0
    for bench in run.fits:
        info = bench.extra_info
        x = kept.get(json.dumps(info.problem.model_dump(), sort_keys=True))
        if x is None:
            assert info.curve is None, bench.name
            continue
        fitted = {name: np.float64(param.values[0]) for name, param in info.params.items()}
        want = problems.get("quadratic").curve(np, fitted, x[:, None])
        np.testing.assert_allclose(info.curve, want, rtol=1e-15, err_msg=bench.name)
        drawn += 1
    assert drawn >= 10  # the tutorial's fits at least, of every trainer and dtype

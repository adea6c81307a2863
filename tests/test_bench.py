"""The benchmark code itself: metrics on hand-computed cases, and one real run of ``pytest bench``."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import backends
import problems
from backends import metrics, spec_of, twin_of
from bench.contention import MIN_WINDOW_S
from bench.gpu import gpu_info
from bench.memory import DISTRIBUTED_MEMORY, SLOW_FIT_MEMORY
from bench.problems import MARGINAL_EPOCHS, default_problems, marginal_trainers
from bench.rounds import SLOW_FIT_S

ROOT = Path(__file__).resolve().parents[1]
#: What every trainer's record says of itself (records.model.FitRecord), so that a report needs no registry.
SELF = {"schema_version", "kind", "problem", "trainer", "backend", "method", "variant", "device", "roles",
        "distributed", "twin", "compiles", "workers", "threads"}  # fmt: skip
FIELDS = SELF | {
    "dtype", "n", "epochs", "lr", "params", "final_loss", "diverged",
    "first_call_s", "loss_opt", "opt_distance", "loss_gap", "ref_loss_rel",
    "losses", "prepare_s", "result_s", "cold_start_s", "peak_bytes", "data_bytes", "flops", "memory_method", "workers",
}  # fmt: skip
#: What a whole-fit benchmark of the marginal-cost study records (bench.harness.run_fit_benchmark).
FIT_FIELDS = SELF | {"dtype", "n", "epochs", "lr", "first_call_s", "params", "final_loss", "diverged", "data_bytes",
                     "flops", "peak_bytes", "memory_method"}  # fmt: skip


def fit_result(w, b, losses, final_loss):
    """A result of the seed's model, whose parameters are w and b."""
    return backends.FitResult.from_arrays({"w": w, "b": b}, losses, final_loss)


def test_least_squares_recovers_a_noiseless_curve():
    problem = backends.make_problem(50, 1, noise=0.0)  # y = 3x² + 2 exactly
    optimum, loss = metrics.least_squares(problem)
    assert list(optimum) == ["w", "b"]  # by the problem's names, in its order
    assert optimum["w"] == pytest.approx(3.0, abs=1e-12)
    assert optimum["b"] == pytest.approx(2.0, abs=1e-12)
    assert loss == pytest.approx(0.0, abs=1e-20)


def test_optimum_gap_by_hand():
    # Points x = ±1, 0 with y = 1, 0, 1: the optimum is w* = 1, b* = 0, loss* = 0.
    problem = backends.Problem([-1.0, 0.0, 1.0], [1.0, 0.0, 1.0], {"w": 0.0, "b": 0.0})
    gap = metrics.optimum_gap(fit_result(1.3, -0.4, [2.0, 1.0], 0.25), problem)
    assert gap["params"]["w"]["optimum"] == pytest.approx(1.0)
    assert gap["params"]["b"]["optimum"] == pytest.approx(0.0, abs=1e-15)
    assert gap["params"]["w"]["opt_rel"] == pytest.approx(0.3)
    assert gap["opt_distance"] == pytest.approx(0.5)  # hypot(0.3, 0.4)
    assert gap["loss_gap"] == pytest.approx(0.25)


def test_agreement_by_hand():
    got = fit_result(3.5, 1.0, [4.0, 2.0, 1.0], 0.9)
    ref = fit_result(3.0, 1.25, [4.0, 2.5, 0.5], 0.4)
    assert metrics.agreement(got, ref) == {
        "ref_loss_rel": 1.0,
        "params": {"w": {"ref_diff": 0.5, "ref_rel": pytest.approx(0.5 / 3)}, "b": {"ref_diff": 0.25, "ref_rel": 0.2}},
    }
    zero = {"ref_diff": 0.0, "ref_rel": 0.0}
    assert metrics.agreement(ref, ref) == {"ref_loss_rel": 0.0, "params": {"w": zero, "b": zero}}
    with pytest.raises(ValueError, match="differ in length"):
        metrics.agreement(got, fit_result(3.0, 1.0, [4.0], 0.5))


#: The saved run's sweep size (``--sweep-sizes``): the other problems' sweep sizes of that n too.
SWEEP_N = 1000


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """One real ``pytest bench`` (the default depth) with one timed round each, the sweep at n=1000 included, and
    the full run's marginal-cost study at n=1000, saved to a temp storage: the default run's file, its stdout,
    and the study's file."""
    storage = tmp_path_factory.mktemp("storage")
    base = [sys.executable, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider", "--regbench-rounds=1",
            f"--benchmark-storage=file://{storage}"]  # fmt: skip
    proc = subprocess.run([*base, "--sweep", f"--sweep-sizes={SWEEP_N}", "--benchmark-save=smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    study = subprocess.run(
        [*base, "--full", "--no-cold-start", "-k", "test_marginal", "--marginal-n=1000", "--benchmark-save=marginal"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert study.returncode == 0, study.stdout[-3000:] + study.stderr[-3000:]  # fmt: skip
    (path,) = storage.glob("*/0001_smoke.json")
    (marginal,) = storage.glob("*/0002_marginal.json")
    return path, proc.stdout, marginal


def _benchmarks(saved_run) -> list[dict]:
    """The benchmarks of the default run and of the marginal study."""
    return [b for path in (saved_run[0], saved_run[2]) for b in json.loads(path.read_text())["benchmarks"]]


def expected_trainers():
    return [tid for tid, a in backends.available().items() if a.ok]


@pytest.mark.slow  # the whole `pytest bench` run, sweep and marginal study, in a subprocess
def test_saved_run_covers_every_available_trainer(saved_run):
    path, stdout, _ = saved_run
    data = json.loads(path.read_text())
    assert data["regbench"]["depth"] == "default"
    names = {b["name"] for b in _benchmarks(saved_run)}
    for tid in expected_trainers():
        for dtype in backends.DTYPES:
            assert f"test_fit[quadratic-n100,seed100-{tid}-{dtype}]" in names  # the tutorial's
            assert f"test_fit[quadratic-n1000-{tid}-{dtype}]" in names  # the seed's problem at the sweep's size
    marginal = {n.split("[n1000-")[1].rsplit("-", 2)[0] for n in names if n.startswith("test_marginal[")}
    assert marginal == set(expected_trainers()) & set(marginal_trainers())  # the fast paths and the native loops
    for a in backends.available().values():
        if not a.ok:
            assert a.reason in stdout  # skipped, with its reason in pytest's summary
    env = data["machine_info"]["regbench"]
    assert env["versions"]["numpy"] == np.__version__
    assert env["cpu_count"] >= 1
    assert min(env["matmul"]["float32"], env["matmul"]["float64"]) > 0  # the compute limit's rate (bench.compute)
    if env["versions"]["jax"]:
        assert env["jax_cpu_dispatch"] == "async"  # JAX's own default: the benchmarks change no global setting


def differences(saved: dict, own: backends.FitResult) -> list[str]:
    """What a saved benchmark's ``extra_info`` has that a fresh fit here does not reproduce bit for bit."""
    values = {name: param.get("values") for name, param in saved["params"].items()}
    out = [f"{name} {values.get(name)!r} != {mine!r}" for name, value in own.params.items()
           if values.get(name) != (mine := np.ravel(value).tolist())]  # fmt: skip
    out += [f"{key} {saved[key]!r} != {mine!r}" for key, mine in (("final_loss", own.final_loss),
            ("diverged", own.diverged)) if saved[key] != mine]  # fmt: skip
    losses = np.array(saved["losses"])
    if losses.shape != own.losses.shape:
        out.append(f"losses: {losses.size} epochs != {own.losses.size}")
    elif not np.array_equal(losses, own.losses):
        (differ,) = np.nonzero(losses != own.losses)
        rel = np.max(np.abs(losses[differ] - own.losses[differ]) / np.abs(own.losses[differ]))
        out.append(f"losses differ at {differ.size} of {losses.size} epochs, first {differ[0]}, max rel {rel:.1e}")
    return out


@pytest.mark.slow  # the saved run, every trainer refitted here
def test_saved_extra_info_matches_the_trainers(saved_run):
    """Every trainer × dtype reproduces, bit for bit, in this process what the benchmark process saved.

    This process has compiled other sizes before (tests/test_agreement.py), the
    benchmark process only 100 points: a fit must not depend on it. Mismatches are
    collected so that the failure names them all.
    """
    seed = backends.seed_problem()
    mismatches = []
    for bench in _benchmarks(saved_run):
        if bench["name"].startswith("test_floor["):
            continue
        info = bench["extra_info"]
        name = bench["name"]
        marginal = name.startswith("test_marginal[")
        assert set(info) >= (FIT_FIELDS if marginal else FIELDS), name
        assert bench["stats"]["rounds"] == 1, name
        assert info["first_call_s"] > 0, name
        if marginal:  # whole fits at 1000 points (--marginal-n), at the study's two epoch counts
            assert (info["n"], info["lr"]) == (1000, 1e-4), name
            assert info["epochs"] in MARGINAL_EPOCHS, name
            # Data made in the working dtype: a float32 record says so; a float64 one has no key.
            assert info.get("data_dtype") == (None if info["dtype"] == "float64" else info["dtype"]), name
            config = backends.TrainConfig(epochs=info["epochs"], lr=info["lr"], dtype=info["dtype"])
            own = backends.get_trainer(info["trainer"]).fit(backends.make_problem(1000, 0), config)
            mismatches += [f"{name}: {d}" for d in differences(info, own) if not d.startswith("losses")]
            continue
        if info["size"] != "default" or info["problem"]["name"] != "quadratic":
            # every problem at its sizes, with its own lr rule (the seed's: lr = 0.1/n, the tutorial's 1e-3 at 100)
            params = info["problem"]["params"]
            assert info["lr"] == problems.get(info["problem"]["name"]).lr(**params), name
            if info["problem"]["name"] == "quadratic":
                assert (info["n"], info["epochs"], info["lr"]) == (1000, 800, 1e-4), name
            continue
        config = backends.TrainConfig(dtype=info["dtype"], workers=info["workers"])
        own = backends.get_trainer(info["trainer"]).fit(seed, config)
        assert (info["n"], info["epochs"], info["lr"]) == (100, 800, 1e-3), name
        mismatches += [f"{info['trainer']} {info['dtype']}: {d}" for d in differences(info, own)]
        for metric in (metrics.agreement(own, metrics.reference_fit(seed, config)), metrics.optimum_gap(own, seed)):
            saved = {key: info[key] for key in metric if key != "params"}
            saved.update({f"{p}.{k}": info["params"][p].get(k) for p, each in metric["params"].items() for k in each})
            mine = {key: value for key, value in metric.items() if key != "params"}
            mine.update({f"{p}.{k}": np.ravel(v).tolist() if k == "optimum" else v
                         for p, each in metric["params"].items() for k, v in each.items()})  # fmt: skip
            mismatches += [f"{info['trainer']} {info['dtype']}: {key} {saved[key]!r} != {value!r}"
                           for key, value in mine.items() if saved[key] != value]  # fmt: skip
    assert not mismatches, "saved by the benchmark process, not reproduced here:\n" + "\n".join(mismatches)


@pytest.mark.slow  # the saved run
def test_saved_records_describe_themselves(saved_run):
    """Each record names its kind, problem and trainer as the registry describes it; the file keeps the outcome of
    every selected benchmark and the tutorial's data (records.model)."""
    data = json.loads(saved_run[0].read_text())
    for bench in data["benchmarks"]:
        info, name = bench["extra_info"], bench["name"]
        assert info["schema_version"] == 4, name
        # The study: every problem's fits are "fit" (the seed's at every size too), the problem its own field.
        assert info["kind"] == name.split("[")[0].removeprefix("test_"), name
        if info["kind"] == "floor":
            continue
        spec = spec_of(info["trainer"])
        assert (info["backend"], info["method"], info["variant"], info["device"]) == (
            spec.backend, spec.method, spec.variant, spec.device), name  # fmt: skip
        assert (tuple(info["roles"]), info["distributed"], info["compiles"]) == (
            spec.roles, spec.distributed, spec.compiles), name  # fmt: skip
        assert info["twin"] == twin_of(info["trainer"]), name
        module = problems.get(info["problem"]["name"])
        params = {k: v for k, v in info["problem"]["params"].items() if k != "noise"}
        assert info["size"] == problems.size_role(module, **params), name  # its module's DEFAULT_SIZES, FULL_SIZES
        # every problem: its name and parameters, n and seed among them; the tutorial's seed is 100, every other 0
        assert {"n", "seed"} <= set(info["problem"]["params"]), name
        assert info["problem"]["params"]["n"] == info["n"], name
        tutorial = info["problem"]["name"] == "quadratic" and info["size"] == "default"
        assert info["problem"]["params"]["seed"] == (100 if tutorial else 0), name
        if info["problem"]["name"] == "quadratic":
            assert info["problem"] == {"name": "quadratic", "params": {"n": info["n"], "seed": 100 if tutorial else 0,
                                       "noise": 0.2}}, name  # fmt: skip
    facts = data["regbench"]
    assert facts["schema_version"] == 4
    outcomes = {o["test"]: o for o in facts["outcomes"]}
    # Every outcome keeps what it cost the run (the progress estimates' history): a passed one seconds at least.
    assert all(o["wall_s"] >= 0 for o in outcomes.values())
    assert min(o["wall_s"] for o in outcomes.values() if o["outcome"] == "passed") > 0
    assert {b["name"] for b in data["benchmarks"]} <= {t for t, o in outcomes.items() if o["outcome"] == "passed"}
    for tid, availability in backends.available().items():
        if not availability.ok and not spec_of(tid).distributed:
            for dtype in backends.DTYPES:
                test = f"test_fit[quadratic-n100,seed100-{tid}-{dtype}]"
                expected = {"test": test, "outcome": "skipped", "trainer": tid, "dtype": dtype,
                            "reason": availability.reason}  # fmt: skip
                assert {key: value for key, value in outcomes[test].items() if key != "wall_s"} == expected
    seed = backends.seed_problem()
    (tutorial,) = [p for p in facts["problems"] if p["problem"]["params"]["n"] == 100]
    assert (tutorial["x"], tutorial["y"]) == (seed.x[:, 0].tolist(), seed.y[:, 0].tolist())


def test_differences_name_what_differs():
    own = fit_result(3.0, 2.0, [4.0, 2.0, 1.0], 0.5)
    saved = {"params": {"w": {"values": [3.0]}, "b": {"values": [2.0]}}, "final_loss": 0.5, "diverged": False,
             "losses": [4.0, 2.0, 1.0]}  # fmt: skip
    assert differences(saved, own) == []
    changed = {**saved, "params": {"w": {"values": [3.0]}, "b": {"values": [2.5]}}, "losses": [4.0, 2.2, 1.1]}
    assert differences(changed, own) == [
        "b [2.5] != [2.0]",
        "losses differ at 2 of 3 epochs, first 1, max rel 1.0e-01",
    ]
    assert differences({**saved, "losses": [4.0]}, own) == ["losses: 1 epochs != 3"]


@pytest.mark.slow  # the saved run
def test_saved_file_reads_back_in_pytest_benchmark_compare(saved_run):
    path = saved_run[0]
    cmd = [sys.executable, "-m", "pytest_benchmark", f"--storage=file://{path.parent.parent}", "compare", "0001"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "test_fit[quadratic-n100,seed100-numpy-manual-tutorial-cpu-float64]" in proc.stdout


@pytest.mark.slow  # the saved run
def test_saved_run_records_what_each_fit_costs(saved_run):
    data = json.loads(saved_run[0].read_text())
    fits = [b for b in data["benchmarks"] if b["name"].startswith("test_fit[quadratic-")]  # x and y: 2·n values
    for bench in fits:
        info = bench["extra_info"]
        assert info["prepare_s"] > 0
        assert 0 < info["result_s"] < info["first_call_s"]
        assert info["cold_start_s"] is info["warm_start_s"] is info["fresh_fit_s"] is None  # --no-cold-start
        assert info["data_bytes"] == 2 * info["n"] * np.dtype(info["dtype"]).itemsize
        # The share of the CPUs other processes took during its rounds: read where they lasted long enough for the
        # kernel's ticks to tell (bench.contention), else None.
        if sum(bench["stats"]["data"]) >= MIN_WINDOW_S:
            assert 0 <= info["others_cpu"] <= 1
        else:
            assert info.get("others_cpu") is None or 0 <= info["others_cpu"] <= 1  # None is saved without its key
        if info["distributed"]:  # its memory is its workers': no second group to measure this process
            assert info["peak_bytes"] is None
            assert info["memory_method"] == DISTRIBUTED_MEMORY
            assert info["worker_peak_bytes"] > 0
        elif info["memory_method"] == SLOW_FIT_MEMORY:  # the default depth leaves a slow fit's to --full
            assert info["peak_bytes"] is None
            assert bench["stats"]["median"] >= SLOW_FIT_S / 2  # a fit judged slow by its warm call
        elif info["device"] == "cpu" and Path("/proc/self/clear_refs").exists():
            assert isinstance(info["peak_bytes"], int)
            assert info["peak_bytes"] >= 0
            assert "VmHWM" in info["memory_method"]


@pytest.mark.slow  # the saved run
def test_saved_run_has_the_bandwidth_floor(saved_run):
    data = json.loads(saved_run[0].read_text())
    every = [b for b in data["benchmarks"] if b["name"].startswith("test_floor[")]
    seed = {b["name"]: b for b in every if b["extra_info"]["problem"]["name"] == "quadratic"}  # x and y
    devices = ("cpu", "cuda") if gpu_info() else ("cpu",)  # the CUDA floor is skipped without a device
    assert set(seed) == {f"test_floor[quadratic-{size}-{device}-{dtype}]" for size in ("n100,seed100", "n1000")
                         for device in devices for dtype in backends.DTYPES}  # fmt: skip
    for bench in seed.values():
        info = bench["extra_info"]
        assert info["data_bytes"] == 2 * info["n"] * np.dtype(info["dtype"]).itemsize
        assert info["bandwidth_Bps"] == pytest.approx(info["data_bytes"] / bench["stats"]["median"])
        assert info["method"]
    # Every problem's floors, at each of its sizes under --sweep (those of n = SWEEP_N): exactly its floor_bytes,
    # its problem named.
    others = [b["extra_info"] for b in every]
    sized = {(name, *sorted(sizes.items())) for name, sizes in default_problems(True, [SWEEP_N])}
    assert ("linear", ("d", 64), ("n", SWEEP_N)) in sized  # a sweep size beyond linear's DEFAULT_SIZES
    assert ("quadratic", ("n", 100), ("seed", 100)) in sized  # the tutorial's
    assert {(i["problem"]["name"], *sorted((k, v) for k, v in i["problem"]["params"].items()
                                          if k != "noise" and (k, v) != ("seed", 0)))
            for i in others} == sized  # fmt: skip
    for info in others:
        params = {k: v for k, v in info["problem"]["params"].items() if k not in ("n", "seed")}
        module = problems.get(info["problem"]["name"])
        assert info["data_bytes"] == module.floor_bytes(info["n"], np.dtype(info["dtype"]).itemsize, **params)


@pytest.mark.slow  # cold starts: fresh processes with empty compile caches
def test_cold_start_runs_in_a_fresh_process_with_empty_caches():
    from bench import cold_start

    trainer = backends.get_trainer("numpy-manual-fused-cpu")
    fresh = cold_start.cold_start(trainer, backends.seed_problem(), backends.TrainConfig(dtype="float32"), False)
    assert 0 < fresh["cold_start_s"] < cold_start.COLD_START_TIMEOUT_S
    # Every warm fit() of the fresh process is kept, and their median is the one reported.
    assert len(fresh["fresh_fits"]) >= 5
    assert fresh["fresh_fit_s"] == statistics.median(fresh["fresh_fits"]) > 0
    # ... each beside a bare run() of the same process, which the fit overhead target holds it against.
    assert len(fresh["fresh_runs"]) == len(fresh["fresh_fits"])
    assert fresh["fresh_run_s"] == statistics.median(fresh["fresh_runs"]) > 0
    with pytest.raises(ValueError, match="tutorial"):
        cold_start.cold_start(trainer, backends.make_problem(10, 0), backends.TrainConfig(), False)
    cmd = [sys.executable, "-m", "bench.cold_start", "numba-native-loop-cpu", "float64", "5", "0.001"]
    if backends.available()["numba-native-loop-cpu"].ok:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
        assert json.loads(out.splitlines()[-1])["first_call_s"] > 0


def test_planted_slowdown_slows_the_run_and_keeps_the_result():
    from bench.plant import _Slowed

    class Sleeper:
        def run(self):
            time.sleep(0.01)
            return "raw"

        def result(self, raw):
            return raw.upper()

    slowed = _Slowed(Sleeper(), factor=3.0)
    start = time.perf_counter()
    assert slowed.result(slowed.run()) == "RAW"
    assert time.perf_counter() - start >= 0.03  # its 10 ms run, then twice that spent spinning


@pytest.mark.slow  # the saved run
def test_saved_run_keeps_every_rounds_time(saved_run):
    # bench/conftest.py turns on --benchmark-save-data: reports.stats tests on these samples.
    data = json.loads(saved_run[0].read_text())
    for bench in data["benchmarks"]:
        stats = bench["stats"]
        assert len(stats["data"]) == stats["rounds"]
        assert min(stats["data"]) == stats["min"]

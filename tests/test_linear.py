"""Problem ``linear`` (problems.linear): its hand-derived gradient, its learning rate, and every trainer that
runs it against the float64 NumPy reference over the whole loss history.

Tolerances: the conformance kit's (regbench/conformance/checks.py, with their derivation): float64 every loss
of the history within 1e-12 relative of the reference's, float32 the seed's eps bounds scaled by
``max(1, n/5000)·max(1, d/16)``.

Tiers: the default tier runs the trainers that compile nothing on one small problem (a second or two); the
compiling trainers (torch.compile, jax.jit, Numba), the default run's small size, the hypothesis test
over random (n, d), and the whole compare and report commands over a run with linear are in the slow tier.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backends
import problems
from backends import DTYPES, RegisteredTrainer, TrainerSpec, flat, runs, spec_of, specs
from backends.metrics import agreement, least_squares, optimum_gap, reference_fit
from backends.numpy_manual import linear_loss_and_gradient
from bench.params import trainer_params
from problems import linear
from records.model import validate_run
from regbench.cli import main
from regbench.conformance.checks import assert_agrees

LINEAR = tuple(s.id for s in specs() if "linear" in s.problems and not s.distributed)
DATA_PARALLEL = tuple(s.id for s in specs() if "linear" in s.problems and s.distributed)
#: The default tier's: they compile nothing (JAX's eager steps compile each operation on first use: 2 s a dtype).
CHEAP = tuple(t for t in LINEAR if not spec_of(t).compiles and spec_of(t).backend != "jax")
COMPILING = tuple(t for t in LINEAR if t not in CHEAP)


def config_for(problem: backends.Problem, dtype: str, epochs: int = 800) -> backends.TrainConfig:
    return backends.TrainConfig(epochs=epochs, lr=linear.lr(problem.n, d=problem.d), dtype=dtype)


@pytest.fixture(scope="module")
def small() -> backends.Problem:
    return backends.make_linear_problem(200, 8, 4)


# --- the problem module --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", problems.names())
def test_problem_module_declares_the_contract(name):
    module = problems.get(name)
    assert name == module.NAME
    assert not [attr for attr in problems.CONTRACT if not hasattr(module, attr)]
    for sizes in (*module.DEFAULT_SIZES, *module.SWEEP_SIZES):
        assert set(sizes) - {"n", "seed"} <= set(module.PARAMS)
    data = module.make(50, 1)
    assert data.x.dtype == np.float64
    assert data.y.shape == (50, 1)
    float32 = module.make(50, 1, dtype="float32")
    assert float32.x.dtype == np.float32
    assert float32.y.dtype == np.float32
    assert float32.x.tobytes() == data.x.astype(np.float32).tobytes()  # the same draws, converted once


def test_quadratic_module_is_the_seed_recipe(seed):
    x, y, params0 = problems.get("quadratic").make(100, 100)
    assert (x.tobytes(), y.tobytes(), params0) == (seed.x.tobytes(), seed.y.tobytes(), seed.params0)


def test_linear_problem_is_seeded_and_valid():
    a, b = backends.make_linear_problem(30, 4, 9), backends.make_linear_problem(30, 4, 9)
    assert a.x.tobytes() == b.x.tobytes()
    assert a.y.tobytes() == b.y.tobytes()
    assert (a.model, a.n, a.d) == ("linear", 30, 4)
    assert {name: value.shape for name, value in a.params0.items()} == {"theta": (4,), "b": ()}
    assert a.x.min() >= -1
    assert a.x.max() <= 1
    assert not a.x.flags.writeable
    assert not any(value.flags.writeable for value in a.params0.values())
    assert backends.make_named_problem("linear", 30, 9, d=4).x.tobytes() == a.x.tobytes()
    with pytest.raises(ValueError, match=r"^d must be a positive integer"):
        backends.make_linear_problem(30, 0, 9)
    with pytest.raises(ValueError, match=r"^params0\['theta'\] must have shape \(4,\), got \(2,\)"):
        backends.Problem(a.x, a.y, {"theta": [1.0, 2.0], "b": 0.0}, model="linear")
    with pytest.raises(ValueError, match=r"^model must be one of"):
        backends.Problem(a.x, a.y, a.params0, model="cubic")
    with pytest.raises(ValueError, match=r"^x must have shape \(n,\) or \(n, 1\): the seed's model takes one"):
        backends.Problem(a.x, a.y, {"w": 0.0, "b": 0.0})  # X of 4 features for the seed's model


@pytest.mark.parametrize(("theta_scale", "b"), [(0.0, 0.0), (1.0, 2.5), (-4.0, -7.0)])
def test_linear_gradient_matches_central_differences(theta_scale, b):
    problem = backends.make_linear_problem(157, 6, 2)
    x, y = problem.x, problem.y
    w = theta_scale * np.linspace(-1, 1, 6)
    grads = linear.gradient(np, {"theta": w, "b": b}, x, y[:, 0])[1]
    grad_w, grad_b = grads["theta"], grads["b"]

    def loss(w, b):
        return float(linear.loss(np, {"theta": w, "b": b}, x, y[:, 0]))

    h = 1e-5  # the loss is quadratic: the central difference is exact up to rounding
    scale = abs(loss(w, b)) / h * np.finfo(float).eps * 10
    for j in range(6):
        step = np.eye(6)[j] * h
        fd = (loss(w + step, b) - loss(w - step, b)) / (2 * h)
        assert grad_w[j] == pytest.approx(fd, abs=scale, rel=1e-9)
    fd_b = (loss(w, b + h) - loss(w, b - h)) / (2 * h)
    assert grad_b == pytest.approx(fd_b, abs=scale, rel=1e-9)
    # The trainers' NumPy form (the tutorial's statements on (n, d) and (d, 1)) computes the same.
    loss, gw, gb = linear_loss_and_gradient(x, y, w.reshape(-1, 1), np.full((1, 1), b))
    np.testing.assert_allclose(gw[:, 0], grad_w, rtol=1e-12, atol=1e-9)
    assert float(gb) == pytest.approx(grad_b, rel=1e-12, abs=1e-9)
    assert float(loss) == pytest.approx(float(linear.loss(np, {"theta": w, "b": b}, x, y[:, 0])), rel=1e-12)


@pytest.mark.parametrize(("n", "d"), [(1, 1024), (10, 1024), (100, 16), (1000, 16), (120, 120), (3, 1)])
def test_linear_learning_rate_is_stable_for_every_d(n, d):
    """lr·λmax of the Hessian [X 1]ᵀ[X 1] stays near 0.1, far below 2, where 0.1/n would diverge for d ≫ n."""
    x = backends.make_linear_problem(n, d, 0).x
    z = np.column_stack([x, np.ones(n)])
    top = np.linalg.eigvalsh(z.T @ z).max() if d < n else np.linalg.eigvalsh(z @ z.T).max()
    assert top * linear.lr(n, d=d) < 0.2


def test_optimum_and_metrics_take_a_vector(small):
    optimum, loss_opt = least_squares(small)
    assert {name: value.shape for name, value in optimum.items()} == {"theta": (8,), "b": ()}
    assert loss_opt > 0
    ref = reference_fit(small, config_for(small, "float64"))
    gap = optimum_gap(ref, small)
    assert gap["params"]["theta"]["optimum"] is optimum["theta"]
    assert gap["params"]["b"]["optimum"] == optimum["b"]
    assert gap["opt_distance"] < 1e-3
    assert all(param["opt_rel"] < 1e-3 for param in gap["params"].values())
    zero = {"ref_diff": 0.0, "ref_rel": 0.0}
    assert agreement(ref, ref) == {"ref_loss_rel": 0.0, "params": {"theta": zero, "b": zero}}


# --- trainers ------------------------------------------------------------------------------------------------------


def test_registry_declares_problems():
    assert all(s.problems == ("quadratic", "linear") for s in specs())  # every trainer has code for both
    assert runs("numpy-manual-tutorial-cpu", "mlp")  # by the model's gradient, written once
    assert not runs("numpy-manual-fused-cpu", "mlp")
    assert not runs("numba-native-loop-cpu", "logistic")
    assert runs("torch-autograd-dp-cpu", "linear")
    assert not runs("no-such-trainer", "quadratic")
    assert TrainerSpec("acme", "magic", "fast", "cpu", "acme").problems == ("quadratic",)  # a spec's default


def test_a_trainer_refuses_a_problem_it_does_not_run(small):
    """One line, before anything is imported or converted: a spec that declares the seed's problem alone."""
    trainer = RegisteredTrainer(TrainerSpec("numpy", "manual", "tutorial", "cpu", "backends.numpy_manual"))
    with pytest.raises(
        ValueError, match=r"^numpy-manual-tutorial-cpu does not run model 'linear'; it runs: quadratic$"
    ):
        trainer.prepare(small, config_for(small, "float64"))


@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(CHEAP))
def test_fit_linear(trainer, dtype, small):
    """30 epochs (a second in all); the default run's whole history is held in the slow tier."""
    config = config_for(small, dtype, epochs=30)
    assert_agrees(trainer.fit(small, config), reference_fit(small, config), dtype, small.n, small.d)


@pytest.mark.slow  # compiles (torch.compile, jax.jit, Numba, JAX's eager operations) per dtype
@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(COMPILING))
def test_fit_linear_compiled(trainer, dtype, small):
    config = config_for(small, dtype, epochs=300)
    assert_agrees(trainer.fit(small, config), reference_fit(small, config), dtype, small.n, small.d)


@pytest.mark.slow  # the default run's small size, 800 epochs, every trainer
@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(LINEAR))
def test_fit_linear_default_size(trainer, dtype):
    problem = backends.make_linear_problem(1000, 16, 0)
    config = config_for(problem, dtype)
    first = trainer.fit(problem, config)
    assert_agrees(first, reference_fit(problem, config), dtype, problem.n, problem.d)
    optimum, _ = least_squares(problem)
    assert np.abs(flat(first.params) - flat(optimum)).max() < 0.01  # it learned θ*
    second = trainer.fit(problem, config)
    assert first.losses.tobytes() == second.losses.tobytes()
    assert flat(first.params).tobytes() == flat(second.params).tobytes()


@pytest.mark.slow  # past Numba's parallel form (n ≥ 2·LINEAR_SHARE and n·d ≥ 2¹⁷) and JAX's small-problem forms
@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(LINEAR))
def test_fit_linear_threaded(trainer, dtype):
    problem = backends.make_linear_problem(20_011, 8, 5)
    config = config_for(problem, dtype, epochs=10)
    first = trainer.fit(problem, config)
    assert_agrees(first, reference_fit(problem, config), dtype, problem.n, problem.d)
    assert first.losses.tobytes() == trainer.fit(problem, config).losses.tobytes()


@pytest.mark.slow  # hypothesis: a compile per new shape for the compiling trainers
@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(LINEAR))
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 2000), d=st.integers(1, 256), problem_seed=st.integers(0, 2**32 - 1))
def test_fit_linear_random_problem(trainer, dtype, n, d, problem_seed):
    if trainer.id.startswith("torch-autograd-compiled"):
        # Dynamo counts every specialisation of a code object (shape, dtype, 0/1 sizes) against its recompile limit
        # (8), for the whole process. Each model and summation regime has code objects of its own (a user's 28 fits
        # of 14 random shapes in one process compiled without reaching it, 2026-12-02), but the slow tier compiles
        # many more: a fresh Dynamo per example keeps this check about agreement.
        import torch

        torch._dynamo.reset()
    problem = backends.make_linear_problem(n, d, problem_seed)
    config = config_for(problem, dtype, epochs=100)
    assert_agrees(trainer.fit(problem, config), reference_fit(problem, config), dtype, n, d)


# --- records: the identity holds the problem and its parameters ----------------------------------------------------


def _run_with_linear(ds: tuple[int, ...]) -> dict:
    """The committed current-schema run cut to its first fit, plus a copy of it for problem linear at each d."""
    (source,) = (Path(__file__).parent / "data" / "v4").glob("*/*.json")
    data = json.loads(source.read_text())
    fit = next(b for b in data["benchmarks"] if b["extra_info"]["kind"] == "fit")
    data["benchmarks"] = [fit]
    for d in ds:
        twin = copy.deepcopy(fit)
        twin["name"] = fit["name"].replace("test_fit", f"test_problem_linear_d{d}")
        params = {"n": fit["extra_info"]["n"], "seed": 0, "d": d, "noise": 0.2}
        theta = {"shape": [d], "norm": 0.5 * d**0.5, "values": [0.5] * d}
        twin["extra_info"].update(kind="fit", problem={"name": "linear", "params": params},
                                  params={"theta": theta, "b": fit["extra_info"]["params"]["b"]})  # fmt: skip
        data["benchmarks"].append(twin)
    return data


def test_identity_holds_the_problem_and_its_parameters():
    run = validate_run(_run_with_linear((16, 64)))  # a run holds each identity once: it would refuse a duplicate
    identities = [b.identity() for b in run.fits]
    assert [i[1] for i in identities] == ["quadratic", "linear(d=16)", "linear(d=64)"]
    assert [i[:1] + i[2:] for i in identities[1:]] == [identities[0][:1] + identities[0][2:]] * 2
    dumped = [b["extra_info"] for b in run.model_dump()["benchmarks"]]
    assert list(dumped[0]["params"]) == ["w", "b"]  # each record names its own problem's parameters
    assert list(dumped[2]["params"]) == ["theta", "b"]
    assert dumped[2]["params"]["theta"]["values"] == [0.5] * 64
    assert all("data_dtype" not in d for d in dumped)  # float64 data: no key, as before there was one
    made = run.fits[0].extra_info.model_copy(update={"data_dtype": "float32"}).model_dump()
    assert made["data_dtype"] == "float32"


@pytest.mark.slow  # a whole command (bootstrap intervals; charts): 5-10 s
def test_compare_pairs_only_like_problems(tmp_path, capsys):
    base, new = tmp_path / "0001_base.json", tmp_path / "0002_new.json"
    base.write_text(json.dumps(_run_with_linear((16, 64))))
    new.write_text(json.dumps(_run_with_linear((16, 32))))
    main(["compare", str(base), str(new), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert sorted(row["problem"] for row in doc["rows"]) == ["linear(d=16)", "quadratic"]
    assert [m.split(" (")[1].split(",")[0] for m in doc["missing"]] == ["linear(d=64)"]
    assert [a.split(" (")[1].split(",")[0] for a in doc["added"]] == ["linear(d=32)"]


@pytest.mark.slow  # a whole command (bootstrap intervals; charts): 5-10 s
def test_report_has_a_section_per_problem(tmp_path):
    path = tmp_path / "0001_run.json"
    path.write_text(json.dumps(_run_with_linear((16, 64))))
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    for d in (16, 64):
        assert f"## Problem linear(d={d}): speed" in md
        assert f"## Problem linear(d={d}): accuracy and agreement with the float64 NumPy reference" in md
    speed = md.split("## Problem linear(d=16): speed")[1].split("## ")[0]
    assert "numpy-manual-tutorial-cpu" in speed
    assert "linear" not in md.split("## Speed: one 800-epoch")[1].split("## ")[0]  # the seed's section: its own


@pytest.mark.parametrize("variant", ["tutorial", "fused"])
@pytest.mark.parametrize("dtype", backends.DTYPES)
def test_cuda_code_path_is_the_cpu_code(variant, dtype, small):
    """The CuPy trainers' code on a NumPy stand-in (tests/test_gpu.py): the CPU trainer's bits for linear too."""
    from tests.test_gpu import fit_on_stand_in

    got, want = fit_on_stand_in(variant, small, config_for(small, dtype, epochs=50))
    assert got.losses.tobytes() == want.losses.tobytes()
    assert flat(got.params).tobytes() == flat(want.params).tobytes()
    assert got.final_loss == want.final_loss


#: The Numba-CUDA kernels in the simulator: several blocks of residuals (n > 32 threads), and of updates (d > 32).
SIM_CASES = [{"n": 37, "d": 3, "seed": 2, "epochs": 6, "lr": 0.0025}, {"n": 45, "d": 40, "seed": 3, "epochs": 3,
                                                                        "lr": 0.001}]  # fmt: skip


@pytest.mark.slow  # Numba's CUDA simulator, in a subprocess (a minute)
def test_numba_cuda_kernels_in_simulator_agree():
    if importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("numba-cuda is not installed (pip install 'numba-cuda[cu13]')")
    cases = [{**case, "dtype": dtype, "runs": 2, "BLOCK_THREADS": 32} for case in SIM_CASES for dtype in DTYPES]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "tests.cudasim_fits"], input=json.dumps(cases), capture_output=True,
                         text=True, cwd=root, env=env, timeout=600, check=True)  # fmt: skip
    results = json.loads(out.stdout)
    assert isinstance(results, list), results
    for case, got in zip(cases, results, strict=True):
        problem = backends.make_linear_problem(case["n"], case["d"], case["seed"])
        config = backends.TrainConfig(epochs=case["epochs"], lr=case["lr"], dtype=case["dtype"])
        first, second = (
            backends.FitResult.from_arrays(run["params"], run["losses"], run["final_loss"]) for run in got["runs"]
        )
        assert_agrees(first, reference_fit(problem, config), case["dtype"], problem.n, problem.d)
        assert first.losses.tobytes() == second.losses.tobytes()  # fixed order: the same bits every run
        assert flat(first.params).tobytes() == flat(second.params).tobytes()


@pytest.mark.slow  # a group of worker processes a fit (1-5 s each on 2 cores)
@pytest.mark.parametrize(("trainer_id", "dtype"), trainer_params(DATA_PARALLEL))
@pytest.mark.parametrize("workers", [2, 3])
def test_fit_linear_data_parallel(trainer, dtype, workers):
    """101 points: uneven shards (JAX pads them); the parts (loss, ∂θ…, ∂b) are summed by one all-reduce."""
    problem = backends.make_linear_problem(101, 5, 1)
    config = backends.TrainConfig(epochs=100, lr=linear.lr(101, d=5), dtype=dtype, workers=workers)
    try:
        trainer.prepare(problem, config).close()  # starts nothing: checks the count fits here
    except ValueError as exc:  # more workers than GPUs
        pytest.skip(str(exc))
    ref = reference_fit(problem, backends.TrainConfig(epochs=100, lr=config.lr))
    assert_agrees(trainer.fit(problem, config), ref, dtype, problem.n, problem.d)

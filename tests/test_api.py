"""The public API of ``backends``: registry, validation, availability, import hygiene."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import backends

FRAMEWORKS = ("torch", "jax", "jaxlib", "numba", "numba.cuda", "numba_cuda", "cupy")


def test_import_loads_no_framework():
    code = (
        "import sys, backends, bench.params; backends.trainer_ids(); "
        f"print(','.join(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_available_lists_every_trainer_with_a_reason():
    avail = backends.available()
    assert list(avail) == list(backends.trainer_ids())
    for family in ("numpy-manual-", "torch-autograd-", "jax-grad-", "numba-native-"):
        assert any(tid.startswith(family) for tid in avail), family
    assert "torch-autograd-eager-cuda" in avail
    for tid, a in avail.items():
        assert isinstance(a, backends.Availability)
        assert a.ok == (a.reason == ""), tid
    assert avail[backends.REFERENCE_ID].ok


def test_cuda_trainers_say_why_without_a_gpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    for tid in ("torch-autograd-eager-cuda", "torch-autograd-compiled-cuda", "torch-autograd-cudagraph-cuda"):
        a = backends.available()[tid]
        assert not a.ok
        assert "no CUDA device" in a.reason
        with pytest.raises(backends.TrainerUnavailable, match="no CUDA device") as info:
            backends.get_trainer(tid)
        assert info.value.reason == a.reason


def test_unknown_trainer_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown trainer 'numpy-magic-cpu'") as info:
        backends.get_trainer("numpy-magic-cpu")
    for tid in backends.trainer_ids():
        assert tid in str(info.value)


def test_trainer_protocol():
    trainer = backends.get_trainer("numpy-manual-fused-cpu")
    assert isinstance(trainer, backends.Trainer)
    assert (trainer.id, trainer.backend, trainer.device, trainer.variant) == (
        "numpy-manual-fused-cpu",
        "numpy",
        "cpu",
        "fused",
    )
    assert isinstance(trainer.prepare(backends.seed_problem(), backends.TrainConfig()), backends.PreparedFit)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": -3}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"lr": math.inf}, "lr"),
        ({"lr": "fast"}, "lr"),
        ({"dtype": "float16"}, "dtype"),
        ({"dtype": "int32"}, "dtype"),
        ({"dtype": "bfloat"}, "dtype"),
    ],
)
def test_bad_config(kwargs, field):
    with pytest.raises(ValueError, match=rf"^{field} "):
        backends.TrainConfig(**kwargs)


def test_config_is_frozen_and_normalised():
    config = backends.TrainConfig(epochs=np.int64(5), lr=1, dtype=np.float32)
    assert (config.epochs, config.lr, config.dtype) == (5, 1.0, "float32")
    with pytest.raises(AttributeError):
        config.lr = 2.0


GOOD = np.linspace(-1, 1, 5)


@pytest.mark.parametrize(
    ("x", "y", "w0", "field"),
    [
        (GOOD, GOOD[:4], 0.5, "x and y"),
        ([], [], 0.5, "x"),
        (GOOD, np.array([1, 2, np.nan, 4, 5]), 0.5, "y"),
        (np.array([1, np.inf, 3, 4, 5]), GOOD, 0.5, "x"),
        (np.ones((5, 2)), GOOD, 0.5, "x"),
        (["a"] * 5, GOOD, 0.5, "x"),
        (GOOD, GOOD, math.nan, "w0"),
    ],
)
def test_bad_problem(x, y, w0, field):
    with pytest.raises(ValueError, match=rf"^{field} "):
        backends.Problem(x, y, w0, 0.1)


def test_problem_is_read_only_float64_column():
    problem = backends.Problem([0, 1, 2], [1, 2, 3], 0.5, 0.25)
    assert problem.x.shape == (3, 1)
    assert problem.x.dtype == np.float64
    assert problem.n == 3
    with pytest.raises(ValueError, match="read-only"):
        problem.x[0] = 5


@pytest.mark.parametrize("n", [0, -1, 2.0])
def test_bad_make_problem(n):
    with pytest.raises(ValueError, match=r"^n "):
        backends.make_problem(n, 0)


def test_make_problem_is_the_seed_recipe():
    a, b = backends.make_problem(100, 100), backends.seed_problem()
    assert a.x.tobytes() == b.x.tobytes()
    assert a.y.tobytes() == b.y.tobytes()
    assert backends.make_problem(1000, 1).y.tobytes() != backends.make_problem(1000, 2).y.tobytes()
    noiseless = backends.make_problem(50, 3, noise=0.0)
    np.testing.assert_array_equal(noiseless.y, 3 * noiseless.x**2 + 2)


def test_every_spec_matches_its_module():
    """The registry and the backend modules declare the same (device, variant) pairs, and ids are well formed."""
    from backends._registry import ROLES, specs

    modules = {}
    for spec in specs():
        assert spec.id == f"{spec.backend}-{spec.method}-{spec.variant}-{spec.device}"
        assert set(spec.roles) <= set(ROLES), spec.id
        modules.setdefault(spec.module, set()).add((spec.device, spec.variant))
    for name, pairs in modules.items():
        module = pytest.importorskip(name)
        declared = {(device, variant) for device, variants in module.VARIANTS.items() for variant in variants}
        assert declared == pairs, name
        for device, variant in pairs:
            reason = module.unavailable(variant, device)
            assert reason == "" or any(w in reason for w in ("no ", "needs", "not installed")), (name, variant, reason)
        assert module.unavailable("no-such-variant", "cpu")


def test_roles_are_declared_once():
    from backends._registry import BASELINE, CPU_LIMIT, NATIVE_LOOP, REFERENCE, baseline_of, roles_of, with_role

    assert with_role(REFERENCE) == (backends.REFERENCE_ID,)
    assert len(with_role(CPU_LIMIT)) == 1
    assert len(with_role(NATIVE_LOOP)) == 1
    for tid in backends.trainer_ids():
        base = baseline_of(tid)
        if base is not None:
            assert BASELINE in roles_of(base)
            assert base.split("-")[0] == tid.split("-")[0]
            assert base.rsplit("-", 1)[1] == tid.rsplit("-", 1)[1]
    with pytest.raises(ValueError, match="unknown role"):
        with_role("fastest")

"""The public API of ``backends``: registry, validation, availability, import hygiene."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import backends
import problems
from backends.builtin import TRAINERS
from backends.families import families

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
        (GOOD, GOOD, math.nan, r"params0\['w'\]"),
    ],
)
def test_bad_problem(x, y, w0, field):
    with pytest.raises(ValueError, match=rf"^{field} "):
        backends.Problem(x, y, {"w": w0, "b": 0.1})


def test_problem_parameters_are_the_model_s_by_name():
    """Every parameter the family declares, none more or less, each a read-only float64 array of its shape."""
    problem = backends.Problem([0, 1, 2], [1, 2, 3], {"b": 1, "w": 0.5})
    assert list(problem.params0) == ["w", "b"]  # the model's order, whatever the caller's
    assert all(v.dtype == np.float64 and v.shape == () and not v.flags.writeable for v in problem.params0.values())
    for wrong in ({"w": 0.5}, {"w": 0.5, "b": 0.1, "c": 0.0}, [0.5, 0.1]):
        with pytest.raises(ValueError, match=r"^params0 must map the model's parameters \['w', 'b'\] to values"):
            backends.Problem(GOOD, GOOD, wrong)
    with pytest.raises(ValueError, match=r"^params0\['theta'\] must have shape \(2,\), got \(3,\)$"):
        backends.Problem(np.ones((5, 2)), GOOD, {"theta": [1, 2, 3], "b": 0}, model="linear")


def test_problem_is_read_only_float64_column():
    problem = backends.Problem([0, 1, 2], [1, 2, 3], {"w": 0.5, "b": 0.25})
    assert problem.x.shape == (3, 1)
    assert problem.x.dtype == np.float64
    assert problem.n == 3
    with pytest.raises(ValueError, match="read-only"):
        problem.x[0] = 5


def test_problem_made_in_float32_stays_float32():
    """Data made in the working dtype are kept (a float32 fit then converts nothing); any other data are float64."""
    seed, made = backends.seed_problem(), backends.seed_problem("float32")
    assert (seed.dtype, made.dtype) == ("float64", "float32")
    assert made.x.tobytes() == seed.x.astype(np.float32).tobytes()
    assert made.y.tobytes() == seed.y.astype(np.float32).tobytes()
    assert made.params0 == seed.params0
    assert not made.x.flags.writeable
    linear = backends.make_linear_problem(50, 3, 1, dtype="float32")
    assert (linear.dtype, linear.y.dtype, linear.params0["theta"].dtype) == ("float32", "float32", np.float64)
    assert backends.make_named_problem("linear", 50, 1, dtype="float32", d=3).x.tobytes() == linear.x.tobytes()
    mixed = backends.Problem(np.ones(3, np.float32), [1.0, 2.0, 3.0], {"w": 0.5, "b": 0.1})  # a list y: float64
    assert (mixed.x.dtype, mixed.y.dtype) == (np.float64, np.float64)
    with pytest.raises(ValueError, match=r"^dtype must be one of \('float32', 'float64'\), got 'float16'$"):
        backends.make_problem(10, 0, dtype="float16")


@pytest.mark.parametrize(
    "problem",
    [
        pytest.param(lambda: backends.seed_problem(), id="seed-float64"),
        pytest.param(lambda: backends.seed_problem("float32"), id="seed-float32"),
        pytest.param(lambda: backends.make_linear_problem(40, 3, 0, dtype="float32"), id="linear-float32"),
        pytest.param(
            lambda: backends.Problem(
                np.asfortranarray(np.ones((5, 2))), [1] * 5, {"theta": [0, 0], "b": 0}, model="linear"
            ),
            id="given-fortran-order",
        ),
    ],
)
def test_problem_data_are_aligned_for_xla_to_use_them_in_place(problem):
    """x and y start at a multiple of 64 bytes, C-contiguous: XLA's CPU client takes such a host array as it is,
    and copied any other (NumPy aligns to 16) on every call of a JAX fit."""
    problem = problem()
    for a in (problem.x, problem.y):
        assert a.ctypes.data % backends._core.ALIGNMENT == 0
        assert a.flags.c_contiguous
        assert not a.flags.writeable
    jax = pytest.importorskip("jax")
    x = problem.x.ravel() if problem.d == 1 else problem.x
    with jax.enable_x64(problem.dtype == "float64"):  # float64 kept as it is, as a float64 fit does
        assert jax.device_put(x, jax.devices("cpu")[0]).unsafe_buffer_pointer() == problem.x.ctypes.data


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
    from backends._registry import baseline_of, roles_of, with_role
    from records.roles import BASELINE, CPU_LIMIT, NATIVE_LOOP, REFERENCE

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


# --- parity: every argument refused alike, in one line naming it and its value, before anything is allocated ------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": True}, "lr must be a real number, got True"),
        ({"lr": np.bool_(True)}, "lr must be a real number, got "),
        ({"lr": "0.001"}, "lr must be a real number, got '0.001'"),
        ({"lr": None}, "lr must be a real number, got None"),
        ({"lr": [1e-3, 2e-3]}, "lr must be a real number, got [0.001, 0.002]"),
        ({"epochs": "800"}, "epochs must be an integer, got '800'"),
        ({"epochs": None}, "epochs must be an integer, got None"),
        ({"dtype": None}, "dtype must be one of ('float32', 'float64'), got None"),
        ({"dtype": 64}, "dtype must be one of ('float32', 'float64'), got 64"),
        ({"workers": None}, "workers must be a positive integer, got None"),
    ],
)
def test_config_refuses_what_is_not_a_number_of_its_kind(kwargs, message):
    """lr=True or "0.001" were taken (as 1.0, 0.001), lr=None said "got nan", dtype=None became float64."""
    with pytest.raises(ValueError, match=r"^\w+ must be ") as info:
        backends.TrainConfig(**kwargs)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_config_takes_numbers_of_every_real_kind():
    for lr in (1, 1e-3, np.float32(1e-3), np.int64(1), np.array(1e-3), np.array([1e-3])):
        assert type(backends.TrainConfig(lr=lr).lr) is float
    assert backends.TrainConfig(dtype=np.dtype("float32")).dtype == "float32"


@pytest.mark.parametrize(("field", "value"), [("w", "0.5"), ("w", True), ("b", None)])
def test_problem_refuses_parameters_that_are_not_numbers(field, value):
    params0 = {"w": 0.5, "b": 0.1, field: value}
    with pytest.raises(ValueError, match=rf"^params0\['{field}'\] must be a real number, got {value!r}$"):
        backends.Problem(GOOD, GOOD, params0)


@pytest.mark.parametrize(("seed", "message"), [(-1, "-1"), (2**32, "4294967296"), (1.5, "1.5"), (None, "None")])
def test_bad_make_problem_seed(seed, message):
    with pytest.raises(ValueError, match=rf"^seed must be an integer in \[0, 2\*\*32\), got {message}$"):
        backends.make_problem(10, seed)


def test_make_problem_refuses_a_size_beyond_memory_before_allocating(monkeypatch):
    """10⁹ points would take ~45 GB at make_problem's peak: refused from the system's figure, nothing allocated."""
    import tracemalloc

    from backends import _core

    with pytest.raises(ValueError, match=r"^n=1000000000000: the problem needs 4.47e\+04 GiB, more than the "):
        backends.make_problem(10**12, 0)  # more than any machine has
    monkeypatch.setattr(_core, "available_memory", lambda: 8 * 2**30)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"^n=1000000000: the problem needs 44.7 GiB, more than the 8 GiB "):
            backends.make_problem(10**9, 0)
        assert tracemalloc.get_traced_memory()[1] < 2**20
    finally:
        tracemalloc.stop()
    assert backends.make_problem(1000, 0).n == 1000  # small sizes never read the system's figure


#: Initial parameters as a validated Problem holds them.
OK = backends.seed_problem().params0


class Unchecked(backends.Problem):
    """A subclass that skips Problem's validation (and so its conversions)."""

    def __post_init__(self) -> None:
        pass


class UncheckedConfig(backends.TrainConfig):
    def __post_init__(self) -> None:
        pass


@pytest.mark.parametrize(
    ("problem", "config", "error", "message"),
    [
        (Unchecked([0.0, 1.0], [1.0, 2.0], OK), backends.TrainConfig(), TypeError,
         "problem.x must be a float32 or float64 array of shape (n, d), got list (a Unchecked that skipped"),
        (Unchecked(np.ones((4, 1), np.float16), np.ones((4, 1)), OK), backends.TrainConfig(), TypeError,
         "problem.x must be a float32 or float64 array of shape (n, d), got float16 array of shape (4, 1)"),
        (Unchecked(np.ones((4, 1), np.float32), np.ones((4, 1)), OK), backends.TrainConfig(), TypeError,
         "problem.x and problem.y differ in dtype: float32 and float64"),
        (Unchecked(np.ones((4, 1)), np.ones((3, 1)), OK), backends.TrainConfig(), TypeError,
         "problem.x and problem.y differ in length: 4 and 3"),
        (Unchecked(np.ones((4, 1)), np.ones((4, 1)), {"w": "0.5", "b": OK["b"]}), backends.TrainConfig(), TypeError,
         "problem.params0['w'] must be a finite float64 array of shape (), got '0.5'"),
        (Unchecked(np.ones((4, 1)), np.full((4, 1), np.nan), OK), backends.TrainConfig(), ValueError,
         "problem's y is not finite: nan"),
        (backends.seed_problem(), UncheckedConfig(lr="0.001"), ValueError, "lr must be a real number, got '0.001'"),
        (backends.seed_problem(), UncheckedConfig(dtype=np.float32), TypeError, "config fields {'epochs': 800, "),
    ],
    ids=["list", "float16", "dtypes", "lengths", "w0", "nan", "config-lr", "config-dtype"],
)  # fmt: skip
def test_fit_refuses_subclasses_that_skipped_validation(problem, config, error, message):
    """Such a problem used to fail deep inside a framework; now every trainer's prepare refuses it in one line."""
    trainer = backends.get_trainer(backends.REFERENCE_ID)
    with pytest.raises(error) as info:
        trainer.prepare(problem, config)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("module", sorted({spec.module for spec in TRAINERS if not spec.distributed}))
def test_a_backend_s_families_are_the_keys_of_its_table(module):
    """A built-in spec's families are derived from its module's ``PREPARE`` table (family -> code), read from the
    module's source without importing it (backends.families): what is read is the table Python builds."""
    assert {spec.problems for spec in TRAINERS if spec.module == module} == {families(module)}
    loaded = pytest.importorskip(module, reason=f"{module} cannot be imported here")
    assert families(module) == tuple(loaded.PREPARE)
    assert set(loaded.PREPARE) <= set(problems.MODELS)


@pytest.mark.parametrize(
    ("source", "message"),
    [("PREPARE = dict(quadratic=None)\n", "PREPARE is not a dict literal"),
     ("def f():\n    PREPARE = {}\n", "no PREPARE table"),
     ("PREPARE = {QUADRATIC: None}\n", "PREPARE is not a dict literal")],
)  # fmt: skip
def test_a_table_that_cannot_be_read_names_its_module(tmp_path, monkeypatch, source, message):
    name = f"backend_{abs(hash(source))}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=f"^{name}: {message}"):
        families(name)

"""The conformance kit's assertions, held once: the kit's tests and regbench's own tests/ call these.

Agreement tolerances are in units of the working dtype's machine epsilon (eps). Measured with every CPU
trainer on 16 random problems of the seed's model, n from 1 to 5000, 200 epochs, lr = 0.1/n (2026-11-24):
|Δloss_i| ≤ 67 eps·loss_i wherever loss_i > 1e-3·loss_0 (mostly the float32 rounding of y itself, relative
to residuals ~0.06), |Δloss_i| ≤ 14 eps·loss_0 everywhere (the float32 losses of an exact fit, n ≤ 2, stall
near eps² while float64 goes on shrinking), |Δw|, |Δb| ≤ 4 eps·max(1, |w|). The bounds below leave a factor
of ten or more above those. Beyond the 5000 points they were measured on, they grow in proportion to n, as
the rounding bound of a sequential sum does (Higham, Accuracy and Stability, §4.2): at 200,003 points the
strictly ordered Numba loop is 281 eps off in w (float32), every reassociating trainer ≤ 3 eps.

Problem ``linear`` (d features): float64, every loss of the history within 1e-12 relative of the
reference's as well (measured ≤ 45 eps, 1e-14, n ≤ 1000, d ≤ 16, 2026-12-01); the eps bounds above are
scaled by ``max(1, d/16)`` too. A residual ``X_i·θ + b − y_i`` is a dot product of d terms, whose rounding
error is bounded by ``γ_{d+2}·(Σ_j|X_ij·θ_j| + |b| + |y_i|)`` (Higham, §3.1): it grows linearly with d, as
the sum over n points grows linearly with n (§4.2). Measured at d = 16, n ≤ 1000 (float32): ≤ 74 eps
relative in loss, ≤ 4 eps in θ; the bounds held for every CPU trainer over random (n ≤ 2000, d ≤ 256)
problems (2026-12-01).

Rules: plain functions over a trainer (anything with ``prepare`` and ``fit``), a problem and a config; an
assertion fails with what was expected. A PreparedFit with a ``close`` (a data-parallel fit's workers) is
closed however its check ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import backends
import problems
from backends import TrainerSpec
from backends.metrics import reference_fit

LOSS_RTOL_EPS = 1000
LOSS_ATOL_EPS = 200  # times the initial loss
PARAM_TOL_EPS = 50  # times max(1, |parameter|)
CALIBRATED_N = 5000
CALIBRATED_D = 16
FLOAT64_RTOL = 1e-12  # linear's float64 bound, and the data-parallel trainers' (tests/test_dp.py)


def tutorial(dtype: str) -> tuple[backends.Problem, backends.TrainConfig]:
    """The tutorial's problem and hyper-parameters: 100 points, 800 epochs, lr 1e-3."""
    return backends.seed_problem(), backends.TrainConfig(dtype=dtype)


def small_linear(dtype: str) -> tuple[backends.Problem, backends.TrainConfig]:
    """Problem ``linear`` at 200 points of 8 features, 300 epochs, its learning rate (problems.linear.lr)."""
    problem = backends.make_linear_problem(200, 8, 4)
    return problem, backends.TrainConfig(epochs=300, lr=problems.get("linear").lr(problem.n, d=problem.d), dtype=dtype)


def small_model(name: str, dtype: str) -> tuple[backends.Problem, backends.TrainConfig]:
    """A model family written once (problems.mlp, problems.logistic, a plugin's own) at 64 points and its default
    sizes otherwise, 100 epochs, its learning rate."""
    module = problems.get(name)
    problem = backends.make_named_problem(name, 64, 5)
    return problem, backends.TrainConfig(epochs=100, lr=module.lr(64, **module.PARAMS), dtype=dtype)


#: The kit's fits of the seed's and linear's families; any other family's is ``small_model``'s. Its checks all use
#: these, so a compiling trainer compiles nothing more for them.
FITS = {"quadratic": tutorial, "linear": small_linear}


def families(spec: TrainerSpec) -> tuple[str, ...]:
    """The model families the kit checks a trainer on: each family it runs (backends.runs) whose module is
    usable, regbench's and a plugin's own, in order."""
    return tuple(
        name for name in problems.usable() if name == problems.get(name).MODEL and backends.runs(spec.id, name)
    )


def in_float32(problem: backends.Problem) -> backends.Problem:
    """``problem`` with its data made in float32, as a user who works in float32 makes them (parameters kept)."""
    return backends.Problem(problem.x.astype(np.float32), problem.y.astype(np.float32), problem.params0,
                            name=problem.name, model=problem.model, sizes=problem.sizes)  # fmt: skip


def kit_fit(spec: TrainerSpec, name: str | None, dtype: str) -> tuple[backends.Problem, backends.TrainConfig]:
    """The kit's fit of model family ``name`` (None: the first the trainer runs); the calling test skipped where
    the trainer does not run it."""
    runs = families(spec)
    if name is None:
        name = runs[0] if runs else "quadratic"
    if name not in runs:
        pytest.skip(f"it does not run model {name} (it runs: {', '.join(runs)})")
    return FITS[name](dtype) if name in FITS else small_model(name, dtype)


def assert_agrees(
    result: backends.FitResult, ref: backends.FitResult, dtype: str, n: int, d: int | None = None
) -> None:
    """``result`` is within the tolerances of ``ref``, the float64 reference's fit of the same problem and config:
    the loss history, the final loss and every parameter, by name.

    ``d``: the features of a ``linear`` problem; None for the seed's model.
    """
    assert result.diverged is False  # a Python bool: results serialise as JSON
    assert type(result.final_loss) is float
    assert list(result.params) == list(ref.params), f"parameters {list(result.params)}, not {list(ref.params)}"
    for name, value in result.params.items():
        assert isinstance(value, np.ndarray), f"{name} is a {type(value).__name__}, not an array"
        assert value.dtype == np.float64, f"{name} is {value.dtype}, not float64"
        assert value.shape == ref.params[name].shape, f"{name} has shape {value.shape}, not {ref.params[name].shape}"
    assert result.losses.shape == ref.losses.shape
    if dtype == "float64" and d is not None:
        np.testing.assert_allclose(result.losses, ref.losses, rtol=FLOAT64_RTOL, atol=0)
        np.testing.assert_allclose(result.final_loss, ref.final_loss, rtol=FLOAT64_RTOL, atol=0)
    eps = float(np.finfo(dtype).eps) * max(1.0, n / CALIBRATED_N) * max(1.0, (d or 1) / CALIBRATED_D)
    atol = LOSS_ATOL_EPS * eps * ref.losses[0]
    np.testing.assert_allclose(result.losses, ref.losses, rtol=LOSS_RTOL_EPS * eps, atol=atol)
    np.testing.assert_allclose(result.final_loss, ref.final_loss, rtol=LOSS_RTOL_EPS * eps, atol=atol)
    for name, want in ref.params.items():
        got = result.params[name]
        assert np.all(np.abs(got - want) <= PARAM_TOL_EPS * eps * np.maximum(1.0, np.abs(want))), (
            f"parameter {name} = {got} differs from the reference's {want} by more than {PARAM_TOL_EPS} eps"
        )


def assert_agrees_with_the_reference(result: backends.FitResult, problem: backends.Problem,
                                     config: backends.TrainConfig) -> None:  # fmt: skip
    """``result`` agrees with the float64 NumPy reference's fit of ``problem`` (backends.metrics.reference_fit)."""
    d = None if problem.model == "quadratic" else problem.d
    assert_agrees(result, reference_fit(problem, config), config.dtype, problem.n, d)


def assert_result_contract(result: Any, problem: backends.Problem, config: backends.TrainConfig) -> None:
    """A FitResult of a fit that converged: float64 read-only losses of shape (epochs,), every parameter of the
    problem's ``params0`` by name, in its order, a read-only float64 array of its shape, ``final_loss`` a float,
    every value finite."""
    assert isinstance(result, backends.FitResult), f"result() returned a {type(result).__name__}, not a FitResult"
    losses = result.losses
    assert isinstance(losses, np.ndarray), f"losses is a {type(losses).__name__}"
    assert losses.dtype == np.float64, f"losses are {losses.dtype}, not float64"
    assert losses.shape == (config.epochs,), f"losses have shape {losses.shape}, not ({config.epochs},)"
    assert not losses.flags.writeable, "losses can be written"
    params = result.params
    assert isinstance(params, dict), f"params is a {type(params).__name__}, not a dict"
    names = list(problem.params0)
    assert list(params) == names, f"parameters {list(params)}, not the problem's {names}"
    for name, value in params.items():
        assert isinstance(value, np.ndarray), f"{name} is a {type(value).__name__}, not an array"
        want = (np.float64, problem.params0[name].shape)
        assert (value.dtype, value.shape) == want, f"{name} is {value.dtype} of shape {value.shape}, not {want}"
        assert not value.flags.writeable, f"{name} can be written"
        assert np.isfinite(value).all(), f"{name} is not finite: {value}"
    assert type(result.final_loss) is float, f"final_loss is a {type(result.final_loss).__name__}, not a float"
    assert np.isfinite(losses).all(), "a loss is not finite"
    assert np.isfinite(result.final_loss), f"final_loss is {result.final_loss}"
    assert result.diverged is False, f"diverged: final loss {result.final_loss} above the first, {losses[0]}"


@contextlib.contextmanager
def prepared_fit(trainer: backends.Trainer, problem: backends.Problem,
                 config: backends.TrainConfig) -> Iterator[backends.PreparedFit]:  # fmt: skip
    """``trainer.prepare(problem, config)``, closed at the end where it has a ``close`` (as ``fit`` does)."""
    prepared = trainer.prepare(problem, config)
    try:
        yield prepared
    finally:
        close = getattr(prepared, "close", None)
        if close is not None:
            close()


def fit_once(trainer: backends.Trainer, problem: backends.Problem, config: backends.TrainConfig) -> backends.FitResult:
    """One fit through the PreparedFit protocol: prepare, run, result."""
    with prepared_fit(trainer, problem, config) as prepared:
        assert isinstance(prepared, backends.PreparedFit), f"prepare() returned a {type(prepared).__name__}"
        return prepared.result(prepared.run())


def fingerprint(result: backends.FitResult) -> tuple[bytes, ...]:
    """A result's values, bit for bit (NaN included)."""
    return (np.asarray(result.losses).tobytes(), *(np.asarray(v, dtype=np.float64).tobytes()
            for v in result.params.values()), np.float64(result.final_loss).tobytes())  # fmt: skip


def inputs_fingerprint(problem: backends.Problem, config: backends.TrainConfig) -> dict[str, Any]:
    """Every value of a problem and a config: arrays by their bytes, dtype, shape and whether they can be written."""
    found: dict[str, Any] = {}
    values = {"x": problem.x, "y": problem.y, "name": problem.name, "model": problem.model,
              **{f"params0[{name!r}]": value for name, value in problem.params0.items()}}  # fmt: skip
    for name, value in values.items():
        if isinstance(value, np.ndarray):
            value = (value.tobytes(), value.dtype.str, value.shape, value.flags.writeable)
        found[f"problem.{name}"] = value
    found.update({f"config.{field.name}": getattr(config, field.name) for field in dataclasses.fields(config)})
    return found


def assert_leaves_inputs_alone(trainer: backends.Trainer, problem: backends.Problem,
                               config: backends.TrainConfig) -> backends.FitResult:  # fmt: skip
    """prepare, run and result leave the problem and the config as they were; two runs of one PreparedFit give
    identical results; run() returns fresh buffers (a second run changes nothing the first returned). Returns the
    first result."""
    before = inputs_fingerprint(problem, config)
    with prepared_fit(trainer, problem, config) as prepared:
        raw = prepared.run()
        first = prepared.result(raw)
        kept = fingerprint(first)
        second = prepared.result(prepared.run())
        assert fingerprint(second) == kept, "two runs of one PreparedFit gave different results"
        pairs = {"losses": (first.losses, second.losses), **{n: (v, second.params[n]) for n, v in first.params.items()}}
        for name, (ours, theirs) in pairs.items():
            assert not (isinstance(ours, np.ndarray) and np.shares_memory(ours, theirs)), (
                f"the two runs' {name} share memory: run() reused a buffer"
            )
        assert fingerprint(first) == kept, "the second run() changed the first run's result: run() reused a buffer"
        assert fingerprint(prepared.result(raw)) == kept, "the second run() changed what the first run() returned"
    after = inputs_fingerprint(problem, config)
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"prepare/run/result changed {', '.join(changed)}"
    return first


def _refused(call, error: type[Exception], *fragments: str) -> str:
    """``call()`` raises ``error`` with a one-line message holding every fragment; returns the message."""
    try:
        call()
    except error as exc:
        message = str(exc)
    except Exception as exc:
        raise AssertionError(f"expected {error.__name__}, got {type(exc).__name__}: {exc}") from exc
    else:
        raise AssertionError(f"expected {error.__name__}, nothing was raised")
    assert "\n" not in message, f"not one line: {message!r}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def assert_refuses_wrong_types(trainer: backends.Trainer, problem: backends.Problem) -> None:
    """``prepare`` and ``fit`` raise TypeError for a problem that is not a Problem and a config not a TrainConfig."""
    config = backends.TrainConfig(epochs=5)
    fields = {"x": problem.x, "y": problem.y, "params0": problem.params0}
    for method in (trainer.prepare, trainer.fit):
        _refused(lambda m=method: m(fields, config), TypeError, "problem")
        _refused(lambda m=method: m((problem.x, problem.y), config), TypeError, "problem")
        _refused(lambda m=method: m(problem, {"epochs": 5}), TypeError, "config")
        _refused(lambda m=method: m(problem, None), TypeError, "config")


def assert_refuses_other_worker_counts(trainer: backends.Trainer, problem: backends.Problem) -> None:
    """A trainer that runs in one process refuses ``workers`` other than 1 (ValueError naming the count)."""
    for workers in (2, 3):
        config = backends.TrainConfig(epochs=5, workers=workers)
        for method in (trainer.prepare, trainer.fit):
            _refused(lambda m=method, c=config: m(problem, c), ValueError, "workers", str(workers))


def unlisted_models(spec: TrainerSpec) -> tuple[str, ...]:
    """The model families (problems.MODELS) a spec does not run: the problems of these it must refuse."""
    return tuple(model for model in problems.MODELS if not spec.runs(model))


def problem_of(model: str) -> backends.Problem:
    """A small problem of model family ``model``: 20 points of its own problem (the family's name), seed 3."""
    return backends.make_named_problem(model, 20, 3)


def assert_refuses_unlisted_models(trainer: backends.Trainer, spec: TrainerSpec) -> None:
    """``prepare`` and ``fit`` refuse, in one ValueError naming the families the spec lists, a problem of a model
    family it does not list."""
    config = backends.TrainConfig(epochs=5)
    listed = ", ".join(spec.problems)
    for model in unlisted_models(spec):
        problem = problem_of(model)
        for method in (trainer.prepare, trainer.fit):
            _refused(lambda m=method, p=problem: m(p, config), ValueError, repr(model), listed)

"""Every variant, dtype and problem agrees with regbench's float64 NumPy reference, in its working dtype.

The tolerances are regbench's own for its built-in trainers (tests/test_agreement.py and tests/test_linear.py
in regbench): in units of the working dtype's eps, and for float64 round-off over the whole loss history.
"""

from __future__ import annotations

import numpy as np
import pytest
from regbench_autograd import TRAINERS, trainer

import backends
import problems
from backends import RegisteredTrainer
from backends.metrics import reference_fit

LOSS_RTOL_EPS, LOSS_ATOL_EPS, PARAM_TOL_EPS = 1000, 200, 50
CALIBRATED_N, CALIBRATED_D = 5000, 16
FLOAT64_RTOL = 1e-12
DTYPES = ("float32", "float64")
VARIANTS = tuple(spec.variant for spec in TRAINERS)


@pytest.fixture(scope="module", params=[spec.id for spec in TRAINERS])
def fitter(request) -> RegisteredTrainer:
    (spec,) = (s for s in TRAINERS if s.id == request.param)
    return RegisteredTrainer(spec)


@pytest.fixture(scope="module", params=["quadratic", "linear"])
def problem(request) -> backends.Problem:
    """The tutorial's 100 points; a small linear problem (200 points, 8 features)."""
    return backends.seed_problem() if request.param == "quadratic" else backends.make_linear_problem(200, 8, 4)


def config_for(problem: backends.Problem, dtype: str, epochs: int = 800) -> backends.TrainConfig:
    lr = 1e-3 if problem.model == "quadratic" else problems.get("linear").lr(problem.n, d=problem.d)
    return backends.TrainConfig(epochs=epochs, lr=lr, dtype=dtype)


def assert_agrees(result: backends.FitResult, ref: backends.FitResult, dtype: str, problem: backends.Problem):
    assert result.diverged is False
    assert type(result.final_loss) is float
    assert list(result.params) == list(problem.params0)  # the problem's parameters, by name
    for name, value in result.params.items():
        assert (value.dtype, value.shape) == (np.float64, problem.params0[name].shape)
    assert result.losses.shape == ref.losses.shape
    got, want = backends.flat(result.params), backends.flat(ref.params)
    if dtype == "float64":
        np.testing.assert_allclose(result.losses, ref.losses, rtol=FLOAT64_RTOL, atol=0)
        np.testing.assert_allclose(result.final_loss, ref.final_loss, rtol=FLOAT64_RTOL, atol=0)
        assert np.all(np.abs(got - want) <= FLOAT64_RTOL * np.maximum(1.0, np.abs(want)))
    eps = float(np.finfo(dtype).eps) * max(1.0, problem.n / CALIBRATED_N) * max(1.0, problem.d / CALIBRATED_D)
    atol = LOSS_ATOL_EPS * eps * ref.losses[0]
    np.testing.assert_allclose(result.losses, ref.losses, rtol=LOSS_RTOL_EPS * eps, atol=atol)
    np.testing.assert_allclose(result.final_loss, ref.final_loss, rtol=LOSS_RTOL_EPS * eps, atol=atol)
    assert np.all(np.abs(got - want) <= PARAM_TOL_EPS * eps * np.maximum(1.0, np.abs(want)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_fit_agrees_with_the_reference(fitter, problem, dtype):
    config = config_for(problem, dtype)
    inputs = [np.array(a) for a in (problem.x, problem.y, *problem.params0.values())]
    fit = fitter.prepare(problem, config)
    prepared = [np.array(a) for a in (fit.features, fit.y, fit.w0, fit.b0, fit.lr)]
    raw = fit.run()
    result = fit.result(raw)
    assert_agrees(result, reference_fit(problem, config), dtype, problem)
    # The working dtype throughout: the parameters and the final loss come back in it (any float64 value in
    # the forward pass or in autograd's gradient would have promoted them), and so does what run() used.
    w, b, losses, final = raw
    assert [np.asarray(v).dtype.name for v in (w, b, final)] == [dtype] * 3
    assert [a.dtype.name for a in prepared] == [dtype] * 5
    assert losses.dtype == np.float64  # float64 holds every float32 loss exactly
    # Nothing it was given, nor what prepare() made of it, was written.
    for before, after in zip(inputs, (problem.x, problem.y, *problem.params0.values()), strict=True):
        assert before.tobytes() == np.asarray(after).tobytes()
    for before, after in zip(prepared, (fit.features, fit.y, fit.w0, fit.b0, fit.lr), strict=True):
        assert before.tobytes() == np.asarray(after).tobytes()
    if problem.model == "quadratic":  # it learned the tutorial's curve, y = 3x² + 2 + noise (mean 0.1)
        assert abs(result.params["w"] - 3) < 0.05
        assert abs(result.params["b"] - 2.1) < 0.05


@pytest.mark.parametrize("dtype", DTYPES)
def test_runs_are_fresh_and_identical(fitter, problem, dtype):
    fit = fitter.prepare(problem, config_for(problem, dtype, epochs=50))
    first, second = fit.run(), fit.run()
    assert first[2] is not second[2]
    assert not np.shares_memory(first[2], second[2])
    assert first[2].tobytes() == second[2].tobytes()
    for a, b in zip(first, second, strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    if problem.model == "linear":
        assert not np.shares_memory(first[0], second[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_is_the_hand_derived_one(problem, dtype):
    """autograd's gradient of the loss at a point off the optimum: the problem's own, in the working dtype."""
    fit = trainer.prepare("tutorial", "cpu", problem, config_for(problem, dtype))
    w, b = fit.w0 * fit.w0.dtype.type(0.5), fit.b0 * fit.b0.dtype.type(3)
    gradient, loss_and_gradient = trainer.derivatives()
    grads = gradient(w, b, fit.features, fit.y)
    value, grads_fused = loss_and_gradient(w, b, fit.features, fit.y)
    assert [np.asarray(v).dtype.name for v in (value, *grads, *grads_fused)] == [dtype] * 5
    for got, want in zip(grads, grads_fused, strict=True):
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
    module = problems.get(problem.model)
    weights, intercept = problem.params0  # the problem's names for them
    at = {weights: np.float64(w) if np.ndim(w) == 0 else w.astype(np.float64), intercept: float(b)}
    want_loss, want = module.gradient(np, at, problem.x, problem.y[:, 0])
    want_w, want_b = want.values()
    rtol = 1e-12 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(np.float64(value), want_loss, rtol=rtol)
    got_w = np.asarray(grads[0], dtype=np.float64)
    np.testing.assert_allclose(got_w, want_w, rtol=rtol, atol=rtol * np.abs(want_w).max())
    np.testing.assert_allclose(np.float64(grads[1]), want_b, rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_pass_stays_in_the_working_dtype(problem, dtype):
    """Each parameter's gradient on its own comes back in the working dtype, so no step of the backward pass
    promoted it: this loss's vector-Jacobian products form one chain from the loss to both w and b, and nothing
    on it casts back. (The gradient in ``(w, b)`` together cannot tell: autograd adds each part into a zero of
    the argument's own dtype, which rounds a float64 part back to float32. With autograd < 1.9 on NumPy 2, whose
    ``anp.where`` returns a float64 array in the gradient of ``x ** 2``, that is how a float32 fit's backward pass
    runs in float64 and still returns float32 gradients; this test fails there.)"""
    import autograd

    fit = trainer.prepare("tutorial", "cpu", problem, config_for(problem, dtype))
    args = (fit.w0, fit.b0, fit.features, fit.y)
    for argnum in (0, 1):
        assert np.asarray(autograd.grad(trainer.loss, argnum)(*args)).dtype.name == dtype


def test_no_global_state_changes(fitter):
    errors, rng = np.geterr(), np.random.get_state()  # noqa: NPY002 - the legacy global state, read to see it kept
    fitter.fit(backends.seed_problem(), backends.TrainConfig(epochs=5, dtype="float32"))
    assert np.geterr() == errors
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == rng[0]
    assert np.array_equal(after[1], rng[1])
    assert after[2:] == rng[2:]


@pytest.mark.parametrize("name", ["mlp", "logistic", "poisson"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_models_written_once_agree_with_the_reference(fitter, name, dtype):
    """A family this module has no code of its own for (regbench's mlp and logistic, regbench-poisson's own) runs
    from the family's one definition, its module's loss: regbench's conformance kit's fit of it (a small problem,
    100 epochs) agrees with the float64 NumPy reference, every parameter by name, in the working dtype."""
    from regbench.conformance.checks import assert_agrees_with_the_reference, assert_result_contract, kit_fit

    if name not in problems.usable():
        pytest.skip(f"problem {name} is not installed (pip install ./examples/regbench-{name})")
    assert name not in trainer.PREPARE
    assert fitter.spec.runs(name)
    problem, config = kit_fit(fitter.spec, name, dtype)
    fit = fitter.prepare(problem, config)
    raw = fit.run()
    params, losses, final = raw
    assert [np.asarray(v).dtype.name for v in (*params.values(), final)] == [dtype] * (len(params) + 1)
    result = fit.result(raw)
    assert_result_contract(result, problem, config)
    assert_agrees_with_the_reference(result, problem, config)
    assert result.final_loss < losses[0]

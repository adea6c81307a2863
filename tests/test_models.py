"""Models written once (problems.mlp, problems.logistic; the seed's and linear's maths too): each model's hand
gradient is the autodiff frameworks' gradient of its loss, its maths runs under array-api-strict, and every
trainer that runs a model agrees with the float64 NumPy reference over the whole loss history."""

from __future__ import annotations

import array_api_strict
import numpy as np
import pytest

import backends
import problems
from backends import runs, specs
from backends.metrics import least_squares, reference_fit
from bench.params import trainer_params
from regbench.conformance.checks import FLOAT64_RTOL, assert_agrees
from tests.tiers import slow_if_per_size

#: Small problems of each model written against the array API, with their sizes.
SMALL = {"mlp": {"n": 96, "d": 6, "h": 10}, "logistic": {"n": 300, "d": 5}, "quadratic": {"n": 50},
         "linear": {"n": 60, "d": 4}}  # fmt: skip
GENERIC = ("mlp", "logistic")


def small(name: str, dtype: str = "float64") -> backends.Problem:
    return backends.make_named_problem(name, seed=3, dtype=dtype, **SMALL[name])


def point(problem: backends.Problem) -> dict[str, np.ndarray]:
    """Parameters off the initial ones (every value moved), in float64."""
    rng = np.random.default_rng(7)
    return {k: np.asarray(v + rng.uniform(-0.5, 0.5, np.shape(v))) for k, v in problem.params0.items()}


def assert_hand_gradient_is(name: str, autodiff) -> None:
    """``autodiff(module, at, x, y) -> (loss, {name: gradient})``, a framework's, equals the model's hand-derived
    gradient to 1e-12 at a point off the initial parameters, in float64."""
    problem = small(name)
    at, x, y = point(problem), problem.x, problem.y[:, 0]
    module = problems.get(name)
    want_loss, want = module.gradient(np, at, x, y)
    value, grads = autodiff(module, at, x, y)
    assert float(value) == pytest.approx(float(want_loss), rel=1e-12)
    for k in at:
        np.testing.assert_allclose(np.asarray(grads[k]), want[k], rtol=1e-12, atol=1e-12 * np.abs(want[k]).max())


@pytest.mark.parametrize("name", SMALL)
def test_hand_gradient_is_torch_s_autodiff(name):
    torch = pytest.importorskip("torch")
    import array_api_compat

    def autodiff(module, at, x, y):
        xp = array_api_compat.array_namespace(torch.empty(0))
        params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in at.items()}
        value = module.loss(xp, params, torch.from_numpy(x.copy()), torch.from_numpy(y.copy()))
        value.backward()
        return value.item(), {k: p.grad.numpy() for k, p in params.items()}

    assert_hand_gradient_is(name, autodiff)


@pytest.mark.parametrize("name", SMALL)
def test_hand_gradient_is_jax_s_autodiff(name):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    def autodiff(module, at, x, y):
        with jax.enable_x64(True):
            value, grads = jax.value_and_grad(lambda p: module.loss(jnp, p, x, y))(at)
            return float(value), {k: np.asarray(g) for k, g in grads.items()}

    assert_hand_gradient_is(name, autodiff)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", SMALL)
def test_maths_runs_under_array_api_strict(name, dtype):
    """The loss and the gradient use nothing beyond the standard (array-api-strict refuses anything else), in one
    working dtype throughout, and compute what NumPy computes."""
    problem = small(name)
    xp = array_api_strict
    wd = getattr(xp, dtype)
    at = point(problem)
    params = {k: xp.asarray(v.astype(dtype)) for k, v in at.items()}
    x, y = xp.asarray(problem.x.astype(dtype)), xp.asarray(problem.y[:, 0].astype(dtype))
    module = problems.get(name)
    value = module.loss(xp, params, x, y)
    loss, grads = module.gradient(xp, params, x, y)
    assert value.dtype == loss.dtype == wd
    assert {k: (g.dtype, g.shape) for k, g in grads.items()} == {k: (wd, p.shape) for k, p in params.items()}
    want_loss, want = module.gradient(np, {k: v.astype(dtype) for k, v in at.items()}, problem.x.astype(dtype),
                                      problem.y[:, 0].astype(dtype))  # fmt: skip
    rtol = 1e-12 if dtype == "float64" else 1e-4
    assert float(value) == pytest.approx(float(want_loss), rel=rtol)
    assert float(loss) == pytest.approx(float(want_loss), rel=rtol)
    for k, g in grads.items():
        np.testing.assert_allclose(np.asarray(g), want[k], rtol=rtol, atol=rtol * np.abs(want[k]).max())


@pytest.mark.parametrize("name", GENERIC)
def test_a_model_s_parameters_are_by_name_and_shape(name):
    problem = backends.make_named_problem(name, 40, 0)
    module = problems.get(name)
    sizes = {k: v for k, v in module.PARAMS.items() if k != "d"}
    assert {k: v.shape for k, v in problem.params0.items()} == module.parameters(module.PARAMS["d"], **sizes)
    assert problem.sizes == {**module.PARAMS}


def test_logistic_optimum_is_where_the_gradient_vanishes():
    problem = small("logistic")
    optimum, value = least_squares(problem)
    loss, grads = problems.get("logistic").gradient(np, optimum, problem.x, problem.y[:, 0])
    assert float(loss) == pytest.approx(value, rel=1e-12)
    assert max(float(np.abs(g).max()) for g in grads.values()) < 1e-8 * problem.n
    assert problems.get("mlp").optimum(problem.x, problem.y) is None  # a network has none in closed form


@pytest.mark.slow  # every model's default size, 800 epochs in float64 (mlp's: seconds)
@pytest.mark.parametrize("name", GENERIC)
def test_default_sizes_decrease_the_loss_every_epoch(name):
    """The learning rate (each module's ``lr``) is stable at its default sizes: the float64 reference's loss falls
    at every epoch."""
    module = problems.get(name)
    for sizes in module.DEFAULT_SIZES:
        problem = backends.make_named_problem(name, seed=0, **sizes)
        result = reference_fit(problem, backends.TrainConfig(lr=module.lr(**sizes)))
        assert not result.diverged
        assert (np.diff(result.losses) < 0).all()


def _cases() -> list:
    """(model, trainer, dtype) for every trainer that runs the model in one process; the per-size compilers' cases
    (torch.compile, JAX) in the slow tier (tests/tiers.py)."""
    out = []
    for name in GENERIC:
        ids = tuple(spec.id for spec in specs() if runs(spec.id, name) and not spec.distributed)
        for param in slow_if_per_size(trainer_params(ids)):
            out.append(pytest.param(name, *param.values, id=f"{name}-{param.id}", marks=param.marks))
    return out


@pytest.mark.parametrize(("name", "trainer_id", "dtype"), _cases())
def test_every_trainer_agrees_with_the_reference(name, trainer, dtype):
    """Over the whole loss history: float64 to 1e-12 relative, float32 within the suite's tolerance."""
    problem = small(name)
    config = backends.TrainConfig(epochs=150, lr=problems.get(name).lr(**SMALL[name]), dtype=dtype)
    result = trainer.fit(problem, config)
    ref = reference_fit(problem, config)
    if dtype == "float64":
        np.testing.assert_allclose(result.losses, ref.losses, rtol=FLOAT64_RTOL, atol=0)
    assert_agrees(result, ref, dtype, problem.n, problem.d)
    assert result.final_loss < 0.9 * result.losses[0]  # it learned (a log-loss keeps the labels' own entropy)


@pytest.mark.parametrize("name", GENERIC)
def test_the_loop_torch_s_cuda_graph_captures_agrees_on_the_cpu(name):
    """torch's CUDA-graph trainer runs models written once: it captures ``_ModelFit._eager_loop`` (every epoch's
    forward, backward and update) in one graph. Capturing needs a CUDA device (tests/test_models.py's agreement
    test runs the trainer there, marked gpu); the loop it captures is run here on the CPU, from the same
    prepare(), and agrees with the float64 reference to 1e-12 over the whole loss history."""
    torch = pytest.importorskip("torch")
    from backends import torch_autograd

    assert runs("torch-autograd-cudagraph-cuda", name)
    problem = small(name)
    config = backends.TrainConfig(epochs=150, lr=problems.get(name).lr(**SMALL[name]), dtype="float64")
    fit = torch_autograd._prepare_model("cudagraph", torch.device("cpu"), torch.float64, problem, config)
    params = {key: value.clone().requires_grad_(True) for key, value in fit.params0.items()}
    losses = torch.empty(config.epochs, dtype=torch.float64)
    final = fit._eager_loop(params, losses)
    ref = reference_fit(problem, config)
    np.testing.assert_allclose(losses.numpy(), ref.losses, rtol=FLOAT64_RTOL, atol=0)
    assert float(final) == pytest.approx(ref.final_loss, rel=FLOAT64_RTOL)
    for key, value in params.items():
        np.testing.assert_allclose(value.detach().numpy(), ref.params[key], rtol=1e-10, atol=1e-12)

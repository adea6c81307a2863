"""The tutorial's hand-derived gradients agree with autograd and with finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import backends
from backends.numpy_manual import loss_and_gradient

POINTS = [(0.3, 0.7), (3.0, 2.1), (-5.0, 10.0)]


@pytest.fixture(scope="module")
def data():
    problem = backends.make_problem(257, 11)
    return problem.x, problem.y


@pytest.mark.parametrize(("w", "b"), POINTS)
def test_matches_central_differences(data, w, b):
    x, y = data
    _, grad_w, grad_b = loss_and_gradient(x, y, w, b)
    h = 1e-5  # the loss is quadratic, so the central difference is exact up to rounding

    def loss(w_, b_):
        return loss_and_gradient(x, y, w_, b_)[0]

    fd_w = (loss(w + h, b) - loss(w - h, b)) / (2 * h)
    fd_b = (loss(w, b + h) - loss(w, b - h)) / (2 * h)
    scale = abs(loss(w, b)) / h * np.finfo(float).eps * 10  # rounding of the loss, magnified by 1/h
    assert grad_w == pytest.approx(fd_w, abs=scale, rel=1e-9)
    assert grad_b == pytest.approx(fd_b, abs=scale, rel=1e-9)


@pytest.mark.parametrize(("w", "b"), POINTS)
def test_matches_torch_autograd(data, w, b):
    torch = pytest.importorskip("torch")
    x, y = data
    _, grad_w, grad_b = loss_and_gradient(x, y, w, b)
    wt = torch.tensor([[w]], dtype=torch.float64, requires_grad=True)
    bt = torch.tensor([[b]], dtype=torch.float64, requires_grad=True)
    xt, yt = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
    (0.5 * (xt.pow(2).mm(wt) + bt - yt) ** 2).sum().backward()
    assert wt.grad.item() == pytest.approx(grad_w, rel=1e-12, abs=1e-12)
    assert bt.grad.item() == pytest.approx(grad_b, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("w", "b"), POINTS)
def test_matches_jax_grad(data, w, b):
    jax = pytest.importorskip("jax")
    x, y = data
    _, grad_w, grad_b = loss_and_gradient(x, y, w, b)
    with jax.enable_x64(True):
        gw, gb = jax.grad(lambda w_, b_: (0.5 * (x**2 * w_ + b_ - y) ** 2).sum(), argnums=(0, 1))(w, b)
        assert float(gw) == pytest.approx(grad_w, rel=1e-12, abs=1e-12)
        assert float(gb) == pytest.approx(grad_b, rel=1e-12, abs=1e-12)

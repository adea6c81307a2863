"""regbench reproduces the tutorial (../shared/seed/) exactly.

The tutorial's NumPy code is written out below as it stands there, global
random state included, and is the oracle: data, initial parameters, every loss
and the final w, b must match bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import backends


@pytest.fixture
def tutorial():
    """Run the tutorial's NumPy section verbatim; restore NumPy's global random state after."""
    state = np.random.get_state()
    try:
        np.random.seed(100)
        x = np.linspace(-1, 1, 100).reshape(100, 1)
        y = 3 * np.power(x, 2) + 2 + 0.2 * np.random.rand(x.size).reshape(100, 1)
        w = np.random.rand(1, 1)
        b = np.random.rand(1, 1)
        w_init, b_init = w.item(), b.item()
        lr = 0.001
        losses = []
        for _i in range(800):
            y_pred = np.power(x, 2) * w + b
            loss = 0.5 * (y_pred - y) ** 2
            loss = loss.sum()
            grad_w = np.sum((y_pred - y) * np.power(x, 2))
            grad_b = np.sum((y_pred - y))
            w -= lr * grad_w
            b -= lr * grad_b
            losses.append(loss)
        y_pred = np.power(x, 2) * w + b
    finally:
        np.random.set_state(state)
    return {
        "x": x,
        "y": y,
        "w0": w_init,
        "b0": b_init,
        "losses": np.array(losses),
        "w": w.item(),
        "b": b.item(),
        "final_loss": (0.5 * (y_pred - y) ** 2).sum(),
    }


def test_seed_problem_is_the_tutorials_draw(tutorial):
    problem = backends.seed_problem()
    assert problem.x.tobytes() == tutorial["x"].tobytes()
    assert problem.y.tobytes() == tutorial["y"].tobytes()
    assert problem.params0 == {"w": tutorial["w0"], "b": tutorial["b0"]}  # by name, as the seed's problem names them


def test_numpy_tutorial_float64_is_bit_for_bit(tutorial):
    result = backends.get_trainer("numpy-manual-tutorial-cpu").fit(backends.seed_problem(), backends.TrainConfig())
    assert result.losses.tobytes() == tutorial["losses"].tobytes()
    assert result.params == {"w": tutorial["w"], "b": tutorial["b"]}
    assert result.final_loss == tutorial["final_loss"]
    assert not result.diverged


def test_default_config_is_the_tutorials():
    config = backends.TrainConfig()
    assert (config.epochs, config.lr, config.dtype) == (800, 0.001, "float64")

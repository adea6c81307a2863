"""The model's maths: under array-api-strict, and its hand gradient against central differences."""

import array_api_strict as xp
import numpy as np
import pytest
import regbench_poisson as poisson


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_maths_is_the_standard_s_alone(dtype):
    data = poisson.make(50, 1, dtype)
    x, y = xp.asarray(data.x), xp.asarray(data.y[:, 0])
    params = {k: xp.asarray(np.asarray(v, dtype=dtype)) for k, v in data.params0.items()}
    loss, grads = poisson.gradient(xp, params, x, y)
    assert loss.dtype == poisson.loss(xp, params, x, y).dtype == getattr(xp, dtype)
    assert {k: g.shape for k, g in grads.items()} == {"theta": (8,), "b": ()}


def test_gradient_matches_central_differences():
    data = poisson.make(40, 2)
    x, y = data.x, data.y[:, 0]
    theta, b = np.array([0.2, -0.1, 0.3, 0.0, 0.1, -0.2, 0.05, 0.4]), 0.3
    _, grads = poisson.gradient(np, {"theta": theta, "b": b}, x, y)
    h = 1e-6
    for j in range(8):
        step = np.eye(8)[j] * h
        plus = poisson.loss(np, {"theta": theta + step, "b": b}, x, y)
        minus = poisson.loss(np, {"theta": theta - step, "b": b}, x, y)
        assert grads["theta"][j] == pytest.approx((plus - minus) / (2 * h), rel=1e-6, abs=1e-6)

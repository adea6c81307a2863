"""Every available trainer agrees with the float64 NumPy reference, and is deterministic.

The assertion and its tolerances, in units of the working dtype's machine epsilon and calibrated on random
problems of 1 to 5000 points, are the conformance kit's (regbench/conformance/checks.py: how they were
measured): the kit holds a plugin's trainer to the same ones.

The data-parallel trainers, which start worker processes for every fit, are
held to the same tolerances in tests/test_dp.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import backends
from backends.metrics import reference_fit
from bench.params import in_process_ids, trainer_params
from regbench.conformance.checks import assert_agrees, fingerprint
from tests.tiers import slow_if_costly, slow_if_per_size

IN_PROCESS = in_process_ids()


@pytest.mark.parametrize(("trainer_id", "dtype"), slow_if_costly(trainer_params(IN_PROCESS)))
def test_fit(trainer, dtype, seed):
    """The tutorial's problem and hyper-parameters: 100 points, 800 epochs, lr 1e-3."""
    config = backends.TrainConfig(dtype=dtype)
    result = trainer.fit(seed, config)
    ref = reference_fit(seed, config)
    assert_agrees(result, ref, dtype, seed.n)
    # The fit really learned the tutorial's curve y = 3x² + 2 + noise (mean 0.1).
    assert abs(result.params["w"] - 3) < 0.05
    assert abs(result.params["b"] - 2.1) < 0.05
    assert result.final_loss < result.losses[0] / 1000


@pytest.mark.parametrize(("trainer_id", "dtype"), slow_if_per_size(trainer_params(IN_PROCESS)))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 3000), problem_seed=st.integers(0, 2**32 - 1))
def test_fit_random_problem(trainer, dtype, n, problem_seed):
    """Other sizes and seeds, with lr = 0.1/n so that every size converges (the tutorial's lr·n)."""
    problem = backends.make_problem(n, problem_seed)
    config = backends.TrainConfig(epochs=200, lr=0.1 / n, dtype=dtype)
    assert_agrees(trainer.fit(problem, config), reference_fit(problem, config), dtype, problem.n)


@pytest.mark.parametrize(("trainer_id", "dtype"), slow_if_per_size(trainer_params(IN_PROCESS)))
def test_fit_large_problem(trainer, dtype):
    """Past every size switch in the trainers: JAX's small-problem forms (≤ 10⁴ points), Numba's threads (≥ 2¹⁷)."""
    problem = backends.make_problem(200_003, 5)
    config = backends.TrainConfig(epochs=10, lr=0.1 / problem.n, dtype=dtype)
    assert_agrees(trainer.fit(problem, config), reference_fit(problem, config), dtype, problem.n)


@pytest.mark.parametrize(("trainer_id", "dtype"), slow_if_per_size(trainer_params(IN_PROCESS)))
@pytest.mark.parametrize(("n", "epochs"), [(500, 100), (600_001, 3)], ids=["small", "threaded"])
def test_deterministic(trainer, dtype, n, epochs):
    """Two fits of the same problem, one after the other in one process, give identical bits.

    At 600,001 points NumPy's fused loop, Numba's SIMD loop and inductor's kernels sum on
    several threads: each thread's share and the order of the shares are fixed.

    Across processes, which have compiled different sizes before (torch.compile)
    and dispatch JAX differently, tests/test_bench.py holds the benchmark
    process's saved fits against this process's, bit for bit.
    """
    problem = backends.make_problem(n, 7)
    config = backends.TrainConfig(epochs=epochs, lr=0.1 / n, dtype=dtype)
    first, second = trainer.fit(problem, config), trainer.fit(problem, config)
    assert first.losses.tobytes() == second.losses.tobytes()
    assert fingerprint(first) == fingerprint(second)


@pytest.mark.parametrize(("trainer_id", "dtype"), slow_if_per_size(trainer_params(IN_PROCESS)))
@pytest.mark.parametrize("epochs", [5, 400], ids=["growing", "overflowing"])
def test_divergence_is_reported(trainer, dtype, epochs, recwarn):
    """lr 1e-3 on 10⁴ points overshoots ~10× per epoch: a result, no exception, no warning."""
    problem = backends.make_problem(10_000, 0)
    result = trainer.fit(problem, backends.TrainConfig(epochs=epochs, lr=1e-3, dtype=dtype))
    assert result.diverged
    assert result.losses.shape == (epochs,)
    if epochs == 400:  # float32 overflows after ~40 epochs, float64 after ~310
        assert not np.isfinite(result.final_loss)
    else:
        assert np.isfinite(result.final_loss)
        assert result.final_loss > result.losses[0]
    assert not [str(w.message) for w in recwarn]

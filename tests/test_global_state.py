"""A fit leaves every process-wide setting of every framework as it found it.

Rules: checked in a fresh process by the conformance kit's machinery (regbench/conformance/global_state.py:
what counts as process-wide, and how it is read), here for every in-process trainer at once, with every
installed framework imported and initialised first; each trainer fits each problem it lists in both dtypes, on
a small size and (the seed's model) a blocked/threaded one. Trainers may choose per-computation options
(compile options, their own threads); nothing else.
"""

from __future__ import annotations

import contextlib

import pytest

import backends
from bench.params import in_process_ids
from regbench.conformance.global_state import in_fresh_process


@pytest.mark.slow  # a fresh process imports every framework and fits every trainer
def test_fits_leave_global_state_untouched():
    report = in_fresh_process(list(in_process_ids()), every_framework=True)
    # The fits ran, on every framework that is installed here.
    assert report["fitted"], report
    assert {"numpy", "jax", "torch", "numba"} <= set(report["frameworks"]), report["frameworks"]
    assert report["changed"] == {}, f"settings changed by fit(): {report['changed']}"


def test_a_jax_fit_sets_its_device_only_where_the_user_s_default_is_another():
    """A small CPU scan fit passes host arrays, which JAX puts on its default device: the fit names its own device
    only where the default is another one (the context cost the 100-point fit 1-6%), and always where unsure."""
    jax = pytest.importorskip("jax")
    from backends import jax_grad

    cpu = jax.devices("cpu")[0]
    assert isinstance(jax_grad._placed_on(cpu), contextlib.nullcontext)
    with jax.default_device(cpu):
        assert isinstance(jax_grad._placed_on(cpu), contextlib.nullcontext)
    with jax.default_device("cpu"):  # a platform's name, not a device: the fit sets its device itself
        assert not isinstance(jax_grad._placed_on(cpu), contextlib.nullcontext)
        problem, config = backends.seed_problem("float32"), backends.TrainConfig(dtype="float32", epochs=5)
        assert backends.get_trainer("jax-grad-scan-cpu").fit(problem, config).losses.shape == (5,)

"""The trainer contract: the Trainer and PreparedFit protocols, inputs left alone, divergence reported, bad
arguments refused, no process-wide setting changed (checks.py, global_state.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import backends
from regbench.conformance import checks, global_state


def test_trainer_protocol(trainer, spec):
    """The Trainer protocol with the spec's attributes; fit() is prepare, run and result, bit for bit."""
    assert isinstance(trainer, backends.Trainer)
    assert (trainer.id, trainer.backend, trainer.device, trainer.variant) == (
        spec.id, spec.backend, spec.device, spec.variant)  # fmt: skip
    problem, config = checks.kit_fit(spec, None, "float64")
    through = checks.fit_once(trainer, problem, config)  # asserts prepare() returns a PreparedFit
    checks.assert_result_contract(through, problem, config)
    assert checks.fingerprint(trainer.fit(problem, config)) == checks.fingerprint(through)


@pytest.mark.parametrize("dtype", backends.DTYPES)
def test_inputs_are_left_alone_and_runs_repeat(trainer, spec, dtype):
    """Each listed problem: its arrays and parameters untouched, two runs identical, every run's buffers fresh."""
    for name in checks.families(spec):
        checks.assert_leaves_inputs_alone(trainer, *checks.kit_fit(spec, name, dtype))


def test_data_made_in_float32_fit_alike(trainer, spec):
    """Each listed problem with its data in float32 already: a float32 fit gives the bits it gives on the float64
    data (a trainer may skip a conversion, never change its arithmetic), and a float64 fit agrees with the
    reference on those data."""
    for name in checks.families(spec):
        problem, config = checks.kit_fit(spec, name, "float32")
        twin = checks.in_float32(problem)
        assert twin.dtype == "float32"
        made = checks.fit_once(trainer, twin, config)
        checks.assert_result_contract(made, twin, config)
        assert checks.fingerprint(made) == checks.fingerprint(checks.fit_once(trainer, problem, config))
        config64 = replace(config, dtype="float64")
        checks.assert_agrees_with_the_reference(checks.fit_once(trainer, twin, config64), twin, config64)


def test_divergence_is_reported(trainer, spec, recwarn):
    """lr 1e-3 on 10⁴ points overshoots ~10× an epoch: a result that says so, no exception, no warning."""
    checks.kit_fit(spec, "quadratic", "float64")  # skips unless the spec lists the seed's model
    problem = backends.make_problem(10_000, 0)
    result = checks.fit_once(trainer, problem, backends.TrainConfig(epochs=5, lr=1e-3))
    assert result.diverged is True
    assert result.losses.shape == (5,)
    assert np.isfinite(result.final_loss)
    assert result.final_loss > result.losses[0]
    assert not [str(w.message) for w in recwarn]


def test_refuses_arguments_of_the_wrong_type(trainer, spec):
    checks.assert_refuses_wrong_types(trainer, checks.kit_fit(spec, None, "float64")[0])


def test_refuses_more_workers_unless_data_parallel(trainer, spec):
    if spec.distributed:
        pytest.skip("a data-parallel trainer: it takes any number of workers")
    checks.assert_refuses_other_worker_counts(trainer, checks.kit_fit(spec, None, "float64")[0])


def test_refuses_problems_of_a_model_it_does_not_list(trainer, spec):
    if not checks.unlisted_models(spec):
        pytest.skip(f"{spec.id} runs every model family ({', '.join(checks.families(spec))}): none to refuse")
    checks.assert_refuses_unlisted_models(trainer, spec)


def test_global_state_is_left_alone(trainer):
    """In a fresh process: each listed problem small and the seed's past the size switches, both dtypes."""
    report = global_state.in_fresh_process([trainer.id])
    assert report["fitted"] == [trainer.id], report
    assert report["changed"] == {}, f"settings changed by fit(): {report['changed']}"

"""Agreement with the float64 NumPy reference over the whole loss history (checks.assert_agrees: its tolerances).

The tutorial's problem (100 points, 800 epochs, lr 1e-3), where the trainer's spec lists it problem ``linear``
(200 points, 8 features, 300 epochs), and every other model family it runs, written once against the array API
(mlp, logistic, a plugin's own: 64 points, 100 epochs); float64 to round-off, float32 within tolerance. Each fit goes
through the PreparedFit protocol (prepare, run, result) and its result is held to the contract first.
"""

from __future__ import annotations

import pytest

from regbench.conformance.checks import (
    FITS,
    assert_agrees_with_the_reference,
    assert_result_contract,
    families,
    fit_once,
    kit_fit,
)


def agrees(trainer, spec, problem_name: str, dtype: str) -> None:
    problem, config = kit_fit(spec, problem_name, dtype)
    result = fit_once(trainer, problem, config)
    assert_result_contract(result, problem, config)
    assert_agrees_with_the_reference(result, problem, config)


def test_float64_agrees_with_the_reference(trainer, spec):
    agrees(trainer, spec, "quadratic", "float64")


def test_float32_agrees_with_the_reference(trainer, spec):
    agrees(trainer, spec, "quadratic", "float32")


def test_linear_float64_agrees_with_the_reference(trainer, spec):
    agrees(trainer, spec, "linear", "float64")


def test_linear_float32_agrees_with_the_reference(trainer, spec):
    agrees(trainer, spec, "linear", "float32")


def test_models_written_once_agree_with_the_reference(trainer, spec):
    others = [name for name in families(spec) if name not in FITS]
    if not others:
        pytest.skip(f"{spec.id} runs no model family written once (it runs: {', '.join(families(spec))})")
    for name in others:
        for dtype in ("float64", "float32"):
            agrees(trainer, spec, name, dtype)

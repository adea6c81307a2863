"""Agreement with the float64 NumPy reference over the whole loss history (checks.assert_agrees: its tolerances).

The tutorial's problem (100 points, 800 epochs, lr 1e-3) and, where the trainer's spec lists it, problem
``linear`` (200 points, 8 features, 300 epochs); float64 to round-off, float32 within tolerance. Each fit goes
through the PreparedFit protocol (prepare, run, result) and its result is held to the contract first.
"""

from __future__ import annotations

from regbench.conformance.checks import assert_agrees_with_the_reference, assert_result_contract, fit_once, kit_fit


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

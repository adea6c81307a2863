"""Shared fixtures: the float64 NumPy reference and its cache."""

from __future__ import annotations

import functools

import pytest

import backends
from backends.testing import require_trainer


@functools.cache
def reference_fit(problem: backends.Problem, config: backends.TrainConfig) -> backends.FitResult:
    """The tutorial's NumPy loop in float64 on the same problem and hyper-parameters."""
    ref_config = backends.TrainConfig(epochs=config.epochs, lr=config.lr, dtype="float64")
    return backends.get_trainer(backends.REFERENCE_ID).fit(problem, ref_config)


@pytest.fixture(scope="session")
def seed() -> backends.Problem:
    return backends.seed_problem()


@pytest.fixture
def trainer(trainer_id: str) -> backends.Trainer:
    return require_trainer(trainer_id)

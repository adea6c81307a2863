"""Shared fixtures: the tutorial's problem, and the trainer of a parametrised test."""

from __future__ import annotations

import pytest

import backends
from bench.params import require_trainer


@pytest.fixture(scope="session")
def seed() -> backends.Problem:
    return backends.seed_problem()


@pytest.fixture
def trainer(trainer_id: str) -> backends.Trainer:
    return require_trainer(trainer_id)

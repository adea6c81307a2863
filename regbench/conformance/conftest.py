"""The kit's fixtures: the trainer of a test, parametrised with each ``--trainer`` id (plugin.py), and its spec.

Rules: defined here, in the kit's own folder, so that they take precedence over fixtures of the same names in
the project the kit is run from (its conftest.py at the root applies to every test pytest collects); a trainer
that cannot run here skips the test with the registry's reason.
"""

from __future__ import annotations

import pytest

import backends
from backends import TrainerSpec, spec_of


@pytest.fixture
def spec(trainer_id: str) -> TrainerSpec:
    return spec_of(trainer_id)


@pytest.fixture
def trainer(trainer_id: str) -> backends.Trainer:
    """The trainer, or the test skipped with the reason it cannot run here."""
    try:
        return backends.get_trainer(trainer_id)
    except backends.TrainerUnavailable as exc:
        pytest.skip(exc.reason)

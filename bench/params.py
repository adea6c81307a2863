"""Pytest helpers shared by ``tests/`` and ``bench/`` (not part of the library): every trainer × dtype as a parameter.

Rules: building the parameters imports no framework (ids come from the
registry); a trainer that cannot run here is skipped when its test runs, with
the registry's reason, never reported as an error.
"""

from __future__ import annotations

import pytest

from backends import DTYPES, RegisteredTrainer, TrainerUnavailable, get_trainer, spec_of, specs, trainer_ids

GPU_DEVICES = ("cuda", "gpu")


def of_item(item: pytest.Item) -> dict:
    """A collected benchmark's parameters (its callspec's: trainer_id, dtype, problem, sizes, ...); {} for one
    without."""
    return getattr(getattr(item, "callspec", None), "params", {})


def trainer_params(ids: tuple[str, ...] | None = None, dtypes: tuple[str, ...] = DTYPES, model: str = "") -> list:
    """``pytest.param(trainer_id, dtype)`` for each pair, with ids like ``torch-autograd-eager-cuda-float32``; with
    ``model``, only the trainers whose spec lists that model family (a trainer is not collected for a problem it
    does not run)."""
    params = []
    for trainer_id in ids or trainer_ids():
        if model and model not in spec_of(trainer_id).problems:
            continue
        marks = [pytest.mark.gpu] if trainer_id.rsplit("-", 1)[1] in GPU_DEVICES else []
        params.extend(pytest.param(trainer_id, dtype, id=f"{trainer_id}-{dtype}", marks=marks) for dtype in dtypes)
    return params


def in_process_ids() -> tuple[str, ...]:
    """Every trainer that runs in the calling process (not the data-parallel ones, tested in tests/test_dp.py)."""
    return tuple(spec.id for spec in specs() if not spec.distributed)


def require_trainer(trainer_id: str) -> RegisteredTrainer:
    """The trainer, or skip the calling test with the reason it cannot run here."""
    try:
        return get_trainer(trainer_id)
    except TrainerUnavailable as exc:
        pytest.skip(exc.reason)

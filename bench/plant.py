"""A planted slow-down, to prove that ``regbench compare`` finds one: ``-p bench.plant --plant-slowdown=ID:FACTOR``.

Rules: only for validating the comparison (see the README's "How compare
decides"); never loaded unless named with ``-p``. The trainer ``ID`` runs its
real training, then spins for ``FACTOR − 1`` times what that took, so every
round is ``FACTOR`` times slower and its results are unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from backends import RegisteredTrainer


@dataclass
class _Slowed:
    prepared: Any
    factor: float

    def run(self):
        start = time.perf_counter()
        out = self.prepared.run()
        until = time.perf_counter() + (self.factor - 1) * (time.perf_counter() - start)
        while time.perf_counter() < until:
            pass
        return out

    def result(self, raw):
        return self.prepared.result(raw)

    def __getattr__(self, name: str):
        return getattr(self.prepared, name)  # close(), bench_info() of a data-parallel fit


def pytest_addoption(parser):
    parser.getgroup("regbench").addoption(
        "--plant-slowdown", metavar="ID:FACTOR", help="make trainer ID FACTOR times slower (validation only)"
    )


def pytest_configure(config):
    planted = config.getoption("--plant-slowdown")
    if planted:
        trainer_id, factor = planted.rsplit(":", 1)
        plant(trainer_id, float(factor))


def plant(trainer_id: str, factor: float) -> None:
    """Make trainer ``trainer_id`` ``factor`` times slower in this process (a copy's bench/conftest.py can call it,
    to stand for a code change that slowed it: regbench.drift_study)."""
    original = RegisteredTrainer.prepare

    def prepare(self, problem, config):
        prepared = original(self, problem, config)
        return _Slowed(prepared, factor) if self.id == trainer_id else prepared

    RegisteredTrainer.prepare = prepare

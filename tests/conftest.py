"""Shared fixtures: the tutorial's problem, and the trainer of a parametrised test; the two test tiers.

Tests marked ``slow`` (fresh processes, subprocess batteries, the whole benchmark run, compiles of many sizes)
are the slow tier: left out of a plain ``python -m pytest`` (the README's test command, a few minutes on 2
cores) and run by ``python -m pytest -m slow`` (CI runs both, .ci/run). Any ``-m`` expression of the user's
decides alone (``-m gpu`` is every GPU test, slow or not; ``-m "slow or not slow"`` everything), and so do
``--run-slow`` (both tiers) and a test named by its node id (``tests/test_x.py::test_y``).
"""

from __future__ import annotations

import signal

import pytest

import backends
from bench.params import require_trainer
from tests.plugins import site  # noqa: F401 (a fixture: a folder of fake installed distributions)

SLOW = "slow"


def pytest_configure(config: pytest.Config) -> None:
    # A test session started in the background of a non-interactive shell (``python -m pytest &``) inherits SIGINT
    # ignored, and so would every process it starts: the Ctrl-C tests (a real SIGINT, tests/test_plugins.py,
    # tests/test_hardening*.py) need Python's own handler, which a child process then gets back as well.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run the slow tier too (tests marked slow)")


def _slow_tier_selected(config: pytest.Config) -> bool:
    named = any("::" in str(arg) for arg in config.args)  # a test named by its node id runs, whatever its tier
    return bool(config.option.markexpr) or config.option.run_slow or named


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _slow_tier_selected(config):
        return
    slow = [item for item in items if item.get_closest_marker(SLOW)]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker(SLOW)]
        config.stash[_DESELECTED] = len(slow)


_DESELECTED = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    count = config.stash.get(_DESELECTED, 0)
    if count:
        terminalreporter.write_line(f"{count} slow tests left out: run them with `python -m pytest -m slow`")


@pytest.fixture(scope="session")
def seed() -> backends.Problem:
    return backends.seed_problem()


@pytest.fixture
def trainer(trainer_id: str) -> backends.Trainer:
    return require_trainer(trainer_id)

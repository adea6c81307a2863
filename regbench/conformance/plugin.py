"""The conformance kit's pytest plugin: ``-p regbench.conformance.plugin --trainer ID [--trainer ID ...]``.

Rules: ``--trainer`` is required and repeatable; an id the registry does not know (``backends.trainer_ids()``),
or none, is pytest's usage error in one line naming the known ids. Every test of the kit that takes
``trainer_id`` runs once per id, with the id as its parameter id (its fixtures, ``trainer`` and ``spec``, are
the kit's conftest.py's: there, they take precedence over any of the same name in the project it runs from).
The kit's tests run with warnings as errors wherever they run (a trainer that spams warnings fails, as in
regbench's checkout), less torch's own deprecation warning about its internals (pyproject.toml's). Each check
runs within the time limit ($REGBENCH_TIME_LIMIT_S, else 600 s) and as plugin code (records.sources): a hang past
it, a thread left running, sys.exit() or a KeyboardInterrupt no Ctrl-C sent fails that check alone. The
environment is remembered before any check runs a trainer (global_state.remember_environment: the fresh
process's "before"). Where ``$REGBENCH_CONFORM_STARTED`` names a file, the check that starts is written there
and the file removed when the session ends: ``regbench conform`` names the check a crash of the kit's process
happened in. Nothing here imports a framework.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

import backends
from records.sources import leave_stuck_threads, plugin_code, sigint_watched, time_limit, within
from regbench.conformance import global_state
from regbench.conformance.command import STARTED_ENV, unknown_ids

KIT = "regbench.conformance."
#: The warning filters of regbench's checkout (pyproject.toml), as marks: they apply after the project's own.
WARNINGS = ("error", "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
_IDS, _TIME_LIMIT, _STATUS = pytest.StashKey[list[str]](), pytest.StashKey[float](), pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("regbench conformance")
    group.addoption("--trainer", action="append", default=[], metavar="ID",
                    help="a trainer id to check (repeatable; regbench list shows them)")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("help") or config.getoption("version"):
        return
    global_state.remember_environment()
    watch = contextlib.ExitStack()  # a trainer's own KeyboardInterrupt fails its check; a Ctrl-C stops the kit
    watch.enter_context(sigint_watched())
    config.add_cleanup(watch.close)
    try:
        config.stash[_TIME_LIMIT] = time_limit()  # $REGBENCH_TIME_LIMIT_S
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    ids = list(dict.fromkeys(config.getoption("trainer")))  # each once, in the order given
    known = backends.trainer_ids()
    if not ids:
        raise pytest.UsageError(f"--trainer ID is required (repeatable); known trainers: {', '.join(known)}")
    if why := unknown_ids(ids):
        raise pytest.UsageError(why)
    config.stash[_IDS] = ids


def _availability(trainer_id: str) -> str:
    try:
        backends.get_trainer(trainer_id)  # probes this trainer alone (backends.available() would probe them all)
    except backends.TrainerUnavailable as exc:
        return f"unavailable here: {exc.reason}"
    return "available"


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"regbench conformance: {trainer_id} ({_availability(trainer_id)})"
            for trainer_id in config.stash.get(_IDS, [])]  # fmt: skip


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "trainer_id" in metafunc.fixturenames and metafunc.module.__name__.startswith(KIT):
        ids = metafunc.config.stash[_IDS]
        metafunc.parametrize("trainer_id", ids, ids=ids)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    # A trainer's sys.exit() or own KeyboardInterrupt, a hang past the time limit, a thread left running: a failed
    # check, no more.
    if _TIME_LIMIT not in item.config.stash or not _kits(item):
        return (yield)
    with plugin_code(quiet=False), within(item.config.stash[_TIME_LIMIT], item.name):
        return (yield)


def pytest_runtest_logstart(nodeid: str, location) -> None:
    if os.environ.get(STARTED_ENV):
        Path(os.environ[STARTED_ENV]).write_text(nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_STATUS] = int(exitstatus)
    if os.environ.get(STARTED_ENV):
        Path(os.environ[STARTED_ENV]).unlink(missing_ok=True)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    leave_stuck_threads(config.stash.get(_STATUS, 1))  # the results are reported: a left thread is not waited for


def _kits(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    return module is not None and module.__name__.startswith(KIT)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _kits(item):
            for spec in WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))

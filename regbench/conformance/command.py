"""``regbench conform ID [ID ...]``: the conformance kit's pytest, in a child process, its exit status passed through.

Rules: the ids are checked before pytest starts (an unknown one is regbench's one-line usage error, exit 2);
the pytest command is printed first, so that it can be run by hand (with pytest options of one's own added);
pytest runs in a process group of its own, and Ctrl-C (or SIGTERM, SIGHUP) reaches it once, through regbench
(regbench.run): regbench then exits 128 + the signal's number, pytest's summary printed.
"""

from __future__ import annotations

import shlex
import signal
import sys

from regbench.checks import UsageError


def unknown_ids(trainer_ids: list[str]) -> str:
    """The ids the registry does not know, in one line naming the known ones; "" when it knows them all."""
    import backends
    from backends import spec_of

    unknown = [trainer_id for trainer_id in trainer_ids if spec_of(trainer_id) is None]
    if not unknown:
        return ""
    return f"unknown trainer {', '.join(map(repr, unknown))}; known trainers: {', '.join(backends.trainer_ids())}"


def check_ids(trainer_ids: list[str]) -> None:
    """A UsageError naming the known ids for any id the registry does not know (the plugin's own check, before
    pytest starts)."""
    if why := unknown_ids(trainer_ids):
        raise UsageError(f"conform: {why}")


def pytest_command(trainer_ids: list[str]) -> list[str]:
    """The kit's pytest command line for ``trainer_ids``.

    Without the cache provider and pytest-benchmark (which makes ./.benchmarks when it starts): nothing written into
    the folder it runs in. Without hypothesis's plugin (regbench's tests' tool, not the kit's): a second of imports
    saved. ``-ra``: why a test was skipped (a trainer unavailable here, a problem its spec does not list).
    """
    trainers = [part for trainer_id in trainer_ids for part in ("--trainer", trainer_id)]
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:hypothesispytest",
            "-ra", "-p", "regbench.conformance.plugin", "--pyargs", "regbench.conformance", *trainers]  # fmt: skip


def conform(trainer_ids: list[str]) -> int:
    from regbench.run import _run_pytest, _stopping_signals

    check_ids(trainer_ids)
    cmd = pytest_command(list(dict.fromkeys(trainer_ids)))
    print("running:", shlex.join(cmd), flush=True)
    with _stopping_signals():
        status, stopped_by = _run_pytest(cmd, None, None, {})
    if stopped_by is not None:
        what = "interrupted" if stopped_by == signal.SIGINT else f"stopped by {signal.Signals(stopped_by).name}"
        print(f"regbench: conform: {what}", file=sys.stderr)
        return 128 + stopped_by
    return status

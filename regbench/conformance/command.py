"""``regbench conform ID [ID ...]``: the conformance kit's pytest, in a child process, its exit status passed through.

Rules: the ids are checked before pytest starts (an unknown one is regbench's one-line usage error, exit 2);
the pytest command is printed first, so that it can be run by hand (with pytest options of one's own added);
pytest runs in a process group of its own, and Ctrl-C (or SIGTERM, SIGHUP) reaches it once, through regbench
(regbench.run): regbench then exits 128 + the signal's number, pytest's summary printed. A trainer that crashes
the kit's process (``os.abort()``, a segfault, ``os._exit()``) is one line naming the check it crashed in and how
the process died, exit 1 (a check failed; those after it did not run); pytest's fault dump is left out
(``-p no:faulthandler``; run the printed command without it to see where).
"""

from __future__ import annotations

import shlex
import signal
import sys
import tempfile
from pathlib import Path

from regbench.checks import UsageError

#: Where the kit's plugin writes the check that starts (regbench.conformance.plugin), removed when pytest ends.
STARTED_ENV = "REGBENCH_CONFORM_STARTED"


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
    saved. ``bench.parent_watch``: pytest, and what it started, die with ``regbench conform`` (nothing without its
    variable, run by hand). Without faulthandler: a crash is regbench's one line, not a dump. ``-ra``: why a test was
    skipped (a trainer unavailable here, a problem its spec does not list).
    """
    trainers = [part for trainer_id in trainer_ids for part in ("--trainer", trainer_id)]
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:hypothesispytest",
            "-p", "no:faulthandler", "-p", "bench.parent_watch", "-ra", "-p", "regbench.conformance.plugin",
            "--pyargs", "regbench.conformance", *trainers]  # fmt: skip


def conform(trainer_ids: list[str]) -> int:
    from regbench.partial import death
    from regbench.run import _run_pytest, _stopping_signals

    check_ids(trainer_ids)
    cmd = pytest_command(list(dict.fromkeys(trainer_ids)))
    print("running:", shlex.join(cmd), flush=True)
    with tempfile.TemporaryDirectory(prefix="regbench-conform-") as folder, _stopping_signals():
        started = Path(folder) / "started"
        status, stopped_by = _run_pytest(cmd, None, None, {STARTED_ENV: str(started)})
        crashed_in = started.read_text() if started.exists() else None  # the session never ended
    if stopped_by is not None:
        what = "interrupted" if stopped_by == signal.SIGINT else f"stopped by {signal.Signals(stopped_by).name}"
        print(f"regbench: conform: {what}", file=sys.stderr)
        return 128 + stopped_by
    if status < 0 or (status != 0 and crashed_in is not None):
        where = f"in {crashed_in}" if crashed_in else "before any check started"
        print(flush=True)  # pytest's line of that check's file was cut short
        print(f"regbench: conform: the kit's pytest was {death(status)} {where}: the trainer's code crashed its "
              "process; the checks after it did not run", file=sys.stderr)  # fmt: skip
        return 1
    return status

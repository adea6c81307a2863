"""``regbench run``: the supervisor of one benchmark run, from pytest's start to the run's place in the storage.

Rules: pytest runs in a child process in a group of its own, so that Ctrl-C
reaches regbench alone, which passes it on once; the run is saved into a
staging folder inside the storage and added only when pytest succeeded
(regbench.store); nothing is written outside the storage and the report
folder (the child runs with ``-B`` and no cache provider); once a run is
saved it is never lost: whatever happens after, the error says where it is.
Why a selection ran nothing comes from the outcomes regbench's own pytest
plugin recorded (bench.outcomes), never from pytest's printed output.
pytest runs quiet (``-q``, classic output: no dots, no percentages); the
progress is regbench's own line per benchmark (bench.progress), and pytest's
skip list and summary still end its output. ``--quick`` is bench's own
``--quick`` (the tutorial's problem alone, a small budget, no cold start).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from regbench import store
from regbench.checks import UsageError, check_folder

#: pytest's exit statuses (pytest.ExitCode) that regbench tells apart. pytest's "interrupted" is also its status
#: for errors during collection: a Ctrl-C is known here, where it was pressed.
PYTEST_COLLECTION_ERRORS, PYTEST_USAGE_ERROR, PYTEST_NO_TESTS = 2, 4, 5
#: Process-group arguments of the pytest child: Ctrl-C reaches regbench alone, which passes it on once.
OWN_GROUP = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}


def _run_pytest(cmd: list[str], stderr) -> tuple[int, bool]:
    """Run pytest in a process group of its own; returns its exit status and whether Ctrl-C was pressed.

    The first Ctrl-C is passed on to pytest's group (pytest stops, its benchmark workers too), a second one kills
    the group. Without a group of its own pytest could get a terminal's Ctrl-C twice, and a second interrupt
    breaks its clean-up with a traceback.
    """
    child = subprocess.Popen(cmd, stderr=stderr, **OWN_GROUP)
    presses = 0
    while True:
        try:
            return child.wait(), presses > 0
        except KeyboardInterrupt:
            presses += 1
            if not hasattr(os, "killpg"):  # Windows: no process groups to signal
                child.terminate()
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGINT if presses == 1 else signal.SIGKILL)


def _usage_error(stderr: str) -> str:
    """pytest's own line about a bad command line: its ``ERROR: ...`` line, or argparse's ``...: error: ...``.

    A usage error ends pytest before any plugin of regbench runs: its words exist only on stderr.
    """
    for line in reversed([line.strip() for line in stderr.splitlines()]):
        if line.startswith("ERROR: ") and not line.startswith("ERROR: usage"):
            return line.removeprefix("ERROR: ")
        if ": error: " in line:
            return line.split(": error: ", 1)[1]
    return "pytest refused its arguments"


def _skipped(outcomes: Path) -> str:
    """How many benchmarks were skipped and why, as the run's own plugin recorded them ("" when it wrote none)."""
    try:
        recorded = json.loads(outcomes.read_text())
    except (OSError, ValueError):
        return ""
    reasons = Counter(o["reason"] for o in recorded if o.get("outcome") == "skipped")
    return ", ".join(f"{count} × {reason}" for reason, count in reasons.most_common())


def run(args, write_report: Callable) -> int:
    """``regbench run``: benchmark in a pytest child, add the run to the storage, then ``write_report(args)``."""
    import bench

    check_folder(args.storage, "--storage")
    check_folder(args.out, "--out")
    bench_dir = Path(bench.__file__).parent
    saved: list[Path] = []
    new_storage = not args.storage.exists()  # removed again if the run saves nothing
    try:
        staging = store.staging_folder(args.storage)
    except OSError as exc:  # what check_folder cannot foresee: a name too long, a full disk
        raise UsageError(f"--storage {args.storage}: cannot be written ({exc})") from None
    outcomes, stderr_path = staging / ".outcomes.json", staging / ".stderr"
    workers = [] if args.workers is None else [f"--workers={args.workers}"]  # the data-parallel trainers' count
    quick = ["--quick"] if getattr(args, "quick", False) else []
    # -B and no cache provider: nothing written into the checkout; the warning would fail a run that saved nothing.
    # -q and classic output: regbench's progress lines (bench.progress) stand for pytest's dots and percentages.
    cmd = [sys.executable, "-B", "-m", "pytest", str(bench_dir), "-q", "-rs", "-o", "console_output_style=classic",
           "-p", "no:cacheprovider", "-W", "ignore:Not saving anything", "--regbench-progress",
           f"--regbench-outcomes={outcomes}", f"--benchmark-save={args.name}", "--benchmark-save-data",
           f"--benchmark-storage=file://{staging.resolve()}", *workers, *quick, *args.pytest_args]  # fmt: skip
    print("running:", " ".join(cmd), flush=True)
    try:
        # pytest's stderr (short: its progress and results go to stdout) is held until it ends, so that an error
        # about its arguments becomes regbench's one line; anything else on it is passed on then.
        with open(stderr_path, "w+b") as stderr:
            status, interrupted = _run_pytest(cmd, stderr)
            stderr.seek(0)
            errors = stderr.read().decode(errors="replace")
        if interrupted:
            raise KeyboardInterrupt
        if status == PYTEST_USAGE_ERROR:
            raise UsageError(f"pytest: {_usage_error(errors)}; nothing saved")
        # The rest of pytest's stderr, less pytest-benchmark's note of the staging file (regbench says where it is).
        rest = "\n".join(line for line in errors.splitlines() if not line.startswith("Saved benchmark data in"))
        if rest.strip():
            print(rest.strip(), file=sys.stderr)
        if status == PYTEST_NO_TESTS:
            raise UsageError("the selection ran no benchmark (pytest selected none); nothing saved")
        if status != 0:  # failed benchmarks, or (status 2 without a Ctrl-C here) errors while collecting them
            why = ": errors while collecting the benchmarks" if status == PYTEST_COLLECTION_ERRORS else ""
            print(f"regbench: the benchmark run failed (pytest exit status {status}{why}); nothing saved, no report "
                  "written", file=sys.stderr)  # fmt: skip
            return 1
        if not any(staging.glob("*/*.json")):
            skipped = _skipped(outcomes)
            why = f": skipped {skipped}" if skipped else ""
            raise UsageError(f"the selection ran no benchmark{why}; nothing saved")
        for path in store.commit(staging, args.storage):
            saved.append(path)
            print(f"saved: {path}", flush=True)
        args.paths, args.all = [args.storage], False
        return write_report(args)
    except KeyboardInterrupt:
        kept = f"saved {', '.join(map(str, saved))}; no report written" if saved else "nothing saved"
        print(f"regbench: interrupted: {kept}", file=sys.stderr)
        return 130
    except UsageError as exc:
        if saved:  # the report failed: the run is kept, and the user told where it is
            raise UsageError(f"{exc}; the run is saved: {', '.join(map(str, saved))}") from None
        raise
    finally:
        store.discard(staging)
        if new_storage and not saved:
            with contextlib.suppress(OSError):
                args.storage.rmdir()

"""The ``regbench`` command line: run, report, compare, history, targets, list.

Rules: a user's mistake is one line on stderr and an exit status, never a
traceback: 0 ok; 1 a regression (``compare``, reports.compare), an unmet
target (``targets``, reports.targets) or a failed benchmark (``run``); 2
unusable input (a bad option, a missing or unreadable path, a corrupt file:
the line names it); 130 interrupted (Ctrl-C). Options are checked as they are
parsed (reports.schema), the folders a command writes before it does any
work. Where some input files were good, ``report`` and ``history`` cover those
and list the bad ones. ``run`` writes nothing outside its storage and report
folders, adds a run to the storage only when pytest succeeded (reports.store),
and once a run is saved never loses it: whatever happens after, it says where
the run is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from reports.schema import count_option, name_option, number_option

DEFAULT_STORAGE = Path(".benchmarks")
DEFAULT_OUT = Path("report")


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse, with a bad command line reported as one line (argparse prints the whole usage first)."""

    def error(self, message: str):
        command = self.prog.removeprefix("regbench").strip()  # "" for the top level, else the subcommand
        self.exit(2, f"regbench: error: {command + ': ' if command else ''}{message} (see {self.prog} --help)\n")


def check_folder(path: Path, option: str) -> None:
    """Refuse, before any work, a folder that cannot be written: a file, or under one, or where writing is refused."""
    if os.path.lexists(path) and not path.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a folder")
    existing = path
    while not os.path.lexists(existing):  # the folder is created later: its nearest existing parent must allow it
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {existing} is not writable")


def _load(paths, latest=True):
    from reports.load import LoadError, load

    try:
        runs = load([Path(p) for p in paths], latest=latest)
    except LoadError as exc:
        raise UsageError(str(exc)) from None
    for error in runs.errors:
        print(f"regbench: skipped {error}", file=sys.stderr)
    return runs


def _history(paths, printed=()):
    from reports.history import collect
    from reports.load import LoadError

    try:
        past = collect([Path(p) for p in paths])
    except LoadError as exc:
        raise UsageError(str(exc)) from None
    for error in past.errors:
        if error not in printed:
            print(f"regbench: skipped {error}", file=sys.stderr)
    return past


def cmd_report(args) -> int:
    from reports.render import write_report

    check_folder(args.out, "--out")
    paths = args.paths or [DEFAULT_STORAGE]
    runs = _load(paths, latest=not args.all)
    past = _history(paths, printed=runs.errors)
    try:
        files = write_report(runs, args.out, past)
    except OSError as exc:  # the disk filled up, the folder went away meanwhile
        raise UsageError(f"--out {args.out}: the report could not be written ({exc})") from None
    print(f"report: {args.out / 'report.html'} ({len(files)} files in {args.out}/)")
    return 0


def resolve_run(spec: str, storage: Path) -> Path:
    """A saved run named by path, by number (``0003``, ``3``) or by name (``first``), in ``storage``."""
    path = Path(spec)
    if path.is_file():
        return path
    if spec.isdigit():
        matches = sorted(storage.glob(f"*/{int(spec):04d}_*.json"))
    else:
        matches = sorted(storage.glob(f"*/[0-9][0-9][0-9][0-9]_{spec}.json"))
    if not matches:
        raise UsageError(f"{spec}: no such file, and no saved run of that number or name in {storage}")
    if len(matches) > 1:
        raise UsageError(f"{spec}: several saved runs match ({', '.join(map(str, matches))}); give a path")
    return matches[0]


def cmd_compare(args) -> int:
    from reports.compare import compare_runs
    from reports.compare_format import render
    from reports.stats import Method

    paths = [resolve_run(spec, args.storage) for spec in (args.base, args.new)]
    base, new = (_load([path]) for path in paths)
    for side, path, runs in (("BASE", paths[0], base), ("NEW", paths[1], new)):
        if runs.table.empty:  # a gate over nothing would pass
            raise UsageError(f"{side} {path}: no trainer benchmarks to compare (only the bandwidth floor)")
    method = Method(threshold=args.threshold, alpha=args.alpha)
    result = compare_runs(base, new, method, args.max_drift)
    output, status = render(args.format, result, paths, method, args.max_drift, args.allow_missing)
    print(output)
    return status


def cmd_targets(args) -> int:
    from reports import tables, targets

    runs = _load([resolve_run(args.run, args.storage) if args.run else args.storage])
    judged = targets.judge(runs)
    for title, table in judged.items():
        print(f"## {title}\n")
        print(tables.present(table).to_markdown(index=False, disable_numparse=True) if not table.empty else "(none)")
        print()
    count, failed = targets.unmet(judged)
    print(f"{count - failed} of {count} targets met" + (f"; {failed} not met" if failed else ""))
    return 1 if failed else 0


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
    """pytest's own line about a bad command line (its ``ERROR:`` line, or argparse's ``error:``)."""
    lines = [line.strip() for line in stderr.splitlines()]
    found = [line for line in lines if re.search(r"(^ERROR: |: error: )", line) and not line.startswith("ERROR: usage")]
    return re.sub(r"^(ERROR: |.*?: error: )", "", found[-1]) if found else "pytest refused its arguments"


def _skipped(outcomes: Path) -> str:
    """How many benchmarks pytest skipped and why, from its JUnit XML ("" when it wrote none)."""
    try:
        tree = ET.parse(outcomes)
    except (OSError, ET.ParseError):
        return ""
    reasons = Counter(s.get("message", "") for s in tree.iter("skipped"))
    return ", ".join(f"{count} × {reason}" for reason, count in reasons.most_common())


def cmd_run(args) -> int:
    import bench
    from reports import store

    check_folder(args.storage, "--storage")
    check_folder(args.out, "--out")
    bench_dir = Path(bench.__file__).parent
    saved: list[Path] = []
    new_storage = not args.storage.exists()  # removed again if the run saves nothing
    try:
        staging = store.staging_folder(args.storage)
    except OSError as exc:  # what check_folder cannot foresee: a name too long, a full disk
        raise UsageError(f"--storage {args.storage}: cannot be written ({exc})") from None
    outcomes, stderr_path = staging / ".outcomes.xml", staging / ".stderr"
    workers = [] if args.workers is None else [f"--workers={args.workers}"]  # the data-parallel trainers' count
    # -B and no cache provider: nothing written into the checkout; the warning would fail a run that saved nothing.
    cmd = [sys.executable, "-B", "-m", "pytest", str(bench_dir), "-rs", "-p", "no:cacheprovider",
           "-W", "ignore:Not saving anything", f"--junitxml={outcomes}", f"--benchmark-save={args.name}",
           "--benchmark-save-data", f"--benchmark-storage=file://{staging.resolve()}", *workers,
           *args.pytest_args]  # fmt: skip
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
        return cmd_report(args)
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


def cmd_history(args) -> int:
    from reports import history
    from reports.render import _png, write_atomic
    from reports.stats import Method

    if args.out is not None:
        check_folder(args.out, "--out")
    past = _history([args.storage])
    print(f"history of {args.storage}; steps judged by {Method().describe()}")
    for (machine, run), changes in (
        past.table.groupby(["machine", "run"], sort=False)["versions_changed"].first().items()
    ):
        if changes:
            print(f"{machine} {run}: {changes}")
    print(history.summary(past).to_string(index=False))
    if args.out is not None:
        try:
            write_atomic(args.out / "history.csv", history.csv(past).encode())
            write_atomic(args.out / "history.png", _png(history.chart(past)))
        except OSError as exc:
            raise UsageError(f"--out {args.out}: the history could not be written ({exc})") from None
        print(f"history: {args.out / 'history.png'}, {args.out / 'history.csv'}")
    return 0


def cmd_list(args) -> int:
    import backends

    for tid, availability in backends.available().items():
        print(f"{tid:32s} {'ok' if availability.ok else 'unavailable: ' + availability.reason}")
    return 0


POSITIVE = number_option("a finite number > 0", gt=0)


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="regbench", description="Benchmark gradient-descent training across frameworks.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("report", help="tables and charts from saved benchmark runs")
    r.add_argument("paths", nargs="*", type=Path, help=f"storage folders or saved JSON files [{DEFAULT_STORAGE}]")
    r.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder [{DEFAULT_OUT}]")
    r.add_argument("--all", action="store_true", help="every saved run in each folder, not only the latest")
    r.set_defaults(func=cmd_report)

    c = sub.add_parser("compare", help="statistical speed verdicts and accuracy changes between two saved runs; "
                       "exit 1 on a significant slow-down or an accuracy change")  # fmt: skip
    c.add_argument("base", help="saved run: a file path, a run number (0001) or a run name")
    c.add_argument("new", help="saved run: a file path, a run number or a run name")
    c.add_argument("--storage", type=Path, default=DEFAULT_STORAGE, help=f"where numbers and names are looked up "
                   f"[{DEFAULT_STORAGE}]")  # fmt: skip
    c.add_argument("--threshold", "--max-slowdown", type=POSITIVE, default=0.10, dest="threshold",
                   help="smallest change that counts, as a fraction of BASE's median [0.10]")  # fmt: skip
    c.add_argument("--alpha", type=number_option("a number between 0 and 1", gt=0, lt=1), default=0.01,
                   help="level of the Mann–Whitney U test [0.01]")  # fmt: skip
    c.add_argument("--allow-missing", action="store_true", help="benchmarks of BASE missing from NEW do not fail")
    c.add_argument("--max-drift", type=POSITIVE, default=1e-4,
                   help="tolerated relative change of final loss, w or b [1e-4]")  # fmt: skip
    c.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                   help="text for a terminal, markdown for a CI summary or a PR comment, json for a script; "
                   "the exit status is the same [text]")  # fmt: skip
    c.set_defaults(func=cmd_compare)

    h = sub.add_parser("history", help="every saved run of each machine in order, with flagged steps")
    h.add_argument("storage", nargs="?", type=Path, default=DEFAULT_STORAGE, help=f"benchmark storage "
                   f"[{DEFAULT_STORAGE}]")  # fmt: skip
    h.add_argument("--out", type=Path, default=None, help="also write history.png and history.csv there")
    h.set_defaults(func=cmd_history)

    u = sub.add_parser("run", help="the main job: run the benchmarks, save them, write the report")
    u.add_argument("--name", type=name_option, default="run", help="name of the saved run [run]")
    u.add_argument("--storage", type=Path, default=DEFAULT_STORAGE, help=f"benchmark storage [{DEFAULT_STORAGE}]")
    u.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"report folder [{DEFAULT_OUT}]")
    u.add_argument("--workers", type=count_option, default=None,
                   help="worker processes of each data-parallel trainer [bench's default: 2]")  # fmt: skip
    u.add_argument("pytest_args", nargs="*", help="passed on to pytest after --, e.g. -- --sweep")
    u.set_defaults(func=cmd_run)

    t = sub.add_parser("targets", help="the speed, overhead and memory targets of a saved run; exit 1 if one is unmet")
    t.add_argument("run", nargs="?", help="saved run: a file path, a run number or a name [the latest in --storage]")
    t.add_argument("--storage", type=Path, default=DEFAULT_STORAGE, help=f"benchmark storage [{DEFAULT_STORAGE}]")
    t.set_defaults(func=cmd_targets)

    ls = sub.add_parser("list", help="every trainer id, with whether it can run here and why not")
    ls.set_defaults(func=cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"regbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # `run` says what it saved; every other command saves nothing
        print("regbench: interrupted: nothing saved", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

"""``regbench run``: the supervisor of one benchmark run, from pytest's start to the run's place in the storage.

Rules: pytest runs in child processes, one at a time, each in a group of its
own, so that Ctrl-C reaches regbench alone, which passes it on once: first a
plan (pytest collects: a user's mistake is found before any long work), then
one process per framework (bench.isolation), whose files are merged into one
run (regbench.merge). The run is saved into a staging folder inside the
storage and added only when every process succeeded (regbench.store);
nothing is written outside the storage and the report folder (the children
run with ``-B`` and no cache provider); once a run is saved it is never
lost: whatever happens after, the error says where it is.
Why a selection ran nothing comes from the outcomes regbench's own pytest
plugin recorded (bench.outcomes), never from pytest's printed output.
SIGTERM and SIGHUP are handled as Ctrl-C is (the child's group stopped, the
staging folder removed, one line, exit 128 + the signal's number); pytest dies
with regbench even when regbench is killed outright (bench.parent_watch), and a
staging folder such a death leaves is removed by the next run (regbench.store).
pytest runs quiet (``-q``, classic output: no dots, no percentages); the
progress is regbench's own line per benchmark (bench.progress), and pytest's
skip list and summary still end its output. ``--quick`` is bench's own
``--quick`` (the tutorial's problem alone, a small budget, no cold start).
Across nodes (``--nnodes N``, regbench.nodes) node 0's run is this one, its
children told of the cluster, after every node joined; a lost node stops it
as a signal does, with a line naming the node, nothing saved.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from regbench import merge, nodes, store
from regbench.caches import CACHE_FOLDER, cache_env
from regbench.checks import UsageError, check_folder

#: pytest's exit statuses (pytest.ExitCode) that regbench tells apart. pytest's "interrupted" is also its status
#: for errors during collection: a Ctrl-C is known here, where it was pressed.
PYTEST_TESTS_FAILED, PYTEST_COLLECTION_ERRORS, PYTEST_USAGE_ERROR, PYTEST_NO_TESTS = 1, 2, 4, 5
#: Process-group arguments of the pytest child: Ctrl-C reaches regbench alone, which passes it on once.
OWN_GROUP = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
#: Signals that stop a run as Ctrl-C does (SIGINT itself arrives as KeyboardInterrupt).
STOPPING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(BaseException):
    """A stopping signal other than SIGINT arrived; a BaseException, as KeyboardInterrupt, so no handler of
    ``Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum, frame):
    raise Stopped(signum)


@contextlib.contextmanager
def _stopping_signals():
    """SIGTERM and SIGHUP raise Stopped while a run is supervised; the handlers before are put back after. A signal
    ignored when regbench started (``nohup`` ignores SIGHUP) stays ignored: the user asked for it."""
    previous = {signum: signal.signal(signum, _raise_stopped) for signum in STOPPING
                if signal.getsignal(signum) is not signal.SIG_IGN}  # fmt: skip
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_pytest(cmd: list[str], stderr, stdout, env: dict[str, str]) -> tuple[int, int | None]:
    """Run pytest in a process group of its own; returns its exit status and the first stopping signal's number
    (SIGINT for Ctrl-C; None when none came).

    The first Ctrl-C (or SIGTERM, SIGHUP) is passed on to pytest's group (pytest stops, its benchmark workers
    too), a second one kills the group. Without a group of its own pytest could get a terminal's Ctrl-C twice,
    and a second interrupt breaks its clean-up with a traceback.
    """
    # pytest dies with this process even when it is SIGKILLed: bench.parent_watch asks the kernel for it.
    env = {**os.environ, **env, "REGBENCH_PARENT_PID": str(os.getpid())}
    child = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env, **OWN_GROUP)
    stopped: list[int] = []
    while True:
        try:
            return child.wait(), (stopped[0] if stopped else None)
        except (KeyboardInterrupt, Stopped) as exc:
            signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
            stopped.append(signum)
            if not hasattr(os, "killpg"):  # Windows: no process groups to signal
                child.terminate()
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signum if len(stopped) == 1 else signal.SIGKILL)


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


def _skipped(outcomes: list[dict]) -> str:
    """How many benchmarks were skipped and why, as the run's own plugin recorded them ("" when it wrote none)."""
    reasons = Counter(o["reason"] for o in outcomes if o.get("outcome") == "skipped")
    return ", ".join(f"{count} × {reason}" for reason, count in reasons.most_common())


class _Failed(Exception):
    """A benchmark process failed: the run is not saved. Its arguments: the line that says why, pytest's status."""

    def __str__(self) -> str:
        return self.args[0]


def _pytest(cmd: list[str], folder: Path, env: dict[str, str], quiet: bool = False) -> None:
    """Run one pytest process; its stderr, and with ``quiet`` its stdout, kept in ``folder`` until it ends.

    A stopping signal is raised again here; pytest's usage error and a selection of nothing are a UsageError; a
    failed run is ``_Failed``. pytest's stderr (short: its progress and results go to stdout) is held until it
    ends, so that an error about its arguments becomes regbench's one line; anything else on it is passed on then.
    """
    folder.mkdir(parents=True)
    with (
        open(folder / ".stderr", "w+b") as stderr,
        open(folder / ".stdout", "w+b") if quiet else contextlib.nullcontext() as out,  # None: regbench's stdout
    ):
        status, stopped_by = _run_pytest(cmd, stderr, out, env)
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")
        if quiet and status not in (0, PYTEST_USAGE_ERROR, PYTEST_NO_TESTS):  # what went wrong is in its output
            out.seek(0)
            if said := out.read().decode(errors="replace").strip():
                print(said, flush=True)
    if stopped_by == signal.SIGINT:
        raise KeyboardInterrupt
    if stopped_by is not None:
        raise Stopped(stopped_by)
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
        raise _Failed(f"the benchmark run failed (pytest exit status {status}{why})", f"pytest exit status {status}")


def _benchmark(base: list[str], staging: Path, caches: dict[str, str], name: str) -> list[str]:
    """The run into ``staging``: a plan pass, then one pytest process per framework (bench.isolation), merged into
    one file (regbench.merge). Returns the frameworks whose process had failed benchmarks: the others' run on,
    and the run keeps what every process measured (a plugin's broken trainer costs its own figures only)."""
    # The plan first (pytest collects, runs nothing): a user's mistake is found before any long work.
    plan_path = staging / ".plan.json"
    # Its storage too is the staging folder: pytest-benchmark makes its storage folder (./.benchmarks) when it starts.
    plan_storage = f"--benchmark-storage=file://{(staging / 'plan').resolve()}"
    _pytest([*base, "--collect-only", f"--regbench-plan={plan_path}", plan_storage], staging / "plan", caches,
            quiet=True)  # fmt: skip
    if not plan_path.exists():  # pytest ended before collecting (-- --help, --version): what it printed, then a line
        print((staging / "plan" / ".stdout").read_text(errors="replace").rstrip(), flush=True)
        raise UsageError("pytest ran no benchmark: its options only asked it to print (--help, --version, --markers, "
                         "...); nothing saved")  # fmt: skip
    plan = json.loads(plan_path.read_text())["benchmarks"]
    counts = Counter(entry["framework"] for entry in plan)  # in pytest's order of each framework's first benchmark
    done, begun, failed = 0, time.time(), []
    for framework, count in counts.items():
        print(f"{framework}: {count} benchmark{'s' * (count > 1)}, in a new process", flush=True)
        part = staging / "parts" / framework
        cmd = [
            *base,
            f"--regbench-framework={framework}",
            "--regbench-progress",
            f"--regbench-progress-of={done},{len(plan)},{begun}",
            f"--regbench-outcomes={part / 'outcomes.json'}",
            f"--benchmark-save={name}",
            "--benchmark-save-data",
            f"--benchmark-storage=file://{part.resolve()}",
        ]
        try:
            _pytest(cmd, part, caches)
        except _Failed as exc:
            # Not failed benchmarks (errors while collecting), or a disk too full to save them: stop here.
            if exc.args[1] != f"pytest exit status {PYTEST_TESTS_FAILED}" or store.disk_full(staging):
                raise
            failed.append(framework)
        done += count
    outcomes = [merge.read_outcomes(staging / "parts" / framework / "outcomes.json") for framework in counts]
    files = [path for framework in counts for path in (staging / "parts" / framework).glob("*/*.json")]
    if not files:
        skipped = _skipped([o for process in outcomes for o in process])
        raise UsageError(f"the selection ran no benchmark{f': skipped {skipped}' if skipped else ''}; nothing saved")
    run_file = staging / files[0].parent.name / files[0].name
    run_file.parent.mkdir()
    run_file.write_text(json.dumps(merge.merge([json.loads(f.read_text()) for f in files], outcomes, list(counts))))
    shutil.rmtree(staging / "parts")
    return failed


def run(args, write_report: Callable) -> int:
    """``regbench run``: benchmark in a pytest child, add the run to the storage, then ``write_report(args)``."""
    with _stopping_signals():
        cluster = getattr(args, "cluster", None)  # regbench.nodes.check's, from --nnodes and --rdzv
        if cluster is None:
            return _run(args, write_report)
        status = 1
        host = nodes.Host(cluster)
        try:
            status = _run(args, write_report, host)
            return status
        finally:
            host.close(status)


def _run(args, write_report: Callable, host: nodes.Host | None = None) -> int:
    import bench

    check_folder(args.storage, "--storage")
    check_folder(args.out, "--out")
    store.preflight(args.storage, args.name)
    removed, notes = store.clean_stale(args.storage)
    for folder in removed:
        print(f"removed {folder}: left by a run that is gone", flush=True)
    for note in notes:
        print(f"regbench: warning: {note}", file=sys.stderr)
    bench_dir = Path(bench.__file__).parent
    saved: list[Path] = []
    keep_staging = False
    new_storage = not args.storage.exists()  # removed again if the run saves nothing
    new_caches = not (args.storage / CACHE_FOLDER).exists()  # so are the caches it made (regbench.caches)
    try:
        staging = store.staging_folder(args.storage)
    except OSError as exc:  # what check_folder cannot foresee: a name too long, a full disk
        raise UsageError(f"--storage {args.storage}: cannot be written ({store.describe(exc)})") from None
    try:
        caches = cache_env(args.storage)
    except OSError as exc:
        store.discard(staging)
        raise UsageError(f"--storage {args.storage}: cannot be written ({store.describe(exc)})") from None
    if host is not None:  # the children learn of the cluster
        caches = {**caches, **host.env()}
    workers = [] if args.workers is None else [f"--workers={args.workers}"]  # the data-parallel trainers' count
    quick = ["--quick"] if getattr(args, "quick", False) else []
    # -B and no cache provider: nothing written into the checkout; the warning would fail a run that saved nothing,
    # and a benchmark that failed before its timing would fail a second time at its fixture's teardown.
    # -q and classic output: regbench's progress lines (bench.progress) stand for pytest's dots and percentages.
    # Without hypothesis's plugin (the tests' tool, not the benchmarks'): ~1 s of imports in each process.
    base = [sys.executable, "-B", "-m", "pytest", str(bench_dir), "-q", "-rs", "-o", "console_output_style=classic",
            "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "bench.parent_watch",
            "-W", "ignore:Not saving anything", "-W", "ignore:Benchmark fixture was not used",
            *workers, *quick, *args.pytest_args]  # fmt: skip
    # This process draws the report after the run: its matplotlib cache goes to the storage too. It is
    # regbench's own process, not a user's, and matplotlib reads the variable when first imported.
    if "MPLCONFIGDIR" in caches and "matplotlib" not in sys.modules:
        os.environ["MPLCONFIGDIR"] = caches["MPLCONFIGDIR"]
    print("running:", " ".join(base), f"--regbench-framework=NAME --benchmark-storage=file://{staging.resolve()}"
          "/parts/NAME, one process per framework NAME", flush=True)  # fmt: skip
    try:
        if host is not None:
            host.wait_for_nodes()  # every node there before any work
        try:
            failed = _benchmark(base, staging, caches, args.name)
        except (_Failed, UsageError):
            if host is not None and host.lost_now():  # a lost node's doing: then that is what the line says
                raise _Failed(f"error: {host.lost}", "a lost node") from None
            raise
        if host is not None:
            if failed and host.lost_now():
                raise _Failed(f"error: {host.lost}", "a lost node")
            host.release()  # the benchmarks are done: what the other nodes do now cannot cost the run
        try:
            for path in store.commit(staging, args.storage):
                saved.append(path)
                print(f"saved: {path}", flush=True)
        except OSError as exc:  # the disk filled up or the folder's permissions changed since preflight
            kept = sorted(staging.glob("*/*.json"))
            keep_staging = True  # the finished run is never thrown away: the user is told where it is
            print(f"regbench: error: the run could not be added to --storage {args.storage} ({store.describe(exc)});"
                  f" it is kept in {', '.join(map(str, kept))}", file=sys.stderr)  # fmt: skip
            return 1
        args.paths, args.all = [args.storage], False
        status = write_report(args)
        if failed:  # the report lists them; the others' figures are saved and reported
            processes = f"process{'es' * (len(failed) > 1)}"
            print(f"regbench: benchmarks failed in the {', '.join(failed)} {processes} (the report lists them); the "
                  f"others are saved: {', '.join(map(str, saved))}", file=sys.stderr)  # fmt: skip
            return 1
        return status
    except _Failed as exc:
        if store.disk_full(staging):  # pytest-benchmark could not write the run: not a failed run
            exc = f"error: no space left on the device of --storage {args.storage} ({exc.args[1]})"
        print(f"regbench: {exc}; nothing saved, no report written", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Stopped) as exc:
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        kept = f"saved {', '.join(map(str, saved))}; no report written" if saved else "nothing saved"
        what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        if host is not None and host.lost:  # the watch's SIGTERM: the run failed, it was not stopped
            print(f"regbench: error: {host.lost}; {kept}", file=sys.stderr)
            return 1
        print(f"regbench: {what}: {kept}", file=sys.stderr)
        return 128 + signum  # a shell's status for a death by that signal: 130 for Ctrl-C, 143 for SIGTERM
    except UsageError as exc:
        if saved:  # the report failed: the run is kept, and the user told where it is
            raise UsageError(f"{exc}; the run is saved: {', '.join(map(str, saved))}") from None
        raise
    finally:
        if not keep_staging:
            store.discard(staging)
        if new_caches and not saved and not keep_staging:  # a run that saves nothing leaves nothing
            shutil.rmtree(args.storage / CACHE_FOLDER, ignore_errors=True)
        if new_storage and not saved and not keep_staging:
            with contextlib.suppress(OSError):
                args.storage.rmdir()

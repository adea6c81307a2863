"""``regbench run``: the supervisor of one benchmark run, from pytest's start to the run's place in the storage.

Rules: pytest runs in child processes, one at a time, each in a group of its
own, so that Ctrl-C reaches regbench alone, which passes it on once: first a
plan (pytest collects: a user's mistake is found before any long work), then
one process per framework (bench.isolation), whose files are merged into one
run (regbench.merge). A process that dies (a plugin's crash) costs the benchmark
it died in: what it finished is kept (regbench.partial) and a new process runs
the rest. The run is saved into a staging folder inside the
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
skip list and summary still end its output. ``--quick`` and ``--full`` are bench's own
(bench/conftest.py: the run's depth). The progress line's time left comes from
what the storage's earlier runs took for each benchmark (regbench.estimates).
Across nodes (``--nnodes N``, regbench.nodes) node 0's run is this one, its
children told of the cluster, after every node joined; a lost node stops it
as a signal does, with a line naming the node, nothing saved.
"""

from __future__ import annotations

import contextlib
import errno
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

from regbench import estimates, merge, nodes, partial, store
from regbench.caches import CACHE_FOLDER, cache_env, discard_unused
from regbench.checks import UsageError, check_folder
from reports.summary import DEPTH_NOTES

#: pytest's exit statuses (pytest.ExitCode) that regbench tells apart. pytest's "interrupted" is also its status
#: for errors during collection: a Ctrl-C is known here, where it was pressed.
PYTEST_TESTS_FAILED, PYTEST_COLLECTION_ERRORS, PYTEST_USAGE_ERROR, PYTEST_NO_TESTS = 1, 2, 4, 5
#: A full disk's words, as a failed benchmark's reason has them (bench.outcomes).
NO_SPACE = os.strerror(errno.ENOSPC)
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


def _run_pytest(cmd: list[str], stderr, stdout, env: dict[str, str], cwd: Path | None = None) -> tuple[int, int | None]:
    """Run pytest in a process group of its own; returns its exit status and the first stopping signal's number
    (SIGINT for Ctrl-C; None when none came).

    The first Ctrl-C (or SIGTERM, SIGHUP) is passed on to pytest's group (pytest stops, its benchmark workers
    too), a second one kills the group. Without a group of its own pytest could get a terminal's Ctrl-C twice,
    and a second interrupt breaks its clean-up with a traceback.
    """
    # pytest dies with this process even when it is SIGKILLed: bench.parent_watch asks the kernel for it.
    env = {**os.environ, **env, "REGBENCH_PARENT_PID": str(os.getpid())}
    child = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env, cwd=cwd, **OWN_GROUP)
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
    """A benchmark process failed: the run is not saved. Its arguments: the line that says why, pytest's status in
    words, and as a number (Popen's: negative for a death by a signal)."""

    def __str__(self) -> str:
        return self.args[0]


def _pytest(
    cmd: list[str],
    folder: Path,
    env: dict[str, str],
    quiet: bool = False,
    planned: bool = False,
    cwd: Path | None = None,
) -> None:
    """Run one pytest process; its stderr, and with ``quiet`` its stdout, kept in ``folder`` until it ends.

    A stopping signal is raised again here; pytest's usage error and (unless ``planned``: the plan listed
    benchmarks its process no longer finds) a selection of nothing are a UsageError; a failed run is ``_Failed``.
    pytest's stderr (short: its progress and results go to stdout) is held until it ends, so that an error about
    its arguments becomes regbench's one line; anything else on it is passed on then, but for a death by a signal
    (a crash's fault dump: regbench.partial's line names it).
    """
    folder.mkdir(parents=True)
    with (
        open(folder / ".stderr", "w+b") as stderr,
        open(folder / ".stdout", "w+b") if quiet else contextlib.nullcontext() as out,  # None: regbench's stdout
    ):
        status, stopped_by = _run_pytest(cmd, stderr, out, env, cwd)
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
    # The rest of pytest's stderr, less pytest-benchmark's note of the file it wrote (regbench says where it is).
    notes = ("Saved benchmark data in", "Wrote benchmark data in")  # --benchmark-save's, --benchmark-json's
    rest = "\n".join(line for line in errors.splitlines() if not line.startswith(notes))
    if rest.strip() and status >= 0:
        print(rest.strip(), file=sys.stderr)
    if status == PYTEST_NO_TESTS and not planned:
        raise UsageError("the selection ran no benchmark (pytest selected none); nothing saved")
    if status not in (0, PYTEST_NO_TESTS):  # failed benchmarks, (2 without a Ctrl-C here) errors while collecting
        why = ": errors while collecting the benchmarks" if status == PYTEST_COLLECTION_ERRORS else ""
        raise _Failed(f"the benchmark run failed (pytest exit status {status}{why})", f"pytest exit status {status}",
                      status)  # fmt: skip


def _out_of_space(part: Path) -> bool:
    """Whether a benchmark of the process whose folder is ``part`` failed for a full disk (bench.outcomes says so
    in its reason: a compiler's ``No space left on device`` too, deep in inductor's error)."""
    outcomes = merge.read_outcomes(part / "outcomes.json") or partial.read(part / "partial.jsonl").outcomes
    return any(NO_SPACE in o.get("reason", "") for o in outcomes if o.get("outcome") == "failed")


def _benchmark(base: list[str], staging: Path, caches: dict[str, str], name: str, storage: Path) -> list[str]:
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
    estimates_path = staging / ".estimates.json"  # what each benchmark should cost: the progress line's "~N left"
    estimated = [f"--regbench-estimates={estimates_path}"] if estimates.write(estimates_path, plan, list(counts),
                                                                             storage) else []  # fmt: skip
    done, begun, failed = 0, time.time(), []
    parts: list[dict] = []  # every process's saved file or, where it died, what it had finished (regbench.partial)
    outcomes: list[list[dict]] = []
    for framework, count in counts.items():
        print(f"{framework}: {count} benchmark{'s' * (count > 1)}, in a new process", flush=True)
        mine = [entry for entry in plan if entry["framework"] == framework]
        left, tries = mine, 0
        while left:  # a process that dies costs the benchmark it died in; a new one runs the others
            part = staging / "parts" / f"{framework}.{tries}"
            tries += 1
            cmd = [
                *base,
                f"--regbench-framework={framework}",
                "--regbench-progress",
                f"--regbench-progress-of={done},{len(plan)},{begun}",
                *estimated,
                f"--regbench-outcomes={part / 'outcomes.json'}",
                f"--regbench-partial={part / 'partial.jsonl'}",
                f"--benchmark-save={name}",
                "--benchmark-save-data",
                f"--benchmark-storage=file://{part.resolve()}",
                *(f"--deselect={entry['nodeid']}" for entry in mine if entry not in left),
            ]
            try:
                _pytest(cmd, part, caches, planned=True)
                status = 0
            except _Failed as exc:
                if _out_of_space(part):  # a compile or a write found the disk full: not the benchmarks' failure
                    raise _Failed(str(exc), f"the {framework} process: {NO_SPACE}", exc.args[2]) from None
                status = exc.args[2]
                # Not failed benchmarks (errors while collecting), or a disk too full to save them: stop here.
                if (status != PYTEST_TESTS_FAILED and (part / "outcomes.json").exists()) or store.disk_full(staging):
                    raise
            died = not (part / "outcomes.json").exists()  # its session never ended (os._exit(0) too: status 0)
            if status or died:
                failed.append(framework)
            files = sorted(part.glob("*/*.json"))
            parts += [json.loads(f.read_text()) for f in files]
            if not died:
                outcomes.append(merge.read_outcomes(part / "outcomes.json"))
                done += len(left)
                break
            found, left = partial.salvage(part / "partial.jsonl", framework, status, mine, left)
            parts += [found.part] if found.part is not None else []
            outcomes.append(found.outcomes)
            for outcome in found.lost:
                print(f"{outcome['test']}: FAILED ({outcome['reason']})", flush=True)
            done += len(found.started) if found.started else len(found.lost)
            if left:
                print(f"{framework}: {len(left)} benchmark{'s' * (len(left) > 1)} left, in a new process", flush=True)
    missed = partial.missed(plan, outcomes)  # its plugin uninstalled during the run
    for framework, outcome in missed:
        print(f"{outcome['test']}: FAILED ({outcome['reason']})", flush=True)
        failed.append(framework)
    outcomes.append([outcome for _, outcome in missed])
    if not parts:
        if failed:
            raise _Failed(f"benchmarks failed in the {', '.join(dict.fromkeys(failed))} process and none finished",
                          f"{len(plan)} failed", PYTEST_TESTS_FAILED)  # fmt: skip
        skipped = _skipped([o for process in outcomes for o in process])
        raise UsageError(f"the selection ran no benchmark{f': skipped {skipped}' if skipped else ''}; nothing saved")
    run_file = store.machine_folder(staging) / f"0001_{name}.json"
    run_file.parent.mkdir()
    run_file.write_text(json.dumps(merge.merge(parts, outcomes, list(counts))))
    shutil.rmtree(staging / "parts")
    return list(dict.fromkeys(failed))


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
    depth = ["--quick"] if getattr(args, "quick", False) else ["--full"] if getattr(args, "full", False) else []
    # -B and no cache provider: nothing written into the checkout; the warning would fail a run that saved nothing,
    # and a benchmark that failed before its timing would fail a second time at its fixture's teardown.
    # -q and classic output: regbench's progress lines (bench.progress) stand for pytest's dots and percentages.
    # Without hypothesis's plugin (the tests' tool, not the benchmarks'): ~1 s of imports in each process.
    base = [sys.executable, "-B", "-m", "pytest", str(bench_dir), "-q", "-rs", "-o", "console_output_style=classic",
            "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "bench.parent_watch",
            "-W", "ignore:Not saving anything", "-W", "ignore:Benchmark fixture was not used",
            *workers, *depth, *args.pytest_args]  # fmt: skip
    # This process draws the report after the run: its matplotlib cache goes to the storage too. It is
    # regbench's own process, not a user's, and matplotlib reads the variable when first imported.
    if "MPLCONFIGDIR" in caches and "matplotlib" not in sys.modules:
        os.environ["MPLCONFIGDIR"] = caches["MPLCONFIGDIR"]
    print("running:", " ".join(base), f"--regbench-framework=NAME --benchmark-storage=file://{staging.resolve()}"
          "/parts/NAME, one process per framework NAME", flush=True)  # fmt: skip
    print(f"this is {DEPTH_NOTES[depth[0].removeprefix('--') if depth else 'default']}", flush=True)
    try:
        if host is not None:
            host.wait_for_nodes()  # every node there before any work
        try:
            failed = _benchmark(base, staging, caches, args.name, args.storage)
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
        if store.disk_full(staging) or exc.args[1].endswith(NO_SPACE):  # not a failed run: a full disk
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
        if new_caches and not saved and not keep_staging:  # a run that saves nothing leaves nothing of its own
            with contextlib.suppress(OSError):
                discard_unused(args.storage)
        if new_storage and not saved and not keep_staging:
            with contextlib.suppress(OSError):
                args.storage.rmdir()

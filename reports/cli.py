"""The ``regbench`` command line: run, report, compare, history, targets, list.

Rules: bad input (a missing path, an empty storage, a corrupt file) is one line
on stderr naming the file and exit status 2, unless some files were good, in
which case the report covers those and the bad ones are listed; ``compare``
exits 1 on a significant slow-down, an accuracy change or a missing benchmark
(reports.compare), ``targets`` on an unmet target (reports.targets), 0
otherwise; ``run`` adds a run to the storage only when pytest succeeded
(reports.store).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

DEFAULT_STORAGE = Path(".benchmarks")
DEFAULT_OUT = Path("report")


class UsageError(Exception):
    pass


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

    paths = args.paths or [DEFAULT_STORAGE]
    runs = _load(paths, latest=not args.all)
    files = write_report(runs, args.out, _history(paths, printed=runs.errors))
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
    from reports import tables
    from reports.compare import compare_runs
    from reports.stats import Method

    paths = [resolve_run(spec, args.storage) for spec in (args.base, args.new)]
    base, new = (_load([path]) for path in paths)
    method = Method(threshold=args.threshold, alpha=args.alpha)
    result = compare_runs(base, new, method, args.max_drift)
    print(f"compare: BASE {paths[0]} → NEW {paths[1]}")
    print(f"method: {method.describe()}; accuracy: final loss, w, b within {args.max_drift:g} (relative)")
    print("environment: " + ("; ".join(result.environment) or "same library versions, CPU, GPU and threads"))
    table = result.table
    shown = tables.present(table, drop_single=("workers", "threads"))  # shown where a scaling study varies them
    print(shown.to_string(index=False) if not table.empty else "no common benchmarks")
    for title, items in (("new in NEW", result.added), ("missing from NEW", result.missing)):
        if items:
            print(f"{title}:", *items, sep="\n  ")
    counts = table["verdict"].str.split(":").str[0].value_counts()
    print("verdicts: " + (", ".join(f"{n} {v}" for v, n in counts.items()) or "none"))
    if result.failed(args.allow_missing):
        reasons = [f"{len(result.slower)} slower beyond {args.threshold:.0%}"] if len(result.slower) else []
        reasons += [f"{len(result.drifted)} accuracy change(s)"] if len(result.drifted) else []
        reasons += [f"{len(result.missing)} missing from NEW"] if result.missing and not args.allow_missing else []
        print("FAIL: " + ", ".join(reasons))
        return 1
    print(f"ok: no significant slow-down beyond {args.threshold:.0%}, no accuracy change beyond {args.max_drift:g}")
    return 0


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


def cmd_run(args) -> int:
    import bench
    from reports import store

    bench_dir = Path(bench.__file__).parent
    staging = store.staging_folder(args.storage)
    workers = [] if args.workers is None else [f"--workers={args.workers}"]  # the data-parallel trainers' count
    cmd = [sys.executable, "-m", "pytest", str(bench_dir), "-rs", f"--benchmark-save={args.name}",
           "--benchmark-save-data", f"--benchmark-storage=file://{staging.resolve()}", *workers,
           *args.pytest_args]  # fmt: skip
    print("running:", " ".join(cmd), flush=True)
    try:
        child = subprocess.Popen(cmd)
        try:
            status = child.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached pytest too; it still saves what ran (into staging). Wait for it rather than kill it.
            child.wait()
            print("regbench: interrupted; nothing saved", file=sys.stderr)
            return 130
        if status != 0:
            print(f"regbench: the benchmark run failed (pytest exit status {status}); nothing saved, no report "
                  "written", file=sys.stderr)  # fmt: skip
            return status
        for path in store.commit(staging, args.storage):
            print(f"saved: {path}")
    finally:
        store.discard(staging)
    args.paths, args.all = [args.storage], False
    return cmd_report(args)


def cmd_history(args) -> int:
    from reports import history
    from reports.render import _png, write_atomic
    from reports.stats import Method

    past = _history([args.storage])
    print(f"history of {args.storage}; steps judged by {Method().describe()}")
    for (machine, run), changes in (
        past.table.groupby(["machine", "run"], sort=False)["versions_changed"].first().items()
    ):
        if changes:
            print(f"{machine} {run}: {changes}")
    print(history.summary(past).to_string(index=False))
    if args.out is not None:
        write_atomic(args.out / "history.csv", history.csv(past).encode())
        write_atomic(args.out / "history.png", _png(history.chart(past)))
        print(f"history: {args.out / 'history.png'}, {args.out / 'history.csv'}")
    return 0


def cmd_list(args) -> int:
    import backends

    for tid, availability in backends.available().items():
        print(f"{tid:32s} {'ok' if availability.ok else 'unavailable: ' + availability.reason}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="regbench", description="Benchmark gradient-descent training across frameworks.")
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
    c.add_argument("--threshold", "--max-slowdown", type=float, default=0.10, dest="threshold",
                   help="smallest change that counts, as a fraction of BASE's median [0.10]")  # fmt: skip
    c.add_argument("--alpha", type=float, default=0.01, help="level of the Mann–Whitney U test [0.01]")
    c.add_argument("--allow-missing", action="store_true", help="benchmarks of BASE missing from NEW do not fail")
    c.add_argument("--max-drift", type=float, default=1e-4,
                   help="tolerated relative change of final loss, w or b [1e-4]")  # fmt: skip
    c.set_defaults(func=cmd_compare)

    h = sub.add_parser("history", help="every saved run of each machine in order, with flagged steps")
    h.add_argument("storage", nargs="?", type=Path, default=DEFAULT_STORAGE, help=f"benchmark storage "
                   f"[{DEFAULT_STORAGE}]")  # fmt: skip
    h.add_argument("--out", type=Path, default=None, help="also write history.png and history.csv there")
    h.set_defaults(func=cmd_history)

    u = sub.add_parser("run", help="the main job: run the benchmarks, save them, write the report")
    u.add_argument("--name", default="run", help="name of the saved run [run]")
    u.add_argument("--storage", type=Path, default=DEFAULT_STORAGE, help=f"benchmark storage [{DEFAULT_STORAGE}]")
    u.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"report folder [{DEFAULT_OUT}]")
    u.add_argument("--workers", type=_positive, default=None,
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
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

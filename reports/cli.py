"""The ``regbench`` command line: run, report, compare, targets, list.

Rules: bad input (a missing path, an empty storage, a corrupt file) is one line
on stderr naming the file and exit status 2, unless some files were good, in
which case the report covers those and the bad ones are listed; ``compare``
exits 1 on a regression and ``targets`` on an unmet target, 0 otherwise.
"""

from __future__ import annotations

import argparse
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


def cmd_report(args) -> int:
    from reports.render import write_report

    runs = _load(args.paths or [DEFAULT_STORAGE], latest=not args.all)
    files = write_report(runs, args.out)
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

    base = _load([resolve_run(args.base, args.storage)])
    new = _load([resolve_run(args.new, args.storage)])
    table, added, missing = tables.compare(base, new, args.max_slowdown, args.max_drift)
    print(tables.present(table, drop_single=()).to_string(index=False) if not table.empty else "no common benchmarks")
    for label, names in (("new in NEW", added), ("missing from NEW", missing)):
        if names:
            print(f"{label}: {', '.join(names)}")
    failed = table[table["verdict"] != "ok"]
    if not failed.empty:
        print(f"FAIL: {len(failed)} benchmark(s) slower than {1 + args.max_slowdown:.2f}× or drifted more than "
              f"{args.max_drift:g}")  # fmt: skip
        return 1
    print(f"ok: {len(table)} benchmark(s) within {1 + args.max_slowdown:.2f}× and drift {args.max_drift:g}")
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

    bench_dir = Path(bench.__file__).parent
    workers = [] if args.workers is None else [f"--workers={args.workers}"]  # the data-parallel trainers' count
    cmd = [sys.executable, "-m", "pytest", str(bench_dir), "-rs", f"--benchmark-save={args.name}",
           f"--benchmark-storage=file://{args.storage.resolve()}", *workers, *args.pytest_args]  # fmt: skip
    print("running:", " ".join(cmd), flush=True)
    status = subprocess.run(cmd, check=False).returncode
    if status != 0:
        print(f"regbench: the benchmark run failed (pytest exit status {status}); no report written", file=sys.stderr)
        return status
    args.paths, args.all = [args.storage], False
    return cmd_report(args)


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

    c = sub.add_parser("compare", help="time ratios and accuracy changes between two saved runs; exit 1 on regression")
    c.add_argument("base", help="saved run: a file path, a run number (0001) or a run name")
    c.add_argument("new", help="saved run: a file path, a run number or a run name")
    c.add_argument("--storage", type=Path, default=DEFAULT_STORAGE, help=f"where numbers and names are looked up "
                   f"[{DEFAULT_STORAGE}]")  # fmt: skip
    c.add_argument("--max-slowdown", type=float, default=0.10, help="tolerated slow-down, as a fraction [0.10]")
    c.add_argument("--max-drift", type=float, default=1e-4,
                   help="tolerated relative change of final loss, w or b [1e-4]")  # fmt: skip
    c.set_defaults(func=cmd_compare)

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

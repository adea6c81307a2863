"""The ``regbench`` command line: parsing and dispatch of run, report, compare, ab, history, targets, list, conform.

Rules: the top floor of the project: it parses, checks and hands over; the
work is done below (``regbench.run``, the supervisor of a benchmark run;
``reports``, which read saved records; ``backends``, imported by ``list`` and
``conform`` alone; ``regbench.conformance``, the kit ``conform`` runs in a
pytest child, whose exit status it passes through). A user's mistake is one
line on stderr and an exit status, never a traceback: 0 ok; 1 a regression
(``compare``, reports.compare; ``ab``, regbench.ab), an unmet target (``targets``,
reports.targets) or a failed benchmark (``run``); 2 unusable input (a bad
option, a missing or unreadable path, a corrupt file, an unknown trainer id:
the line names it); 130 interrupted (Ctrl-C), 128 + N for signal N
(regbench.run); docs/exit-status.md lists them all. Options are checked as they are
parsed (regbench.options), the folders a command writes before it does any
work. Where some input files were good, ``report`` and ``history`` cover those
and list the bad ones; every file is read once per command.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import sys
from pathlib import Path

from records.sources import sigint_watched
from regbench.checks import UsageError, check_folder
from regbench.options import count_option, index_option, name_option, number_option

DEFAULT_STORAGE = Path(".benchmarks")
DEFAULT_OUT = Path("report")


class Parser(argparse.ArgumentParser):
    """argparse, with a bad command line reported as one line (argparse prints the whole usage first)."""

    def error(self, message: str):
        command = self.prog.removeprefix("regbench").strip()  # "" for the top level, else the subcommand
        self.exit(2, f"regbench: error: {command + ': ' if command else ''}{message} (see {self.prog} --help)\n")


class TrailingParser(Parser):
    """A subcommand's parser whose arguments after ``--`` are its ``pytest_args``, wherever its options stand
    (argparse gives a ``*`` positional its empty share at the first option after the others: ``ab A B --pairs 8
    -- -k x`` would leave ``-k x`` unrecognized)."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        after = []
        if "--" in args:
            args, after = args[: args.index("--")], args[args.index("--") + 1 :]
        namespace, extras = super().parse_known_args(args, namespace)
        namespace.pytest_args = [*namespace.pytest_args, *after]
        return namespace, extras


def _read(paths, latest=False):
    """Every saved file under ``paths`` read and validated once (reports.load); what could not be read is named."""
    from reports.load import LoadError, read

    try:
        catalogue = read([Path(p) for p in paths], latest=latest)
    except LoadError as exc:
        raise UsageError(str(exc)) from None
    for error in catalogue.errors:
        print(f"regbench: skipped {error}", file=sys.stderr)
    return catalogue


def _load(paths):
    from reports.load import tidy

    catalogue = _read(paths, latest=True)
    return tidy(catalogue.all, catalogue.errors)


def cmd_report(args) -> int:
    from reports.history import collect
    from reports.load import tidy
    from reports.render import write_report

    check_folder(args.out, "--out")
    catalogue = _read(args.paths or [DEFAULT_STORAGE])
    runs = tidy(catalogue.all if args.all else catalogue.latest, catalogue.errors)
    past = collect(catalogue)
    try:
        files = write_report(runs, args.out, past)
    except OSError as exc:  # the disk filled up, the folder went away meanwhile
        raise UsageError(f"--out {args.out}: the report could not be written ({exc})") from None
    print(f"report: {args.out / 'report.html'} ({len(files)} files in {args.out}/)")
    return 0


def resolve_run(spec: str, storage: Path) -> Path:
    """A saved run named by path, by number (``0003``, ``3``) or by name (``first``), in ``storage``."""
    path = Path(spec)
    try:
        if path.is_file():
            return path
    except OSError as exc:  # a name longer than the file system allows, a folder on the way that cannot be entered
        raise UsageError(f"{spec}: cannot be read ({exc.strerror})") from None
    if spec.isascii() and spec.isdigit():  # not "²", a digit to str.isdigit() alone
        matches = sorted(storage.glob(f"*/{int(spec):04d}_*.json"))
    else:  # a name, never a pattern: "*" is no run's name
        matches = sorted(storage.glob(f"*/[0-9][0-9][0-9][0-9]_{glob.escape(spec)}.json"))
    if not matches:
        raise UsageError(f"{spec}: no such file, and no saved run of that number or name in {storage}")
    if len(matches) > 1:
        raise UsageError(f"{spec}: several saved runs match ({', '.join(map(str, matches))}); give a path")
    return matches[0]


def cmd_compare(args) -> int:
    from reports import drift
    from reports.compare import compare_runs, policy_mismatch, quick_mismatch
    from reports.compare_format import render
    from reports.stats import Method

    paths = [resolve_run(spec, args.storage) for spec in (args.base, args.new)]
    base, new = (_load([path]) for path in paths)
    for side, path, runs in (("BASE", paths[0], base), ("NEW", paths[1], new)):
        if runs.table.empty:  # a gate over nothing would pass
            raise UsageError(f"{side} {path}: no trainer benchmarks to compare (only the bandwidth floor)")
    # A quick run's rounds and missing cold starts, or another precision policy's TF32 products, would pass for
    # slow-downs and drifts, or hide them.
    mismatch = quick_mismatch(base, new) or policy_mismatch(base, new)
    if mismatch:
        raise UsageError(f"{mismatch} ({paths[0]}, {paths[1]})")
    method = Method(threshold=args.threshold, alpha=args.alpha)
    result = compare_runs(base, new, method, args.max_drift)
    # Verdicts that the machine's drift, or another job beside a benchmark, could explain are unsure.
    result = drift.shared(drift.discounted(result, drift.between_runs(base, new), method))
    if result.table.empty:  # a gate over nothing would pass with --allow-missing: refused, whatever is allowed
        why = f"; e.g. {result.missing[0]}" if result.missing else ""
        raise UsageError(f"BASE {paths[0]} and NEW {paths[1]} have no benchmark in common ({len(result.missing)} "
                         f"only in BASE, {len(result.added)} only in NEW{why}): nothing to compare")  # fmt: skip
    from reports.load import shown  # a file name that is not UTF-8 would fail a strict terminal

    named = tuple(shown(path) for path in paths)
    output, status = render(args.format, result, named, method, args.max_drift, args.allow_missing)
    print(output)
    return status


def cmd_ab(args) -> int:
    from regbench.ab import ab

    return ab(args)


def cmd_targets(args) -> int:
    from reports import tables, target_runs, targets
    from reports.load import tidy

    if args.run:  # one run, as named: its verdicts are provisional
        chosen = _read([resolve_run(args.run, args.storage)]).all
    else:
        chosen = target_runs.newest_runs(_read([args.storage]).all, args.runs)
    judged = target_runs.over_runs([targets.judge(tidy([saved])) for saved in chosen])
    for title, table in judged.items():
        print(f"## {title}\n")
        print(tables.present(table).to_markdown(index=False, disable_numparse=True) if not table.empty else "(none)")
        print()
    for restated in targets.restated_lines(judged):  # set at an upstream limit: why, and where the evidence is
        print(restated)
    print(target_runs.line(judged, [s.run for s in chosen]))
    return 1 if target_runs.counts(judged)[target_runs.NOT_MET] else 0


def cmd_history(args) -> int:
    from reports import history
    from reports.render import _png, write_atomic
    from reports.stats import Method

    if args.out is not None:
        check_folder(args.out, "--out")
    from reports.history import collect

    past = collect(_read([args.storage]))
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


def cmd_run(args) -> int:
    from regbench import nodes
    from regbench.run import run

    args.cluster = nodes.check(args)  # None on one node
    if args.node_rank > 0:  # another node than 0 runs no benchmark: it serves node 0's groups (regbench.nodes)
        return nodes.serve(args.cluster, args.node_rank)
    return run(args, cmd_report)


def cmd_conform(args) -> int:
    from regbench.conformance.command import conform

    return conform(args.trainers)


def _origin(source) -> str:
    """Where a listed trainer or problem came from, for a plugin's (regbench's own say nothing)."""
    return "" if source.builtin else f" | from {source.release}"


def cmd_list(args) -> int:
    import backends
    import problems
    from backends import broken, prepare_fails, source_of, spec_of

    for tid, availability in backends.available().items():
        failure = prepare_fails(tid)
        status = "ok" if availability.ok else "unavailable: " + availability.reason
        status = f"broken: {failure}" if failure else status
        spec = spec_of(tid)
        runs = ", ".join(spec.problems) + (" + any model written once" if spec.written_once else "")
        print(f"{tid:32s} {status} | problems: {runs}{_origin(source_of(tid))}")
    for name, why in problems.status().items():
        print(f"{'problem ' + name:32s} {'broken: ' + why if why else 'ok'}{_origin(problems.source(name))}")
    for refused in (*broken(), *problems.broken()):  # a plugin's entry point refused: the others still run
        print(f"{'broken':32s} {refused}")
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
                   help="tolerated relative change of the final loss or a parameter [1e-4]")  # fmt: skip
    c.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                   help="text for a terminal, markdown for a CI summary or a PR comment, json for a script; "
                   "the exit status is the same [text]")  # fmt: skip
    c.set_defaults(func=cmd_compare)

    a = sub.add_parser("ab", help="two checkouts or git revisions benchmarked in interleaved pairs of fresh processes; "
                       "compare's verdicts and exit status, robust to a machine that drifts")  # fmt: skip
    a.add_argument("base", help="a checkout's folder or a git revision of the repository here")
    a.add_argument("new", help="a checkout's folder or a git revision of the repository here")
    a.add_argument("--pairs", type=count_option, default=10, help="pairs of processes (BASE NEW, NEW BASE, ...) [10]")
    a.add_argument("--threshold", type=POSITIVE, default=0.05,
                   help="smallest change that counts, as a fraction of BASE's median [0.05]")  # fmt: skip
    a.add_argument("--alpha", type=number_option("a number between 0 and 1", gt=0, lt=1), default=0.01,
                   help="level of the Wilcoxon signed-rank test [0.01]")  # fmt: skip
    a.add_argument("--max-drift", type=POSITIVE, default=1e-4,
                   help="tolerated relative change of the final loss or a parameter [1e-4]")  # fmt: skip
    a.add_argument("--format", choices=("text", "markdown", "json"), default="text", help="as compare's [text]")
    a.add_argument("pytest_args", nargs="*", help="the benchmarks to run, after --, e.g. -- -k 'fused and seed'")
    a.set_defaults(func=cmd_ab)
    a.__class__ = TrailingParser  # argparse makes every subcommand's parser of one class

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
    depth = u.add_mutually_exclusive_group()
    depth.add_argument(
        "--quick",
        action="store_true",
        help="the first answer in about a minute: the tutorial's "
        "problem only, in float32, few rounds; saved as a quick run, compared with quick runs only",
    )
    depth.add_argument("--full", action="store_true", help="the default run (every problem at its default sizes, "
                       "both dtypes) and every study: cold starts, the large sizes, the marginal cost, the "
                       "data-parallel scaling (tens of minutes)")  # fmt: skip
    u.add_argument("--nnodes", type=count_option, default=1, help="machines the data-parallel trainers span; "
                   "torchrun starts --workers workers on each (docs/data-parallel.md) [1]")  # fmt: skip
    u.add_argument("--node-rank", type=index_option, default=0, help="this machine's rank: node 0 runs the "
                   "benchmarks and saves the run, the others lend it their workers [0]")  # fmt: skip
    u.add_argument("--rdzv", metavar="HOST:PORT", default=None, help="node 0's address and a free port there: "
                   "the rendezvous of every node (torchrun's c10d store); needed with --nnodes 2 or more")  # fmt: skip
    u.add_argument("pytest_args", nargs="*", help="passed on to pytest after --, e.g. -- --sweep")
    u.set_defaults(func=cmd_run)

    t = sub.add_parser("targets", help="the speed, overhead and memory targets over a machine's newest runs, quick "
                       "ones apart (met, not met, undecided); exit 1 if one is not met")  # fmt: skip
    t.add_argument("run", nargs="?", help="one saved run (a file path, a run number or a name): provisional verdicts "
                   "[the newest --runs runs (quick ones apart) of each machine in --storage]")  # fmt: skip
    t.add_argument("--storage", type=Path, default=DEFAULT_STORAGE, help=f"benchmark storage [{DEFAULT_STORAGE}]")
    t.add_argument("--runs", type=count_option, default=3, help="how many of a machine's newest runs, quick ones "
                   "apart [3]")  # fmt: skip
    t.set_defaults(func=cmd_targets)

    ls = sub.add_parser("list", help="every trainer id, with whether it can run here and why not, and the problems "
                        "it runs")  # fmt: skip
    ls.set_defaults(func=cmd_list)

    k = sub.add_parser("conform", help="the conformance kit: regbench's contract and agreement tests against "
                       "trainers (a plugin's too); pytest's exit status",
                       description="Runs (and prints first) python -m pytest -p regbench.conformance.plugin --pyargs "
                       "regbench.conformance --trainer ID ...: agreement with the float64 NumPy reference, the "
                       "prepare/run/result contract, inputs and global state left alone, bad arguments refused. "
                       "A trainer that cannot run here is skipped with the reason. Exit status pytest's: 0 passed "
                       "(or skipped), 1 a check failed; 2 an unknown id, before pytest starts.")  # fmt: skip
    k.add_argument("trainers", nargs="+", metavar="ID", help="trainer ids (regbench list shows them)")
    k.set_defaults(func=cmd_conform)
    return p


class OutputError(Exception):
    """Standard output could not be written (a full disk, /dev/full, an I/O error): told apart from a command's
    own OSError, which has a line of its own."""


class _Output:
    """``sys.stdout``, with a failure to write it raised as OutputError (a broken pipe stays BrokenPipeError)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so that the interpreter's last flush at exit cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    if sys.stdout is None:  # started with its output closed (`>&-`): a file opened later could take its place
        print("regbench: error: standard output is closed; give it a file or /dev/null", file=sys.stderr)
        return 2
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show → or – gets \u2192, not an error
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    stdout, sys.stdout = sys.stdout, _Output(sys.stdout)
    try:
        with sigint_watched():  # a plugin's own KeyboardInterrupt is its failure; a Ctrl-C stops (records.sources)
            args = parser().parse_args(argv)
            status = args.func(args)
        sys.stdout.flush()  # an output that cannot be written is found here, not in the interpreter's exit
        return status
    except OutputError as exc:
        print(f"regbench: error: the output could not be written ({exc.args[0].lower()})", file=sys.stderr)
        _silence_stdout()
        return 1
    except UsageError as exc:
        print(f"regbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # `run` says what it saved; every other command saves nothing
        print("regbench: interrupted: nothing saved", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        sys.stdout = stdout

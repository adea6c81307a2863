"""``regbench ab BASE NEW``: two checkouts' benchmarks, interleaved in fresh processes, judged pair by pair.

Rules: BASE and NEW are folders (checkouts of regbench) or git revisions of
the repository around the working folder, each checked out into a temporary
``git worktree`` that is removed afterwards, also after Ctrl-C or a failure.
Both run in the current environment, each with its own code: its pytest runs
in its folder (``python -m`` puts the folder first on sys.path, before an
editable install's finder) with the folder on PYTHONPATH, and before any
benchmark a child process started the same way says where it imports
``records``, ``problems``, ``backends`` and ``bench`` from: a side whose code is
not its own is refused (exit 2). A plan pass per side checks the selection
(``-- PYTEST_ARGS``) before the long work, as ``regbench run`` does. Then K
pairs in ABBA order (BASE NEW, NEW BASE, …), each side one pytest process
per framework (bench.isolation), every round kept (its JSON in a temporary
folder), and reports.paired judges the per-pair medians. Nothing is saved;
progress goes to stderr, the verdicts to stdout in compare's formats and with
its exit status (1: a ``slower`` verdict, an accuracy change, a benchmark of
BASE missing from NEW).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from regbench.caches import cache_env
from regbench.checks import UsageError

#: The packages of a checkout whose code a side's benchmarks run (regbench and reports are this process's).
OWN_CODE = ("records", "problems", "backends", "bench")
SIDES = ("BASE", "NEW")


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def is_checkout(path: Path) -> bool:
    return (path / "bench" / "conftest.py").is_file() and (path / "backends").is_dir()


@contextlib.contextmanager
def checkouts(specs: tuple[str, str], scratch: Path) -> Iterator[tuple[Path, Path]]:
    """The two sides' folders: a folder as it is, a git revision checked out into a worktree under ``scratch``
    (removed on the way out, whatever happened)."""
    made: list[Path] = []
    top = _git("rev-parse", "--show-toplevel")
    repo = Path(top.stdout.strip()) if top.returncode == 0 else None
    try:
        folders = []
        for side, spec in zip(SIDES, specs, strict=True):
            path = Path(spec)
            if path.is_dir():
                if not is_checkout(path):
                    raise UsageError(f"{side} {spec}: a folder but not a checkout of regbench (no bench/conftest.py)")
                folders.append(path.resolve())
                continue
            if repo is None or _git("rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}", cwd=repo).returncode:
                where = f"the repository {repo}" if repo else "a git repository (the working folder is in none)"
                raise UsageError(f"{side} {spec}: neither a folder nor a git revision of {where}")
            tree = scratch / side.lower()
            added = _git("worktree", "add", "--detach", "--quiet", str(tree), spec, cwd=repo)
            if added.returncode:
                raise UsageError(f"{side} {spec}: git worktree add failed ({added.stderr.strip()})")
            made.append(tree)
            if not is_checkout(tree):
                raise UsageError(f"{side} {spec}: that revision is not a checkout of regbench (no bench/conftest.py)")
            folders.append(tree)
        yield folders[0], folders[1]
    finally:
        for tree in made:
            _git("worktree", "remove", "--force", str(tree), cwd=repo)
        if made:
            _git("worktree", "prune", cwd=repo)


def side_env(folder: Path, caches: dict[str, str]) -> dict[str, str]:
    """A side's variables: its folder first on PYTHONPATH, the caches in the scratch folder."""
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {**caches, "PYTHONPATH": path}


def imported_from(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """Where a process started as a side's benchmarks are imports each of OWN_CODE: name -> file."""
    modules = f"{{m: importlib.import_module(m).__file__ for m in {OWN_CODE}}}"
    script = f"import importlib, json; print(json.dumps({modules}))"
    done = subprocess.run([sys.executable, "-B", "-c", script], cwd=folder, env={**os.environ, **env},
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise UsageError(f"{folder}: its packages cannot be imported ({done.stderr.strip().splitlines()[-1]})")
    return json.loads(done.stdout)


def check_own_code(side: str, folder: Path, env: dict[str, str]) -> None:
    """Refuse a side whose benchmark processes would import another checkout's code."""
    own = folder.resolve()
    foreign = {m: f for m, f in imported_from(folder, env).items() if not Path(f).resolve().is_relative_to(own)}
    if foreign:
        name, file = next(iter(foreign.items()))
        raise UsageError(f"{side} {folder}: its benchmarks would import {name} from {file}, not from the checkout")


def pytest_command(folder: Path, pytest_args: list[str]) -> list[str]:
    """The side's pytest, as regbench.run starts it (quiet, nothing written into the checkout)."""
    watch = ["-p", "bench.parent_watch"] if (folder / "bench" / "parent_watch.py").is_file() else []
    return [sys.executable, "-B", "-m", "pytest", "bench", "-q", "-rs", "-o", "console_output_style=classic",
            "-p", "no:cacheprovider", "-p", "no:hypothesispytest", *watch,
            "-W", "ignore:Not saving anything", "-W", "ignore:Benchmark fixture was not used",
            *pytest_args]  # fmt: skip


def plan(side: str, folder: Path, base: list[str], scratch: Path, env: dict[str, str]) -> list[str]:
    """The frameworks of the side's selected benchmarks, in order (a user's mistake found here, exit 2)."""
    from regbench.run import _pytest

    where = scratch / f"plan-{side.lower()}"
    plan_path = where / "plan.json"
    storage = f"--benchmark-storage=file://{where / 'storage'}"
    _pytest([*base, "--collect-only", f"--regbench-plan={plan_path}", storage], where, env, quiet=True, cwd=folder)
    if not plan_path.exists():
        raise UsageError(f"{side}: pytest ran no benchmark: its options only asked it to print (--help, --version)")
    entries = json.loads(plan_path.read_text())["benchmarks"]
    if not entries:
        raise UsageError(f"{side}: the selection ran no benchmark (pytest selected none)")
    return list(dict.fromkeys(entry["framework"] for entry in entries))


def trial(folder: Path, base: list[str], frameworks: list[str], where: Path, env: dict[str, str]):
    """One side's selected benchmarks, one fresh process per framework; the tidy table of what they measured."""
    from regbench.run import _Failed, _pytest
    from reports.load import LoadError, read_run, tidy

    files = []
    for framework in frameworks:
        part = where / framework
        out = part / "run.json"
        cmd = [*base, f"--regbench-framework={framework}", f"--benchmark-json={out}",
               f"--benchmark-storage=file://{part / 'storage'}"]  # fmt: skip
        try:
            _pytest(cmd, part, env, quiet=True, cwd=folder)
        except _Failed as exc:
            raise UsageError(f"{folder}: {exc}") from None
        files.append(out)
    try:
        return tidy([read_run(path) for path in files])
    except LoadError as exc:
        raise UsageError(str(exc)) from None


def interleave(specs: tuple[str, str], pairs: int, pytest_args: list[str], scratch: Path, say=print):
    """K pairs of trials in ABBA order; returns each side's trials (lists of reports.load.Runs, pair by pair)."""
    trials: dict[str, list] = {side: [] for side in SIDES}
    with checkouts(specs, scratch) as folders:
        (scratch / "store").mkdir(exist_ok=True)  # the caches' storage: locked while they are made
        caches = cache_env(scratch / "store")
        envs = {side: side_env(folder, caches) for side, folder in zip(SIDES, folders, strict=True)}
        for side, folder in zip(SIDES, folders, strict=True):
            check_own_code(side, folder, envs[side])
        bases = {side: pytest_command(folder, pytest_args) for side, folder in zip(SIDES, folders, strict=True)}
        frameworks = {
            side: plan(side, f, bases[side], scratch, envs[side]) for side, f in zip(SIDES, folders, strict=True)
        }
        for side, folder in zip(SIDES, folders, strict=True):
            say(f"ab: {side} {folder}: {', '.join(frameworks[side])}, one process per framework")
        for i in range(pairs):
            order = SIDES if i % 2 == 0 else SIDES[::-1]  # ABBA: neither side always goes first
            say(f"ab: pair {i + 1}/{pairs}: {order[0]} then {order[1]}")
            for side in order:
                folder = folders[SIDES.index(side)]
                where = scratch / f"pair{i:03d}-{side.lower()}"
                trials[side].append(trial(folder, bases[side], frameworks[side], where, envs[side]))
    return trials["BASE"], trials["NEW"]


def render(fmt: str, result, specs: tuple[str, str], method, max_drift: float) -> tuple[str, int]:
    """compare's document (reports.compare_format) for paired verdicts: each row's pairs and smallest detectable
    slow-down added (text, Markdown: a column; JSON: ``pairs``, ``detectable``)."""
    from reports import compare_format

    status = compare_format.outcome(result, method, max_drift, allow_missing=False).status
    if fmt == "json":
        document = compare_format.document(result, specs, method, max_drift, allow_missing=False)
        for row, (_, values) in zip(document["rows"], result.table.iterrows(), strict=True):
            row["pairs"] = int(values["pairs"])
            row["detectable"] = compare_format._number(values["detectable"])
        document["method"]["min_pairs"] = document["method"].pop("min_rounds")
        return json.dumps(document, indent=2, allow_nan=False), status
    shown = result.table.assign(
        detectable=result.table["detectable"].map(lambda v: f"{v - 1:+.1%}" if pd.notna(v) and v < 1e9 else "—")
    )
    write = compare_format.text if fmt == "text" else compare_format.markdown
    output = write(type(result)(shown, result.added, result.missing), specs, method, max_drift, False)
    output = output.replace("regbench compare:", "regbench ab:", 1).replace("compare: BASE", "ab: BASE", 1)
    return output, status


def ab(args) -> int:
    """``regbench ab``: interleave, judge, print; compare's exit status."""
    from regbench.run import Stopped, _stopping_signals
    from reports.paired import PairedMethod, compare_trials

    method = PairedMethod(threshold=args.threshold, alpha=args.alpha)
    if args.pairs < method.min_rounds:
        raise UsageError(f"--pairs {args.pairs}: the signed-rank test needs at least {method.min_rounds} pairs "
                         f"to reach α = {method.alpha:g}")  # fmt: skip
    specs = (args.base, args.new)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        with _stopping_signals(), tempfile.TemporaryDirectory(prefix="regbench-ab-") as scratch:
            base, new = interleave(specs, args.pairs, args.pytest_args, Path(scratch), say)
    except Stopped as exc:
        import signal

        print(f"regbench: stopped by {signal.Signals(exc.signum).name}: nothing saved", file=sys.stderr)
        return 128 + exc.signum
    result = compare_trials(base, new, method, args.max_drift)
    if result.table.empty:  # a gate over nothing would pass: refused, as compare refuses it
        raise UsageError(f"BASE {args.base} and NEW {args.new} ran no benchmark in common: nothing to compare")
    output, status = render(args.format, result, specs, method, args.max_drift)
    print(output)
    return status

"""regbench's live progress, a pytest plugin: one line per benchmark as it ends (``--regbench-progress``).

Rules: a line says ``i/N``, the trainer, dtype and size, the median and its
rounds (a skipped benchmark: "skipped" and the reason; a failed one: "FAILED"
and pytest's one line), and an estimate of the time left. Where ``regbench run`` gives each benchmark an
estimate (``--regbench-estimates``: the storage's earlier runs, else a prior per kind of
benchmark: regbench.estimates, bench.priors), the time left is the estimates of those
left, scaled by how long the finished ones took against theirs (its square root, ``time_left``); else it is the mean
time of the benchmarks so far, times those left. Lines go through pytest's terminal
writer: colour only where it would colour (a terminal), never a control
character in a log; pytest's own dots are silenced for the benchmarks (their
outcome still counts in its summary and ``-rs`` list). ``regbench run`` runs
one process per framework: ``--regbench-progress-of DONE,TOTAL,START`` numbers
a process's benchmarks in the whole run's (START: the run's start, a Unix
time), and the estimate is the whole run's. Numbers come from the benchmark
fixture's stats and record, never from printed output.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from bench.outcomes import failure
from bench.params import of_item


def _duration(seconds: float) -> str:
    if seconds >= 90:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _reason(report) -> str:
    if report.skipped:
        text = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return text.removeprefix("Skipped: ")
    return failure(report)


class Progress:
    def __init__(self, config) -> None:
        self.config = config
        self.items: dict[str, pytest.Item] = {}  # nodeid -> item, in the order they run
        self.done: set[str] = set()
        self.start = 0.0
        # regbench run's processes, one per framework (bench.isolation), number their benchmarks in the whole run's.
        of = config.getoption("--regbench-progress-of", None)
        self.before, self.total, self.run_start = 0, None, None
        if of:
            before, total, start = of.split(",")
            self.before, self.total, self.run_start = int(before), int(total), float(start)
        path = config.getoption("--regbench-estimates", None)
        self.estimates: list[dict] = json.loads(Path(path).read_text()) if path else []

    def pytest_collection_finish(self, session) -> None:
        self.items = {item.nodeid: item for item in session.items}
        self.start = time.perf_counter()

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report, config):
        """The benchmarks' outcome categories as pytest counts them, without its letters (the lines say it)."""
        if report.nodeid not in self.items:
            return None
        if report.when in ("setup", "teardown"):
            category = "error" if report.failed else "skipped" if report.skipped else ""
        else:
            category = report.outcome
        return category, "", ""

    def pytest_runtest_logreport(self, report) -> None:
        item = self.items.get(report.nodeid)
        if item is None or report.nodeid in self.done:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.done.add(report.nodeid)
            self._write(self.line(item, report), report)

    def line(self, item: pytest.Item, report) -> str:
        """``i/N trainer dtype n=…: median … (rounds) · ~… left`` for one finished benchmark."""
        total, index = self.total or len(self.items), self.before + len(self.done)
        params = of_item(item)
        benchmark = item.funcargs.get("benchmark") if hasattr(item, "funcargs") else None
        info = getattr(benchmark, "extra_info", None) or {}
        who = info.get("trainer") or params.get("trainer_id") or item.name
        if info.get("kind") == "floor":
            who = f"bandwidth floor {info.get('device', '')}"
        workers = info.get("workers") or 1
        who += f" ×{workers}" if workers > 1 else ""
        what = " ".join(str(p) for p in (who, info.get("dtype") or params.get("dtype") or "") if p)
        if info.get("n"):
            what += f" n={info['n']}"
        stats = getattr(getattr(benchmark, "stats", None), "stats", None)
        if report.skipped:
            result = f"skipped ({_reason(report)})"
        elif report.failed:
            result = f"FAILED ({_reason(report)})"
        elif stats is not None:
            result = f"median {_time(stats.median)} ({stats.rounds} round{'s' if stats.rounds != 1 else ''})"
        else:
            result = "passed"
        elapsed = time.time() - self.run_start if self.run_start else time.perf_counter() - self.start
        left = total - index
        eta = f"~{_duration(self.time_left(elapsed, index, left))} left" if left else f"done in {_duration(elapsed)}"
        return f"[{index:>{len(str(total))}}/{total}] {what}: {result} · {eta}"

    def time_left(self, elapsed: float, index: int, left: int) -> float:
        """Seconds the run should still take, ``elapsed`` seconds in, with ``index`` benchmarks done, ``left`` to go:
        the estimates of those left × the square root of elapsed ÷ the estimates of those done (the machine's pace
        against them, halfway to 1 on a log scale: one benchmark far off its estimate early in a run, a first
        torch.compile graph at twice its prior, would otherwise scale every estimate after it as much; a quick
        run's estimates were 2× too long after one, 2026-12-03)."""
        mine = [i for i, entry in enumerate(self.estimates) if entry["nodeid"] in self.items]
        if not mine:
            return elapsed / index * left
        done = [i < mine[0] or (i in mine and entry["nodeid"] in self.done) for i, entry in enumerate(self.estimates)]
        expected_done = sum(e["estimate_s"] for e, is_done in zip(self.estimates, done, strict=True) if is_done)
        expected_left = sum(e["estimate_s"] for e, is_done in zip(self.estimates, done, strict=True) if not is_done)
        return expected_left * ((elapsed / expected_done) ** 0.5 if expected_done > 0 else 1.0)

    def _write(self, line: str, report) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:  # -p no:terminal
            print(line, file=sys.stdout, flush=True)
            return
        markup = {"red": True} if report.failed else {"yellow": True} if report.skipped else {}
        reporter.write_line(line, **markup)

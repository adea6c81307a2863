"""regbench's in-process pytest plugin: how every selected benchmark ended, recorded while the run happens.

Rules: outcomes come from pytest's own reports (``pytest_runtest_logreport``),
never from its printed output: each selected benchmark is passed, failed or
skipped, with the skip's reason or the failure's one line (prefixed ``No space left on
device:`` where the failure says so anywhere: a compiler's error deep in inductor's), and its trainer and
dtype from its parameters. They are stamped into the saved file with the
problems' data and the run's depth (records.model.RunFacts, through pytest-benchmark's
``pytest_benchmark_update_json``), and written to ``--regbench-outcomes`` at the
end of the session, so that ``regbench run`` can say why a run saved nothing.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from bench.params import of_item
from bench.problems import small_data
from records.model import Outcome, RunFacts

#: A full disk's words (``No space left on device``): a failure that says them anywhere has them in its reason.
NO_SPACE = os.strerror(errno.ENOSPC)


def failure(report) -> str:
    """A failed report's one line: its crash message's first line, after ``No space left on device:`` where the
    failure says that anywhere (a compiler's error, deep in inductor's message)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr).strip()
    reason = (text.splitlines() or [""])[0]
    if NO_SPACE in str(report.longrepr) and NO_SPACE not in reason:
        reason = f"{NO_SPACE}: {reason}"
    return reason


class OutcomeRecorder:
    def __init__(self, path: str | None, depth: str = "default") -> None:
        self.path = Path(path) if path else None
        self.depth = depth
        self.selected: dict[str, dict] = {}  # nodeid -> the outcome's fields known at collection
        self.outcomes: dict[str, Outcome] = {}
        self.wall: dict[str, float] = {}  # nodeid -> seconds of its setup, call and teardown so far

    def pytest_collection_finish(self, session) -> None:
        for item in session.items:
            params = of_item(item)
            self.selected[item.nodeid] = {"test": item.name, "trainer": params.get("trainer_id"),
                                          "dtype": params.get("dtype")}  # fmt: skip

    def pytest_runtest_logreport(self, report) -> None:
        fields = self.selected.get(report.nodeid)
        if fields is not None:
            self.wall[report.nodeid] = self.wall.get(report.nodeid, 0.0) + report.duration
            if report.nodeid in self.outcomes and report.when == "teardown":
                self.outcomes[report.nodeid] = self.outcomes[report.nodeid].model_copy(
                    update={"wall_s": round(self.wall[report.nodeid], 3)}
                )
        if fields is None or (report.nodeid in self.outcomes and self.outcomes[report.nodeid].outcome != "passed"):
            return  # not a collected benchmark, or its outcome is settled (a failed call's teardown, say)
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.outcomes[report.nodeid] = Outcome(**fields, outcome="skipped", reason=reason.removeprefix("Skipped: "))
        elif report.failed:
            self.outcomes[report.nodeid] = Outcome(**fields, outcome="failed", reason=failure(report))
        elif report.when == "call":
            self.outcomes[report.nodeid] = Outcome(**fields, outcome="passed")

    def facts(self) -> RunFacts:
        return RunFacts(outcomes=list(self.outcomes.values()), problems=small_data(), quick=self.depth == "quick",
                        depth=self.depth)  # fmt: skip

    def pytest_benchmark_update_json(self, config, benchmarks, output_json) -> None:
        output_json["regbench"] = self.facts().model_dump()

    def pytest_sessionfinish(self, session) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps([o.model_dump() for o in self.outcomes.values()]))

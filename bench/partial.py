"""A process's finished benchmarks, written one by one as they end (``--regbench-partial FILE``), a pytest plugin.

Rules: pytest-benchmark writes its file only when the session ends, so a
process that dies meanwhile (a plugin's ``os.abort()``, ``os._exit()``, a
segfault) would lose every figure it had finished. This plugin appends one
JSON line per event to FILE, flushed at once: ``{"started": nodeid}`` when a
benchmark starts, then, once it has ended (teardown and all), ``{"benchmark":
...}`` (pytest-benchmark's own dict of it, rounds included, where it timed
anything) and ``{"outcome": ...}`` (bench.outcomes's). After the first finished
benchmark (its framework imported by then) comes ``{"head": ...}``: the
machine and commit facts as pytest-benchmark would save them; ``{"facts":
...}`` (records.model.RunFacts without outcomes: the small problems' data, the
quick flag) follows each benchmark that added a problem. A write that fails (a
full disk) ends the file, never the benchmarks. A started benchmark
with no outcome after it is the one its process died in. regbench.partial reads
the file back into a part of the run (regbench.merge); nothing else does.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from pathlib import Path

import pytest_benchmark

from bench.outcomes import OutcomeRecorder


class PartialWriter:
    def __init__(self, path: str, config, recorder: OutcomeRecorder) -> None:
        # Kept open for the session (a line per event), closed at its end.
        self.file = Path(path).open("a", encoding="utf-8")  # noqa: SIM115
        self.config = config
        self.recorder = recorder
        self.written = 0  # benchmarks of pytest-benchmark's session written so far
        self.headed = False
        self.problems = -1

    def _write(self, entry: dict) -> None:
        if self.file.closed:
            return
        try:
            self.file.write(json.dumps(entry) + "\n")
            self.file.flush()
        except OSError:  # a full disk: the benchmarks go on (pytest-benchmark's own save says it), without it
            with contextlib.suppress(OSError):
                self.file.close()

    def pytest_runtest_logstart(self, nodeid, location) -> None:
        if nodeid in self.recorder.selected:
            self._write({"started": nodeid})

    def pytest_runtest_logfinish(self, nodeid, location) -> None:
        if nodeid not in self.recorder.selected:
            return
        config = self.config
        session = getattr(config, "_benchmarksession", None)
        benchmarks = session.benchmarks if session is not None else []
        for benchmark in benchmarks[self.written :]:
            if not benchmark.has_error:
                self._write({"benchmark": benchmark.as_dict(include_data=session.save_data)})
        self.written = len(benchmarks)
        if nodeid in self.recorder.outcomes:
            self._write({"outcome": self.recorder.outcomes[nodeid].model_dump()})
        if session is not None and self.written and not self.headed:
            commit_info = config.hook.pytest_benchmark_generate_commit_info(config=config)
            config.hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit_info)
            self._write({"head": {"machine_info": session.get_machine_info(), "commit_info": commit_info,
                                  "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                                  "version": pytest_benchmark.__version__}})  # fmt: skip
            self.headed = True
        facts = self.recorder.facts()
        if len(facts.problems) != self.problems:
            self.problems = len(facts.problems)
            self._write({"facts": facts.model_copy(update={"outcomes": []}).model_dump()})

    def pytest_sessionfinish(self, session) -> None:
        with contextlib.suppress(OSError):
            self.file.close()

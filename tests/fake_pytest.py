"""A stand-in for the pytest processes ``regbench run`` starts (monkeypatched over ``subprocess.Popen``).

The plan pass (``--regbench-plan``) names a benchmark of each of ``frameworks``; the first framework's process
saves one run of the current schema (tests/data/v4) into its staging folder and exits with ``status``; a process
of a framework in ``failing`` records a failed benchmark and exits 1 (pytest's failed tests) with no run saved.
Subclasses set them, or ``plan_status`` for a pytest that fails before any benchmark (errors while collecting).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
(RUN,) = (ROOT / "tests" / "data" / "v4").glob("*/*.json")


class FakePytest:
    status = 0
    plan_status = 0
    frameworks: tuple[str, ...] = ("numpy",)
    failing: tuple[str, ...] = ()
    commands: list[list[str]] | None = None  # a subclass's own list gets every command line, in order

    def __init__(self, cmd, **kwargs):
        if self.commands is not None:
            self.commands.append(cmd)
        options = dict(a.split("=", 1) for a in cmd if a.startswith("--") and "=" in a)
        self.planning = "--regbench-plan" in options
        if self.planning:
            if self.plan_status == 0:
                # bench.isolation.plan's keys
                plan = [{"nodeid": f"bench/test_fit.py::test_fit[{f}]", "framework": f, "test": f"test_fit[{f}]",
                         "prior_s": 1.0} for f in self.frameworks]  # fmt: skip
                Path(options["--regbench-plan"]).write_text(json.dumps({"benchmarks": plan}))
            return
        self.framework = options.get("--regbench-framework")
        if self.framework in self.failing:
            failed = {"test": f"test_fit[{self.framework}]", "outcome": "failed", "trainer": f"{self.framework}-x",
                      "dtype": "float32", "reason": "KeyError: 1"}  # fmt: skip
            Path(options["--regbench-outcomes"]).write_text(json.dumps([failed]))
            return
        if "--regbench-outcomes" in options:  # as pytest's session ends (bench.outcomes)
            passed = {"test": f"test_fit[{self.framework}]", "outcome": "passed", "trainer": f"{self.framework}-x",
                      "dtype": "float32"}  # fmt: skip
            Path(options["--regbench-outcomes"]).parent.mkdir(parents=True, exist_ok=True)
            Path(options["--regbench-outcomes"]).write_text(json.dumps([passed]))
        staging = Path(options["--benchmark-storage"].split("file://", 1)[1])
        (staging / RUN.parent.name).mkdir(parents=True)
        shutil.copy(RUN, staging / RUN.parent.name / "0001_run.json")

    def wait(self):
        if self.planning:
            return self.plan_status
        return 1 if self.framework in self.failing else self.status

"""A stand-in for the pytest processes ``regbench run`` starts (monkeypatched over ``subprocess.Popen``).

The plan pass (``--regbench-plan``) names one framework; that framework's process saves one run of the current
schema (tests/data/v1) into its staging folder and exits with ``status``. Subclasses set ``status``, or
``plan_status`` for a pytest that fails before any benchmark (errors while collecting, say).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
(V1_RUN,) = (ROOT / "tests" / "data" / "v1").glob("*/*.json")


class FakePytest:
    status = 0
    plan_status = 0
    commands: list[list[str]] | None = None  # a subclass's own list gets every command line, in order

    def __init__(self, cmd, **kwargs):
        if self.commands is not None:
            self.commands.append(cmd)
        options = dict(a.split("=", 1) for a in cmd if a.startswith("--") and "=" in a)
        self.planning = "--regbench-plan" in options
        if self.planning:
            if self.plan_status == 0:
                plan = {"benchmarks": [{"nodeid": "bench/test_fit.py::test_fit[x]", "framework": "numpy"}]}
                Path(options["--regbench-plan"]).write_text(json.dumps(plan))
            return
        staging = Path(options["--benchmark-storage"].split("file://", 1)[1])
        (staging / V1_RUN.parent.name).mkdir(parents=True)
        shutil.copy(V1_RUN, staging / V1_RUN.parent.name / "0001_run.json")

    def wait(self):
        return self.plan_status if self.planning else self.status

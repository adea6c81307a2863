"""What a benchmark process that died had finished: its partial file (bench.partial) read back into a run's part.

Rules: a framework's process that dies (a signal, or an exit status pytest
never gives: a plugin's ``os.abort()``, ``os._exit(3)``, a segfault) costs
only the benchmark it died in: that one is a failed outcome whose reason names
the death, every benchmark it had finished keeps its figures (a part of the run
as regbench.merge takes them), and ``regbench run`` runs the process's other
benchmarks again in a new process. A benchmark the plan listed that its
framework's process never ran (its plugin uninstalled meanwhile) is a failed
outcome too. Nothing here runs a process.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from pathlib import Path

from records.model import Outcome


def death(status: int) -> str:
    """A process's end in words: ``killed by SIGABRT`` for a signal's (Popen's negative status), else the status."""
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"ended with exit status {status}"


@dataclass
class Partial:
    """A dead process's partial file: its part of the run (None: nothing finished), every benchmark's outcome, the
    benchmarks it started (in order), the one it died in (None: it died between benchmarks), and the failed
    outcomes ``salvage`` adds for what the death cost."""

    part: dict | None = None
    outcomes: list[dict] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    died_in: str | None = None
    lost: list[dict] = field(default_factory=list)


def read(path: Path) -> Partial:
    """The partial file at ``path`` (bench.partial); a line cut short by the death is passed over."""
    found = Partial()
    head, facts, benchmarks, ended = None, {}, [], set()
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if "started" in entry:
            found.started.append(entry["started"])
        elif "benchmark" in entry:
            benchmarks.append(entry["benchmark"])
        elif "outcome" in entry:
            found.outcomes.append(entry["outcome"])
            ended.add(entry["outcome"]["test"])
        elif "head" in entry:
            head = entry["head"]
        elif "facts" in entry:
            facts = entry["facts"]
    if found.started and found.started[-1].rsplit("::", 1)[-1] not in ended:
        found.died_in = found.started[-1]
    if head is not None and benchmarks:
        found.part = {**head, "benchmarks": benchmarks, "regbench": facts}
    return found


def failed(nodeid: str, reason: str, trainer: str | None = None, dtype: str | None = None) -> dict:
    """The failed outcome of a benchmark its process could not finish (records.model.Outcome)."""
    return Outcome(test=nodeid.rsplit("::", 1)[-1], outcome="failed", trainer=trainer, dtype=dtype,
                   reason=reason).model_dump()  # fmt: skip


def salvage(path: Path, framework: str, status: int, mine: list[dict], left: list[dict]) -> tuple[Partial, list]:
    """What the process of ``framework`` that ended with ``status`` leaves in its partial file ``path``, the
    benchmark it died in a failed outcome (``lost``, also among ``outcomes``), and the entries of the plan (of
    ``left``, those it was to run; ``mine``, all of its framework's) still to run in a new process: none where it
    died before any benchmark began (a new process would too: each of ``left`` is lost)."""
    found = read(path)
    started = set(found.started)
    if found.started:
        lost = [entry for entry in mine if entry["nodeid"] == found.died_in]
        left = [entry for entry in left if entry["nodeid"] not in started]
    else:
        lost, left = left, []
    why = f"its {framework} process was {death(status)} while it ran"
    found.lost = [failed(entry["nodeid"], why, entry.get("trainer"), entry.get("dtype")) for entry in lost]
    found.outcomes += found.lost
    return found, left


def missed(plan: list[dict], outcomes: list[list[dict]]) -> list[tuple[str, dict]]:
    """The framework and a failed outcome of each benchmark of the plan that has no outcome: its framework's
    process no longer found it (its plugin uninstalled while the run was under way)."""
    ended = {o["test"] for process in outcomes for o in process}
    return [(entry["framework"], failed(entry["nodeid"], f"planned, but its {entry['framework']} process no longer "
                                        "found it (its plugin uninstalled during the run?)", entry.get("trainer"),
                                        entry.get("dtype")))
            for entry in plan if entry["nodeid"].rsplit("::", 1)[-1] not in ended]  # fmt: skip

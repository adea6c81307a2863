"""What each benchmark of a run is expected to cost, for the progress line's "~N left" (bench.progress).

Rules: a benchmark's estimate is the median of what it took (``Outcome.wall_s``) in the newest HISTORY runs of
this machine's folder of the storage that ran it, else its prior (bench.priors, in the plan). What is not a
benchmark has its share too: each process's start (its framework's import, collection) and, at the end, the merge
and the report (PROCESS_START_S, REPORT_S). Reading the history never fails a run: a file that cannot be read or
parsed is passed over. The estimates are written, in the order the run's processes will run them, to a file every
process reads (``--regbench-estimates``).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from regbench.store import NUMBERED, machine_folder

#: The newest runs of the machine whose outcomes are read.
HISTORY = 5
#: A benchmark process's start (Python, pytest, the framework's import, collection) and the end before the next
#: (its exit), and the end of a run (the merge, the report's tables and charts), measured on a quiet 2-core machine
#: (2026-12-04: 1 to 3 s a process; the report 2.5 s after a quick run, 5 s after a default one).
PROCESS_START_S, REPORT_S = 3.0, 4.0


def history(storage: Path, runs: int = HISTORY) -> dict[str, list[float]]:
    """Test name -> the wall seconds each of the newest ``runs`` runs of this machine recorded for it."""
    files = sorted((p for p in machine_folder(storage).glob("*.json") if NUMBERED.match(p.name)), reverse=True)
    seen: dict[str, list[float]] = {}
    for path in files[:runs]:
        try:
            outcomes = json.loads(path.read_text())["regbench"]["outcomes"]
            for outcome in outcomes:
                if outcome.get("outcome") == "passed" and isinstance(outcome.get("wall_s"), (int, float)):
                    seen.setdefault(outcome["test"], []).append(float(outcome["wall_s"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return seen


def estimates(plan: list[dict], frameworks: list[str], seen: dict[str, list[float]]) -> list[dict]:
    """The plan's benchmarks in the order ``frameworks``' processes run them, each with ``estimate_s`` (its
    history's median, else its prior) and ``source`` ("history" or "prior"); each process's start before its
    benchmarks, and the report after them all."""
    out = []
    for framework in frameworks:
        out.append({"nodeid": f"<start of the {framework} process>", "framework": framework,
                    "estimate_s": PROCESS_START_S, "source": "prior"})  # fmt: skip
        for entry in plan:
            if entry["framework"] == framework:
                past = seen.get(entry.get("test", ""))
                estimate, source = (statistics.median(past), "history") if past else (entry["prior_s"], "prior")
                out.append({"nodeid": entry["nodeid"], "framework": framework, "estimate_s": estimate,
                            "source": source})  # fmt: skip
    out.append({"nodeid": "<the report>", "framework": "", "estimate_s": REPORT_S, "source": "prior"})
    return out


def write(path: Path, plan: list[dict], frameworks: list[str], storage: Path) -> bool:
    """Write the run's estimates to ``path``; whether it could (a full disk costs the estimate, not the run)."""
    try:
        path.write_text(json.dumps(estimates(plan, frameworks, history(storage))))
    except OSError:
        return False
    return True

"""The files of one run's processes (one per framework, bench.isolation) made into one saved run.

Rules: nothing is dropped or changed: the merged file has every benchmark of
every part, in the order the processes ran, the first part's machine and
commit facts (the same machine, the same checkout) with each framework's own
facts from the process that imported it, every selected
benchmark's outcome (from each process's outcomes file, which also has the
benchmarks that saved nothing), each small problem's data once, and the
frameworks in the order their processes ran (``RunFacts.processes``).
"""

from __future__ import annotations

import json
from pathlib import Path

from records.model import Outcome, RunFacts


def merge(parts: list[dict], outcomes: list[list[dict]], processes: list[str]) -> dict:
    """One pytest-benchmark file from ``parts`` (saved files, at least one) and every process's ``outcomes``."""
    facts = [RunFacts.model_validate(part.get("regbench", {})) for part in parts]
    problems = {}
    for fact in facts:
        for data in fact.problems:
            problems.setdefault(json.dumps(data.problem.model_dump(), sort_keys=True), data)
    merged = {key: value for key, value in parts[0].items() if key not in ("benchmarks", "regbench")}
    # Each process recorded the facts of the frameworks it imported (bench.environment): the run has them all.
    environment: dict = {}
    for part in parts:
        for key, value in part.get("machine_info", {}).get("regbench", {}).items():
            environment.setdefault(key, value)
    merged["machine_info"] = {**merged.get("machine_info", {}), "regbench": environment}
    merged["benchmarks"] = [benchmark for part in parts for benchmark in part["benchmarks"]]
    merged["regbench"] = RunFacts(
        outcomes=[Outcome.model_validate(o) for process in outcomes for o in process],
        problems=list(problems.values()),
        quick=facts[0].quick,
        depth=facts[0].depth,
        processes=processes,
    ).model_dump()
    return merged


def read_outcomes(path: Path) -> list[dict]:
    """A process's outcomes file (bench.outcomes); [] where it wrote none (it stopped before its end)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return []

"""The README's quick start is the contract: CI runs its test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quick_start_has_a_main_job_and_a_test_command():
    main_job, tests = quick_start_commands()
    assert main_job.endswith("regbench run")
    assert tests.endswith("python -m pytest")
    for command in (main_job, tests):
        assert "-c constraints.txt" in command  # torch stays the pinned CPU build


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start_commands()[1] in ci_lines

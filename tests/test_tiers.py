"""The two test tiers (tests/conftest.py): a plain run leaves the slow tier out; any ``-m`` of the user's decides.

Checked on a throw-away project that uses this suite's hooks, in a fresh pytest process a case (collection only).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALL = {"test_plain", "test_slow", "test_gpu", "test_slow_gpu"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiers")
    markers = (ROOT / "pyproject.toml").read_text().split("markers = [", 1)[1].split("]", 1)[0]
    lines = [line.strip().rstrip(",").strip('"') for line in markers.splitlines() if line.strip()]
    (root / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers\nmarkers =\n" +
                                     "".join(f"    {line}\n" for line in lines))  # fmt: skip
    (root / "conftest.py").write_text(
        "from tests.conftest import pytest_addoption, pytest_collection_modifyitems, pytest_terminal_summary\n"
    )
    (root / "test_x.py").write_text(
        "import pytest\n\n"
        "def test_plain(): pass\n\n"
        "@pytest.mark.slow\ndef test_slow(): pass\n\n"
        "@pytest.mark.gpu\ndef test_gpu(): pass\n\n"
        "@pytest.mark.slow\n@pytest.mark.gpu\ndef test_slow_gpu(): pass\n"
    )
    return root


def selected(project: Path, *args: str) -> tuple[set[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", *args]
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {line.split("::")[1] for line in proc.stdout.splitlines() if line.startswith("test_x.py::")}, proc.stdout


def test_a_plain_run_leaves_the_slow_tier_out_and_says_so(project):
    names, out = selected(project)
    assert names == {"test_plain", "test_gpu"}
    assert "2 deselected" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-m", "slow"], {"test_slow", "test_slow_gpu"}),
        (["-m", "gpu"], {"test_gpu", "test_slow_gpu"}),
        (["-m", "not slow"], {"test_plain", "test_gpu"}),
        (["-m", "slow or not slow"], ALL),
        (["--run-slow"], ALL),
        (["--run-slow", "-m", "not gpu"], {"test_plain", "test_slow"}),
        (["test_x.py::test_slow"], {"test_slow"}),
    ],
    ids=["-m slow", "-m gpu", "-m not slow", "-m everything", "--run-slow", "--run-slow -m", "node id"],
)
@pytest.mark.slow  # a fresh pytest a case
def test_the_users_selection_decides(project, args, expected):
    assert selected(project, *args)[0] == expected


def test_the_slow_marker_is_registered_and_not_forced_by_addopts():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"slow: ' in text
    addopts = text.split("addopts = ", 1)[1].splitlines()[0]
    assert "-m" not in addopts.split('"')  # a user's own -m would have to fight it

"""Issue 36, class 9: nothing regbench starts outlives a SIGKILLed regbench: a benchmark process's children that
have no guard of their own (inductor's ``g++``, here a plugin's ``sleep``), the cold start's fresh process, and
``regbench conform``'s pytest with its global-state process.

Real processes, real SIGKILLs: each case starts the command, waits until the process that must not be orphaned
has written its pid, kills the command outright and waits for that pid to be gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.plugins import TOY_BACKEND, write_distribution
from tests.test_hardening import ROOT

#: A run() that writes the pids of the processes that must die to PIDS (one a line), then waits ten minutes.
HOLD = """
import os, subprocess, sys, time
from pathlib import Path

def run(self):
    pids = [os.getpid()]
    if {child}:
        pids.append(subprocess.Popen(["sleep", "600"]).pid)  # no guard of its own, as inductor's g++
    if {when}:
        with open({pids!r}, "a") as f:
            f.write("".join(f"{{pid}}\\n" for pid in pids))
        time.sleep(600)
    return _run(self)

_run = _Fit.run
_Fit.run = run
"""


def install(site, pids: Path, child: bool = False, when: str = "True") -> str:
    """Trainer ``toyhold-manual-loop-cpu`` (NumPy's): its run() writes its pid (and a ``sleep`` child's) to
    ``pids`` where ``when`` holds, then sleeps. Returns its id."""
    backend = TOY_BACKEND + HOLD.format(child=child, when=when, pids=str(pids))
    spec = ('from backends import TrainerSpec\nTRAINERS = (TrainerSpec("toyhold", "manual", "loop", "cpu", '
            '"toyhold_backend", framework="numpy", problems=("quadratic",)),)\n')  # fmt: skip
    modules = {"toyhold_specs.py": spec, "toyhold_backend.py": backend}
    write_distribution(site, "regbench-toyhold", {"regbench.trainers": {"toyhold": "toyhold_specs:TRAINERS"}}, modules)
    return "toyhold-manual-loop-cpu"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead: its parent has not reaped it yet
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def kill_when_written(cmd: list[str], pids: Path, env: dict, count: int) -> list[int]:
    """Start ``cmd``, wait for ``count`` pids in ``pids``, SIGKILL the command; the pids, once they are all gone."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (pids.exists() and len(pids.read_text().split()) >= count):
            assert proc.poll() is None, f"{cmd} ended ({proc.returncode}) before its child wrote its pid"
            assert time.monotonic() < deadline, "no pid written in 240 s"
            time.sleep(0.2)
        written = [int(pid) for pid in pids.read_text().split()]
        assert all(map(alive, written))
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 15
    while any(map(alive, written)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in written if alive(pid)]
    for pid in left:  # the test leaves nothing behind either
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left running after the SIGKILL: {left}"
    return written


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")


@pytest.mark.slow  # a real run, killed (~10 s)
def test_a_killed_run_takes_what_its_benchmark_process_started_along(site, tmp_path):
    """inductor's g++ is the benchmark process's child, without a guard: the reaper (bench.parent_watch) kills it."""
    pids = tmp_path / "pids"
    trainer = install(site, pids, child=True)
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    cmd = [sys.executable, "-B", "-m", "regbench", "run", "--quick", "--storage", str(tmp_path / "storage"), "--out",
           str(tmp_path / "out"), "--", "-k", trainer]  # fmt: skip
    benchmark_process, sleep = kill_when_written(cmd, pids, env, 2)
    assert benchmark_process != sleep


@pytest.mark.slow  # a fresh process and its cold start, killed (~5 s)
def test_a_killed_cold_start_leaves_no_fresh_process(site, tmp_path):
    pids = tmp_path / "pids"
    trainer = install(site, pids, when="__import__('sys').modules['__main__'].__spec__.name == 'bench.cold_start'")
    script = (
        "import backends; from bench.cold_start import cold_start; "
        f"cold_start(backends.get_trainer({trainer!r}), backends.seed_problem(), backends.TrainConfig(), False)"
    )
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    kill_when_written([sys.executable, "-c", script], pids, env, 1)


@pytest.mark.slow  # regbench conform, killed in its global-state check (~5 s)
def test_a_killed_conform_takes_its_pytest_and_global_state_process_along(site, tmp_path):
    pids = tmp_path / "pids"
    in_child = "__import__('sys').modules['__main__'].__spec__.name == 'regbench.conformance.global_state'"
    trainer = install(site, pids, when=in_child)
    # The global-state process writes its own pid; its parent, the kit's pytest, is written by the same line.
    backend = site / "toyhold_backend.py"
    backend.write_text(backend.read_text().replace("pids = [os.getpid()]", "pids = [os.getpid(), os.getppid()]"))
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    child, kit = kill_when_written([sys.executable, "-B", "-m", "regbench", "conform", trainer], pids, env, 2)
    assert child != kit

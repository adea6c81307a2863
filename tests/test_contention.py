"""bench.contention: the share of the machine's CPU time other processes took during a benchmark's rounds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import contention
from bench.contention import OthersCpu

linux = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads /proc/stat (Linux)")


def test_its_own_process_and_its_workers_are_not_others(monkeypatch):
    """Of 100 busy ticks on 2 CPUs over 1 s (200 ticks at 100 Hz), 30 this process's and 20 its worker's: 50 are
    others', a quarter of the machine."""
    busy = iter([(1000, 2), (1100, 2)])
    own = {"self": iter([10, 40]), 7: iter([5, 25])}
    clock = iter([0.0, 1.0])
    monkeypatch.setattr(contention, "_machine_ticks", lambda: next(busy))
    monkeypatch.setattr(contention, "_process_ticks", lambda pid: next(own[pid]))
    monkeypatch.setattr(contention, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    monkeypatch.setattr(contention, "os", SimpleNamespace(sysconf=lambda name: 100))
    with OthersCpu([7]) as share:
        pass
    assert share.value == pytest.approx(0.25)


def test_a_window_too_short_for_the_ticks_says_nothing():
    with OthersCpu() as share:
        pass
    assert share.value is None


@linux
def test_a_job_that_keeps_every_core_busy_takes_nearly_all_of_them():
    """One spinning process per CPU while this one sleeps: the share is the machine's, nearly all of it."""
    spin = [sys.executable, "-c", "while True: pass"]
    hogs = [subprocess.Popen(spin) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)  # the hogs are running
        with OthersCpu() as share:
            time.sleep(1.0)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert share.value > 0.8

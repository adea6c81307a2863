"""How much of the machine's CPU time other processes took while a benchmark's rounds ran.

Rules: read from the kernel's counters, never from a timing: /proc/stat's busy time
of every CPU (steal, the hypervisor's, included) less this process's own and its
workers' (/proc/<pid>/stat), over the wall time of the timed rounds times the
CPUs the kernel counts: 0 on an idle machine, near 1 where other jobs kept
every core busy. Read before and after the rounds, outside them. A between-run
``compare`` cannot tell a slower trainer from a share of the cores taken by
another job (the native loops' short rounds, its yardsticks, fit between two
preemptions: docs/reports-and-compare.md); this share says which benchmarks ran
beside one (reports.drift). None where /proc cannot be read (not Linux), or a
window too short for the counters' ticks (CLK_TCK, 100 a second) to tell.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

#: The shortest window whose share is given: 20 ticks of a 100 Hz clock on each CPU.
MIN_WINDOW_S = 0.2
#: /proc/stat's fields counted as busy: user, nice, system, irq, softirq, steal (idle, iowait and the guest
#: times, already in user and nice, are not).
_BUSY = (0, 1, 2, 5, 6, 7)


def _machine_ticks() -> tuple[int, int]:
    """The busy ticks summed over every CPU, and the number of CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        lines = f.read().splitlines()
    fields = [int(v) for v in lines[0].split()[1:]]
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return sum(fields[i] for i in _BUSY if i < len(fields)), cpus


def _process_ticks(pid: int | str) -> int:
    """A process's user and system ticks, every thread of it (0 for one that is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return int(fields[11]) + int(fields[12])  # utime, stime


class OthersCpu:
    """A window: ``with OthersCpu(pids) as share: ...``, then ``share.value`` (a fraction, or None).

    ``pids``: processes whose CPU time is the benchmark's own besides this one (a data-parallel group's workers).
    """

    def __init__(self, pids: Iterable[int] = ()) -> None:
        self.pids = ["self", *pids]
        self.value: float | None = None
        self._start: tuple[float, int, int, int] | None = None

    def _read(self) -> tuple[float, int, int, int]:
        busy, cpus = _machine_ticks()
        return time.perf_counter(), busy, sum(_process_ticks(pid) for pid in self.pids), cpus

    def __enter__(self) -> OthersCpu:
        try:
            self._start = self._read()
        except (OSError, ValueError, IndexError):
            self._start = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._start is None or exc[0] is not None:
            return
        try:
            end = self._read()
        except (OSError, ValueError, IndexError):
            return
        wall = end[0] - self._start[0]
        if wall < MIN_WINDOW_S or not end[3]:
            return
        others = (end[1] - self._start[1]) - (end[2] - self._start[2])
        capacity = wall * os.sysconf("SC_CLK_TCK") * end[3]
        self.value = min(1.0, max(0.0, others / capacity))

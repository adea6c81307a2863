"""A pytest plugin that makes pytest, and what it started, die with the ``regbench run`` that started it (``-p
bench.parent_watch``).

Rules: ``regbench run`` puts its pid in ``$REGBENCH_PARENT_PID`` and loads this
plugin, which pytest imports while it reads its command line, before any
benchmark; the kernel then SIGKILLs pytest when that process dies, even by
SIGKILL (PR_SET_PDEATHSIG, Linux; elsewhere nothing), so that no benchmark
keeps running for a supervisor that is gone. pytest's data-parallel workers die
with pytest in turn (backends._process_group). What else pytest started in its
process group (regbench run gives it one of its own) and that has no such guard
(inductor's ``g++``/``cc1plus``, a plugin's child) is killed by a reaper: a
shell, started here, that waits for pytest's end (the end of a pipe only pytest
holds) and then SIGKILLs what is left of the group, however pytest ended; it
ignores the stopping signals the group gets (a Ctrl-C stops pytest, not it).
Without the variable (``pytest bench`` run by hand) the plugin does nothing. The
fresh processes the benchmarks and the conformance kit start (bench.cold_start,
regbench.conformance.global_state) get the variable too, and ``guard`` them.
"""

from __future__ import annotations

import os
import shutil

from backends import die_with_parent

PARENT_ENV = "REGBENCH_PARENT_PID"
#: The reaper: ignores the stopping signals, waits for the pipe's end (pytest gone), kills the group ($0; no "--":
#: dash's kill takes none).
REAPER = "trap '' INT TERM HUP; read _ ; kill -KILL -\"$0\""


def start_reaper() -> None:
    """Start the shell that kills what is left of this process's group once this process has ended (POSIX, where
    this process leads its group: elsewhere the group is not the run's alone)."""
    if not hasattr(os, "posix_spawnp") or os.getpgid(0) != os.getpid() or shutil.which("sh") is None:
        return
    global _pipe
    # Not inherited by what this process runs (PEP 446): only this process holds the writing end, open and unused
    # until it ends; then the reaper reads the pipe's end. posix_spawn, not Popen: no Popen object to warn, when
    # this process ends, that its child still runs (the reaper outlives it by design).
    read, _pipe = os.pipe()
    devnull = os.devnull
    os.posix_spawnp("sh", ["sh", "-c", REAPER, str(os.getpid())], os.environ,
                    file_actions=[(os.POSIX_SPAWN_DUP2, read, 0),
                                  (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
                                  (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0)])  # fmt: skip
    os.close(read)


_pipe: int | None = None  # the writing end, held open until this process ends


def guard(reaper: bool = False) -> None:
    """Die with the process ``$REGBENCH_PARENT_PID`` names (at once if it is already gone), and with ``reaper``
    have what this process's group holds killed when this process ends; nothing without the variable. Also called by
    the fresh processes regbench's own code starts (bench.cold_start, regbench.conformance.global_state), their
    parent's pid in the variable."""
    if os.environ.get(PARENT_ENV, "").isdigit():
        die_with_parent(int(os.environ[PARENT_ENV]))
        if reaper:
            start_reaper()


def pytest_addoption(parser) -> None:
    # The first hook pytest calls on a plugin of -p, while it reads its command line, before any benchmark.
    guard(reaper=True)

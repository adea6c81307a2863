"""A pytest plugin that makes pytest die with the ``regbench run`` that started it (``-p bench.parent_watch``).

Rules: ``regbench run`` puts its pid in ``$REGBENCH_PARENT_PID`` and loads this
plugin, which pytest imports while it reads its command line, before any
benchmark; the kernel then SIGKILLs pytest when that process dies, even by
SIGKILL (PR_SET_PDEATHSIG, Linux; elsewhere nothing), so that no benchmark
keeps running for a supervisor that is gone. pytest's data-parallel workers die
with pytest in turn (backends._process_group). Without the variable (``pytest
bench`` run by hand) the plugin does nothing.
"""

from __future__ import annotations

import os

from backends import die_with_parent

PARENT_ENV = "REGBENCH_PARENT_PID"

if os.environ.get(PARENT_ENV, "").isdigit():
    # Done at import, the earliest moment pytest gives a plugin; exits at once if the parent is already gone.
    die_with_parent(int(os.environ[PARENT_ENV]))

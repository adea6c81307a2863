"""argparse ``type`` functions of the suite's own pytest options: a bad value is pytest's usage error.

Rules: every size, count and dtype list is checked as pytest parses its command
line, before any benchmark is collected; a bad value raises
``argparse.ArgumentTypeError``, which pytest turns into its usage error (exit
status 4) naming the option, and ``regbench run`` into its one line. argparse
applies these to the string defaults too, so every option reads back parsed.
(bench imports no regbench: regbench.options is a floor above.)
"""

from __future__ import annotations

import argparse
import math

from backends import DTYPES, MAX_WORKERS_PER_CORE, usable_cores


def positive_int(text: str) -> int:
    """A count or a size: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def worker_count(text: str) -> int:
    """A data-parallel group's size: a positive integer the machine's cores can hold (backends._process_group
    refuses more than MAX_WORKERS_PER_CORE a usable core), refused before any benchmark starts."""
    value, cores = positive_int(text), usable_cores()
    if value > MAX_WORKERS_PER_CORE * cores:
        per_core = f"{MAX_WORKERS_PER_CORE} per core on the {cores} core(s) this process may use"
        raise argparse.ArgumentTypeError(f"must be at most {MAX_WORKERS_PER_CORE * cores} ({per_core}), got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A duration: a finite number of seconds above 0 (not nan, inf or -1)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def positive_ints(text: str) -> list[int]:
    """A comma-separated list of positive integers, at least one."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}")
    try:
        return [positive_int(part) for part in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be comma-separated positive integers, got {text!r}") from None


def dtype_list(text: str) -> list[str]:
    """A comma-separated list of dtypes the trainers run, at least one."""
    dtypes = [part.strip() for part in text.split(",") if part.strip()]
    if not dtypes or any(d not in DTYPES for d in dtypes):
        raise argparse.ArgumentTypeError(f"must be comma-separated dtypes among {', '.join(DTYPES)}, got {text!r}")
    return dtypes

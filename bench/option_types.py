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

from backends import DTYPES


def positive_int(text: str) -> int:
    """A count or a size: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
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

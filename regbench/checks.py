"""A user's mistake, found before any work: the exception every command raises for it, and the folder check.

Rules: ``UsageError``'s message is the one line regbench.cli prints (exit 2); a
folder a command will write is checked before the command starts its work, so
that a finished run is never thrown away over a path.
"""

from __future__ import annotations

import os
from pathlib import Path


class UsageError(Exception):
    pass


def check_folder(path: Path, option: str) -> None:
    """Refuse, before any work, a folder that cannot be written: a file, or under one, or where writing is refused."""
    if os.path.lexists(path) and not path.is_dir():
        raise UsageError(f"{option} {path}: exists and is not a folder")
    existing = path
    while not os.path.lexists(existing):  # the folder is created later: its nearest existing parent must allow it
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {existing} is not writable")

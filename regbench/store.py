"""Adding a finished ``regbench run`` to a benchmark storage, whole and under a number of its own.

Rules: pytest-benchmark saves into a private staging folder inside the storage
(hidden, so loaders skip it); only a run whose pytest exited 0 is added, each
file hard-linked under the next free ``NNNN_`` number of its machine folder.
Numbering is locked between regbench runs, a link never replaces an existing
name, and a number another writer took meanwhile is given up: two runs
finishing at once both keep their files, under numbers of their own, and a
reader never sees a half-written file. pytest-benchmark
itself writes in place (open, then serialise) and numbers by listing the folder,
which is why runs are not saved straight into the storage. A staging folder
is named after its owner (``.staging-<pid>@<host>-…``), so that a later run on
the same host removes one whose owner is gone (killed outright, the machine
restarted) and leaves a live one alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

NUMBERED = re.compile(r"^(\d{4})_(.+)\.json$")
#: A staging folder's name: its owner's pid and host, then mkdtemp's random part (letters, digits, "_").
STAGING = re.compile(r"^\.staging-(\d+)@(.*)-\w+$")


def _host() -> str:
    return re.sub(r"[^\w.-]", "_", socket.gethostname())[:64] or "host"


def staging_folder(storage: Path) -> Path:
    """A fresh hidden folder inside ``storage`` (same file system, so files can be linked into place)."""
    storage.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".staging-{os.getpid()}@{_host()}-", dir=storage))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clean_stale(storage: Path) -> tuple[list[Path], list[Path]]:
    """Remove the staging folders whose owner (of this host) is gone; returns those removed and those left
    whose owner cannot be told (another host's, or an older regbench's without a pid)."""
    removed, unknown = [], []
    try:
        folders = [p for p in storage.iterdir() if p.name.startswith(".staging-") and p.is_dir()]
    except OSError:  # no storage yet, or one that cannot be listed: the run's own checks say so
        return removed, unknown
    for folder in folders:
        match = STAGING.match(folder.name)
        if match is None or match.group(2) != _host():
            unknown.append(folder)
        elif int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            discard(folder)
            removed.append(folder)
    return removed, unknown


def _next_number(folder: Path) -> int:
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := NUMBERED.match(p.name))]
    return max(numbers, default=0) + 1


@contextlib.contextmanager
def _locked(folder: Path):
    """An exclusive lock on a machine folder's numbering, between regbench runs (POSIX; elsewhere none)."""
    try:
        import fcntl
    except ImportError:  # Windows: the link and the re-check below still keep both runs
        yield
        return
    with open(folder / ".regbench.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def commit(staging: Path, storage: Path) -> Iterator[Path]:
    """Link every staged run into ``storage/<machine>/`` under the next free number; yields each new path once it
    is in place (so that a caller interrupted meanwhile knows what was saved)."""
    for staged in sorted(staging.glob("*/*.json")):
        match = NUMBERED.match(staged.name)
        name = match.group(2) if match else staged.stem
        folder = storage / staged.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            while True:
                number = _next_number(folder)
                target = folder / f"{number:04d}_{name}.json"
                try:
                    os.link(staged, target)  # fails, rather than overwrites, when the name is taken
                except FileExistsError:
                    continue
                if any(p != target and p.name.startswith(f"{number:04d}_") for p in folder.iterdir()):
                    # A writer that takes no lock (pytest-benchmark itself) took the number meanwhile: move on.
                    os.unlink(target)
                    continue
                break
        yield target


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)

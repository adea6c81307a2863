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
restarted) and leaves a live one alone, and one that holds a run it only reports.
What the commit needs (the machine folder and its lock file writable, the run's
file name within the file system's limit) is checked before the benchmarks
start (``preflight``); a commit that fails all the same keeps the staged run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import platform
import re
import shutil
import socket
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

from regbench.checks import UsageError

LOCK = ".regbench.lock"
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


def clean_stale(storage: Path) -> tuple[list[Path], list[str]]:
    """Remove the staging folders whose owner (of this host) is gone; returns those removed, and a warning for
    each one left that may be stale: its owner cannot be told (another host's, an older regbench's without a
    pid), or it holds a run (a commit that failed keeps it there)."""
    removed, notes = [], []
    try:
        folders = [p for p in storage.iterdir() if p.name.startswith(".staging-") and p.is_dir()]
    except OSError:  # no storage yet, or one that cannot be listed: the run's own checks say so
        return removed, notes
    for folder in folders:
        match = STAGING.match(folder.name)
        if match is None or match.group(2) != _host():
            notes.append(f"{folder} may be left by a run that is gone (another host's, or an older regbench's); "
                         "remove it if no run is using it")  # fmt: skip
        elif int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        elif runs := sorted(folder.glob("*/*.json")):
            notes.append(f"{folder} holds a run that was never added to the storage: {', '.join(map(str, runs))}")
        else:
            discard(folder)
            removed.append(folder)
    return removed, notes


def machine_folder(storage: Path) -> Path:
    """Where pytest-benchmark, run by this interpreter, saves: ``storage/<its machine id>``.

    The id as pytest_benchmark.utils.get_machine_id makes it, but with the pointer size for its
    platform.architecture(), which runs ``file`` on the interpreter in a subprocess for the same bits.
    """
    version = ".".join(platform.python_version_tuple()[:2])
    bits = struct.calcsize("P") * 8
    return storage / f"{platform.system()}-{platform.python_implementation()}-{version}-{bits}bit"


def preflight(storage: Path, name: str) -> None:
    """Refuse, before any benchmark, what would make the commit fail: the machine folder not a writable folder,
    its lock file not writable, a run file name longer than the file system takes."""
    folder = machine_folder(storage)
    existing = folder
    while not os.path.lexists(existing):
        existing = existing.parent
    if os.path.lexists(folder) and not folder.is_dir():
        raise UsageError(f"--storage {storage}: {folder} (where the run is saved) is not a folder")
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--storage {storage}: {folder} (where the run is saved) is not writable")
    lock = folder / LOCK
    if os.path.lexists(lock) and (not lock.is_file() or not os.access(lock, os.W_OK)):
        raise UsageError(f"--storage {storage}: its lock file {lock} is not a writable file")
    longest = os.fsencode(f"9999_{name}.json")  # the longest name the commit may give the run
    with contextlib.suppress(OSError, ValueError):  # no limit known: none checked
        limit = os.pathconf(existing if existing.is_dir() else existing.parent, "PC_NAME_MAX")
        if len(longest) > limit:
            raise UsageError(f"--name {name}: makes a file name of {len(longest)} bytes, more than the {limit} "
                             f"the file system of {storage} allows")  # fmt: skip


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
    with open(folder / LOCK, "a") as lock:
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


def disk_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has no block or no inode left for an ordinary user."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail == 0 or (st.f_files > 0 and st.f_favail == 0)


def describe(exc: OSError) -> str:
    """An OS error in words; a full disk always as "no space left on device"."""
    if exc.errno == errno.ENOSPC:
        return f"no space left on device: {exc.filename}" if exc.filename else "no space left on device"
    return str(exc)

"""Where the frameworks write to disk during ``regbench run``: the storage's own ``.cache`` folder.

Rules: left to themselves, torch's inductor writes its compiled kernels and
precompiled headers under TMPDIR (``torchinductor_<user>``: the headers go
there whatever TORCHINDUCTOR_CACHE_DIR says), Triton under HOME
(``~/.triton``) and matplotlib its font cache and config under HOME
(``~/.config/matplotlib``, ``~/.cache/matplotlib``), with a warning on stderr
where HOME cannot be written. A run points them at folders of its own inside
the storage (hidden: loaders pass over it): the benchmark process's TMPDIR
always (its temporary files are the run's own), each cache's variable unless
the user set it. So a run writes nothing outside ``--storage`` and ``--out``
(a run that saves nothing removes the folder it made), and a later run into
the same storage finds the caches warm, as it would have
under TMPDIR and HOME. The cold-start measurement still points the compile
caches at an empty folder of its own (bench.cold_start). A cache folder that
cannot be written (``.cache`` on a read-only mount) refuses the run before any
benchmark, naming it, rather than letting Python's tempfile fall back to /tmp
and matplotlib warn. The folders are made, and a run that saved nothing removes
the ``.cache`` it made, under a lock on the storage, and only where no other
run's staging folder is in the storage (two runs started at once into a new
storage: the one refused does not delete the other's caches).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: The storage's folder of caches, and each cache's variable and its folder in it.
CACHE_FOLDER = ".cache"
CACHES = {"TORCHINDUCTOR_CACHE_DIR": "torchinductor", "TRITON_CACHE_DIR": "triton", "MPLCONFIGDIR": "matplotlib"}
#: The benchmark process's temporary folder: set whatever the user's is.
TEMPORARY = "tmp"


def cache_env(storage: Path) -> dict[str, str]:
    """The variables to set for a run into ``storage``, their folders made (a TMPDIR that does not exist is
    passed over by Python's tempfile, which falls back to /tmp)."""
    root = storage.resolve() / CACHE_FOLDER
    env = {var: root / name for var, name in CACHES.items() if not os.environ.get(var)} | {"TMPDIR": root / TEMPORARY}
    with _locked(storage):
        for folder in env.values():
            folder.mkdir(parents=True, exist_ok=True)
            try:  # a folder that exists on a read-only mount: made, and not writable
                tempfile.TemporaryFile(dir=folder).close()
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(folder)) from None
    return {var: str(folder) for var, folder in env.items()}


def discard_unused(storage: Path) -> bool:
    """Remove the storage's ``.cache`` unless another run's staging folder is in the storage (its run may be
    using the caches; one its owner left is cleaned by a later run, regbench.store); True when removed. Call it
    once this run's own staging folder is gone."""
    with _locked(storage):
        if any(p.name.startswith(".staging-") for p in storage.iterdir()):
            return False
        shutil.rmtree(storage / CACHE_FOLDER, ignore_errors=True)
        return True


@contextlib.contextmanager
def _locked(storage: Path) -> Iterator[None]:
    """An exclusive lock on the storage folder itself (flock on its descriptor: no file left behind), between
    regbench runs making or removing its caches (POSIX; elsewhere none)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(storage, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

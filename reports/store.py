"""Adding a finished ``regbench run`` to a benchmark storage, whole and under a number of its own.

Rules: pytest-benchmark saves into a private staging folder inside the storage
(hidden, so loaders skip it); only a run whose pytest exited 0 is added, each
file hard-linked under the next free ``NNNN_`` number of its machine folder.
A link never replaces an existing name, so two runs finishing at once both
keep their files, and a reader never sees a half-written one. pytest-benchmark
itself writes in place (open, then serialise) and numbers by listing the folder,
which is why runs are not saved straight into the storage.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

NUMBERED = re.compile(r"^(\d{4})_(.+)\.json$")


def staging_folder(storage: Path) -> Path:
    """A fresh hidden folder inside ``storage`` (same file system, so files can be linked into place)."""
    storage.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=storage))


def _next_number(folder: Path) -> int:
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := NUMBERED.match(p.name))]
    return max(numbers, default=0) + 1


def commit(staging: Path, storage: Path) -> list[Path]:
    """Link every staged run into ``storage/<machine>/`` under the next free number; returns the new paths."""
    added = []
    for staged in sorted(staging.glob("*/*.json")):
        match = NUMBERED.match(staged.name)
        name = match.group(2) if match else staged.stem
        folder = storage / staged.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            target = folder / f"{_next_number(folder):04d}_{name}.json"
            try:
                os.link(staged, target)  # fails, rather than overwrites, when another run took the number
            except FileExistsError:
                continue
            added.append(target)
            break
    return added


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)

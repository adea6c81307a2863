"""One of many simultaneous ``regbench run`` saves (tests/test_hardening.py): light to import, for spawned processes."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from regbench import store


def save_at_once(storage: str, index: int, barrier, locked: bool) -> None:
    """Stage a run of its own (named run0, run1 or run2), wait for every other writer, then commit it into
    ``storage`` with them; without ``locked``, as where no file lock exists (the link alone claims the name)."""
    if not locked:
        store._locked = lambda folder: contextlib.nullcontext()
    staging = store.staging_folder(Path(storage))
    (staging / "machine").mkdir()
    (staging / "machine" / f"0001_run{index % 3}.json").write_text(json.dumps({"writer": index}))
    barrier.wait()
    list(store.commit(staging, Path(storage)))
    store.discard(staging)

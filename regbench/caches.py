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
caches at an empty folder of its own (bench.cold_start).
"""

from __future__ import annotations

import os
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
    for folder in env.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {var: str(folder) for var, folder in env.items()}

"""Issue 36, class 8: a full disk, a read-only cache folder and two runs started at once into a new storage.

Real mounts where this process may make them (root, Linux: a 2 MiB tmpfs, a read-only bind mount; skipped
elsewhere), real installed plugins and real runs: a compiler's "No space left on device" deep in a benchmark's
error is regbench's one line naming the storage's disk; a read-only ``.cache`` refuses the run in one line before
any benchmark (no fallback to /tmp, no matplotlib warning); the run refused while another runs leaves that run's
caches alone.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import pytest

from regbench.caches import CACHE_FOLDER, CACHES, TEMPORARY
from tests.plugins import TOY_BACKEND, write_distribution
from tests.test_hardening import ROOT, one_line, regbench


@contextlib.contextmanager
def mounted(*args: str):
    """``mount ARGS`` for the block (the last argument the mount point), skipping the test where it cannot be."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounts need root on Linux")
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", args[-1]], check=True)


def install(site, prefix: str, run: str) -> str:
    """Trainer ``PREFIX-manual-loop-cpu`` (NumPy's) whose run() first executes ``run`` (lines). Returns its id."""
    body = "".join(f"    {line}\n" for line in run.strip().splitlines())
    backend = TOY_BACKEND + f"\nimport os, subprocess, tempfile, time\n_run = _Fit.run\n\ndef run(self):\n{body}" \
                            "    return _run(self)\n\n_Fit.run = run\n"  # fmt: skip
    spec = (f'from backends import TrainerSpec\nTRAINERS = (TrainerSpec("{prefix}", "manual", "loop", "cpu", '
            f'"{prefix}_backend", framework="numpy", problems=("quadratic",)),)\n')  # fmt: skip
    modules = {f"{prefix}_specs.py": spec, f"{prefix}_backend.py": backend}
    write_distribution(site, f"regbench-{prefix}", {"regbench.trainers": {prefix: f"{prefix}_specs:TRAINERS"}}, modules)
    return f"{prefix}-manual-loop-cpu"


#: As inductor's g++ does: a compiler writes its output into TMPDIR (the storage's .cache/tmp) and the error
#: quotes its stderr deep in a long message.
COMPILER = """
out = subprocess.run(["dd", "if=/dev/zero", f"of={tempfile.gettempdir()}/header.i", "bs=1M", "count=8"],
                     capture_output=True, text=True)
if out.returncode:
    os.remove(f"{tempfile.gettempdir()}/header.i")  # as inductor removes its temporary folder
    raise RuntimeError("CppCompileError: C++ compile error\\n\\nCommand:\\ndd ...\\n\\nOutput:\\n" + out.stderr)
"""


@pytest.mark.slow  # a real run on a 2 MiB file system (~10 s)
def test_a_compile_that_fills_the_disk_is_one_line_naming_it(site, tmp_path):
    trainer = install(site, "toycc", COMPILER)
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)):
        storage = disk / "storage"
        proc = regbench("run", "--quick", "--storage", storage, "--out", tmp_path / "out", "--", "-k", trainer,
                        pythonpath=f"{site}{os.pathsep}{ROOT}")  # fmt: skip
        one_line(proc, 1, f"regbench: error: no space left on the device of --storage {storage} (the numpy process: "
                          "No space left on device); nothing saved")  # fmt: skip
        assert f"{trainer} float32: FAILED (No space left on device: RuntimeError: CppCompileError" in proc.stdout


@pytest.mark.slow  # a fresh process, refused before any benchmark (~5 s)
def test_a_read_only_cache_folder_refuses_the_run_in_one_line(tmp_path):
    storage = tmp_path / "storage"
    cache = storage / CACHE_FOLDER
    for name in (*CACHES.values(), TEMPORARY):
        (cache / name).mkdir(parents=True)
    with mounted("--bind", "-o", "ro", str(cache), str(cache)):
        if os.access(cache, os.W_OK):  # an old mount that ignored "ro" on a bind
            pytest.skip("the bind mount is not read-only")
        env = {k: v for k, v in os.environ.items() if k not in CACHES}
        proc = regbench("run", "--quick", "--storage", storage, "--out", tmp_path / "out", env=env)
        one_line(proc, 2, f"regbench: error: --storage {storage}: cannot be written (", "Read-only file system",
                 str(cache))  # fmt: skip
        assert "Matplotlib" not in proc.stdout + proc.stderr
        assert not (tmp_path / "out").exists()


@pytest.mark.slow  # two real runs into one storage (~15 s)
def test_a_run_refused_while_another_runs_leaves_its_caches_alone(site, tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    trainer = install(site, "toywait", f"""
open({str(started)!r}, "w").close()
deadline = time.monotonic() + 120
while not os.path.exists({str(release)!r}) and time.monotonic() < deadline:
    time.sleep(0.1)
""")  # fmt: skip
    storage = tmp_path / "storage"  # new: neither run finds it
    env = {k: v for k, v in os.environ.items() if k not in CACHES} | {"PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    first = subprocess.Popen([sys.executable, "-B", "-m", "regbench", "run", "--quick", "--storage", str(storage),
                              "--out", str(tmp_path / "out"), "--", "-k", trainer], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        caches = [storage / CACHE_FOLDER / name for name in (*CACHES.values(), TEMPORARY)]
        assert all(folder.is_dir() for folder in caches)
        refused = regbench("run", "--quick", "--storage", storage, "--out", tmp_path / "out2", "--",
                           "--regbench-rounds=0", env=env)  # fmt: skip
        one_line(refused, 2, "--regbench-rounds")
        assert all(folder.is_dir() for folder in caches), "the refused run removed the caches of the one running"
    finally:
        release.touch()
        err = first.communicate(timeout=120)[1]
    assert first.returncode == 0, err[-3000:]
    assert list(storage.glob("*/0001_*.json"))

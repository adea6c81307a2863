"""bench/on_gpu.sh, the one command of a GPU lease, and the wheels it carries there (bench/gpu_wheels.sh), prepared
and exercised on the CPU, so that a lease is not spent discovering a broken step or a missing package (issue 37).

The dry run (slow tier) builds a clean environment of CPython 3.12, the GPU image's Python (pyenv's, where the
machine has no python3.12 on its PATH; this machine's own Python where none is found, with wheels for it), holding
only the image's packages that regbench uses, from the registry at constraints.txt's versions, with Numba standing in
for the frameworks, then runs ``bench/on_gpu.sh --dry-run`` there: the carried wheels installed as on the GPU, and
every step on the CPU trainers at tiny sizes. docs/gpu.md says what it cannot stand in for.
"""

from __future__ import annotations

import glob
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.requirements import Requirement

from bench import gpu_check

ROOT = Path(__file__).resolve().parents[1]
IMAGE_PYTHON = "3.12"
#: The steps of bench/on_gpu.sh, in order; the frameworks' runs skipped where the framework is not installed.
STEPS = ["wheels", "imports", "list", "tests", "run-numpy", "run-numba", "run-jax", "run-torch", "run-jax-eager",
         "run-torch-compiled", "report"]  # fmt: skip
#: The runs of the frameworks that the dry run's environment lacks: skipped, and said so.
NOT_HERE = ("run-jax", "run-torch", "run-jax-eager", "run-torch-compiled")
#: regbench's extras that the dry run's environment stands in for (torch, jax and cupy cannot be had here for 3.12
#: without gigabytes of downloads: their steps are skipped, and said so).
STAND_IN_EXTRAS = ("test", "numba")


def image_packages() -> dict[str, str | None]:
    """bench/gpu_image.txt: the GPU image's packages, by name, with the version where it is known."""
    lines = (ROOT / "bench" / "gpu_image.txt").read_text().splitlines()
    pairs = (line.partition("==")[::2] for line in lines if line and not line.startswith("#"))
    return {name: version or None for name, version in pairs}


def carried() -> list[str]:
    """The packages bench/gpu_wheels.sh downloads (its CARRIED list)."""
    script = (ROOT / "bench" / "gpu_wheels.sh").read_text()
    return re.search(r"^CARRIED=\(([^)]*)\)", script, re.MULTILINE).group(1).split()


def _requirements(distribution: str, extras: tuple[str, ...] = ()) -> list[Requirement]:
    """Those of an installed distribution's requirements that apply on the GPU machine (Linux, CPython 3.12)."""
    found = []
    for text in importlib.metadata.requires(distribution) or []:
        requirement = Requirement(text)
        marker = requirement.marker
        applies = [{"extra": extra, "python_version": IMAGE_PYTHON, "sys_platform": "linux"} for extra in ("", *extras)]
        if marker is None or any(marker.evaluate(env) for env in applies):
            found.append(requirement)
    return found


def _name(requirement: Requirement) -> str:
    return re.sub(r"[-_.]+", "-", requirement.name).lower()


def test_the_carried_wheels_are_what_the_image_lacks():
    """regbench's requirements (every extra the GPU machine uses) that the image lacks, with theirs, and any package a
    carried one asks a version of that nobody has read on the image: exactly what bench/gpu_wheels.sh carries."""
    image = image_packages()
    extras = ("torch", "jax", "numba", "test", "cuda", "all")
    need, todo = set(), [(requirement, False) for requirement in _requirements("regbench", extras)]
    while todo:
        requirement, asked_by_carried = todo.pop()
        name = _name(requirement)
        if name == "regbench" or name in need:  # regbench[all] names its other extras
            continue
        unread = name in image and image[name] is None and bool(requirement.specifier)
        if name not in image or (asked_by_carried and unread):
            need.add(name)
            todo.extend((needed, True) for needed in _requirements(name))
    assert sorted(carried()) == sorted(need)


def test_every_carried_package_is_pinned():
    pinned = {line.split("==")[0] for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    assert set(carried()) <= pinned


def test_a_wrong_argument_is_one_line_and_exit_2(tmp_path):
    for command in (["bench/on_gpu.sh", "--dry"], [sys.executable, "-m", "bench.gpu_check", "--gpu"]):
        env = {**os.environ, "OUT": str(tmp_path)}
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
        assert out.returncode == 2
        assert len(out.stderr.strip().splitlines()) == 1
        assert "usage: " in out.stderr


def test_the_import_check_names_what_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pydantic", None)  # an import of it fails, as where it is not installed
    monkeypatch.setattr(gpu_check, "FRAMEWORKS", {})  # importing torch and jax here would cost seconds
    assert gpu_check.main(["--dry-run"]) == 1
    captured = capsys.readouterr()
    assert "pydantic: cannot be imported (ModuleNotFoundError: import of pydantic halted" in captured.out
    assert captured.err.strip() == "gpu_check: missing: pydantic"
    assert "precision policy: {" in captured.out


# --- The dry run ----------------------------------------------------------------------------------------------------


def python_312() -> str | None:
    """A CPython 3.12: REGBENCH_PYTHON312, python3.12 on the PATH, or pyenv's; None where none runs."""
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    pyenvs = sorted(glob.glob(f"{pyenv}/versions/{IMAGE_PYTHON}.*/bin/python{IMAGE_PYTHON}"), reverse=True)
    candidates = [os.environ.get("REGBENCH_PYTHON312"), shutil.which("python3.12"), *pyenvs]
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 12)":
            return candidate
    return None


def stand_ins() -> list[str]:
    """What the dry run's environment installs from the registry: regbench's requirements that the image has (the
    stand-in extras' too), and setuptools; never a carried package."""
    names = {_name(r) for r in _requirements("regbench", STAND_IN_EXTRAS)} & set(image_packages())
    return sorted(names - {"numba-cuda"} | {"setuptools"})  # numba-cuda's CUDA toolkit: no use without a GPU


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """bench/on_gpu.sh --dry-run in a clean environment: its exit status, $OUT, output, seconds (the environment
    made, the wheels downloaded, the script run) and the environment's Python."""
    python = python_312() or sys.executable
    version = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
    work = tmp_path_factory.mktemp("dry-run")
    began = time.monotonic()
    subprocess.run([python, "-m", "venv", str(work / "venv")], check=True, timeout=120)
    venv_python = str(work / "venv" / "bin" / "python")
    install = [venv_python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c", "constraints.txt"]
    subprocess.run([*install, *stand_ins()], cwd=ROOT, check=True, timeout=600, capture_output=True)
    wheels = work / "wheels"
    for _ in range(2):  # the second time finds every wheel there and downloads nothing
        got = subprocess.run(["bench/gpu_wheels.sh", "--python-version", version, str(wheels)], cwd=ROOT, check=True,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert got.stdout.count("already there") == len(carried()), got.stdout
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(work)), "LANG": "C.UTF-8",
           "OUT": str(work / "out"), "PYTHON": venv_python, "GPU_WHEELS": str(wheels)}  # fmt: skip
    run = subprocess.run(["bench/on_gpu.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900)  # fmt: skip
    return SimpleNamespace(status=run.returncode, out=work / "out", output=run.stdout + run.stderr,
                           seconds=time.monotonic() - began, python=venv_python)  # fmt: skip


def _steps(out: Path) -> dict[str, str]:
    return {line.split()[0]: line for line in (out / "steps.txt").read_text().splitlines()}


@pytest.mark.slow
def test_the_dry_run_passes_every_step(dry_run):
    steps = _steps(dry_run.out)
    assert list(steps) == STEPS, dry_run.output
    for name, line in steps.items():
        if name in NOT_HERE:
            assert re.match(rf"{name} +skipped .*(jax|torch) is not installed", line), line
        else:
            assert re.match(rf"{name} +ok ", line), dry_run.output
    assert dry_run.status == 0, dry_run.output
    assert dry_run.seconds < 300, f"the dry run took {dry_run.seconds:.0f} s"  # ~2 min quiet: a bound on a hang


def _names(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


@pytest.mark.slow
def test_the_dry_run_packs_every_log_its_runs_and_the_report(dry_run):
    out = dry_run.out
    assert sorted(p.name for p in out.iterdir()) == ["logs.tar.gz", "report.md", "report.tar.gz", "runs.tar.gz",
                                                     "steps.txt"]  # fmt: skip
    packed = {archive: _names(out / f"{archive}.tar.gz") for archive in ("logs", "runs", "report")}
    with tarfile.open(out / "logs.tar.gz") as tar:
        imports = tar.extractfile("logs/imports.log").read().decode()
    assert {f"logs/{name}.log" for name in STEPS if name not in NOT_HERE} <= set(packed["logs"])
    runs = sorted(re.sub(r"^storage/[^/]+/", "", n) for n in packed["runs"] if n.endswith(".json"))
    assert runs == ["0001_run-numpy.json", "0002_run-numba.json"], packed["runs"]
    assert not any(n.startswith("storage/.cache") for n in packed["runs"])  # the compile caches stay behind
    assert "report/report.html" in packed["report"]
    # pydantic came from the carried wheels, installed as on the GPU machine, not from the environment.
    assert re.search(r"^pydantic 2\.\S+ from \S+/site/pydantic/__init__\.py$", imports, re.MULTILINE), imports
    report = (out / "report.md").read_text()
    for trainer in ("numpy-manual-tutorial-cpu", "numpy-manual-fused-cpu", "numba-native-loop-cpu"):
        assert f"| {trainer} " in report
    assert "## Scaling" in report


@pytest.mark.slow
def test_the_dry_run_environment_is_clean(dry_run):
    """Nothing that is carried, nor a framework that the dry run skips, was installed from the registry."""
    listed = subprocess.run([dry_run.python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                            check=True).stdout  # fmt: skip
    installed = {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in listed.splitlines()}
    assert not installed & {"pydantic", "pydantic-core", "annotated-types", "typing-inspection", "torch", "jax"}
    assert {"numpy", "pandas", "pytest-benchmark", "numba", "setuptools"} <= installed

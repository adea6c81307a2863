"""The plugin's declaration: its specs, its entry point, and what listing them imports."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import regbench_autograd
from regbench_autograd import TRAINERS, trainer

import backends

PACKAGE = Path(__file__).resolve().parents[1]
GROUP = "regbench.trainers"
FRAMEWORKS = ("autograd", "torch", "jax", "numba", "cupy")


def run_python(code: str) -> str:
    """``code`` in a fresh interpreter that finds this package and the regbench it is tested with."""
    regbench = Path(backends.__file__).resolve().parents[1]
    path = [str(PACKAGE / "src"), str(regbench), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_specs():
    assert [s.id for s in TRAINERS] == ["autograd-grad-tutorial-cpu", "autograd-grad-fused-cpu"]
    for spec in TRAINERS:
        assert spec.module == "regbench_autograd.trainer"
        assert spec.problems == ("quadratic", "linear") == tuple(trainer.PREPARE)  # read from its table
        assert spec.written_once  # every other family from its module's loss
        assert spec.roles == ()  # roles are the built-in trainers'
        assert not spec.compiles
        assert not spec.distributed
        assert spec.twin == ""
        assert importlib.util.find_spec(spec.backend) is not None  # backend: the framework's import name


def test_variants_are_the_specs():
    declared: dict[str, list[str]] = {}
    for spec in TRAINERS:
        declared.setdefault(spec.device, []).append(spec.variant)
    assert {device: tuple(variants) for device, variants in declared.items()} == trainer.VARIANTS


def test_entry_point_names_the_specs():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    assert not any(d.split()[0].startswith("regbench") for d in project["dependencies"])  # not on PyPI
    target = project["entry-points"][GROUP]["autograd"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is TRAINERS


def test_installed_entry_point_loads_the_specs():
    (entry_point,) = importlib.metadata.entry_points(group=GROUP, name="autograd") or (None,)
    if entry_point is None:
        pytest.skip("regbench-autograd is not installed (pip install ./examples/regbench-autograd)")
    assert entry_point.value == "regbench_autograd:TRAINERS"
    assert entry_point.load() is regbench_autograd.TRAINERS


def test_listing_imports_no_framework():
    loaded = run_python(
        "import sys, regbench_autograd\n"
        "assert len(regbench_autograd.TRAINERS) == 2\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}))"
    )
    assert loaded == "[]"


def test_unavailable():
    assert trainer.unavailable("tutorial", "cpu") == ""
    assert trainer.unavailable("fused", "cpu") == ""
    assert trainer.unavailable("jit", "cpu") == "no autograd variant 'jit' on 'cpu'"
    assert trainer.unavailable("fused", "cuda") == "no autograd variant 'fused' on 'cuda'"
    with pytest.raises(ValueError, match="no autograd variant 'scan' on 'cpu'"):
        trainer.prepare("scan", "cpu", backends.seed_problem(), backends.TrainConfig())


def test_without_autograd_the_module_says_why():
    out = run_python(
        "import sys\n"
        "sys.modules['autograd'] = None  # as if it were not installed\n"
        "import backends\n"
        "from regbench_autograd import trainer\n"
        "print(trainer.unavailable('tutorial', 'cpu'))\n"
        "try:\n"
        "    trainer.prepare('fused', 'cpu', backends.seed_problem(), backends.TrainConfig())\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
    )
    reason, raised = out.splitlines()
    assert reason.startswith("autograd is not installed (pip install 'autograd>=1.9')")
    assert raised == reason

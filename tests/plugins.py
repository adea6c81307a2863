"""Fake installed distributions for the plugin tests: a ``*.dist-info`` with entry points, and its modules.

``importlib.metadata`` finds a distribution by its ``NAME-VERSION.dist-info`` folder on ``sys.path``, as pip
leaves it; so a folder written here and put on ``sys.path`` is, to regbench's discovery, an installed plugin.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

import problems
from backends import _registry, discovery


def write_distribution(root: Path, name: str, entry_points: dict[str, dict[str, str]],
                       modules: dict[str, str], version: str = "1.0") -> None:  # fmt: skip
    """Write distribution ``name`` (its entry points by group, its modules by relative path) under ``root``."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups = [f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for group, eps in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(groups))
    for path, source in modules.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(source))


def forget_plugins() -> None:
    """Make the registries find their trainers and problems again, and probe them afresh."""
    discovery.catalogue.cache_clear()
    _registry._availability.cache_clear()
    problems.forget()
    importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on ``sys.path`` to install fake distributions into; the registry forgets them afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    forget_plugins()
    yield root
    monkeypatch.undo()
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", None) and str(root) in sys.modules[name].__file__:
            del sys.modules[name]
    forget_plugins()


#: A working toy backend: NumPy's gradient descent, as the reference computes it (backends.metrics).
TOY_BACKEND = textwrap.dedent("""
    import numpy as np
    from backends import HostResult

    VARIANTS = {"cpu": ("loop",)}

    def unavailable(variant, device):
        return "" if (device, variant) == ("cpu", "loop") else f"no {variant} on {device}"

    class _Fit(HostResult):
        def __init__(self, problem, config):
            self.x2 = (problem.x[:, 0] ** 2).astype(config.dtype)
            self.y = problem.y[:, 0].astype(config.dtype)
            self.names = tuple(problem.params0)  # the seed's w and b: HostResult names run()'s values by them
            self.w0, self.b0 = problem.params0.values()
            self.config = config

        def run(self):
            dtype, lr = self.x2.dtype.type, self.config.lr
            w, b = dtype(self.w0), dtype(self.b0)
            losses = np.empty(self.config.epochs)
            for i in range(self.config.epochs):
                r = w * self.x2 + b - self.y
                losses[i] = 0.5 * float(r @ r)
                w, b = w - dtype(lr) * (r @ self.x2), b - dtype(lr) * r.sum()
            r = w * self.x2 + b - self.y
            return float(w), float(b), losses, 0.5 * float(r @ r)

    def prepare(variant, device, problem, config):
        return _Fit(problem, config)
""")

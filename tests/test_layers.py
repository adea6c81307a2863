"""The floors of the code, held: imports only downward, and reports made from saved records alone.

records ← problems ← backends ← bench, records ← reports, and regbench (the command line) over them all. A test reads
every import statement of the source; another makes a report, a compare, a history and the targets in a
process where importing the trainer registry, any backend module, bench or a framework raises.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("records", "problems", "backends", "bench", "reports", "regbench")
FRAMEWORKS = ("torch", "jax", "jaxlib", "numba", "cupy")
#: What each floor may import of the project's packages.
ALLOWED = {
    "records": {"records"},
    "problems": {"records", "problems"},
    "backends": {"records", "problems", "backends"},
    "bench": {"records", "problems", "backends", "bench"},
    "reports": {"records", "reports"},
    "regbench": set(PACKAGES),
}


def imported(path: Path) -> set[str]:
    """The top-level names of every module a source file imports (at any depth: lazy imports count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_only_go_down(package):
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).glob("*.py"))
        for name in imported(path)
        if name in PACKAGES and name not in ALLOWED[package]
    }
    assert not wrong


def private_backends(path: Path) -> set[str]:
    """Every private module of backends (``backends._x``) a source file uses: imported at any depth (``import
    backends._x``, ``from backends._x import ...``, ``from backends import _x``) or read as ``backends._x``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            if node.module == "backends":
                names |= {f"backends.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "backends":
            names.add(f"backends.{node.attr}")
    return {name for name in names if name.startswith("backends._") and not name.startswith("backends.__")}


@pytest.mark.parametrize("package", ["records", "problems", "bench", "reports", "regbench"])
def test_other_packages_use_only_backends_public_names(package):
    """Outside backends, its public face (``backends/__init__.py``) only: its modules named ``_x`` are its own."""
    wrong = {
        f"{path.relative_to(ROOT)} uses {name}"
        for path in sorted((ROOT / package).rglob("*.py"))  # regbench/conformance too
        for name in private_backends(path)
    }
    assert not wrong


@pytest.mark.parametrize("package", ["records", "problems", "reports"])
def test_records_and_reports_import_no_framework(package):
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).glob("*.py"))
        for name in imported(path)
        if name in FRAMEWORKS
    }
    assert not wrong


#: A process in which the registry, every backend module, bench and the frameworks cannot be imported.
BLOCKED = """
import sys
BLOCKED = ("backends", "bench", "torch", "jax", "jaxlib", "numba", "cupy")

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} must not be imported by reports")
        return None

sys.meta_path.insert(0, Blocker())
from regbench.cli import main
status = main(sys.argv[1:])
assert not any(name.split(".")[0] in BLOCKED for name in sys.modules), sorted(sys.modules)
raise SystemExit(status)
"""


def blocked(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin",
                                            "HOME": str(cwd)})  # fmt: skip


def unknown_trainer_run(tmp_path: Path) -> Path:
    """The committed current-schema run, with one trainer renamed to an id and roles no registry knows."""
    (source,) = (ROOT / "tests" / "data" / "v4").glob("*/*.json")
    data = json.loads(source.read_text())
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        if info.get("trainer") == "numba-native-simd-cpu":
            info.update(trainer="acme-magic-fast-cpu", backend="acme", method="magic", variant="fast",
                        roles=["CPU limit"])  # fmt: skip
            bench["name"] = bench["name"].replace("numba-native-simd-cpu", "acme-magic-fast-cpu")
    path = tmp_path / "storage" / source.parent.name / "0001_plugin.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.slow  # six fresh processes, each a whole command over saved runs
def test_reports_are_made_from_saved_records_alone(tmp_path):
    run = unknown_trainer_run(tmp_path)
    old = sorted((ROOT / "tests" / "data" / "storage").glob("*/*.json"))  # schema 0: upgraded, not re-measured
    for args, statuses in (
        (["report", run, *old, "--out", tmp_path / "out"], {0}),
        (["compare", run, run], {0}),
        (["compare", *old], {0, 1}),
        (["history", tmp_path / "storage"], {0}),
        (["targets", run], {0, 1}),  # 1 where a target this small run measured is unmet (the rest: not measured)
        (["targets", old[-1]], {0, 1}),
    ):
        proc = blocked(*args, cwd=tmp_path)
        assert proc.returncode in statuses, (args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    md = (tmp_path / "out" / "report.md").read_text()
    # The renamed trainer is shown with the role its record saved: "ok (CPU limit)".
    rows = [line for line in md.splitlines() if line.startswith("|") and "acme-magic-fast-cpu" in line
            and "float64" in line]  # fmt: skip
    assert any("ok (CPU limit)" in row for row in rows), rows  # its speed table's status


def _modules_imported(path: Path) -> set[str]:
    """The full names of every module a source file imports (at any depth), ``from a import b`` as ``a`` and
    ``a.b``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def test_the_records_modules_import_one_another_without_a_circle():
    """records.model reads older files through records.upgrade; both take the schema's names from
    records.schema, and the upgrade imports nothing of the model (no circle, lazy or not)."""
    modules = {f"records.{p.stem}": p for p in (ROOT / "records").glob("*.py") if p.stem != "__init__"}
    graph = {name: {m for m in _modules_imported(path) if m in modules and m != name} for name, path in modules.items()}
    assert "records.upgrade" in graph["records.model"]
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: tuple[str, ...]) -> None:
        seen[name] = 1
        for dep in graph[name]:
            assert seen.get(dep) != 1, f"import circle: {' -> '.join((*path, name, dep))}"
            if dep not in seen:
                visit(dep, (*path, name))
        seen[name] = 2

    for name in graph:
        if name not in seen:
            visit(name, ())

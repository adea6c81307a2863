"""Saved runs of older schemas, brought up to the current one: the only code that knows the old formats.

Rules: ``upgrade(data)`` takes a parsed file and returns it in the current
schema (records.model), leaving a current file as it is and never modifying
its argument. Schema 0 (regbench before records described themselves; no
``schema_version``) saved no roles, kinds or problems: they are restored from
what regbench's registry said when schema 0 was written (``V0_TRAINERS``,
frozen here: today's registry may differ), from the test's name, and from the
problem's label. Schema 0 ran one model, ``y = w·x² + b``, on the tutorial's
recipe; its tutorial data are remade here by that recipe, for the fitted-curve chart.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from records.model import FLOOR, SCHEMA_VERSION
from records.roles import BASELINE, CPU_LIMIT, GPU_LIMIT, NATIVE_LOOP, REFERENCE

#: The model every schema-0 run fitted, and the tutorial's recipe (bench and backends: ``seed_problem``).
V0_MODEL, V0_NOISE, TUTORIAL_N, TUTORIAL_SEED = "quadratic", 0.2, 100, 100

# id -> (roles, compiles, distributed, twin variant): the registry at schema 0 (backends/_registry.py, 2026-11-25).
_C, _D = "compiles", "distributed"
V0_TRAINERS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "numpy-manual-tutorial-cpu": ((REFERENCE, BASELINE), (), ""),
    "numpy-manual-fused-cpu": ((), (), ""),
    "numpy-manual-tutorial-cuda": ((BASELINE,), (), ""),
    "numpy-manual-fused-cuda": ((), (), ""),
    "torch-autograd-eager-cpu": ((BASELINE,), (), ""),
    "torch-autograd-compiled-cpu": ((), (_C,), ""),
    "torch-autograd-eager-cuda": ((BASELINE,), (), ""),
    "torch-autograd-compiled-cuda": ((), (_C,), ""),
    "torch-autograd-cudagraph-cuda": ((), (_C,), ""),
    "jax-grad-eager-cpu": ((BASELINE,), (), ""),
    "jax-grad-jit-cpu": ((), (_C,), ""),
    "jax-grad-scan-cpu": ((), (_C,), ""),
    "jax-grad-eager-gpu": ((BASELINE,), (), ""),
    "jax-grad-jit-gpu": ((), (_C,), ""),
    "jax-grad-scan-gpu": ((), (_C,), ""),
    "numba-native-loop-cpu": ((NATIVE_LOOP,), (_C,), ""),
    "numba-native-simd-cpu": ((CPU_LIMIT,), (_C,), ""),
    "numba-native-kernel-cuda": ((GPU_LIMIT,), (_C,), ""),
    "torch-autograd-dp-cpu": ((), (_D,), "eager"),
    "torch-autograd-dp-cuda": ((), (_D,), "eager"),
    "jax-grad-dp-cpu": ((), (_C, _D), "scan"),
    "jax-grad-dp-gpu": ((), (_C, _D), "scan"),
}


def schema_of(data: dict) -> int:
    """The schema a parsed file was written in (0 before files said)."""
    facts = data.get("regbench")
    return facts.get("schema_version", 0) if isinstance(facts, dict) else 0


def upgrade(data: Any) -> Any:
    """``data`` in the current schema; anything that is not a schema-0 run is returned as it is, for validation."""
    if not isinstance(data, dict) or schema_of(data) == SCHEMA_VERSION or not isinstance(data.get("benchmarks"), list):
        return data
    data = copy.copy(data)
    data["benchmarks"] = [_benchmark_v0(b) for b in data["benchmarks"]]
    data["regbench"] = _facts_v0(data)
    return data


def tutorial_data() -> tuple[list[float], list[float]]:
    """The tutorial's 100 points, by its recipe: ``x = linspace(-1, 1, 100)``, ``np.random.seed(100)``."""
    rng = np.random.RandomState(TUTORIAL_SEED)
    x = np.linspace(-1, 1, TUTORIAL_N).reshape(TUTORIAL_N, 1)
    y = 3 * np.power(x, 2) + 2 + V0_NOISE * rng.rand(x.size).reshape(TUTORIAL_N, 1)
    return x[:, 0].tolist(), y[:, 0].tolist()


def _problem_v0(label: Any, n: Any) -> dict:
    """Schema 0 labelled the tutorial's problem "tutorial" and the others "n=N,seed=S" (backends.make_problem)."""
    params: dict[str, Any] = {"n": n, "seed": TUTORIAL_SEED, "noise": V0_NOISE}
    if isinstance(label, str) and label.startswith("n="):
        fields = dict(part.split("=", 1) for part in label.split(",") if "=" in part)
        if fields.get("seed", "").isdigit():
            params["seed"] = int(fields["seed"])
    return {"name": V0_MODEL, "params": params}


def _benchmark_v0(bench: Any) -> Any:
    if not isinstance(bench, dict) or not isinstance(bench.get("extra_info"), dict):
        return bench
    info = dict(bench["extra_info"])
    if "schema_version" in info:
        return bench
    name = bench.get("name")
    kind = name.split("[", 1)[0].removeprefix("test_") if isinstance(name, str) else ""
    info.update(schema_version=SCHEMA_VERSION, kind=kind)
    if kind != FLOOR:
        trainer = info.get("trainer")
        roles, flags, twin = V0_TRAINERS.get(trainer, ((), (), ""))
        parts = trainer.split("-") if isinstance(trainer, str) else []
        twin_id = "-".join([parts[0], parts[1], twin, parts[3]]) if twin and len(parts) == 4 else None
        info.update(problem=_problem_v0(info.get("problem"), info.get("n")), method=parts[1] if len(parts) == 4 else "",
                    roles=list(roles), compiles=_C in flags, distributed=_D in flags, twin=twin_id)  # fmt: skip
    return {**bench, "extra_info": info}


def _facts_v0(data: dict) -> dict:
    """Schema 0 kept the unavailable trainers in the machine record, and no data."""
    machine = data.get("machine_info")
    env = machine.get("regbench") if isinstance(machine, dict) else None
    unavailable = env.get("unavailable") if isinstance(env, dict) else None
    outcomes = [{"test": f"{trainer} (not run)", "outcome": "skipped", "trainer": trainer, "reason": reason}
                for trainer, reason in (unavailable or {}).items()]  # fmt: skip
    tutorial = any(isinstance(b, dict) and isinstance(b.get("extra_info"), dict)
                   and b["extra_info"].get("problem") == {"name": V0_MODEL, "params": {
                       "n": TUTORIAL_N, "seed": TUTORIAL_SEED, "noise": V0_NOISE}}
                   for b in data["benchmarks"])  # fmt: skip
    problems = []
    if tutorial:
        x, y = tutorial_data()
        params = {"n": TUTORIAL_N, "seed": TUTORIAL_SEED, "noise": V0_NOISE}
        problems.append({"problem": {"name": V0_MODEL, "params": params}, "x": x, "y": y})
    return {"schema_version": SCHEMA_VERSION, "outcomes": outcomes, "problems": problems}

"""Saved runs of older schemas, brought up to the current one: the only code that knows the old formats.

Rules: ``upgrade(data)`` takes a parsed file and returns it in the current
schema (records.model), leaving a current file as it is and never modifying
its argument; each schema is brought to the next (0 → 1 → 2 → 3 → 4), and a file of a
schema newer than this regbench's is refused (``NewerSchema``, one line). It
imports records.schema and records.roles only. Schema 1 kept a fit's
parameters as ``w``, ``b`` and, for a model of d features, ``theta`` (its ``w``
then ‖θ‖₂), with ``w_opt``, ``b_opt``, ``ref_dw`` and ``ref_db``; schema 2
keeps every parameter by name (``params``). Schema 2 named the other problems' fits' kind "problem" (the seed's
"fit"), and said a fit's size's role (``size``) only from late in its life; schema 3's kind is the study alone
(those fits are "fit") and every fit of a built-in problem says its size's role, restored from what the problem
modules declared when schema 2 was written (``V2_SIZES``, frozen here). Schema 3 timed the seed's problem beyond
the tutorial's size by a study of its own, kind "sweep"; schema 4 times every problem's sizes by the fit study
(kind "fit"), a former sweep's size being "full" at the seed's FULL_SIZES and "sweep" at any other (its 100 points
of seed 0 are not the tutorial's). Schema 0 (regbench before records
described themselves; no ``schema_version``) saved no roles, kinds or problems: they are restored from
what regbench's registry said when schema 0 was written (``V0_TRAINERS``,
frozen here: today's registry may differ), from the test's name, and from the
problem's label. Schema 0 ran one model, ``y = w·x² + b``, on the tutorial's
recipe; its tutorial data are remade here by that recipe, and schemas 0 and 1 get the fitted curve drawn over
the data they kept as ``w·x² + b`` (what their reports drew; schema 2 keeps each fit's ``curve``).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from records.roles import BASELINE, CPU_LIMIT, GPU_LIMIT, NATIVE_LOOP, REFERENCE
from records.schema import FLOOR, SCHEMA_VERSION, UPGRADE_HINT

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


class NewerSchema(ValueError):
    """A file written by a newer regbench, in a schema this one does not know."""


def schema_of(data: dict) -> Any:
    """The schema a parsed file was written in (0 before files said; whatever the file says otherwise)."""
    facts = data.get("regbench")
    return facts.get("schema_version", 0) if isinstance(facts, dict) else 0


def upgrade(data: Any) -> Any:
    """``data`` in the current schema; anything that is not a run of an older schema is returned as it is, for
    validation. NewerSchema for a file of a newer schema."""
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        return data
    schema = schema_of(data)
    if not isinstance(schema, int) or isinstance(schema, bool):
        return data  # validation names the field
    if schema > SCHEMA_VERSION:
        raise NewerSchema(f"written by a newer regbench (record schema {schema}; this one reads schemas 0 to "
                          f"{SCHEMA_VERSION}): {UPGRADE_HINT}")  # fmt: skip
    if schema == SCHEMA_VERSION:
        return data
    data = copy.copy(data)
    if schema == 0:
        data["benchmarks"] = [_benchmark_v0(b) for b in data["benchmarks"]]
        data["regbench"] = _facts_v0(data)
    if schema <= 1:
        data["benchmarks"] = _curves_v1([_benchmark_v1(b) for b in data["benchmarks"]], data["regbench"])
    data["benchmarks"] = [_benchmark_v3(_benchmark_v2(b)) for b in data["benchmarks"]]
    data["regbench"] = {**data["regbench"], "schema_version": 4}
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
    info.update(schema_version=1, kind=kind)
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
    return {"schema_version": 1, "outcomes": outcomes, "problems": problems}


#: Schema 1's parameters: θ (a model of d features, saved as ``theta`` with ‖θ‖₂ as ``w``), else ``w``; and ``b``.
V1_KEYS = ("w", "b", "theta", "w_opt", "b_opt", "ref_dw", "ref_db")


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _next_schema(bench: Any, version: int) -> dict | None:
    """A copy of a schema-``version`` benchmark's record, marked one schema later; None where it is not one."""
    if not isinstance(bench, dict) or not isinstance(bench.get("extra_info"), dict):
        return None
    if bench["extra_info"].get("schema_version") != version:
        return None
    return {**bench["extra_info"], "schema_version": version + 1}


def _benchmark_v1(bench: Any) -> Any:
    """A schema-1 benchmark in schema 2: its fit's parameters by name."""
    info = _next_schema(bench, 1)
    if info is None:
        return bench  # validation names what is wrong
    if info.get("kind") != FLOOR:
        info = _params_v1(info)
    return {**bench, "extra_info": info}


def _params_v1(info: dict) -> dict:
    """Schema 1's w, b (and θ) with their optimum and reference differences, as schema 2's ``params``."""
    old = {key: info.pop(key, None) for key in V1_KEYS}
    w, b, theta = old["w"], old["b"], old["theta"]
    if not (_real(w) and _real(b) and (theta is None or isinstance(theta, list))):
        info.update({k: v for k, v in old.items() if v is not None})  # not upgradable: validation names the field
        return info
    params: dict[str, dict] = {}
    if theta is not None:
        params["theta"] = {"shape": [len(theta)], "norm": w, "values": theta, "ref_diff": old["ref_dw"]}
    else:
        params["w"] = _scalar_v1(w, old["w_opt"], old["ref_dw"])
    params["b"] = _scalar_v1(b, old["b_opt"], old["ref_db"])
    info["params"] = {name: {k: v for k, v in param.items() if v is not None} for name, param in params.items()}
    return info


def _curves_v1(benchmarks: list, facts: Any) -> list:
    """Schemas 0 and 1 drew one model's fitted curve, ``w·x² + b``, over the data they kept: each fit of a problem
    whose data the file holds gets that curve (schema 2's ``curve``), so that the report draws it as it did."""
    kept = facts.get("problems") if isinstance(facts, dict) else None
    data = [(p["problem"], np.asarray(p["x"], dtype=float)) for p in kept or []
            if isinstance(p, dict) and isinstance(p.get("x"), list)]  # fmt: skip
    out = []
    for bench in benchmarks:
        info = bench.get("extra_info") if isinstance(bench, dict) else None
        params = info.get("params") if isinstance(info, dict) else None
        x = next((x for problem, x in data if isinstance(info, dict) and info.get("problem") == problem), None)
        if x is None or not isinstance(params, dict) or set(params) != {"w", "b"}:
            out.append(bench)
            continue
        w, b = ((params[name].get("values") or [None])[0] if isinstance(params[name], dict) else None
                for name in ("w", "b"))  # fmt: skip
        curve = (w * x**2 + b).tolist() if _real(w) and _real(b) else None
        out.append({**bench, "extra_info": {**info, "curve": curve}})
    return out


#: Schema 2's kind of the fits of the problems other than the seed's (bench/test_problems.py then).
V2_PROBLEM_KIND = "problem"
#: The sizes the built-in problems declared when schema 2 was written (problems/*.py, 2026-12-03): name -> role ->
#: their parameters (n and the problem's own, each at its PARAMS's default where a size left it out; not the seed
#: or the noise). Any other size of theirs is "sweep"; a plugin's problem gets no role.
V2_SIZES: dict[str, dict[str, tuple[dict[str, int], ...]]] = {
    "quadratic": {"default": ({"n": 100},), "full": ({"n": 10**6},)},
    "linear": {"default": ({"n": 1000, "d": 16},), "full": ({"n": 10**5, "d": 64},)},
    "mlp": {"default": ({"n": 1024, "d": 32, "h": 64},), "full": ({"n": 4096, "d": 64, "h": 256},)},
    "logistic": {"default": ({"n": 4096, "d": 16},), "full": ({"n": 10**5, "d": 64},)},
}


def _size_v2(problem: Any) -> str | None:
    """The role of a schema-2 fit's size (V2_SIZES); None for a problem that is not a built-in one."""
    if not (isinstance(problem, dict) and problem.get("name") in V2_SIZES and isinstance(problem.get("params"), dict)):
        return None
    params = {key: value for key, value in problem["params"].items() if key not in ("seed", "noise")}
    roles = V2_SIZES[problem["name"]]
    return next((role for role, sizes in roles.items() if params in sizes), "sweep")


def _benchmark_v2(bench: Any) -> Any:
    """A schema-2 benchmark in schema 3: an other problem's fit of kind "fit", and every fit's size's role."""
    info = _next_schema(bench, 2)
    if info is None:
        return bench  # validation names what is wrong
    if info.get("kind") == V2_PROBLEM_KIND:
        info["kind"] = "fit"
    if info.get("kind") != FLOOR and info.get("size") is None and (size := _size_v2(info.get("problem"))):
        info["size"] = size
    return {**bench, "extra_info": info}


#: Schema 3's kind of the seed's fits beyond the tutorial's size (bench/test_sweep.py then).
V3_SWEEP_KIND = "sweep"


def _benchmark_v3(bench: Any) -> Any:
    """A schema-3 benchmark in schema 4: the seed's sweep's fits of kind "fit", their size "full" or "sweep"."""
    info = _next_schema(bench, 3)
    if info is None:
        return bench  # validation names what is wrong
    if info.get("kind") == V3_SWEEP_KIND:
        info["kind"] = "fit"
        info["size"] = "full" if info.get("size") == "full" else "sweep"
    return {**bench, "extra_info": info}


def _scalar_v1(value: float, optimum: Any, ref_diff: Any) -> dict:
    opt = optimum if _real(optimum) else None
    opt_rel = abs(value - opt) / abs(opt) if opt not in (None, 0) else None
    return {"shape": [], "norm": abs(value), "values": [value], "optimum": None if opt is None else [opt],
            "ref_diff": ref_diff, "opt_rel": opt_rel}  # fmt: skip

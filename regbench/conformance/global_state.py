"""A fit leaves every process-wide setting of every framework as it found it: checked in a fresh process.

``python -m regbench.conformance.global_state [--every-framework] ID [ID ...]`` loads each trainer (and with
it its framework), makes each framework's own first use (``initialise``), records the settings of every
framework imported by then (``--every-framework``: of every one installed), fits each trainer (each problem
its spec lists, both dtypes, and the seed's model past the size switches of the built-in trainers), records
them again and prints, as JSON, the trainers it fitted, the frameworks it read, those first imported during
the fits, and the settings that differ. What counts as process-wide: the environment (``XLA_FLAGS`` …),
every JAX config value, torch's thread counts, default dtype, matmul precision and its dynamo/inductor
config, Numba's thread count, NumPy's error and print state and its global random state, and Python's own:
the warnings filters, the working directory, the signal handlers, the recursion limit. Trainers may choose
per-computation options (compile options, their own threads); nothing else. The "before" is read before the
trainers' modules are imported (the frameworks regbench knows imported and initialised first), so that what a
plugin's module sets at import counts too. ``in_fresh_process`` runs it with the environment the caller had when
it started (``remember_environment``: the kit's, before any of its checks ran a trainer) and returns the report:
the kit's test (one trainer) and tests/test_global_state.py (every built-in trainer, every framework) use it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import warnings
from typing import Any

import numpy as np

import backends
import problems
from backends import spec_of
from bench.parent_watch import PARENT_ENV, guard
from regbench.conformance.checks import families, small_model
from regbench.partial import death

FRAMEWORKS = ("numpy", "jax", "torch", "numba")
#: The seed's model past the built-in trainers' size switches: JAX's blocks, Numba's threads, inductor's split sums.
LARGE_N = (1 << 17) + 3
#: The signals whose handlers are read: a library that takes one over changes how its user's process stops.
SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGALRM", "SIGUSR1", "SIGUSR2")
                if hasattr(signal, name))  # fmt: skip
#: The environment the kit's process had when it started (``remember_environment``); None: the current one.
_environment: dict[str, str] | None = None


def remember_environment() -> None:
    """Keep this process's environment as it is now, for ``in_fresh_process``: the kit calls it before any check
    runs a trainer, so that a variable a trainer sets in one check is not inherited as the next fresh process's
    "before"."""
    global _environment
    _environment = dict(os.environ)


def _plain(value: object) -> str:
    """A value's repr, sets in sorted order (a set's iteration order may differ between two reads of it)."""
    if isinstance(value, (set, frozenset)):
        return repr(sorted(map(repr, value)))
    return repr(value)


def settings(frameworks: tuple[str, ...] = FRAMEWORKS) -> dict[str, object]:
    """The process-wide settings of NumPy and of each of ``frameworks`` that is installed (imported here, first),
    and the environment, read last: an import may set a variable of its own."""
    name, keys, position, *gauss = np.random.get_state()  # noqa: NPY002 (the legacy global state is what is read)
    found: dict[str, object] = {
        "numpy.geterr": np.geterr(),
        "numpy.printoptions": {k: repr(v) for k, v in np.get_printoptions().items()},
        "numpy.random": f"{name} {hashlib.sha256(keys.tobytes()).hexdigest()[:16]} {position} {gauss}",
        "python": {
            "warnings.filters": repr(warnings.filters),
            "cwd": os.getcwd(),
            "recursionlimit": sys.getrecursionlimit(),
            **{f"signal.{signal.Signals(signum).name}": repr(signal.getsignal(signum)) for signum in SIGNALS},
        },
    }
    if "jax" in frameworks and importlib.util.find_spec("jax"):
        import jax

        found["jax.config"] = {name: _plain(value) for name, value in jax.config.values.items()}
    if "torch" in frameworks and importlib.util.find_spec("torch"):
        import torch
        import torch._dynamo.config
        import torch._inductor.config

        found.update({
            "torch.num_threads": torch.get_num_threads(),
            "torch.num_interop_threads": torch.get_num_interop_threads(),
            "torch.default_dtype": str(torch.get_default_dtype()),
            "torch.float32_matmul_precision": torch.get_float32_matmul_precision(),
            "torch.deterministic": torch.are_deterministic_algorithms_enabled(),
            "torch.grad_enabled": torch.is_grad_enabled(),
            "torch._dynamo.config": {k: _plain(v) for k, v in torch._dynamo.config.get_config_copy().items()},
            "torch._inductor.config": {k: _plain(v) for k, v in torch._inductor.config.get_config_copy().items()},
        })  # fmt: skip
    if "numba" in frameworks and importlib.util.find_spec("numba"):
        import numba

        found["numba.num_threads"] = numba.get_num_threads()
    found["environ"] = dict(os.environ)
    return found


def initialise(frameworks: tuple[str, ...] = FRAMEWORKS) -> None:
    """Each framework's own first use, outside regbench: what it sets then (jax's backend start-up puts
    TF_CPP_MIN_LOG_LEVEL in the environment, inductor's first compile TORCHINDUCTOR_CACHE_DIR and the recursion
    limit) is not a fit's doing."""
    if "jax" in frameworks and importlib.util.find_spec("jax"):
        import jax.numpy as jnp

        jnp.ones(2).sum().block_until_ready()
    if "torch" in frameworks and importlib.util.find_spec("torch"):
        import torch
        import torch._inductor.config

        # Compiled afresh, never answered by inductor's cache: a real compile lifts the recursion limit to 2000
        # (torch/_inductor/compile_fx.py), which is torch's doing, not a fit's.
        with torch._inductor.config.patch(force_disable_caches=True):
            torch.compile(lambda t: (t * t).sum())(torch.ones(2))


def fits(trainer_id: str) -> list[tuple[backends.Problem, backends.TrainConfig]]:
    """The fits of one trainer: each problem its spec lists, small, and the seed's model large; both dtypes."""
    spec = spec_of(trainer_id)
    found = []
    if "quadratic" in spec.problems:
        found += [backends.seed_problem(), backends.make_problem(LARGE_N, 1)]
    if "linear" in spec.problems:
        found.append(backends.make_linear_problem(200, 8, 4))
    found += [small_model(name, "float64")[0] for name in families(spec) if name not in ("quadratic", "linear")]
    return [(problem, backends.TrainConfig(epochs=3, lr=problems.get(problem.model).lr(problem.n, **problem.sizes),
                                           dtype=dtype)) for problem in found for dtype in backends.DTYPES]  # fmt: skip


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What differs between two ``settings()``: per key, ``[old, new]`` (a dict's keys compared one by one)."""
    changed = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            diff = {k: [old.get(k), new.get(k)] for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
            if diff:
                changed[key] = diff
        elif old != new:
            changed[key] = [old, new]
    return changed


def check(trainer_ids: list[str], every_framework: bool = False) -> dict[str, Any]:
    """Fit each trainer that can run here; the report ``main`` prints (run it in a fresh process).

    The settings read are those of the frameworks imported once the trainers are loaded and their frameworks
    initialised (``every_framework``: of every framework installed, imported first): a framework never imported
    has no setting to change. One first imported during the fits is listed as ``late``: its settings before them
    are unknown here (``in_fresh_process`` then checks again, reading every framework).
    """
    installed = tuple(f for f in FRAMEWORKS if importlib.util.find_spec(f))
    named = {name for trainer_id in trainer_ids for name in (spec_of(trainer_id).backend,
                                                             spec_of(trainer_id).import_name)}  # fmt: skip
    # The frameworks regbench knows, imported and first used before any trainer's module: what those set is
    # theirs, and what a trainer's module sets at import is read as a change.
    frameworks = installed if every_framework else tuple(f for f in installed if f in named)
    for framework in frameworks:
        importlib.import_module(framework)
    initialise(frameworks)
    read = installed if every_framework else tuple(f for f in installed if f in sys.modules)
    before = settings(read)
    trainers = []
    for trainer_id in trainer_ids:
        try:
            trainers.append(backends.get_trainer(trainer_id))
        except backends.TrainerUnavailable:
            continue
    for trainer in trainers:
        for problem, config in fits(trainer.id):
            trainer.fit(problem, config)
    after = settings(read)
    late = [f for f in installed if f in sys.modules and f not in read]
    return {"fitted": [t.id for t in trainers], "frameworks": list(read), "late": late,
            "changed": changes(before, after)}  # fmt: skip


def in_fresh_process(trainer_ids: list[str], every_framework: bool = False, timeout: float = 600) -> dict[str, Any]:
    """``check(trainer_ids)`` in a fresh Python process that imports what this one can (its sys.path); again with
    ``every_framework`` where a framework was first imported during the fits."""
    path = os.pathsep.join(p for p in [*sys.path, *os.environ.get("PYTHONPATH", "").split(os.pathsep)] if p)
    every = ["--every-framework"] if every_framework else []
    # The child dies with this process (parent_watch.guard).
    env = {**(os.environ if _environment is None else _environment), "PYTHONPATH": path,
           PARENT_ENV: str(os.getpid())}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", __name__, *every, *trainer_ids], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)  # fmt: skip
    assert proc.returncode == 0, f"the fresh process was {death(proc.returncode)}: {proc.stderr[-3000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if report["late"] and not every_framework:
        return in_fresh_process(trainer_ids, every_framework=True, timeout=timeout)
    return report


def main(argv: list[str]) -> None:
    guard()  # no orphan: it dies with the kit's process, even one SIGKILLed
    every_framework = "--every-framework" in argv
    ids = [arg for arg in argv if arg != "--every-framework"]
    unknown = [trainer_id for trainer_id in ids if spec_of(trainer_id) is None]
    if not ids or unknown:
        raise SystemExit(f"usage: python -m {__spec__.name} [--every-framework] ID [ID ...] (unknown: "
                         f"{', '.join(unknown) or 'none'}; known: {', '.join(backends.trainer_ids())})")  # fmt: skip
    print(json.dumps(check(ids, every_framework), default=repr))


if __name__ == "__main__":
    main(sys.argv[1:])

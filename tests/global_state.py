"""Fits every in-process CPU trainer and prints, as JSON, which process-wide settings differ after the fits.

Run by tests/test_global_state.py in a fresh process; the settings are read
after each framework's import (an import may set its own defaults) and before
any fit.
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np

import backends
from bench.params import in_process_ids

FRAMEWORKS = ("numpy", "jax", "torch", "numba")


def _plain(value: object) -> str:
    """A value's repr, sets in sorted order (a set's iteration order may differ between two reads of it)."""
    if isinstance(value, (set, frozenset)):
        return repr(sorted(map(repr, value)))
    return repr(value)


def settings() -> dict[str, object]:
    found: dict[str, object] = {
        "environ": dict(os.environ),
        "numpy.geterr": np.geterr(),
        "numpy.printoptions": {k: repr(v) for k, v in np.get_printoptions().items()},
    }
    if importlib.util.find_spec("jax"):
        import jax

        found["jax.config"] = {name: _plain(value) for name, value in jax.config.values.items()}
    if importlib.util.find_spec("torch"):
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
    if importlib.util.find_spec("numba"):
        import numba

        found["numba.num_threads"] = numba.get_num_threads()
    return found


def initialise() -> None:
    """Each framework's own first use, outside regbench: what it sets then (jax's backend start-up puts
    TF_CPP_MIN_LOG_LEVEL in the environment, inductor's first compile TORCHINDUCTOR_CACHE_DIR) is not a fit's doing."""
    if importlib.util.find_spec("jax"):
        import jax.numpy as jnp

        jnp.ones(2).sum().block_until_ready()
    if importlib.util.find_spec("torch"):
        import torch

        torch.compile(lambda t: (t * t).sum())(torch.ones(2))


def main() -> None:
    initialise()
    before = settings()
    fitted = []
    for trainer_id in in_process_ids():
        try:
            trainer = backends.get_trainer(trainer_id)
        except backends.TrainerUnavailable:
            continue
        # 100 points (the small-problem forms) and 2¹⁷+3 (JAX's blocks, Numba's threads, inductor's split sums).
        for problem in (backends.seed_problem(), backends.make_problem((1 << 17) + 3, 1)):
            for dtype in backends.DTYPES:
                trainer.fit(problem, backends.TrainConfig(epochs=3, lr=0.1 / problem.n, dtype=dtype))
        fitted.append(trainer_id)
    after = settings()
    changed = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            diff = {k: [old.get(k), new.get(k)] for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
            if diff:
                changed[key] = diff
        elif old != new:
            changed[key] = [old, new]
    frameworks = [f for f in FRAMEWORKS if importlib.util.find_spec(f)]
    print(json.dumps({"fitted": fitted, "frameworks": frameworks, "changed": changed}, default=repr))


if __name__ == "__main__":
    main()

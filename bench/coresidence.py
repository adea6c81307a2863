"""A fresh process's warm ``fit()`` times of one trainer, after other frameworks were imported, probed or run.

Run by regbench.coresidence, one process per condition: ``alone`` (only the
trainer's own framework), ``imported`` (every other framework imported
first), ``probed`` (``backends.available()`` first, as ``regbench list`` does)
or ``ran`` (one fit of each other framework's CPU trainers first). Prints the
times, in seconds, as JSON. Usage: ``python -m bench.coresidence TRAINER CONDITION ROUNDS``.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

import backends
from backends import spec_of, specs

CONDITIONS = ("alone", "imported", "probed", "ran")
OTHERS = ("torch", "jax", "numba")


def main(trainer_id: str, condition: str, rounds: int) -> list[float]:
    own = spec_of(trainer_id).backend
    problem, config = backends.seed_problem("float32"), backends.TrainConfig(dtype="float32")
    if condition == "imported":
        for name in OTHERS:
            if name != own:
                importlib.import_module(name)
    elif condition == "probed":
        backends.available()
    elif condition == "ran":
        for spec in specs():
            if spec.backend != own and spec.device == "cpu" and not spec.distributed:
                backends.get_trainer(spec.id).fit(problem, config)
    trainer = backends.get_trainer(trainer_id)
    trainer.fit(problem, config)  # compiles: not timed
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        trainer.fit(problem, config)
        times.append(time.perf_counter() - start)
    return times


if __name__ == "__main__":
    trainer_id, condition, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if condition not in CONDITIONS:
        sys.exit(f"condition must be one of {CONDITIONS}, got {condition!r}")
    print(json.dumps(main(trainer_id, condition, rounds)))

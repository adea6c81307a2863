"""Runs fits of ``numba-native-kernel-cuda`` in Numba's CUDA simulator; used by tests/test_gpu.py.

Reads a JSON list of cases on stdin and writes a JSON list of results on stdout.
A process of its own, because ``NUMBA_ENABLE_CUDASIM`` is read when
``numba.cuda`` is first imported. Each case may override the kernel module's
size constants, to send small problems down the large-problem path.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

# Imported after the simulator is switched on.
import backends
from backends import numba_cuda

TRAINER_ID = "numba-native-kernel-cuda"
SIZES = ("ONE_BLOCK_MAX_N", "ONE_BLOCK_THREADS", "BLOCK_THREADS", "MAX_BLOCKS")


def run(case: dict) -> dict:
    defaults = {name: getattr(numba_cuda, name) for name in SIZES}
    try:
        for name in SIZES:
            setattr(numba_cuda, name, case.get(name, defaults[name]))
        if "d" in case:  # problem linear
            problem = backends.make_linear_problem(case["n"], case["d"], case["seed"])
        else:
            problem = backends.make_problem(case["n"], case["seed"])
        config = backends.TrainConfig(epochs=case["epochs"], lr=case["lr"], dtype=case["dtype"])
        prepared = backends.get_trainer(TRAINER_ID).prepare(problem, config)
        results = [prepared.result(prepared.run()) for _ in range(case.get("runs", 1))]
    finally:
        for name, value in defaults.items():
            setattr(numba_cuda, name, value)
    if "d" in case:
        path = "linear"
    else:
        path = "one launch" if prepared.one_block_threads else f"{prepared.blocks} blocks an epoch"
    return {
        "path": path,
        "runs": [
            {
                "params": {name: value.tolist() for name, value in r.params.items()},
                "losses": r.losses.tolist(),
                "final_loss": r.final_loss,
                "diverged": r.diverged,
            }
            for r in results
        ],
    }


def main() -> None:
    availability = backends.available()[TRAINER_ID]
    if not availability.ok:
        json.dump({"unavailable": availability.reason}, sys.stdout)
        return
    with warnings.catch_warnings():
        # The simulator computes with NumPy scalars, which warn on overflow; a GPU does not.
        warnings.simplefilter("ignore", RuntimeWarning)
        json.dump([run(case) for case in json.load(sys.stdin)], sys.stdout)


if __name__ == "__main__":
    main()

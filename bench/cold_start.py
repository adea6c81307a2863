"""The first call of a trainer in a fresh process: ``python -m bench.cold_start TRAINER DTYPE EPOCHS LR``.

Rules: started by bench.harness.cold_start with every framework's on-disk
compile cache pointed at an empty folder; prints one JSON line. Only the first
``run()`` is timed (compilation or capture + one training on the tutorial's
problem), not the imports or ``prepare()``.
"""

from __future__ import annotations

import argparse
import json
import time

import backends
from bench.harness import set_jax_cpu_dispatch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.split("\n\n")[0])
    p.add_argument("trainer")
    p.add_argument("dtype")
    p.add_argument("epochs", type=int)
    p.add_argument("lr", type=float)
    p.add_argument("--workers", type=int, default=1, help="worker processes of a data-parallel trainer [1]")
    p.add_argument("--jax-async-dispatch", dest="jax_async", action="store_true")
    p.add_argument("--jax-inline-dispatch", dest="jax_async", action="store_false")
    args = p.parse_args(argv)
    set_jax_cpu_dispatch(asynchronous=args.jax_async)  # as in the benchmark process that started this one
    config = backends.TrainConfig(epochs=args.epochs, lr=args.lr, dtype=args.dtype, workers=args.workers)
    prepared = backends.get_trainer(args.trainer).prepare(backends.seed_problem(), config)
    start = time.perf_counter()
    prepared.run()
    first_call_s = time.perf_counter() - start
    if hasattr(prepared, "close"):  # a data-parallel fit's workers
        prepared.close()
    print(json.dumps({"trainer": args.trainer, "first_call_s": first_call_s}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

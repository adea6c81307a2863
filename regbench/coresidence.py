"""``python -m regbench.coresidence [TRAINER ...]``: does a figure move when other frameworks share its process?

Each trainer is timed in fresh processes (bench.coresidence) under four conditions, taken in turn so that a
drift of the machine falls on all alike: alone, after the other frameworks were imported, after
``backends.available()`` probed them (as ``regbench list`` does), and after they ran. Every condition is then
judged against ``alone`` by reports.stats (a test and a minimum effect), and printed. A measurement, not a
test: what it finds is reported in docs/measuring.md, and why ``regbench run`` gives each framework a process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.coresidence import CONDITIONS
from reports.stats import Method, Verdict, compare_samples

ROOT = Path(__file__).resolve().parents[1]
#: The trainers whose figures the headline ratios divide: the native loop, and the best JAX and torch forms.
DEFAULT = ("numba-native-loop-cpu", "jax-grad-scan-cpu", "torch-autograd-compiled-cpu")


def times(trainer_id: str, rounds: int, repeats: int) -> dict[str, list[float]]:
    """Each condition's ``rounds × repeats`` fit times, from ``repeats`` fresh processes a condition."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out: dict[str, list[float]] = {condition: [] for condition in CONDITIONS}
    for _ in range(repeats):
        for condition in CONDITIONS:
            cmd = [sys.executable, "-m", "bench.coresidence", trainer_id, condition, str(rounds)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
            if proc.returncode:
                raise RuntimeError(f"{trainer_id} ({condition}) failed: {proc.stderr.strip()[-2000:]}")
            out[condition] += json.loads(proc.stdout)
    return out


def verdicts(measured: dict[str, list[float]]) -> dict[str, Verdict]:
    """Every condition but ``alone``, judged against it."""
    alone = measured["alone"]
    return {c: compare_samples(alone, measured[c], Method()) for c in CONDITIONS if c != "alone"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regbench.coresidence", description=__doc__.split("\n\n")[0])
    parser.add_argument("trainers", nargs="*", default=DEFAULT, help=f"trainer ids (default: {' '.join(DEFAULT)})")
    parser.add_argument("--rounds", type=int, default=100, help="timed fits per process (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="processes per condition (default 3)")
    args = parser.parse_args(argv)
    for trainer_id in args.trainers:
        measured = times(trainer_id, args.rounds, args.repeats)
        print(f"{trainer_id}: alone {statistics.median(measured['alone']) * 1e6:.1f} µs")
        for condition, verdict in verdicts(measured).items():
            print(f"  {condition}: {verdict.ratio:.3f}× alone ({verdict.text})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

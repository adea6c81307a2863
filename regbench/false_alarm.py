"""Does ``regbench compare`` cry wolf, and find a real slow-down? ``python -m regbench.false_alarm --storage DIR``.

Rules: every run is a real ``regbench run`` into one storage, interleaved
A₀, P₁, A₁, P₂, A₂, …: the identical pairs are (Aᵢ₋₁, Aᵢ), the planted pairs
(Aᵢ₋₁, Pᵢ), where Pᵢ runs ``--plant`` (bench.plant: one trainer made FACTOR
times slower by spinning after its real training). Each pair is compared with
``compare``'s default settings. Prints, per pair, the verdict counts, and at
the end the false ``slower`` verdicts of the identical pairs and whether the
planted trainer was found slower in every planted pair.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from backends import with_role
from records.roles import NATIVE_LOOP
from reports.compare import compare_runs
from reports.load import load
from reports.stats import SLOWER


def regbench_run(storage: Path, name: str, pytest_args: list[str]) -> Path:
    cmd = [sys.executable, "-m", "regbench", "run", "--name", name, "--storage", str(storage),
           "--out", str(storage / "report"), "--", *pytest_args]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    (path,) = storage.glob(f"*/[0-9][0-9][0-9][0-9]_{name}.json")
    return path


def compare(base: Path, new: Path) -> pd.DataFrame:
    return compare_runs(load([base]), load([new])).table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m regbench.false_alarm", description=__doc__.split("\n\n")[0])
    p.add_argument("--storage", type=Path, required=True, help="an empty folder for the runs")
    p.add_argument("--pairs", type=int, default=10, help="identical pairs, and as many planted ones [10]")
    plant = f"{with_role(NATIVE_LOOP, 'cpu')[0]}:1.3"  # a trainer with many tight rounds
    p.add_argument("--plant", default=plant, help=f"ID:FACTOR [{plant}]")
    p.add_argument("pytest_args", nargs="*", help="passed to every run after --, e.g. -- -m 'not sweep'")
    args = p.parse_args(argv)
    if args.storage.exists() and any(args.storage.iterdir()):
        p.error(f"{args.storage} is not empty")
    planted_id = args.plant.rsplit(":", 1)[0]
    plant = ["-p", "bench.plant", f"--plant-slowdown={args.plant}"]
    rows = []
    previous = regbench_run(args.storage, "a0", args.pytest_args)
    for i in range(1, args.pairs + 1):
        planted = regbench_run(args.storage, f"p{i}", [*plant, *args.pytest_args])
        current = regbench_run(args.storage, f"a{i}", args.pytest_args)
        for kind, new in (("identical", current), ("planted", planted)):
            table = compare(previous, new)
            counts = table["verdict"].value_counts().to_dict()
            found = (table[table["trainer"] == planted_id]["verdict"] == SLOWER).tolist()
            rows.append({"pair": i, "kind": kind, "base": previous.stem, "new": new.stem, **counts,
                         "planted slower": sum(found), "planted benchmarks": len(found)})  # fmt: skip
            print(rows[-1], flush=True)
        previous = current
    df = pd.DataFrame(rows).fillna(0)
    print(df.to_markdown(index=False))
    identical, planted = df[df["kind"] == "identical"], df[df["kind"] == "planted"]
    false_slower = int(identical.get("slower", pd.Series(dtype=int)).sum())
    hits, benchmarks = int(planted["planted slower"].sum()), int(planted["planted benchmarks"].sum())
    others = int(planted.get("slower", pd.Series(dtype=int)).sum()) - hits
    print(f"identical pairs: {false_slower} false 'slower' in {len(identical)} pairs; planted {args.plant}: "
          f"found slower in {hits} of {benchmarks} benchmarks (both dtypes) over "
          f"{len(planted)} pairs, {others} other benchmark(s) called slower there")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does ``regbench ab`` hold while the machine drifts, where a between-run ``compare`` is fooled?
``python -m regbench.drift_study --scratch DIR [-- PYTEST_ARGS]``.

Rules: three copies of this checkout's code in DIR (BASE, SAME: identical,
PLANTED: its bench/conftest.py makes one trainer FACTOR times slower with
bench.plant, as a code change would); a CPU hog (``--hogs`` busy processes)
starts halfway through each measurement. First ``regbench ab BASE SAME`` and
``regbench ab BASE PLANTED`` (the hog from the middle pair on); then the
between-run way: ``regbench run`` of BASE on the quiet machine, of SAME and of
PLANTED under the hog, each judged by ``compare``'s statistics alone
(reports.compare) and by ``regbench compare`` (which knows the yardsticks,
reports.drift). The selection must hold a yardstick (the default: the seed
problem's float64 fit of the fused NumPy trainer and of Numba's native loop).
Prints each verdict on the planted trainer and the count of false ``slower``s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from regbench.ab import OWN_CODE

ROOT = Path(__file__).resolve().parents[1]
SELECTION = ["-k", "seed100 and float64 and (numpy-manual-fused-cpu or numba-native-loop-cpu)", "--no-cold-start"]


def copy_checkout(to: Path, plant: tuple[str, float] | None = None) -> Path:
    ignore = shutil.ignore_patterns("__pycache__")
    for name in OWN_CODE:
        shutil.copytree(ROOT / name, to / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", to / "pyproject.toml")
    if plant:
        with (to / "bench" / "conftest.py").open("a") as conftest:
            conftest.write(f"\nfrom bench.plant import plant  # noqa: E402\n\nplant({plant[0]!r}, {plant[1]})\n")
    return to


@contextlib.contextmanager
def hog(count: int):
    """``count`` processes that spin on a core each until the block ends."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def ab(base: Path, new: Path, pairs: int, hogs: int, args: list[str], out: Path) -> dict:
    """``regbench ab`` with the hog started when the middle pair begins; its JSON document."""
    cmd = [sys.executable, "-m", "regbench", "ab", str(base), str(new), "--pairs", str(pairs), "--format", "json",
           "--", *args]  # fmt: skip
    with contextlib.ExitStack() as stack:
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=out.parent)
        for line in child.stderr:
            print(line.rstrip(), file=sys.stderr, flush=True)
            if line.startswith(f"ab: pair {pairs // 2 + 1}/"):
                print(f"study: the hog starts ({hogs} busy process(es))", file=sys.stderr, flush=True)
                stack.enter_context(hog(hogs))
        document = child.stdout.read()
        child.wait()
    out.write_text(document)
    return json.loads(document)


def run(checkout: Path, storage: Path, name: str, args: list[str]) -> Path:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cmd = [sys.executable, "-m", "regbench", "run", "--name", name, "--storage", str(storage), "--out",
           str(storage / f"report-{name}"), "--", *args]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=checkout, env=env, stdout=subprocess.DEVNULL)
    (path,) = storage.glob(f"*/[0-9][0-9][0-9][0-9]_{name}.json")
    return path


def between_runs(base: Path, new: Path) -> dict[str, list[dict]]:
    """compare's statistics alone, and regbench compare (with the yardsticks): their rows."""
    from reports.compare import compare_runs
    from reports.compare_format import _row
    from reports.load import load

    raw = compare_runs(load([base]), load([new])).table
    done = subprocess.run([sys.executable, "-m", "regbench", "compare", str(base), str(new), "--format", "json"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    document = json.loads(done.stdout)
    return {
        "raw": [_row(r) for _, r in raw.iterrows()],
        "aware": document["rows"],
        "yardsticks": document["yardsticks"],
    }


def verdicts(rows: list[dict], planted: str) -> str:
    return ", ".join(f"{r['trainer']} {r['verdict']} ({r['ratio']:.3f}×)" for r in rows if r["trainer"] == planted)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m regbench.drift_study", description=__doc__.split("\n\n")[0])
    p.add_argument("--scratch", type=Path, required=True, help="an empty folder for the copies and runs")
    p.add_argument("--pairs", type=int, default=8, help="pairs of each regbench ab [8]")
    p.add_argument("--plant", default="numpy-manual-fused-cpu:1.15", help="ID:FACTOR [numpy-manual-fused-cpu:1.15]")
    p.add_argument("--hogs", type=int, default=1, help="busy processes of the hog [1]")
    p.add_argument("pytest_args", nargs="*", help=f"the selection, after -- [{' '.join(SELECTION)}]")
    args = p.parse_args(argv)
    if args.scratch.exists() and any(args.scratch.iterdir()):
        p.error(f"{args.scratch} is not empty")
    planted_id, factor = args.plant.rsplit(":", 1)
    selection = args.pytest_args or SELECTION
    copies = {name: copy_checkout(args.scratch / name) for name in ("base", "same")}
    copies["planted"] = copy_checkout(args.scratch / "planted", (planted_id, float(factor)))
    found = {}
    for new in ("same", "planted"):
        print(f"study: regbench ab base {new}", file=sys.stderr, flush=True)
        found[f"ab {new}"] = ab(copies["base"], copies[new], args.pairs, args.hogs, selection,
                                args.scratch / f"ab-{new}.json")["rows"]  # fmt: skip
    storage = args.scratch / "storage"
    print("study: regbench run base (quiet), then same and planted under the hog", file=sys.stderr, flush=True)
    base_run = run(copies["base"], storage, "base", selection)
    with hog(args.hogs):
        runs = {new: run(copies[new], storage, new, selection) for new in ("same", "planted")}
    for new, path in runs.items():
        judged = between_runs(base_run, path)
        found[f"compare {new}"], found[f"compare+yardsticks {new}"] = judged["raw"], judged["aware"]
        print(f"compare base {new}: {(judged['yardsticks'] or {}).get('line', 'no yardsticks')}", flush=True)
    (args.scratch / "study.json").write_text(json.dumps(found, indent=2))
    for how, rows in found.items():
        false = sum(r["verdict"] == "slower" for r in rows if how.endswith("same") or r["trainer"] != planted_id)
        print(f"{how}: planted trainer: {verdicts(rows, planted_id) or '-'}; other benchmarks called slower: {false}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The answer a report leads with: the machine, the fastest trainer of each framework, agreement, targets, skips.

Rules: computed from the loaded runs and the judged targets alone, as data
(strings and small tables); reports.render lays it out in Markdown and HTML.
The fastest trainer of a framework is the least median of the tutorial's fits
(the seed's problem's "fit" benchmarks) at each size, over its trainers and dtypes, diverged fits
excluded; its speed-up is over the reference trainer of its dtype (reports.tables).
A trainer agrees with the float64 reference when its loss history stays within
AGREE_EPS machine epsilons of its dtype (relative), the bound tests/test_agreement.py
holds every trainer to. Skipped trainers are one list, grouped by reason. A run with GPU rows (a trainer on a CUDA
or JAX GPU device, or the CUDA bandwidth floor) states the precision policy they ran under
(bench.gpu.precision_settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from records.sources import DISTRIBUTION
from reports import tables, targets
from reports.load import FLOOR_DEVICE, Runs, gpu_label, precision_label

#: A trainer agrees with the float64 reference within this many machine epsilons of its dtype (relative loss).
AGREE_EPS = 1000


@dataclass
class Summary:
    machines: list[str] = field(default_factory=list)  # one line per machine and run
    precision: list[str] = field(default_factory=list)  # the GPU precision policy of each run with GPU rows
    fastest: pd.DataFrame = field(default_factory=pd.DataFrame)  # n, framework, trainer, dtype, median_s, speedup
    agreement: dict[str, str] = field(default_factory=dict)  # dtype -> its line
    targets: str = ""
    skipped: list[tuple[str, list[str]]] = field(default_factory=list)  # (reason, ["trainer dtype", ...])


def trainer_name(trainer: str, workers) -> str:
    """A trainer as people read it: a data-parallel one with its worker count (``torch-autograd-dp-cpu ×2``)."""
    return f"{trainer} ×{int(workers)}" if pd.notna(workers) and int(workers) > 1 else trainer


#: What a run of each depth leaves out, as the report's first lines say it (records.model.RunFacts.depth).
DEPTH_NOTES = {
    "quick": "a quick run (regbench run --quick: the tutorial's problem in float32, fewer rounds, no cold start; "
    "the data-parallel trainers and JAX's eager loop are left to regbench run)",
    "default": "a default run (every problem at its default sizes; the cold starts, the large sizes, the "
    "data-parallel trainers on the other problems and the studies need regbench run --full)",
    "full": "a full run (regbench run --full: every study)",
}


def machine_line(info: dict, depth: str | None = None, processes: tuple[str, ...] = (),
                 frameworks: tuple[str, ...] = ("numpy",), plugins: tuple[str, ...] = ()) -> str:  # fmt: skip
    """CPU, cores, GPU and the versions of the run's frameworks (its records' backends; the others are in the
    environment table) of one run's ``machine_info``, in one line; the plugins that declared some of its
    trainers, and how its processes were laid out (records.model.RunFacts.processes)."""
    env = info.get("regbench", {})
    cpu = info.get("cpu", {}).get("brand_raw") or info.get("processor") or "unknown CPU"
    facts = env.get("cpu") or {}
    if facts.get("family"):
        cpu += f" (family {facts['family']}, model {facts.get('model_number')})"
    if facts.get("vector_extensions"):
        cpu += f" with {', '.join(v.upper() for v in facts['vector_extensions'])}"
    cores = f", {env['cpu_count']} cores" if env.get("cpu_count") else ""
    versions = env.get("versions", {})
    libs = ", ".join(f"{lib} {versions[lib]}" for lib in frameworks if versions.get(lib))
    libs += f"; trainers from {', '.join(plugins)}" if plugins else ""
    python = env.get("python") or info.get("python_version")
    line = f"{cpu}{cores}; GPU: {gpu_label(env)}; Python {python}" + (f", {libs}" if libs else "")
    line += f"; {DEPTH_NOTES[depth]}" if depth in DEPTH_NOTES else ""
    if processes:
        return line + f"; each framework in a process of its own ({', '.join(processes)})"
    return line + "; every framework in one process (pytest bench)"


def fastest(runs: Runs) -> pd.DataFrame:
    """Per machine, run and size of the tutorial's fits: each framework's fastest trainer, its time and speed-up."""
    speed = tables.speed(runs).drop(columns="workers", errors="ignore")  # shown there only where some trainer has 2+
    keys = ["machine", "run", "n", "trainer", "dtype"]
    fit = speed.merge(runs.table[tables.tutorial(runs.table)][[*keys, "backend", "workers"]], on=keys)
    fit = fit[fit["status"] != "diverged"].dropna(subset=["median_s"])
    if fit.empty:
        return pd.DataFrame(columns=["machine", "run", "n", "framework", "trainer", "dtype", "median_s", "speedup"])
    best = fit.loc[fit.groupby(["machine", "run", "n", "backend"], sort=False)["median_s"].idxmin()]
    best = best.assign(trainer=[trainer_name(t, w) for t, w in zip(best["trainer"], best["workers"], strict=True)])
    best = best.rename(columns={"backend": "framework"}).sort_values(["machine", "run", "n", "median_s"])
    return best[["machine", "run", "n", "framework", "trainer", "dtype", "median_s", "speedup"]].reset_index(drop=True)


def agreement(runs: Runs) -> dict[str, str]:
    """Per dtype: whether every fit stays within AGREE_EPS epsilons of the float64 reference, and the worst one."""
    table = runs.table
    is_reference = table["reference"].astype(bool) & (table["dtype"] == "float64")  # itself: 0 by definition
    fit = table[tables.tutorial(table) & ~is_reference]
    lines = {}
    for dtype, group in fit.groupby("dtype", sort=True):
        bound = AGREE_EPS * float(np.finfo(dtype).eps)
        rel = group["ref_loss_rel"].astype(float)
        if rel.isna().all():
            lines[dtype] = f"{dtype}: no agreement measured"
            continue
        worst = group.loc[rel.fillna(np.inf).idxmax()]
        name = trainer_name(worst["trainer"], worst["workers"])
        off = group[~(rel <= bound)]  # NaN (a diverged history) does not agree
        if off.empty:
            lines[dtype] = (f"{dtype}: every trainer agrees with the float64 reference (worst loss difference "
                            f"{worst['ref_loss_rel']:.2g}, {name}; bound {bound:.2g})")  # fmt: skip
        else:
            names = ", ".join(sorted({trainer_name(t, w) for t, w in zip(off["trainer"], off["workers"], strict=True)}))
            lines[dtype] = (f"{dtype}: {len(off)} of {len(group)} fits differ from the float64 reference by more "
                            f"than {bound:.2g} (worst {worst['ref_loss_rel']:.2g}, {name}): {names}")  # fmt: skip
    return lines


def targets_line(judged: dict[str, pd.DataFrame]) -> str:
    """x of y met (of those the run measured), how many targets it did not measure (regbench run --full judges
    them), and that one run's verdicts are provisional (reports.target_runs: ``regbench targets`` judges several)."""
    count, failed = targets.unmet(judged) if any("met" in t for t in judged.values()) else (0, 0)
    unmeasured = len(targets.unmeasured(judged))
    later = f"; {unmeasured} not measured by this run (regbench run --full judges them)" if unmeasured else ""
    if not count:
        return "targets: none judged (the run has none of the trainers or sizes they need)" + later
    return (f"targets over 1 run, provisional (`regbench targets` judges a machine's newest 3 runs, quick ones "
            f"apart): {count - failed} of {count} met" + (f"; {failed} not met" if failed else "") + later)  # fmt: skip


def skipped(runs: Runs) -> list[tuple[str, list[str]]]:
    """Each reason a trainer was skipped, with the trainers (and dtypes) it stopped, most common first."""
    out: dict[str, dict[str, list[str]]] = {}
    for row in runs.skipped.itertuples():
        out.setdefault(row.reason, {}).setdefault(row.trainer, []).append(row.dtype)
    ran = set(runs.table["trainer"])  # a trainer that ran in some dtype: the skipped dtypes are named
    grouped = [(reason, [f"{t} ({', '.join(d for d in dtypes if d)})" if t in ran and any(dtypes) else t
                         for t, dtypes in by.items()]) for reason, by in out.items()]  # fmt: skip
    return sorted(grouped, key=lambda item: -len(item[1]))


def _frameworks_and_plugins(table: pd.DataFrame, machine: str, run: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The backends of one run's records, NumPy first, and the distributions other than regbench that declared
    some of its trainers, as the records say (the plugins need not be installed where the report is made)."""
    rows = table[(table["machine"] == machine) & (table["run"] == run)]
    frameworks = tuple(dict.fromkeys(["numpy", *rows["backend"]]))
    sources = rows["source"].dropna()
    return frameworks, tuple(sorted({s for s in sources if not s.startswith(f"{DISTRIBUTION} ")}))


def precision(runs: Runs) -> list[str]:
    """The precision policy of each run that has GPU rows, as its record states it ("not recorded" where it does not);
    the run is named where the report has several."""
    many, lines = len(runs.machines) > 1, []
    for (machine, run), info in runs.machines.items():
        ours = [(t["machine"] == machine) & (t["run"] == run) for t in (runs.table, runs.floor)]
        on_gpu = (runs.table["device"].map(FLOOR_DEVICE) == "cuda") & ours[0]
        if on_gpu.any() or ((runs.floor["device"] == "cuda") & ours[1]).any():
            policy = precision_label(info.get("regbench", {}).get("precision") or {})
            lines.append((f"{machine} {run}: " if many else "") + policy)
    return lines


def _depth(runs: Runs, machine: str, run: str) -> str | None:
    """A run's depth; a run saved before depths: "quick" where it was quick, else None (it says nothing)."""
    return runs.depth.get((machine, run)) or ("quick" if runs.quick.get((machine, run)) else None)


def others_cpu_note(table: pd.DataFrame, machine: str, run: str) -> str:
    """How much of the CPUs other processes took during one run's rounds (records' ``others_cpu``): its median and
    most, with the benchmark; "" where the run did not record it. A reader sees whether the machine was quiet."""
    rows = table[(table["machine"] == machine) & (table["run"] == run)]
    shares = rows["others_cpu"].dropna().astype(float) if "others_cpu" in rows else pd.Series(dtype=float)
    if shares.empty:
        return ""
    worst = rows.loc[shares.idxmax()]
    return (f"; other processes took {shares.median():.0%} of the CPUs during a benchmark's rounds (median; at "
            f"most {shares.max():.0%}, {trainer_name(worst['trainer'], worst['workers'])} {worst['dtype']} "
            f"n={worst['n']})")  # fmt: skip


def summarize(runs: Runs, judged: dict[str, pd.DataFrame]) -> Summary:
    many = len(runs.machines) > 1
    machines = [(f"{machine} {run}: " if many else "") + machine_line(info, _depth(runs, machine, run),
                                                             tuple(runs.processes.get((machine, run), ())),
                                                             *_frameworks_and_plugins(runs.table, machine, run))
                + others_cpu_note(runs.table, machine, run)
                for (machine, run), info in runs.machines.items()]  # fmt: skip
    return Summary(
        machines=machines,
        precision=precision(runs),
        fastest=fastest(runs),
        agreement=agreement(runs),
        targets=targets_line(judged),
        skipped=skipped(runs),
    )

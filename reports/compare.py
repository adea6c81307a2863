"""Two saved runs, benchmark by benchmark: speed verdicts (reports.stats), accuracy drift, what is missing.

Rules: only like is compared with like — a benchmark's identity is
records.model.IDENTITY (kind, problem, trainer, dtype, n, epochs, lr, workers,
threads, and the size's role: the tutorial's 100 points are not a sweep's), and two benchmarks differing in any of
them are never paired. A
benchmark of BASE that NEW lacks (or skipped) is listed with why, and fails
the comparison unless missing ones are allowed; new ones are listed. Accuracy
drifts when the final loss or a parameter (by name: a scalar, a vector's norm) moved by more than ``max_drift``
(relative), or divergence changed; a value that is NaN in both (a diverged
fit compared with itself) has not moved. Each verdict is columns of its own, never text to split: the speed
verdict's label (``verdict``) and its ``reason``; the accuracy's label (``accuracy``: ok, drift > max_drift,
diverged, no longer diverges) and whether it holds (``accuracy_ok``). A comparison with no benchmark in
common compared nothing and fails whatever is allowed missing. Differences
between the two runs' environments are listed, not judged. A quick run
(``regbench run --quick``: fewer rounds, no cold start) is compared with quick
runs only: ``quick_mismatch`` says why not, and ``regbench compare`` refuses;
so are runs under different GPU precision policies (``policy_mismatch``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from records.model import IDENTITY
from reports.load import Runs, gpu_label, precision_label
from reports.stats import SLOWER, Method, Verdict, compare_samples

COLUMNS = [
    "kind", "problem", "n", "size", "trainer", "dtype", "epochs", "lr", "workers", "threads", "base_rounds",
    "new_rounds", "base_median_s", "new_median_s", "ratio", "ci_low", "ci_high", "p_value", "drift", "verdict",
    "reason", "accuracy", "accuracy_ok", "base_others_cpu", "new_others_cpu",
]  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """The table (one row per benchmark in both runs), and the benchmarks only one run has."""

    table: pd.DataFrame
    added: list[str] = field(default_factory=list)  # in NEW only
    missing: list[str] = field(default_factory=list)  # in BASE only, each with why
    environment: list[str] = field(default_factory=list)  # "what: base → new" for each difference
    yardsticks: object = None  # reports.drift.Drift: how the machine moved between the runs, where they tell

    @property
    def slower(self) -> pd.DataFrame:
        return self.table[self.table["verdict"] == SLOWER]

    @property
    def drifted(self) -> pd.DataFrame:
        return self.table[~self.table["accuracy_ok"].astype(bool)]

    def failed(self, allow_missing: bool = False) -> bool:
        # An empty table passed no gate: nothing was compared (regbench.cli refuses it before this, exit 2).
        nothing = self.table.empty
        return nothing or not self.slower.empty or not self.drifted.empty or (bool(self.missing) and not allow_missing)


def label(identity: tuple) -> str:
    kind, problem, trainer, dtype, n, epochs, lr, workers, threads, size = identity
    counts = (f", {workers:g} workers" if workers != 1 else "") + (f", {threads:g} threads" if threads else "")
    # The fit study's sizes beyond a problem's default (the tutorial's 100 points are not a sweep's); a study's own
    # sizes (the marginal study's) need no role.
    role = f" ({size} size)" if kind == "fit" and size not in ("default", "") else ""
    return f"{kind} {trainer} {dtype} ({problem}, n={n}{role}, {epochs} epochs, lr={lr:g}{counts})"


def relative_change(new: float, base: float) -> float:
    # NaN == NaN is False, yet a fit that diverged to NaN twice has not changed: only NaN against a number has.
    if new == base or (pd.isna(new) and pd.isna(base)):
        return 0.0
    if not (np.isfinite(new) and np.isfinite(base)):
        return float("inf")
    return abs(new - base) / max(abs(base), np.finfo(float).tiny)


def _accuracy(rb: pd.Series, rn: pd.Series, max_drift: float) -> tuple[float, str]:
    # The final loss and every parameter both sides have (a scalar's value, a vector's norm), by name.
    shared = [name for name in rb["param_names"] if name in rn["param_names"]]
    drift = max(relative_change(rn[c], rb[c]) for c in ("final_loss", *shared))
    if bool(rn["diverged"]) != bool(rb["diverged"]):
        return drift, "diverged" if rn["diverged"] else "no longer diverges"
    return drift, f"drift > {max_drift:g}" if drift > max_drift else "ok"


def _indexed(runs: Runs) -> pd.DataFrame:
    # One file per side, and a file holds each identity once (records.model refuses it otherwise).
    # A scaling study's fits differ in workers (processes) or threads; "threads" is unset elsewhere: 0 here.
    # A size without a role (a plugin's problem in a file of schema 2 or older): "" here.
    return runs.table.fillna({"workers": 1, "threads": 0, "size": ""}).set_index(IDENTITY)


def _skipped(runs: Runs) -> dict[tuple[str, str], str]:
    """(trainer, dtype) -> why it was skipped; dtype "" where the record names none (files of schema 0)."""
    return {(row.trainer, row.dtype): row.reason for row in runs.skipped.itertuples()}


def _why_missing(identity: tuple, new: pd.DataFrame, skipped: dict[tuple[str, str], str]) -> str:
    kind, problem, trainer, dtype, n = identity[:5]
    reason = skipped.get((trainer, dtype), skipped.get((trainer, "")))
    if reason is not None:
        return f"{label(identity)}: skipped in NEW ({reason})"
    other = new.reset_index()
    other = other[(other["kind"] == kind) & (other["problem"] == problem) & (other["trainer"] == trainer)
                  & (other["dtype"] == dtype) & (other["n"] == n)]  # fmt: skip
    if not other.empty:
        row = other.iloc[0]
        return f"{label(identity)}: NEW ran it with {row['epochs']} epochs, lr={row['lr']:g} (not comparable)"
    return f"{label(identity)}: not in NEW"


def quick_mismatch(base: Runs, new: Runs) -> str | None:
    """Why BASE and NEW cannot be compared because one is a quick run and the other not; None if they can."""
    base_quick, new_quick = any(base.quick.values()), any(new.quick.values())
    if base_quick == new_quick:
        return None
    which = "BASE" if base_quick else "NEW"
    return (f"{which} is a quick run (regbench run --quick: fewer rounds, no cold start) and "
            f"{'NEW' if base_quick else 'BASE'} a deeper one (default or full): compare a quick run with a quick run "
            "only")  # fmt: skip


def _policy(runs: Runs) -> dict:
    """The run's GPU precision policy (bench.gpu.precision_settings); {} where it recorded none."""
    return next((p for info in runs.machines.values() if (p := info.get("regbench", {}).get("precision"))), {})


def policy_mismatch(base: Runs, new: Runs) -> str | None:
    """Why BASE and NEW cannot be compared because they ran under different GPU precision policies (TF32, matmul
    precision, determinism, the libraries' variables), naming each difference; None if they can. A run that recorded
    no policy (saved before it was recorded, or without a GPU) is not judged, nor a switch one side did not record."""
    pb, pn = _policy(base), _policy(new)
    changed = [f"{key} {pb[key]} → {pn[key]}" for key in pb if key in pn and pb[key] != pn[key]]
    if not changed:
        return None
    return (f"BASE and NEW ran under different GPU precision policies ({'; '.join(changed)}): "
            "compare runs under one policy only")  # fmt: skip


def compare_runs(base: Runs, new: Runs, method: Method | None = None, max_drift: float = 1e-4) -> Comparison:
    """Pair the benchmarks of two runs by identity and judge each pair."""
    method = method or Method()
    b, n = _indexed(base), _indexed(new)
    rows = []
    for identity in b.index.intersection(n.index, sort=False):
        rb, rn = b.loc[identity], n.loc[identity]
        verdict: Verdict = compare_samples(rb["samples"], rn["samples"], method)
        drift, accuracy = _accuracy(rb, rn, max_drift)
        kind, problem, trainer, dtype, points, epochs, lr, workers, threads, size = identity
        rows.append({
            "kind": kind, "problem": problem, "n": points, "size": size or None, "trainer": trainer, "dtype": dtype,
            "epochs": epochs, "lr": lr, "workers": workers, "threads": threads,
            # Files without raw samples still show their rounds and the medians pytest-benchmark computed.
            "base_rounds": verdict.base_rounds or rb["rounds"], "new_rounds": verdict.new_rounds or rn["rounds"],
            "base_median_s": rb["median_s"], "new_median_s": rn["median_s"],
            "ratio": rn["median_s"] / rb["median_s"] if np.isnan(verdict.ratio) else verdict.ratio,
            "ci_low": verdict.ci_low, "ci_high": verdict.ci_high, "p_value": verdict.p_value,
            "drift": drift, "verdict": verdict.label, "reason": verdict.reason, "accuracy": accuracy,
            "accuracy_ok": accuracy == "ok",
            # The share of the CPUs other processes took during each side's rounds (bench.contention; reports.drift).
            "base_others_cpu": rb.get("others_cpu"), "new_others_cpu": rn.get("others_cpu"),
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=COLUMNS)
    skipped = _skipped(new)
    return Comparison(
        table=table,
        added=[label(i) for i in n.index.difference(b.index, sort=False)],
        missing=[_why_missing(i, n, skipped) for i in b.index.difference(n.index, sort=False)],
        environment=environment_changes(base, new),
    )


def _environment(info: dict) -> dict[str, object]:
    env = info.get("regbench", {})
    out: dict[str, object] = {f"{lib}": v for lib, v in env.get("versions", {}).items()}
    out.update({
        "python": env.get("python", info.get("python_version")),
        "CPU": info.get("cpu", {}).get("brand_raw"),
        "GPU": gpu_label(env),
        "GPU precision": precision_label(env["precision"]) if env.get("precision") else None,
        "cores": env.get("cpu_count"),
        "torch threads": env.get("torch_threads"),
        "numba threads": env.get("numba_threads"),
        "thread variables": ", ".join(f"{k}={v}" for k, v in sorted(env.get("thread_env", {}).items())) or None,
    })  # fmt: skip
    return out


def environment_changes(base: Runs, new: Runs) -> list[str]:
    """Each difference between the two runs' environments, as "what: BASE's → NEW's"."""
    eb = _environment(next(iter(base.machines.values()), {}))
    en = _environment(next(iter(new.machines.values()), {}))
    return [
        f"{key}: {eb.get(key) or 'none'} → {en.get(key) or 'none'}"
        for key in dict.fromkeys([*eb, *en])
        if eb.get(key) != en.get(key)
    ]


def version_changes(before: dict, after: dict) -> list[str]:
    """Library versions that differ between two machine_info records, as "lib a → b"."""
    vb = before.get("regbench", {}).get("versions", {})
    va = after.get("regbench", {}).get("versions", {})
    return [f"{lib} {vb.get(lib) or 'none'} → {va.get(lib) or 'none'}" for lib in dict.fromkeys([*vb, *va])
            if vb.get(lib) != va.get(lib)]  # fmt: skip

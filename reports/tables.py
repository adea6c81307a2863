"""pandas tables of a loaded run: speed, accuracy, scaling over n (targets: reports.targets; two runs: reports.compare).

Rules: numbers stay numbers here (seconds, ratios); formatting for people
happens only in ``present()``. A diverged fit gets no speed-up: the
``status`` column says so. A skipped trainer is no row here: the report lists
the skipped ones apart, with their reasons (reports.summary).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from records.model import SEED_PROBLEM
from reports.load import Runs
from reports.targets import TUTORIAL

KEYS = ["machine", "run", "kind", "problem", "n", "dtype"]
#: The kind of every problem's fits, the seed's and the others' (records.model.FitRecord.kind: the study).
FIT = "fit"
#: A problem is shown against its compute limit where that limit is at least this many times its bandwidth floor
#: (reports.load: ``compute_s``, ``floor_s``): the matrix-product rate is measured at an MLP's shapes (bench.compute),
#: no yardstick for a logistic regression's matrix-vector products, which reading the data bounds anyway.
COMPUTE_BOUND = 2
#: The resolution of a peak measured on the CPU (bench.memory): the resident size grows a page at a time; a fit that
#: adds less is shown as "< 4 kB" (and below that over its data), never as 0.
MEMORY_RESOLUTION = 4096


def _status(df: pd.DataFrame) -> pd.Series:
    native = df["native"].fillna("")
    return pd.Series(
        np.where(df["diverged"].astype(bool), "diverged", np.where(native != "", "ok (" + native + ")", "ok")),
        index=df.index,
    )


def _one_process(df: pd.DataFrame, cols: list[str]) -> None:
    """No ``workers`` column where every trainer ran in one process: it says something only beside a
    data-parallel trainer's count."""
    if (df["workers"].fillna(1) == 1).all():
        cols.remove("workers")


def tutorial(table: pd.DataFrame) -> pd.Series:
    """Which rows are the tutorial's fits (reports.targets.TUTORIAL: the seed's problem at its default size), the
    answer a report leads with; the seed's other sizes are its scaling."""
    return TUTORIAL.of(table)


def _rows(runs: Runs, kind: str, problem: str) -> pd.DataFrame:
    """``problem``'s rows of ``kind``: the seed's fits, at the tutorial's size alone (``tutorial``)."""
    df = runs.table
    rows = (df["kind"] == kind) & (df["problem"] == problem)
    if problem == SEED_PROBLEM and kind == FIT:
        rows &= tutorial(df)
    return df[rows].copy()


def problems_of(runs: Runs, kind: str = FIT) -> list[str]:
    """The problems (their labels, records.model.ProblemRecord.label) of the benchmarks of ``kind``, sorted."""
    return sorted(runs.table[runs.table["kind"] == kind]["problem"].unique())


def speed(runs: Runs, problem: str = SEED_PROBLEM, kind: str = FIT) -> pd.DataFrame:
    """Time per trainer and dtype, and speed-up over the reference (the NumPy tutorial loop) of the same dtype and run,
    of ``problem``'s benchmarks (its label; the seed's by default) of ``kind``.

    ``gpu_time`` (the GPU's own time of a round, from CUDA events), the cold starts and the peak memory are shown
    where some trainer has them.
    """
    df = _rows(runs, kind, problem)
    ref = df[df["reference"].astype(bool)].set_index(KEYS)["median_s"].rename("ref_median_s")
    df = df.join(ref, on=KEYS)
    df["speedup"] = (df["ref_median_s"] / df["median_s"]).where(~df["diverged"].astype(bool))
    df["status"] = _status(df)
    cols = ["machine", "run", "n", "trainer", "workers", "dtype", "median_s", "iqr_s", "per_epoch_s", "rounds",
            "first_call_s",
            "gpu_time_s", "cold_start_s", "warm_start_s", "fresh_fit_s", "peak_bytes", "memory_ratio", "data_bytes",
            "speedup", "status"]  # fmt: skip
    # What no trainer of these runs measured (a GPU's own time; a quick run's cold starts and memory) is no column;
    # the data's size is shown beside a peak, which a peak below MEMORY_RESOLUTION is shown against.
    df["data_bytes"] = df["data_bytes"].where(df["memory_ratio"].notna())
    # Where the model's matrix products clearly outweigh reading its data (an MLP's), each epoch against the
    # roofline (max(compute limit, bandwidth floor)) and its share of the machine's matrix-product rate (MFU).
    if compute_bound(df):
        df["roofline_ratio"] = df["per_epoch_s"] / df["roofline_s"]
        df["mfu"] = df["compute_s"] / df["per_epoch_s"]
        cols[cols.index("per_epoch_s") + 1 : cols.index("per_epoch_s") + 1] = ["compute_s", "roofline_ratio", "mfu"]
    measured = ("gpu_time_s", "cold_start_s", "warm_start_s", "fresh_fit_s", "peak_bytes", "memory_ratio", "data_bytes")
    for col in measured:
        if df[col].isna().all():
            cols.remove(col)
    _one_process(df, cols)
    return df.sort_values(["machine", "run", "n", "median_s"])[cols].reset_index(drop=True)


def compute_bound(df: pd.DataFrame) -> bool:
    """Whether some row's compute limit is over COMPUTE_BOUND times its bandwidth floor: its epochs are held against
    the machine's matrix-product rate (an MLP's)."""
    return bool((df["compute_s"] > COMPUTE_BOUND * df["floor_s"]).any())


def parameters(df: pd.DataFrame) -> list[str]:
    """The names of the parameters of ``df``'s rows, in the order their records name them, each once."""
    return list(dict.fromkeys(name for names in df["param_names"] for name in names))


def accuracy(runs: Runs, problem: str = SEED_PROBLEM, kind: str = FIT) -> pd.DataFrame:
    """Where each fit of ``problem`` (its label; the seed's by default) ended, how far from the least-squares optimum,
    and how far from the float64 reference.

    Every parameter by its record's name: a scalar's value, a vector's norm ‖p‖₂ (reports.load.param_columns),
    without the optimum's value of a vector parameter (its records leave it out: ``opt_distance`` says how far).
    The relative norms of the differences from the reference are shown where the records have them (runs of
    schema 2 on)."""
    df = _rows(runs, kind, problem)
    df["status"] = _status(df)
    names = parameters(df)
    opts = [col for col in (f"{name}_opt" for name in names) if not df[col].isna().all()]
    rels = [f"ref_rel_{name}" for name in names if not df[f"ref_rel_{name}"].isna().all()]
    refs = [f"ref_d{name}" for name in names]
    cols = ["machine", "run", "n", "trainer", "workers", "dtype", *names, "final_loss", *opts, "loss_opt",
            "opt_distance", "loss_gap", *refs, "ref_loss_rel", *rels, "status"]  # fmt: skip
    _one_process(df, cols)
    out = df.sort_values(["machine", "run", "n", "trainer", "dtype"])[cols].reset_index(drop=True)
    out.attrs["parameters"] = [*names, *opts]  # present() writes them as parameters, not as errors
    return out


#: The label of the bandwidth floor's row in the scaling tables: the seed's, and another problem's.
FLOOR_LABEL = "bandwidth floor: read x and y once"
PROBLEM_FLOOR_LABEL = "bandwidth floor: read its data once"


def floors(runs: Runs, problem: str = SEED_PROBLEM, at: pd.Series | None = None) -> pd.DataFrame:
    """The bandwidth floors that stand for ``problem`` (its label; the seed's by default), at the sizes ``at`` where
    given (a scaling's: not the tutorial's, beside the seed's sweep)."""
    own = runs.floor[runs.floor["problem"] == problem]
    return own if at is None else own[own["n"].isin(at)]


def sizes_of(runs: Runs, problem: str, kind: str = FIT) -> list:
    """The sizes (n) at which ``problem``'s benchmarks of ``kind`` ran, ascending."""
    return sorted(_rows(runs, kind, problem)["n"].unique())


def scaled(runs: Runs, problem: str = SEED_PROBLEM) -> pd.DataFrame:
    """The fits of ``problem`` (its label) over its sizes: every one of its fits, the seed's but the tutorial's (the
    report's lead; its sizes beyond are its scaling)."""
    df = runs.table
    return df[(df["kind"] == FIT) & (df["problem"] == problem) & ~tutorial(df)].copy()


def scaling(runs: Runs, value: str = "per_epoch_s", problem: str = SEED_PROBLEM) -> pd.DataFrame:
    """One row per trainer and dtype, one column per n: median time per epoch (or ``floor_fraction``) of
    ``problem``'s fits over its sizes (``scaled``; its label: n is its one size parameter), the seed's by default.

    With ``per_epoch_s``, the bandwidth floor of each size shown comes first: ``problem``'s own floors alone.
    """
    df = scaled(runs, problem)
    if df.empty:
        return pd.DataFrame()
    df = df.assign(**{value: df[value].where(~df["diverged"].astype(bool))})
    own = floors(runs, problem, at=df["n"])
    if value == "per_epoch_s" and not own.empty:
        label = FLOOR_LABEL if problem == SEED_PROBLEM else PROBLEM_FLOOR_LABEL
        floor = own.assign(trainer=label + " (" + own["device"] + ")", per_epoch_s=own["floor_s"])
        df = pd.concat([floor, df], ignore_index=True)
    by = df.pivot_table(index=["machine", "trainer", "dtype"], columns="n", values=value, aggfunc="first", sort=False)
    return by.sort_index(axis=1)  # the sizes ascending, in whatever order the floors and rows were saved


def _fmt_time(seconds: float) -> str:
    if not np.isfinite(seconds):
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _fmt_bytes(n: float) -> str:
    if n == 0:  # nothing measurable: below the resolution, never a false zero
        return f"< {MEMORY_RESOLUTION // 2**10} kB"
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _fmt_ratio(ratio: float, data: float) -> str:
    if pd.isna(ratio):
        return ""
    return f"< {MEMORY_RESOLUTION / data:.2g}×" if ratio == 0 and data > 0 else f"{ratio:.3g}×"


def _fmt_param(v: float) -> str:
    """A parameter (the seed's w and b): 7 decimals where they are near the tutorial's 3 and 2, else 6 significant
    digits (a diverged fit's 1e93 would take 94 digits)."""
    if pd.isna(v):
        return ""
    return f"{v:.7f}" if abs(v) < 1e6 else f"{v:.6g}"


def present(df: pd.DataFrame, drop_single: tuple[str, ...] = ("machine", "run", "n")) -> pd.DataFrame:
    """A copy for people: times with units, ratios and errors rounded, constant key columns dropped."""
    out = df.copy()
    params = df.attrs.get("parameters", ())
    for col in [c for c in drop_single if c in out and out[c].nunique(dropna=False) <= 1]:
        out = out.drop(columns=col)
    for col in out.columns:
        name = str(col)
        if name in ("peak_bytes", "data_bytes"):
            out[col] = out[col].map(lambda v: _fmt_bytes(v) if pd.notna(v) else "")
        elif name == "memory_ratio" and "data_bytes" in df:  # a peak below resolution: below resolution/data
            out[col] = [_fmt_ratio(v, data) for v, data in zip(out[col], df["data_bytes"], strict=True)]
        elif name in ("memory_ratio", "measured"):
            out[col] = out[col].map(lambda v: f"{v:.3g}×" if pd.notna(v) else "")
        elif name in ("overhead", "floor_fraction", "mfu"):
            out[col] = out[col].map(lambda v: f"{v:.1%}" if pd.notna(v) else "")
        elif name == "bandwidth_Bps":
            out[col] = out[col].map(lambda v: f"{v / 1e9:.3g} GB/s" if pd.notna(v) else "")
        elif name == "met":
            out[col] = out[col].map(lambda v: "" if v is None or pd.isna(v) else ("yes" if v else "NO"))
        elif name.endswith("_s") or isinstance(col, (int, np.integer)):
            out[col] = out[col].map(lambda v: _fmt_time(v) if pd.notna(v) else "")
        elif name == "rounds":
            out[col] = out[col].map(lambda v: f"{int(v)}" if pd.notna(v) else "")
        elif name in ("speedup", "ratio", "roofline_ratio"):
            out[col] = out[col].map(lambda v: f"{v:.3g}×" if pd.notna(v) else "")
        elif name in params:
            out[col] = out[col].map(_fmt_param)
        elif out[col].dtype.kind == "f":
            out[col] = out[col].map(lambda v: f"{v:.3g}" if pd.notna(v) else "")
    return out.rename(columns=lambda c: str(c).removesuffix("_s") if str(c).endswith("_s") else c).rename(
        columns={
            "peak_bytes": "peak_memory",
            "memory_ratio": "× data",
            "bandwidth_Bps": "bandwidth",
            "compute": "compute limit",
            "roofline_ratio": "× roofline",
            "mfu": "MFU",
        }
    )

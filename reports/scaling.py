"""The data-parallel scaling study in a report: speed-ups, strong-scaling efficiency, all-reduce cost, crossovers.

Rules: ``records(runs)`` takes the fits of the loaded table with their worker
and thread counts and all-reduce cost; every other function takes that table and returns numbers (seconds,
ratios) or a matplotlib figure, as reports/tables.py and charts.py do. The
speed-up of ``k`` workers is T(1 worker)/T(k workers) of the same trainer, n,
dtype and run; its efficiency that over ``k``; the native SIMD loop's speed-up
is over its own one-thread time. The targets are ratios within one run.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # as reports/charts.py: before pyplot, so the chart renders with no display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from records.roles import CPU_LIMIT
from reports.load import Runs

COLUMNS = ["machine", "run", "kind", "trainer", "native", "device", "twin", "dtype", "n", "epochs", "workers",
           "threads", "median_s", "per_epoch_s", "allreduce_s", "worker_peak_bytes", "diverged"]  # fmt: skip
KEYS = ["machine", "run", "kind", "trainer", "dtype", "n"]
#: The targets of the study (README): 2 workers at n=10⁷ in float32 get at least this share of the native
#: loop's 2-thread speed-up; at n=100 a 2-worker fit costs at most this many times (all-reduce × epochs + twin).
SPEEDUP_SHARE, SPEEDUP_N, SPEEDUP_DTYPE = 0.8, 10**7, "float32"
OVERHEAD_FACTOR, OVERHEAD_N = 3.0, 100


def records(runs: Runs) -> pd.DataFrame:
    """Every fit of the loaded runs with its worker count, thread count and all-reduce cost (1, None, NaN if absent)."""
    return runs.table.reindex(columns=COLUMNS).astype({"allreduce_s": float})


def _is_simd(df: pd.DataFrame) -> pd.Series:
    """The CPU limit (the native SIMD loop): the reference of what a second core gives a memory-bound epoch."""
    return (df["native"] == CPU_LIMIT) & (df["device"] == "cpu")


def _count(df: pd.DataFrame) -> pd.Series:
    """What is scaled: worker processes, or the native loop's threads."""
    return df["threads"].where(_is_simd(df), df["workers"]).fillna(1).astype(int)


def study(df: pd.DataFrame) -> pd.DataFrame:
    """The scaling table: per trainer, dtype, n and count, time per epoch, speed-up over a count of 1, efficiency."""
    df = df[df["kind"].str.startswith("scaling")].copy()
    if df.empty:
        return pd.DataFrame(columns=[*KEYS, "count", "per_epoch_s", "speedup", "efficiency", "allreduce_share",
                                     "simd"])  # fmt: skip
    df["count"] = _count(df)
    df["simd"] = _is_simd(df)
    one = df[df["count"] == 1].set_index(KEYS)["per_epoch_s"].rename("one_s")
    df = df.join(one, on=KEYS)
    df["speedup"] = df["one_s"] / df["per_epoch_s"]
    df["efficiency"] = df["speedup"] / df["count"]
    df["allreduce_share"] = df["allreduce_s"] / df["per_epoch_s"]
    cols = [*KEYS, "count", "per_epoch_s", "speedup", "efficiency", "allreduce_s", "allreduce_share", "simd"]
    return df.sort_values(["machine", "run", "dtype", "trainer", "n", "count"])[cols].reset_index(drop=True)


def crossovers(table: pd.DataFrame) -> pd.DataFrame:
    """For each trainer and count > 1: the smallest measured n from which on every larger n runs faster than 1."""
    rows = []
    for (machine, run, trainer, dtype, count), group in table[table["count"] > 1].groupby(
        ["machine", "run", "trainer", "dtype", "count"]
    ):
        group = group.sort_values("n")
        beats_from = None  # the first n of the trailing run of faster sizes; none if the largest is not faster
        for n, speedup in zip(group["n"][::-1], group["speedup"][::-1], strict=True):
            if not speedup > 1:
                break
            beats_from = n
        rows.append({"machine": machine, "run": run, "trainer": trainer, "dtype": dtype, "count": count,
                     "beats_one_from_n": beats_from, "largest_n": group["n"].iloc[-1],
                     "speedup_at_largest_n": group["speedup"].iloc[-1]})  # fmt: skip
    return pd.DataFrame(rows)


def targets(df: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The study's two targets, judged within each run: 2-worker speed-up against SIMD's, and small-n overhead.

    ``table`` is ``study(df)``.
    """
    rows = []
    for (machine, run), t in table.groupby(["machine", "run"]):
        at = t[(t["n"] == SPEEDUP_N) & (t["dtype"] == SPEEDUP_DTYPE) & (t["count"] == 2)]
        native = at[at["simd"].astype(bool)]["speedup"]
        for _, row in at[~at["simd"].astype(bool)].iterrows():
            simd = native.iloc[0] if not native.empty else np.nan
            rows.append({"machine": machine, "run": run, "target": f"2 workers ≥ {SPEEDUP_SHARE}× SIMD's 2-thread "
                         f"speed-up, n={SPEEDUP_N:.0e}, {SPEEDUP_DTYPE}", "trainer": row["trainer"],
                         "measured": row["speedup"], "limit": SPEEDUP_SHARE * simd,
                         "met": bool(row["speedup"] >= SPEEDUP_SHARE * simd)})  # fmt: skip
    small = df[(df["n"] == OVERHEAD_N) & (df["workers"] == 2) & df["allreduce_s"].notna()]
    for _, row in small.iterrows():
        # Its twin on the same problem in the same run: beside it in the main benchmark, or in the scaling study.
        same = (df["machine"] == row["machine"]) & (df["run"] == row["run"]) & (df["n"] == row["n"])
        same &= (df["dtype"] == row["dtype"]) & (df["epochs"] == row["epochs"])
        same &= df["trainer"] == row["twin"]
        twin = df[same & df["kind"].isin([row["kind"], "scaling_single"])]
        if twin.empty:
            continue
        limit = OVERHEAD_FACTOR * (row["allreduce_s"] * row["epochs"] + twin["median_s"].iloc[0])
        rows.append({"machine": row["machine"], "run": row["run"], "target": f"n={OVERHEAD_N}, 2 workers: fit ≤ "
                     f"{OVERHEAD_FACTOR:g}× (all-reduce × epochs + {row['twin']}) [{row['kind']}, "
                     f"{row['dtype']}]", "trainer": row["trainer"], "measured": row["median_s"], "limit": limit,
                     "met": bool(row["median_s"] <= limit)})  # fmt: skip
    return pd.DataFrame(rows, columns=["machine", "run", "target", "trainer", "measured", "limit", "met"])


def chart(table: pd.DataFrame):
    """Left: time per epoch against n, one line per trainer and count. Right: speed-up against count, largest n.

    ``table`` is ``study()``'s.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    if table.empty:
        return fig
    for (trainer, dtype, count), t in table.groupby(["trainer", "dtype", "count"]):
        t = t.sort_values("n")
        native = bool(t["simd"].iloc[0])
        label = f"{trainer} {dtype} ×{count} {'threads' if native else 'workers'}"
        left.plot(t["n"], t["per_epoch_s"], marker="o", lw=2.5 if native else 1.5, ls="--" if native else "-",
                  label=label)  # fmt: skip
    left.set(xscale="log", yscale="log", xlabel="n (points)", ylabel="median time per epoch (s)",
             title="Time per epoch")  # fmt: skip
    left.legend(fontsize=7)
    largest = table[table["n"] == table["n"].max()]
    counts = sorted(largest["count"].unique())
    right.plot(counts, counts, color="grey", ls=":", label="ideal")
    for (trainer, dtype), t in largest.groupby(["trainer", "dtype"]):
        t = t.sort_values("count")
        native = bool(t["simd"].iloc[0])
        right.plot(t["count"], t["speedup"], marker="o", lw=2.5 if native else 1.5, ls="--" if native else "-",
                   label=f"{trainer} {dtype}")  # fmt: skip
    right.set(xlabel="workers (native loop: threads)", ylabel="speed-up over 1", xticks=counts,
              title=f"Strong scaling at n={table['n'].max():.0e}")  # fmt: skip
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig

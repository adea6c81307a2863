"""matplotlib charts of a loaded run, written as PNG files.

Rules: the Agg backend, set before pyplot is imported, so charts render with
no display; each function takes the tidy table and returns a Figure; a diverged
fit is drawn hatched and labelled, never as a fast bar; a skipped trainer is
not drawn (the report lists them apart); a data-parallel trainer's label
names its workers; native trainers are marked with the role their record
names (native loop, CPU or GPU limit); the scaling chart draws the bandwidth floor under the lines. A chart
draws what the records hold, never a model's maths: the fitted curves are the records' own (``curve``), and the
compute limit the table's (reports.load: ``compute_s``).
"""

from __future__ import annotations

import zlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from records.roles import CPU_LIMIT, GPU_LIMIT, NATIVE_LOOP

#: Where a record names no colour (older runs): one per backend, from its name, so that it is the same in every chart.
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974")
#: Native trainers share a backend, so lines tell them apart by their role's colour.
ROLE_COLORS = {NATIVE_LOOP: "#8c8c8c", CPU_LIMIT: "#222222", GPU_LIMIT: "#76b900"}


def color_of(row: pd.Series | dict) -> str:
    """A trainer's colour: its record's (its spec's hint), else its backend's from PALETTE."""
    color = row.get("color")
    if isinstance(color, str) and color:
        return color
    return PALETTE[zlib.crc32(str(row["backend"]).encode()) % len(PALETTE)]


def _label(row: pd.Series, multi_machine: bool) -> str:
    workers = row.get("workers")
    label = f"{row['trainer']}{f' ×{int(workers)}' if pd.notna(workers) and workers > 1 else ''} {row['dtype']}"
    return f"{row['machine']}: {label}" if multi_machine else label


def _bars(df: pd.DataFrame, value: str, title: str, xlabel: str, err: tuple[str, str] | None = None,
          line: float | None = None) -> Figure:  # fmt: skip
    multi = df["machine"].nunique() > 1
    df = df.sort_values(value, ascending=value != "speedup")
    labels = [_label(r, multi) for _, r in df.iterrows()]
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(labels) + 1.6), layout="constrained")
    y = np.arange(len(labels))
    values = df[value].to_numpy(dtype=float)
    diverged = df["diverged"].astype(bool).to_numpy()
    colors = [color_of(row) for _, row in df.iterrows()]
    xerr = None
    if err is not None:
        lo, hi = df[err[0]].to_numpy(dtype=float), df[err[1]].to_numpy(dtype=float)
        xerr = np.vstack([np.clip(values - lo, 0, None), np.clip(hi - values, 0, None)])
    plotted = np.where(diverged, np.nan, values)
    bars = ax.barh(y, plotted, xerr=xerr, color=colors, capsize=2, ecolor="#333333")
    for yi, (is_div, native) in enumerate(zip(diverged, df["native"], strict=True)):
        if is_div:
            ax.text(0.01, yi, "diverged (no time shown)", transform=ax.get_yaxis_transform(), va="center",
                    color="#c44e52", fontsize=8)  # fmt: skip
        elif native:
            bars[yi].set_hatch("//")
            ax.text(plotted[yi], yi, "  " + native, va="center", fontsize=8)
    ax.set_yticks(np.arange(len(labels)), labels, fontsize=9)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # top to bottom, every row inside the axes
    if np.isfinite(plotted).any():  # all diverged: nothing to scale
        ax.set_xscale("log")
    if line is not None:
        ax.axvline(line, color="#333333", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", which="both", alpha=0.3)
    return fig


def time_chart(fit: pd.DataFrame) -> Figure:
    """Median time of one 800-epoch fit per trainer, with IQR whiskers, log scale (the trainers that ran only)."""
    return _bars(fit, "median_s", "Time of one training run (median, IQR whiskers)", "seconds (log scale)",
                 err=("q1_s", "q3_s"))  # fmt: skip


def speedup_chart(fit: pd.DataFrame) -> Figure:
    """Speed-up over the reference (the NumPy tutorial loop) of the same dtype."""
    reference = ", ".join(fit[fit["reference"].astype(bool)]["trainer"].unique()) or "the reference"
    return _bars(fit, "speedup", f"Speed-up over {reference} (same dtype)", "× faster (log scale)", line=1.0)


def loss_chart(fit: pd.DataFrame) -> Figure:
    """Loss history per trainer, and its relative difference from the float64 NumPy reference."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8), sharex=True, layout="constrained")
    multi = fit["machine"].nunique() > 1
    is_ref = fit["reference"].astype(bool) & (fit["dtype"] == "float64")
    refs = fit[is_ref].set_index(["machine", "run"])
    for index, row in fit.sort_values(["trainer", "dtype"]).iterrows():
        losses = row["losses"]
        if len(losses) == 0:
            continue
        style = {"color": color_of(row), "ls": "-" if row["dtype"] == "float64" else ":",
                 "lw": 1, "label": _label(row, multi)}  # fmt: skip
        top.plot(np.arange(len(losses)), losses, **style)
        key = (row["machine"], row["run"])
        if key in refs.index and not is_ref[index]:
            ref = refs.loc[key, "losses"]
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.abs(losses - ref) / np.abs(ref)
            bottom.plot(np.arange(len(rel)), np.where(rel > 0, rel, np.nan), **style)
    top.set_yscale("log")
    top.set_ylabel("loss")
    top.set_title("Loss before each update (solid float64, dotted float32)")
    bottom.set_yscale("log")
    bottom.set_xlabel("epoch")
    bottom.set_ylabel("|Δloss| / loss vs float64 NumPy")
    bottom.set_title("Agreement with the reference (exact agreement is not drawn)")
    top.legend(fontsize=7, ncol=2, loc="upper right")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return fig


def fit_chart(fit: pd.DataFrame, x: np.ndarray, y: np.ndarray) -> Figure:
    """The data and each trainer's fitted curve over them, as the tutorial draws them: each row's ``curve`` (its
    record's: the fitted model's prediction at every x, records.model.FitRecord.curve)."""
    fig, ax = plt.subplots(figsize=(8, 5.5), layout="constrained")
    ax.scatter(x, y, color="blue", marker="o", s=12, label="true")
    order = np.argsort(x, kind="stable")
    multi = fit["machine"].nunique() > 1
    drawn = fit[~fit["diverged"].astype(bool) & fit["curve"].map(lambda c: c is not None and len(c) == len(x))]
    for _, row in drawn.sort_values(["trainer", "dtype"]).iterrows():
        ax.plot(x[order], np.asarray(row["curve"])[order], lw=1, alpha=0.7, color=color_of(row),
                ls="-" if row["dtype"] == "float64" else ":", label=f"predict: {_label(row, multi)}")  # fmt: skip
    ax.set_xlim(float(np.min(x)), float(np.max(x)))
    ax.set_title("The fitted curve of every trainer over the data (they coincide when they agree)")
    ax.legend(fontsize=6, ncol=2, loc="upper center")
    return fig


def compute_chart(rows: pd.DataFrame) -> Figure:
    """Median time per epoch per trainer against its compute limit (its epoch's FLOPs over the run's measured
    matrix-product rate in its dtype: ``compute_s``, reports.load) and its bandwidth floor, log scale."""
    rows = rows[rows["compute_s"].notna()]
    sizes = rows["n"].nunique() > 1
    fig = _bars(rows.assign(trainer=rows["trainer"] + (" n=" + rows["n"].astype(str) if sizes else "")),
                "per_epoch_s", "Time per epoch against the compute limit (FLOPs ÷ measured matrix-product rate)",
                "seconds per epoch (log scale)")  # fmt: skip
    ax = fig.axes[0]
    order = rows.sort_values("per_epoch_s")  # as _bars sorts them, top to bottom
    y = np.arange(len(order))
    ax.scatter(order["compute_s"], y, marker="|", s=300, linewidths=2.5, color="#222222", zorder=3,
               label="compute limit")  # fmt: skip
    if order["floor_s"].notna().any():
        ax.scatter(order["floor_s"], y, marker="|", s=300, linewidths=2.5, color="#c44e52", zorder=3,
                   label="bandwidth floor")  # fmt: skip
    ax.legend(fontsize=8, loc="lower right")
    return fig


def scaling_chart(sweep: pd.DataFrame, floor: pd.DataFrame, what: str = "x and y", title: str = "Scaling") -> Figure:
    """Median time per epoch against n, log-log, one line per trainer and dtype, over the bandwidth floor (the time
    to read ``what`` once: the seed's x and y, or another problem's data, whose rows and floors are given)."""
    fig, ax = plt.subplots(figsize=(10, 6), layout="constrained")
    for (machine, device, dtype), group in floor.groupby(["machine", "device", "dtype"]):
        group = group.sort_values("n")
        label = f"bandwidth floor {device} {dtype}" + (f" ({machine})" if floor["machine"].nunique() > 1 else "")
        ax.plot(
            group["n"],
            group["floor_s"],
            color="#c44e52",
            lw=1,
            ls="-" if dtype == "float64" else ":",
            marker="_",
            ms=18,
            mew=2,
            label=label,
        )  # fmt: skip (the marker: a run of one size has no line)
        ax.fill_between(group["n"], group["floor_s"], group["floor_s"].min() / 10, color="#c44e52", alpha=0.06)
    multi = sweep["machine"].nunique() > 1
    ok = sweep[~sweep["diverged"].astype(bool)]
    for (machine, trainer, dtype), group in ok.groupby(["machine", "trainer", "dtype"]):
        group = group.sort_values("n")
        label = f"{machine}: {trainer} {dtype}" if multi else f"{trainer} {dtype}"
        native = group["native"].iloc[0]
        color = ROLE_COLORS.get(native) or color_of(group.iloc[0])
        ax.plot(group["n"], group["per_epoch_s"], marker="o", ms=3, label=label, color=color,
                ls="-" if dtype == "float64" else ":", lw=2.5 if native else 1.2)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (points)")
    ax.set_ylabel("seconds per epoch (median)")
    ax.set_title(f"{title}: time per epoch against problem size (thick: native loops; red: reading {what} once)")
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return fig

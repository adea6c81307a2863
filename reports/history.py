"""Every saved run of each machine, in order: medians, spread, and the steps between consecutive runs.

Rules: works on the runs reports.load read (each file read once per command);
a file that could not be read is named, with why, in ``errors``; machines and
runs are named as reports.load names them. Runs are ordered per machine by their
number, then by the time pytest-benchmark saved them (two runs can share a
number). A step between consecutive runs of one benchmark (same identity as in
``compare``) gets the verdict ``compare`` would give (reports.stats); only
``slower`` and ``faster`` are flagged. Library-version changes between
consecutive runs of a machine are recorded on the later run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from records.model import IDENTITY
from reports.charts import color_of
from reports.compare import version_changes
from reports.load import Catalogue, Saved
from reports.stats import FASTER, SLOWER, Method, compare_samples, mann_whitney_p
from reports.tables import present

COLUMNS = [
    "machine", "order", "run", "datetime", "kind", "problem", "n", "size", "trainer", "backend", "color", "dtype",
    "epochs", "lr", "median_s", "q1_s", "q3_s", "iqr_s", "rounds", "step", "step_ratio", "versions_changed",
]  # fmt: skip
MARKERS = {SLOWER: ("^", "#c44e52"), FASTER: ("v", "#55a868")}


@dataclass(frozen=True)
class History:
    table: pd.DataFrame  # one row per machine, run and benchmark, in run order
    errors: list[str] = field(default_factory=list)

    @property
    def has_steps(self) -> bool:
        """Whether some machine has more than one readable run."""
        return not self.table.empty and bool((self.table.groupby("machine")["run"].nunique() > 1).any())


def _order_key(saved: Saved) -> tuple[str, str]:
    return saved.path.name[:4], str(saved.record.datetime or "")


def collect(catalogue: Catalogue, method: Method | None = None) -> History:
    """The history of every run that was read, in order per machine."""
    method = method or Method()
    by_machine: dict[str, list[Saved]] = {}
    seen = set()
    for s in catalogue.all:
        if (s.machine, s.run) not in seen:  # a copy of a run is one run
            seen.add((s.machine, s.run))
            by_machine.setdefault(s.machine, []).append(s)
    out = []
    for machine, runs in by_machine.items():
        runs.sort(key=_order_key)
        previous_info: dict | None = None
        last: dict[tuple, dict] = {}  # identity -> its row in the latest run that had it
        for order, run in enumerate(runs):
            rows, info = run.rows, run.machine_info
            changed = "; ".join(version_changes(previous_info, info)) if previous_info is not None else ""
            previous_info = info
            for row in rows:
                identity = tuple(row.get(k) for k in IDENTITY)
                step, step_ratio = "", float("nan")
                before = last.get(identity)
                # Only significant steps can be flagged: the U test first spares most steps the bootstrap.
                if before is not None and len(before["samples"]) and len(row["samples"]) and \
                        mann_whitney_p(before["samples"], row["samples"]) < method.alpha:  # fmt: skip
                    verdict = compare_samples(before["samples"], row["samples"], method)
                    step = verdict.label if verdict.label in MARKERS else ""
                    step_ratio = verdict.ratio
                last[identity] = row
                out.append({**{k: row.get(k) for k in COLUMNS}, "machine": machine, "order": order,
                            "datetime": run.record.datetime, "step": step, "step_ratio": step_ratio,
                            "versions_changed": changed})  # fmt: skip
    return History(table=pd.DataFrame(out, columns=COLUMNS), errors=catalogue.errors)


def summary(history: History) -> pd.DataFrame:
    """For people: one row per benchmark, one column per run, "median (IQR %)" with ▲ slower / ▼ faster steps."""
    df = history.table
    if df.empty:
        return pd.DataFrame()
    cell = (
        present(df[["median_s"]], drop_single=())["median"]
        + " ±"
        + (50 * df["iqr_s"] / df["median_s"]).map(lambda v: f"{v:.0f}%")
    )
    cell = cell + df["step"].map({SLOWER: " ▲", FASTER: " ▼"}).fillna("")
    keys = ["machine", "kind", "problem", "n", "size", "trainer", "dtype"]
    runs = list(dict.fromkeys(df.sort_values(["machine", "order"])["run"]))
    df = df.fillna({"size": ""})  # a plugin's problem in a file of schema 2 or older: a key all the same
    table = df.assign(cell=cell).pivot_table(index=keys, columns="run", values="cell", aggfunc="first")
    table = table.reindex(columns=runs).fillna("").reset_index()
    table.columns.name = None
    if table["machine"].nunique() <= 1:
        table = table.drop(columns="machine")
    return table


def chart(history: History) -> Figure:
    """Median time per run, one line per trainer and dtype (IQR shaded), one panel per machine, kind, problem and
    size (n and its role: the tutorial's 100 points are not a sweep's).

    Log time axis; ▲/▼ mark steps judged slower/faster; dotted verticals mark runs whose library versions
    changed from the run before, with the change written at the top.
    """
    df = history.table.fillna({"size": ""})
    panels = list(df.groupby(["machine", "kind", "problem", "n", "size"], sort=True))
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4.2 * len(panels) + 0.5), layout="constrained",
                             squeeze=False)  # fmt: skip
    for ax, ((machine, kind, problem, n, size), panel) in zip(axes[:, 0], panels, strict=True):
        runs = panel[["order", "run"]].drop_duplicates().sort_values("order")
        for (trainer, dtype), line in panel.groupby(["trainer", "dtype"]):
            line = line.sort_values("order")
            x, y = line["order"].to_numpy(), line["median_s"].to_numpy(dtype=float)
            color = color_of(line.iloc[0])
            drawn = ax.plot(x, y, marker="o", ms=3, lw=1.2, ls="-" if dtype == "float64" else ":", color=color,
                            label=f"{trainer} {dtype}")  # fmt: skip
            ax.fill_between(x, line["q1_s"].to_numpy(dtype=float), line["q3_s"].to_numpy(dtype=float), alpha=0.12,
                            color=drawn[0].get_color(), lw=0)  # fmt: skip
            for step, (marker, mcolor) in MARKERS.items():
                hit = line["step"].to_numpy() == step
                ax.scatter(x[hit], y[hit], marker=marker, s=70, color=mcolor, zorder=3)
        changes = panel[panel["versions_changed"] != ""][["order", "versions_changed"]].drop_duplicates()
        for _, change in changes.iterrows():
            ax.axvline(change["order"], color="#555555", ls=":", lw=1)
            ax.text(change["order"], 1.0, " " + change["versions_changed"], transform=ax.get_xaxis_transform(),
                    rotation=0, va="bottom", fontsize=7, color="#555555")  # fmt: skip
        ax.set_xticks(runs["order"], runs["run"], rotation=30, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("seconds per training run (median)")
        role = f" ({size} size)" if size not in ("default", "") else ""
        ax.set_title(f"{machine}: {kind} {problem}, n={n}{role} (▲ slower, ▼ faster than the run before; shaded: IQR)",
                     fontsize=10)  # fmt: skip
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=6, ncol=3, loc="best")
    return fig


def csv(history: History) -> str:
    return history.table.to_csv(index=False)

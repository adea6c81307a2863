"""Writing a report: results.csv, charts as PNG, report.md and a self-contained report.html.

Rules: every file is written whole or not at all (written beside its target,
then renamed over it); storage is never touched; the HTML embeds its charts,
so the one file can be mailed or opened anywhere. Strings that come from the
saved runs or the command line (trainer ids, machine and run names, paths,
error messages) are escaped in both formats: they never become markup. Both
formats lead with the answer (reports.summary), then a table of contents
whose links are the sections' own ids, then the skipped trainers as one list;
an HTML table scrolls inside its own box rather than widening the page.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from records.model import SEED_PROBLEM
from reports import charts, history, scaling, tables, targets
from reports.history import History
from reports.load import IN_MEMORY, Runs, gpu_label
from reports.summary import Summary, summarize


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a report is an ordinary file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _environment(runs: Runs) -> pd.DataFrame:
    rows = []
    for (machine, run), info in runs.machines.items():
        env = info.get("regbench", {})
        versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v)
        cpu = info.get("cpu", {}).get("brand_raw") or info.get("processor") or ""
        rows.append({"machine": machine, "run": run, "python": env.get("python", info.get("python_version")),
                     "cpu": cpu, "cores": env.get("cpu_count"), "torch threads": env.get("torch_threads"),
                     "gpu": gpu_label(env), "jax platform": env.get("jax_platform"),
                     "jax CPU dispatch": env.get("jax_cpu_dispatch"), "versions": versions})  # fmt: skip
    return pd.DataFrame(rows)


def build(runs: Runs, past: History | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, bytes]]:
    """The report's tables (numbers) and charts (PNG bytes); the history of ``past`` where a machine has runs."""
    speed = tables.speed(runs)
    # The seed's fits (the report leads with its problem), with what the charts draw: their times, loss histories and
    # fitted curves.
    drawn = ["machine", "run", "problem", "n", "trainer", "dtype", "workers", "backend", "native", "reference", "q1_s",
             "q3_s", "diverged", "losses", "curve"]  # fmt: skip
    fit = speed.drop(columns="workers", errors="ignore").merge(
        runs.table[tables.tutorial(runs.table)].reindex(columns=drawn), on=["machine", "run", "n", "trainer", "dtype"]
    )
    out_tables = {"environment": _environment(runs), "speed": speed, "accuracy": tables.accuracy(runs)}
    pngs = {}
    if not fit.empty:
        pngs["time.png"] = _png(charts.time_chart(fit))
        pngs["speedup.png"] = _png(charts.speedup_chart(fit))
        pngs["losses.png"] = _png(charts.loss_chart(fit))
        drawn = _curves(runs, fit)
        if drawn is not None:
            pngs["fit.png"] = _png(drawn)
    sweep = tables.scaled(runs)
    if not sweep.empty:
        out_tables["scaling"] = tables.scaling(runs).reset_index()
        fraction = tables.scaling(runs, "floor_fraction")
        if not fraction.dropna(how="all").empty:
            out_tables["floor fraction"] = fraction.rename(columns=lambda n: f"n={n}").reset_index()
        # The seed's floors alone (one size, a default run: points); the other problems' are in their sections.
        pngs["scaling.png"] = _png(charts.scaling_chart(sweep, tables.floors(runs, at=sweep["n"])))
    if not runs.floor.empty:
        out_tables["bandwidth"] = runs.floor.drop(columns="floor_s")
    if past is not None and past.has_steps:
        out_tables["history"] = history.summary(past)
        pngs["history.png"] = _png(history.chart(past))
    fits = scaling.records(runs)
    if fits["kind"].astype(str).str.startswith("scaling").any():
        study = scaling.study(fits)
        out_tables["dp scaling"] = study.drop(columns="simd")
        out_tables["dp crossover"] = scaling.crossovers(study)
        out_tables["dp targets"] = scaling.targets(fits, study)
        pngs["scaling-dp.png"] = _png(scaling.chart(study))
    for label in tables.problems_of(runs):  # the other problems: one section each (speed, accuracy, time charts)
        if label == SEED_PROBLEM:  # the report's lead, above
            continue
        out_tables[f"problem {label} speed"] = tables.speed(runs, label)
        out_tables[f"problem {label} accuracy"] = tables.accuracy(runs, label)
        rows = _fits(runs, label)
        sizes = tables.sizes_of(runs, label)
        if len(sizes) > 1:
            # A sweep: one scaling table and chart, not a time chart per size. Reports import no problem module
            # (tests/test_layers.py), so they cannot name its DEFAULT_SIZES; a default run has one size per label.
            scaled = tables.scaling(runs, problem=label)
            out_tables[f"problem {label} scaling"] = scaled.reset_index()
            floors = tables.floors(runs, label)
            chart = charts.scaling_chart(rows, floors, "its data", f"Problem {label}")
            pngs[f"problem-{_slug(label)}-scaling.png"] = _png(chart)
            continue
        else:
            for n in sizes:
                sized = rows[rows["n"] == n].dropna(subset=["median_s"])
                if not sized.empty:
                    pngs[f"problem-{_slug(label)}-n{n}.png"] = _png(charts.time_chart(sized))
        if tables.compute_bound(rows):  # an MLP's: each epoch against the machine's matrix-product rate
            pngs[f"problem-{_slug(label)}-compute.png"] = _png(charts.compute_chart(rows))
        drawn = _curves(runs, rows)
        if drawn is not None:
            pngs[f"problem-{_slug(label)}-fit.png"] = _png(drawn)
    out_tables.update(targets.judge(runs))
    return out_tables, pngs


def _fits(runs: Runs, problem: str) -> pd.DataFrame:
    """The fit study's rows of ``problem`` (its label)."""
    table = runs.table
    return table[(table["kind"] == tables.FIT) & (table["problem"] == problem)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _curves(runs: Runs, rows: pd.DataFrame):
    """The fitted-curve chart of the first problem and size among ``rows`` whose data a run kept, with every row of
    it that holds its curve (records.model.FitRecord.curve: only a problem that draws one has them); None without."""
    drawn = rows[rows["curve"].map(lambda curve: curve is not None)]
    for kept in runs.problems.values():
        for problem, x, y in kept:
            mine = drawn[(drawn["problem"] == problem.label) & (drawn["n"] == problem.params.get("n"))]
            if not mine.empty:
                return charts.fit_chart(mine, x, y)
    return None


SECTIONS = [
    ("environment", "Environment", None),
    ("speed", "Speed: one 800-epoch training run on the tutorial's problem", "time.png"),
    (None, "Speed-up over the NumPy tutorial loop", "speedup.png"),
    ("accuracy", "Accuracy and agreement with the float64 NumPy reference", "losses.png"),
    (None, "The fitted curves", "fit.png"),
    ("scaling", "Scaling: time per epoch against n (larger problems; the bandwidth floor first)", "scaling.png"),
    ("floor fraction", "Share of the bandwidth floor: time to read x and y once / time per epoch", None),
    ("bandwidth", "The bandwidth floor: one streaming read of a problem's data (the seed's: x and y)", None),
    ("dp scaling", "Data-parallel scaling: speed-up and efficiency over worker (or thread) counts", "scaling-dp.png"),
    ("dp crossover", "Data-parallel: the smallest n at which k workers beat one", None),
    ("dp targets", "Targets: data-parallel scaling", None),
    ("speed targets", "Targets: speed (ratios of medians in one run)", None),
    ("linear targets", "Targets: the second workload, linear(d=64) at n = 10⁵, per epoch", None),
    ("mlp targets", "Targets: the MLP at its default size, per epoch, against its compute limit", None),
    ("marginal targets", "Targets: the large problem, per epoch and before the first (whole fit() calls)", None),
    ("marginal cost", "Cost per epoch and fixed cost of a whole fit() (two epoch counts, CPU)", None),
    ("overhead", "Targets: what fit() adds over the bare training loop", None),
    ("fit overhead", "Targets: a whole fit() in a fresh process against its loop, for the reference loops", None),
    ("memory", "Targets: peak memory a fit adds at the large size", None),
    (
        "history",
        "History: every saved run, median ±half the IQR (▲ slower, ▼ faster than the run before)",
        "history.png",
    ),
]
NOTES = (
    "Times are medians of complete training runs (data already on the device, compilation excluded and shown "
    "as *first_call*). *speedup* is relative to the reference trainer in the same dtype. Parameters go by their "
    "model's names (the seed's *w* and *b*; a vector by its norm): *NAME_opt* is the optimum's value where the "
    "problem has one, *opt_distance* the distance of every parameter at once to it, *loss_gap* the final loss "
    "above the optimum's; *ref_dNAME*, *ref_rel_NAME* and *ref_loss_rel* compare with the float64 NumPy reference "
    "(loss: largest relative difference over the history). *cold_start* is the first call in a fresh process "
    "with empty compile caches, measured for trainers that compile, and *fresh_fit* a warm fit() in that process, "
    "as a user's script calls it (*fresh_run*: the bare run() between those calls); *peak_memory* is what one "
    "whole fit adds to the process at its peak (on a GPU: the framework allocator's peak), *× data* the same over "
    "the size of its data. A target's bound marked *(restated)* was set again at a limit of JAX or XLA:CPU that "
    f"the evidence names ({targets.RESTATED_EVIDENCE}: its commands, numbers and upstream threads)."
)


def _md_text(value) -> str:
    """A string made inert in Markdown: HTML escaped (renderers pass raw HTML through), and the characters that
    would end a table cell or row or start a link escaped."""
    text = html.escape(str(value), quote=False).replace("\n", " ")
    return re.sub(r"([|\[\]\\])", r"\\\1", text)


def _md_table(df: pd.DataFrame) -> str:
    shown = tables.present(df)
    shown = shown.map(lambda v: _md_text(v) if isinstance(v, str) else v).rename(columns=_md_text)
    # disable_numparse: tabulate would otherwise re-round the strings present() formatted.
    return shown.to_markdown(index=False, disable_numparse=True)


def _sections(out_tables, pngs, summary: Summary) -> list[tuple[str, str, str | None, str | None]]:
    """(anchor, title, table key, chart) of each section the report has, in order; the skipped list first."""
    shown = [("skipped", "Skipped and failed trainers", None, None)] if summary.skipped else []
    for key, title, png in SECTIONS:
        if (key is None or key not in out_tables) and png not in pngs:
            continue
        anchor = re.sub(r"[^a-z0-9]+", "-", (key or png.removesuffix(".png")).lower()).strip("-")
        shown.append((anchor, title, key if key in out_tables else None, png if png in pngs else None))
    # The other problems' sections (build): speed with each size's time chart, the compute limit, their scaling,
    # accuracy, then the fitted curves.
    for key in out_tables:
        if key.startswith("problem ") and key.endswith(" speed"):
            label = key.removeprefix("problem ").removesuffix(" speed")
            charts_of = [p for p in pngs if re.fullmatch(rf"problem-{re.escape(_slug(label))}-n\d+\.png", p)]
            shown.append((_slug(key), f"Problem {label}: speed", key, None))
            shown += [(p.removesuffix(".png"), f"Problem {label}, {p.rsplit('-', 1)[1].removesuffix('.png')}: time",
                       None, p) for p in charts_of]  # fmt: skip
            compute = f"problem-{_slug(label)}-compute.png"
            if compute in pngs:
                title = f"Problem {label}: time per epoch against the compute limit (FLOPs ÷ matrix-product rate)"
                shown.append((compute.removesuffix(".png"), title, None, compute))
            scaled, png = f"problem {label} scaling", f"problem-{_slug(label)}-scaling.png"
            if scaled in out_tables:
                title = f"Problem {label}: time per epoch against n (the bandwidth floor first)"
                shown.append((_slug(scaled), title, scaled, png if png in pngs else None))
            shown.append((_slug(f"problem {label} accuracy"), f"Problem {label}: accuracy and agreement with the "
                          "float64 NumPy reference", f"problem {label} accuracy", None))  # fmt: skip
            fitted = f"problem-{_slug(label)}-fit.png"
            if fitted in pngs:
                shown.append((fitted.removesuffix(".png"), f"Problem {label}: the fitted curves", None, fitted))
    return shown


def _fastest_table(summary: Summary) -> pd.DataFrame:
    return summary.fastest.rename(columns={"median_s": "time_s"})


def _md_summary(summary: Summary, sections) -> list[str]:
    parts = ['<a id="summary"></a>', "## Summary", ""]
    parts += [f"- **Machine**: {_md_text(line)}" for line in summary.machines]
    parts += [f"- **GPU precision policy**: {_md_text(line)}" for line in summary.precision]
    parts += [f"- **Agreement**: {_md_text(line)}" for line in summary.agreement.values()]
    parts += [f"- **{_md_text(summary.targets.capitalize())}**", ""]
    if not summary.fastest.empty:
        parts += ["Fastest trainer of each framework on the tutorial's problem (speed-up over the reference, same "
                  "dtype):", "", _md_table(_fastest_table(summary)), ""]  # fmt: skip
    parts += ["**Contents**: " + " · ".join(f"[{_md_text(title)}](#{anchor})" for anchor, title, _, _ in sections), ""]
    return parts


def _md_skipped(summary: Summary) -> list[str]:
    parts = ['<a id="skipped"></a>', "## Skipped and failed trainers", ""]
    for reason, trainers in summary.skipped:
        parts.append(f"- {_md_text(reason)}: {_md_text(', '.join(trainers))}")
    return [*parts, ""]


def _markdown(out_tables, pngs, errors, summary: Summary) -> str:
    sections = _sections(out_tables, pngs, summary)
    parts = ["# regbench report", ""]
    parts += [f"> could not read: {_md_text(e)}" for e in errors]
    parts += _md_summary(summary, sections)
    parts += [NOTES, ""]
    for anchor, title, key, png in sections:
        if anchor == "skipped":
            parts += _md_skipped(summary)
            continue
        parts += [f'<a id="{anchor}"></a>', f"## {title}", ""]
        if key in out_tables:
            parts += [_md_table(out_tables[key]), ""]
        if png in pngs:
            parts += [f"![{title}]({png})", ""]
    return "\n".join(parts)


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
.table{overflow-x:auto;max-width:100%;margin:1em 0}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;
white-space:nowrap}td:last-child{white-space:normal}th{background:#f0f0f0}img{max-width:100%;display:block;margin:1em 0}
.note{color:#555;font-size:14px}.error{color:#a00}
.summary{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.5em 1.2em;margin:1em 0}
.summary li{margin:.3em 0}.toc{font-size:14px;line-height:1.8}.toc a{margin-right:1em;white-space:nowrap}
.skipped li{font-size:14px;margin:.3em 0}.skipped code{font-size:12px}"""


def _inline_markdown(text: str) -> str:
    """The notes' *emphasis* and `code`, as HTML."""
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)


def _html_table(df: pd.DataFrame) -> str:
    """A table in a box of its own that scrolls sideways when the table is wider than the page."""
    return f"<div class='table'>{tables.present(df).to_html(index=False, border=0)}</div>"


def _html_summary(summary: Summary, sections) -> list[str]:
    esc = html.escape
    items = [f"<li id='machine'><b>Machine</b>: {esc(line)}</li>" for line in summary.machines]
    items += [f"<li id='precision-{index}'><b>GPU precision policy</b>: {esc(line)}</li>"
              for index, line in enumerate(summary.precision)]  # fmt: skip
    items += [f"<li id='agreement-{esc(dtype)}'><b>Agreement</b>: {esc(line)}</li>"
              for dtype, line in summary.agreement.items()]  # fmt: skip
    items.append(f"<li id='targets-met'><b>{esc(summary.targets.capitalize())}</b></li>")
    parts = ["<div class='summary' id='summary'><h2>Summary</h2>", f"<ul>{''.join(items)}</ul>"]
    if not summary.fastest.empty:
        parts += ["<p>Fastest trainer of each framework on the tutorial's problem (speed-up over the reference, "
                  "same dtype):</p>", f"<div id='fastest'>{_html_table(_fastest_table(summary))}</div>"]  # fmt: skip
    parts.append("</div>")
    links = " ".join(f"<a href='#{anchor}'>{esc(title)}</a>" for anchor, title, _, _ in sections)  # room to wrap
    parts.append(f"<nav class='toc' id='contents'><b>Contents</b>: {links}</nav>")
    return parts


def _html_skipped(summary: Summary) -> str:
    items = "".join(f"<li><b>{html.escape(reason)}</b>: {', '.join(f'<code>{html.escape(t)}</code>' for t in trainers)}"
                    "</li>" for reason, trainers in summary.skipped)  # fmt: skip
    return f"<h2 id='skipped'>Skipped trainers</h2><ul class='skipped' id='skipped-list'>{items}</ul>"


def _html(out_tables, pngs, errors, summary: Summary) -> str:
    sections = _sections(out_tables, pngs, summary)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>regbench report</title>"
             f"<style>{CSS}</style></head><body><h1>regbench report</h1>"]  # fmt: skip
    parts += [f"<p class='error'>could not read: {html.escape(e)}</p>" for e in errors]
    parts += _html_summary(summary, sections)
    parts.append(f"<p class='note'>{_inline_markdown(NOTES)}</p>")
    for anchor, title, key, png in sections:
        if anchor == "skipped":
            parts.append(_html_skipped(summary))
            continue
        parts.append(f"<h2 id='{anchor}'>{html.escape(title)}</h2>")
        if key in out_tables:
            parts.append(_html_table(out_tables[key]))
        if png in pngs:
            data = base64.b64encode(pngs[png]).decode()
            parts.append(f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(runs: Runs, out: Path, past: History | None = None) -> list[Path]:
    """Write every file of the report into ``out``; returns their paths."""
    out_tables, pngs = build(runs, past)
    summary = summarize(runs, targets.judge(runs))
    # A flat file: each row's roles (a tuple in the table) as one cell, "; "-joined.
    csv = runs.table.drop(columns=IN_MEMORY).assign(roles=runs.table["roles"].map("; ".join)).to_csv(index=False)
    files = {"results.csv": csv.encode(), **pngs,
             "report.md": _markdown(out_tables, pngs, runs.errors, summary).encode(),
             "report.html": _html(out_tables, pngs, runs.errors, summary).encode()}  # fmt: skip
    for name, data in files.items():
        write_atomic(out / name, data)
    return [out / name for name in files]

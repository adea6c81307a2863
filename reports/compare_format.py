"""``regbench compare``'s output: the verdicts as text (a terminal), Markdown (a CI summary, a PR comment) or JSON.

Rules: one comparison (reports.compare.Comparison) and the options that judged
it make one document in any of the three formats, and the same exit status:
0 nothing failed, 1 a ``slower`` verdict, an accuracy change or a benchmark
missing from NEW (unless allowed). Text is what ``compare`` always printed.
Markdown is a GitHub-flavoured table between the same header lines and the
same final ``ok``/``FAIL`` line. JSON is one document with every number
unrounded (NaN, where a number does not exist, is ``null``), so a script never
parses the text. Unusable input (exit 2) never reaches this module: it is one
line on stderr and nothing on stdout, in every format.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reports import tables
from reports.compare import Comparison
from reports.stats import Method

FORMATS = ("text", "markdown", "json")
#: The version of the JSON document's layout; raised when a field changes meaning or goes away.
JSON_SCHEMA = 1


@dataclass(frozen=True)
class Outcome:
    """Whether the comparison failed, why, the final line and the exit status."""

    failed: bool
    reasons: list[str]
    line: str  # "ok: ..." or "FAIL: ..."
    status: int


def outcome(result: Comparison, method: Method, max_drift: float, allow_missing: bool) -> Outcome:
    if result.failed(allow_missing):
        reasons = [f"{len(result.slower)} slower beyond {method.threshold:.0%}"] if len(result.slower) else []
        reasons += [f"{len(result.drifted)} accuracy change(s)"] if len(result.drifted) else []
        reasons += [f"{len(result.missing)} missing from NEW"] if result.missing and not allow_missing else []
        return Outcome(True, reasons, "FAIL: " + ", ".join(reasons), 1)
    line = f"ok: no significant slow-down beyond {method.threshold:.0%}, no accuracy change beyond {max_drift:g}"
    return Outcome(False, [], line, 0)


def _header(paths: tuple[Path, Path], result: Comparison, method: Method, max_drift: float) -> list[str]:
    yardsticks = [f"machine: {result.yardsticks.line()}"] if result.yardsticks is not None else []
    return [
        f"compare: BASE {paths[0]} → NEW {paths[1]}",
        f"method: {method.describe()}; accuracy: final loss, every parameter within {max_drift:g} (relative)",
        "environment: " + ("; ".join(result.environment) or "same library versions, CPU, GPU and threads"),
        *yardsticks,
    ]


def _counts(table: pd.DataFrame) -> dict[str, int]:
    """How many rows got each verdict (``slower``, ``same`` …, without the reasons), most frequent first."""
    return {str(v): int(n) for v, n in table["verdict"].value_counts().items()}


def _verdicts_line(table: pd.DataFrame) -> str:
    return "verdicts: " + (", ".join(f"{n} {v}" for v, n in _counts(table).items()) or "none")


def _shown(table: pd.DataFrame, varying: tuple[str, ...] = ()) -> pd.DataFrame:
    """The table for people: problem, size, workers, threads and the ``varying`` columns only where they vary; never
    lr.

    Epochs and lr are in every row's identity and in the JSON; text leaves epochs out, as it always has.
    """
    drop = ["lr", "reason", "accuracy_ok", "base_others_cpu", "new_others_cpu",  # the reason says where they count
            *(c for c in ("epochs",) if c not in varying)]  # fmt: skip
    # For people, a verdict and its reason are one cell, as compare always printed them.
    said = table["verdict"].where(table["reason"] == "", table["verdict"] + ": " + table["reason"])
    return tables.present(table.assign(verdict=said).drop(columns=drop),
                          drop_single=("problem", "size", "workers", "threads", *varying))  # fmt: skip


def text(result: Comparison, paths, method: Method, max_drift: float, allow_missing: bool) -> str:
    lines = _header(paths, result, method, max_drift)
    lines.append(_shown(result.table).to_string(index=False) if not result.table.empty else "no common benchmarks")
    for title, items in (("new in NEW", result.added), ("missing from NEW", result.missing)):
        if items:
            lines.append("\n  ".join([f"{title}:", *items]))
    lines.append(_verdicts_line(result.table))
    lines.append(outcome(result, method, max_drift, allow_missing).line)
    return "\n".join(lines)


def _cell(value) -> str:
    """A Markdown table cell: pipes escaped, on one line."""
    return " ".join(str(value).split()).replace("|", "\\|")


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``df`` as it stands (no index); numbers right-aligned."""
    align = ["---:" if pd.api.types.is_numeric_dtype(df[c]) else ":---" for c in df.columns]
    rows = [[_cell(c) for c in df.columns], align, *([_cell(v) for v in row] for row in df.itertuples(index=False))]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def markdown(result: Comparison, paths, method: Method, max_drift: float, allow_missing: bool) -> str:
    done = outcome(result, method, max_drift, allow_missing)
    lines = [
        f"### regbench compare: {'FAIL' if done.failed else 'ok'}",
        "",
        *(f"- {_cell(line)}" for line in _header(paths, result, method, max_drift)),
        "",
        markdown_table(_shown(result.table, varying=("epochs",))) if not result.table.empty else "no common benchmarks",
    ]
    for title, items in (("new in NEW", result.added), ("missing from NEW", result.missing)):
        if items:
            lines += ["", f"{title}:", "", *(f"- {_cell(item)}" for item in items)]
    lines += ["", _verdicts_line(result.table), "", f"**{done.line.split(':', 1)[0]}**:{done.line.split(':', 1)[1]}"]
    return "\n".join(lines)


def _number(value):
    """A JSON number, or null where there is none (NaN, infinity); numpy scalars made Python's."""
    if value is None or isinstance(value, bool):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


def _environment(change: str) -> dict[str, str]:
    """``"what: base → new"`` (reports.compare.environment_changes) as its three parts."""
    what, _, values = change.partition(": ")
    base, _, new = values.rpartition(" → ")
    return {"what": what, "base": base, "new": new}


def _row(row: pd.Series) -> dict:
    return {
        "kind": row["kind"],
        "problem": row["problem"],
        "trainer": row["trainer"],
        "dtype": row["dtype"],
        "n": int(row["n"]),
        "size": row["size"],
        "epochs": int(row["epochs"]),
        "lr": _number(row["lr"]),
        "workers": int(row["workers"]),
        "threads": int(row["threads"]),
        "base_rounds": int(row["base_rounds"]),
        "new_rounds": int(row["new_rounds"]),
        "base_median_s": _number(row["base_median_s"]),
        "new_median_s": _number(row["new_median_s"]),
        "ratio": _number(row["ratio"]),
        "ci_low": _number(row["ci_low"]),
        "ci_high": _number(row["ci_high"]),
        "p_value": _number(row["p_value"]),
        "verdict": row["verdict"],
        "reason": row["reason"],
        "drift": _number(row["drift"]),
        "accuracy": row["accuracy"],
        "accuracy_ok": bool(row["accuracy_ok"]),
    }


def document(result: Comparison, paths, method: Method, max_drift: float, allow_missing: bool) -> dict:
    """The comparison as one JSON-ready dict (see ``json_text``)."""
    done = outcome(result, method, max_drift, allow_missing)
    band_low, band_high = method.band
    return {
        "schema": JSON_SCHEMA,
        "base": str(paths[0]),
        "new": str(paths[1]),
        "method": {
            "description": method.describe(),
            "test": method.test,
            "alpha": method.alpha,
            "interval": method.interval,
            "confidence": 1 - method.alpha,
            "resamples": method.n_resamples,
            "seed": method.seed,
            "min_rounds": method.min_rounds,
        },
        "thresholds": {
            "threshold": method.threshold,
            "band": [band_low, band_high],
            "max_drift": max_drift,
            "allow_missing": allow_missing,
        },
        "environment": [_environment(change) for change in result.environment],
        "yardsticks": result.yardsticks.document() if result.yardsticks is not None else None,
        "rows": [_row(row) for _, row in result.table.iterrows()],
        "verdicts": _counts(result.table),
        "added": list(result.added),
        "missing": list(result.missing),
        "result": "FAIL" if done.failed else "ok",
        "reasons": done.reasons,
        "summary": done.line,
        "exit_status": done.status,
    }


def json_text(result: Comparison, paths, method: Method, max_drift: float, allow_missing: bool) -> str:
    return json.dumps(document(result, paths, method, max_drift, allow_missing), indent=2, allow_nan=False)


def render(fmt: str, result: Comparison, paths, method: Method, max_drift: float, allow_missing: bool):
    """``(output, exit status)`` of ``compare`` in format ``fmt`` (one of FORMATS)."""
    write = {"text": text, "markdown": markdown, "json": json_text}[fmt]
    status = outcome(result, method, max_drift, allow_missing).status
    return write(result, paths, method, max_drift, allow_missing), status

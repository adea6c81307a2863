"""The targets over several saved runs of a machine: ``regbench targets`` (by default its newest 3 runs, quick ones
apart).

Rules: each run is judged alone (reports.targets: ratios of medians measured
side by side within the run); a target's verdict over the runs is the median of
the runs' values, with their range (lowest to highest) as its interval: ``met``
when every run that measured it met it (the whole interval on the good side of
the bound), ``not met`` when none did, ``undecided`` when the interval straddles
the bound. A run that did not measure a target is left out of its count; a
verdict from one run is ``provisional``; a target no run measured is ``not
measured``, never counted. Which runs: a machine's newest N runs that are not quick (a
quick run is judged on its own only); runs are ordered by their number.
"""

from __future__ import annotations

import pandas as pd

from reports.load import Saved

#: Each target table's value column (reports.targets): the ratio or share its bound is set on.
VALUES = ("measured", "overhead", "memory_ratio")
MET, NOT_MET, UNDECIDED, NOT_MEASURED = "met", "not met", "undecided", "not measured"
PROVISIONAL = " (provisional: 1 run)"


def newest_runs(saved: list[Saved], count: int) -> list[Saved]:
    """Each machine's newest ``count`` runs that are not quick (default or full), oldest first; a machine with quick
    runs only: its newest one."""
    chosen = []
    for machine in dict.fromkeys(s.machine for s in saved):
        mine = sorted((s for s in saved if s.machine == machine), key=lambda s: (s.path.name, s.record.datetime or ""))
        full = [s for s in mine if not s.record.regbench.quick]
        chosen += full[-count:] if full else mine[-1:]
    return chosen


def _verdict(group: pd.DataFrame, value: str) -> tuple[object, str, int]:
    """(met: True, False or None; the verdict's word; how many runs measured it)."""
    measured = group[group[value].notna()]
    verdicts = measured["met"].dropna().astype(bool)
    if verdicts.empty:
        judged = "required" in group and (group["required"] != "").any() and "target" in group
        return None, NOT_MEASURED if judged and measured.empty else "", len(measured)
    if verdicts.all():
        met, word = True, MET
    elif not verdicts.any():
        met, word = False, NOT_MET
    else:
        met, word = None, UNDECIDED
    return met, word + (PROVISIONAL if len(verdicts) == 1 else ""), len(measured)


def _joined(values: pd.Series) -> str:
    return ", ".join(str(v) for v in dict.fromkeys(values) if v)


def _size(group: pd.DataFrame, value: str) -> int | str:
    """The size of a target over runs: the n of the runs that measured it, else of those that ran its size; ""
    where none did."""
    found = [n for rows in (group[group[value].notna()], group) for n in rows["n"] if n != "" and pd.notna(n)]
    return found[0] if found else ""


def over_runs(judged: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """The target tables of several runs (reports.targets.judge of each) as one verdict per target over them."""
    out = {}
    for title in dict.fromkeys(title for tables in judged for title in tables):
        tables = [tables[title] for tables in judged if title in tables and not tables[title].empty]
        if not tables or "met" not in tables[0]:  # the marginal costs a table of targets is judged from: the newest
            out[title] = tables[-1] if tables else next(t[title] for t in judged if title in t)
            continue
        df = pd.concat(tables, ignore_index=True)
        value = next(column for column in VALUES if column in df)
        # A target's size is its measured rows' (reports.targets: none where a run did not measure it), so a target
        # is one row whichever runs measured it; a table of trainers (overhead, memory) keeps a row per size.
        sized = "target" in df and "n" in df
        keys = [c for c in ("machine", "dtype", "n", "target") if c in df and not (sized and c == "n")]
        keys += [] if "target" in df else ["trainer"]
        rows = []
        for key, group in df.groupby(keys, sort=False, dropna=False):
            met, word, count = _verdict(group, value)
            measured = group[value].dropna().astype(float)
            row = dict(zip(keys, key, strict=True))
            if sized:  # in its place, before the target
                target = row.pop("target")
                row.update(n=_size(group, value), target=target)
            for name in ("trainer", "against"):
                if name in group and name not in keys:
                    row[name] = _joined(group.loc[group[value].notna(), name])
            row.update({value: measured.median() if count else float("nan"), "low": measured.min() if count else None,
                        "high": measured.max() if count else None, "runs": count,
                        "required": group["required"].iloc[0] if "required" in group else "", "met": met,
                        "verdict": word})  # fmt: skip
            rows.append(row)
        out[title] = pd.DataFrame(rows)
    return out


def counts(tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    """How many targets got each verdict (provisional ones with their word)."""
    verdicts = pd.concat([t["verdict"].str.removesuffix(PROVISIONAL) for t in tables.values() if "verdict" in t])
    return {word: int((verdicts == word).sum()) for word in (MET, NOT_MET, UNDECIDED, NOT_MEASURED)}


def not_measured(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The targets no run measured, each once."""
    found = [t.loc[t["verdict"] == NOT_MEASURED, "target"] for t in tables.values() if {"verdict", "target"} <= set(t)]
    return list(dict.fromkeys(target for column in found for target in column))


def line(tables: dict[str, pd.DataFrame], runs: list[str]) -> str:
    """The verdicts' count over the runs, and which runs: "over 3 runs (…): 20 of 24 met; …"."""
    c = counts(tables)
    judged = c[MET] + c[NOT_MET] + c[UNDECIDED]
    over = f"over {len(runs)} run{'s' * (len(runs) > 1)} ({', '.join(runs)})"
    if len(runs) == 1:
        over = f"provisional: {over}; `regbench targets --runs 3` judges a machine's newest 3 runs, quick ones apart"
    parts = [f"{c[MET]} of {judged} met"] + [f"{c[w]} {w}" for w in (NOT_MET, UNDECIDED) if c[w]]
    if c[NOT_MEASURED]:
        names = ", ".join(not_measured(tables))
        parts.append(f"{c[NOT_MEASURED]} not measured (regbench run --full judges them: {names})")
    return f"targets {over}: " + "; ".join(parts)

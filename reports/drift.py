"""How far the machine itself moved between two saved runs, from yardsticks that no trainer's code change touches.

Rules: the yardsticks are the benchmarks of the native roles
(records.roles.NATIVE_ROLES: Numba's plain compiled loops, the CPU limit: code
a framework's change never reaches) and the bandwidth floor (a copy of the
data), wherever both runs have them (a benchmark by its identity, a floor by
problem, device, n and dtype). Their ratios NEW/BASE are what the machine did
between the runs: another job, a clock, a neighbour's cache. ``between_runs``
gives their median and range, or None where the runs share no yardstick.
``discounted`` keeps a ``slower`` verdict only where the whole interval lies
above the threshold on top of the yardsticks' median ratio, where it is above
1 (a ``faster`` one only below the threshold under it, where it is below 1:
the median, as one noisy yardstick must not disarm the gate); any other becomes
``unreliable``, the reason saying it is unsure within the machine's drift and
pointing to ``regbench ab``, which pairs the two sides in time. A machine that
did not move (every ratio 1) changes nothing.

The yardsticks feel a machine that runs slower, not a share of its cores taken
by another job (their rounds are tens of µs, between two preemptions). That is
read per benchmark instead: the share of the machine's CPU time other processes
took during its rounds (``others_cpu``, bench.contention). ``shared`` makes a
``slower`` or ``faster`` verdict unsure where either side's share exceeds
SHARED_CPU: the job beside it, not the code, may have made the difference.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.compare import Comparison, _indexed, label
from reports.load import Runs
from reports.stats import FASTER, SLOWER, UNRELIABLE, Method

#: The share of the machine's CPU time other processes may take during a benchmark's rounds, on either side, before
#: a speed verdict between the runs is unsure: an idle machine's daemons take ~1 %, a hog on one core of two 50 %.
SHARED_CPU = 0.10

#: A floor's identity in a run.
FLOOR_KEY = ["problem", "device", "n", "dtype"]


@dataclass(frozen=True)
class Drift:
    """The yardsticks' ratios NEW/BASE, by what they measure."""

    ratios: dict[str, float]

    @property
    def median(self) -> float:
        return float(np.exp(np.median(np.log(list(self.ratios.values())))))

    @property
    def low(self) -> float:
        return min(self.ratios.values())

    @property
    def high(self) -> float:
        return max(self.ratios.values())

    def line(self) -> str:
        count = len(self.ratios)
        return (f"the machine's yardsticks moved {self.median - 1:+.0%} (median of {count} benchmark"
                f"{'s' * (count > 1)} no code change touches: native loops, bandwidth floor; from "
                f"{self.low - 1:+.0%} to {self.high - 1:+.0%})")  # fmt: skip

    def document(self) -> dict:
        return {"ratio": self.median, "low": self.low, "high": self.high, "count": len(self.ratios),
                "line": self.line(), "yardsticks": dict(self.ratios)}  # fmt: skip


def _floors(runs: Runs) -> pd.Series:
    return runs.floor.drop_duplicates(FLOOR_KEY).set_index(FLOOR_KEY)["floor_s"].astype(float)


def between_runs(base: Runs, new: Runs) -> Drift | None:
    """The drift between two runs' yardsticks; None where they share none."""
    b, n = _indexed(base), _indexed(new)
    native = [i for i in b.index.intersection(n.index, sort=False) if b.loc[i, "native"]]
    ratios = {label(i): float(n.loc[i, "median_s"] / b.loc[i, "median_s"]) for i in native}
    fb, fn = _floors(base), _floors(new)
    for key in fb.index.intersection(fn.index, sort=False):
        problem, device, size, dtype = key
        ratios[f"bandwidth floor {device} {dtype} ({problem}, n={size})"] = float(fn[key] / fb[key])
    ratios = {k: v for k, v in ratios.items() if np.isfinite(v) and v > 0}
    return Drift(ratios) if ratios else None


def discounted(result: Comparison, drift: Drift | None, method: Method) -> Comparison:
    """The comparison with the speed verdicts that the machine's drift could explain made unsure (``unreliable``)."""
    if drift is None:
        return result
    band_lo, band_hi = method.band
    up, down = max(drift.median, 1.0), min(drift.median, 1.0)
    table = result.table.copy()
    label_of = table["verdict"]
    unsure = ((label_of == SLOWER) & (table["ci_low"] <= band_hi * up)) | (
        (label_of == FASTER) & (table["ci_high"] >= band_lo * down)
    )
    for i in table.index[unsure]:
        moved = f"{up - 1:+.0%}" if label_of[i] == SLOWER else f"{down - 1:+.0%}"
        table.loc[i, "verdict"] = UNRELIABLE
        table.loc[i, "reason"] = (
            f"unsure: CI [{table.loc[i, 'ci_low']:.3g}, {table.loc[i, 'ci_high']:.3g}] is within "
            f"the machine's drift (yardsticks {moved}) and the {method.threshold:.0%} threshold; "
            "regbench ab pairs the two in time"
        )
    return dataclasses.replace(result, table=table, yardsticks=drift)


def shared(result: Comparison) -> Comparison:
    """The comparison with the speed verdicts of benchmarks that ran beside other jobs made unsure (``unreliable``):
    those where other processes took more than SHARED_CPU of the machine's CPU time during either side's rounds."""
    table = result.table.copy()
    busy = table[["base_others_cpu", "new_others_cpu"]].astype(float).fillna(0.0)
    unsure = table["verdict"].isin([SLOWER, FASTER]) & (busy.max(axis=1) > SHARED_CPU)
    for i in table.index[unsure]:
        table.loc[i, "verdict"] = UNRELIABLE
        table.loc[i, "reason"] = (
            f"unsure: other processes took {busy.loc[i, 'base_others_cpu']:.0%} (BASE) and "
            f"{busy.loc[i, 'new_others_cpu']:.0%} (NEW) of the CPUs during its rounds, over {SHARED_CPU:.0%}; "
            "regbench ab pairs the two in time"
        )
    return dataclasses.replace(result, table=table)

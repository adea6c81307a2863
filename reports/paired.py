"""Is NEW slower than BASE, from interleaved pairs of fresh processes (``regbench ab``)? Verdicts from per-pair medians.

Rules: a pair is one process of each side, run back to back (regbench.ab runs
them in ABBA order); what the machine does to both halves of a pair — another
job, a clock that moved — cancels in their ratio, so only the K per-pair log
ratios log(median NEW / median BASE) are judged, never the rounds pooled over
processes. The test is scipy's two-sided Wilcoxon signed-rank test on those log
ratios (exact for fewer than 50 pairs), the interval a percentile bootstrap
of their median, exponentiated (the median ratio), at confidence 1 − alpha with
a fixed seed; the verdict words and rules are reports.stats': ``slower`` when
p < alpha and the whole interval lies above 1 + threshold, ``faster`` when it
lies below 1/(1 + threshold), ``same`` when it lies inside that band,
``unreliable`` (with why) otherwise, and always with fewer pairs than the
signed-rank test needs to reach alpha. Each benchmark also gets the smallest
slow-down these pairs could have called (``detectable``): the threshold widened
by the lower half of the interval. Pure functions of numbers; the rows are
reports.compare's, so reports.compare_format writes them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from records.model import IDENTITY
from reports.compare import COLUMNS, Comparison, _accuracy, _indexed, label
from reports.load import Runs
from reports.stats import FASTER, SAME, SLOWER, UNRELIABLE, band, verdict_rules

#: The paired table's columns: compare's, then the number of pairs and the smallest detectable slow-down.
PAIRED_COLUMNS = [*COLUMNS, "pairs", "detectable"]


def min_pairs(alpha: float) -> int:
    """The fewest pairs with which the exact two-sided signed-rank test can reach p < alpha (every pair one way:
    p = 2 / 2^K)."""
    return max(1, math.floor(math.log2(2 / alpha)) + 1)


@dataclass(frozen=True)
class PairedMethod:
    """How paired medians are judged; ``describe()`` is the header ``ab`` prints."""

    threshold: float = 0.05  # the smallest change worth a verdict, as a fraction of BASE's median
    alpha: float = 0.01  # level of the signed-rank test; the interval's confidence is 1 − alpha
    n_resamples: int = 2000
    seed: int = 0
    test: ClassVar[str] = "two-sided Wilcoxon signed-rank on log(median NEW / median BASE) per pair"
    interval: ClassVar[str] = "percentile bootstrap of the median per-pair ratio"

    @property
    def band(self) -> tuple[float, float]:
        return band(self.threshold)

    @property
    def min_rounds(self) -> int:
        """The fewest pairs that can give a verdict (compare_format's field name for the fewest samples)."""
        return min_pairs(self.alpha)

    def describe(self) -> str:
        return (
            f"pairs of fresh processes in ABBA order; {self.test}, α = {self.alpha:g}; {1 - self.alpha:.0%} "
            f"{self.interval} ({self.n_resamples} resamples, seed {self.seed}); {verdict_rules(self.threshold)}; "
            f"at least {self.min_rounds} pairs"
        )


@dataclass(frozen=True)
class PairedVerdict:
    label: str
    reason: str = ""
    ratio: float = float("nan")  # exp(median of the per-pair log ratios)
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    p_value: float = float("nan")
    pairs: int = 0
    detectable: float = float("inf")  # the smallest NEW/BASE ratio these pairs could have called slower

    @property
    def text(self) -> str:
        return f"{self.label}: {self.reason}" if self.reason else self.label


def signed_rank_p(log_ratios: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value; 1.0 where every pair is a tie (no evidence either way)."""
    if not np.any(log_ratios):
        return 1.0
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ties or zeros: scipy switches to its normal approximation
        return float(stats.wilcoxon(log_ratios, alternative="two-sided").pvalue)


def median_ci(log_ratios: np.ndarray, method: PairedMethod) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median per-pair ratio (of the log ratios' median, exponentiated)."""
    if np.ptp(log_ratios) == 0:  # every pair the same ratio: the bootstrap has nothing to resample
        return float(np.exp(log_ratios[0])), float(np.exp(log_ratios[0]))
    from scipy import stats

    result = stats.bootstrap(
        (log_ratios,),
        np.median,
        n_resamples=method.n_resamples,
        confidence_level=1 - method.alpha,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(method.seed),
    )
    return float(np.exp(result.confidence_interval.low)), float(np.exp(result.confidence_interval.high))


def compare_pairs(base_medians, new_medians, method: PairedMethod | None = None) -> PairedVerdict:
    """The verdict on K pairs of medians (``base_medians[i]`` and ``new_medians[i]`` ran back to back)."""
    method = method or PairedMethod()
    base, new = np.asarray(base_medians, dtype=float), np.asarray(new_medians, dtype=float)
    keep = np.isfinite(base) & np.isfinite(new) & (base > 0) & (new > 0)
    d = np.log(new[keep] / base[keep])
    if len(d) == 0:
        return PairedVerdict(UNRELIABLE, "no pair with a time on both sides")
    ratio = float(np.exp(np.median(d)))
    needed = method.min_rounds
    if len(d) < needed:
        why = f"{len(d)} pairs: the signed-rank test needs {needed} to reach p < {method.alpha:g} (--pairs)"
        return PairedVerdict(UNRELIABLE, why, ratio, pairs=len(d))
    lo, hi = median_ci(d, method)
    p = signed_rank_p(d)
    band_lo, band_hi = method.band
    detectable = band_hi * ratio / lo if lo > 0 else float("inf")
    numbers = {"ratio": ratio, "ci_low": lo, "ci_high": hi, "p_value": p, "pairs": len(d), "detectable": detectable}
    if p < method.alpha and lo > band_hi:
        return PairedVerdict(SLOWER, **numbers)
    if p < method.alpha and hi < band_lo:
        return PairedVerdict(FASTER, **numbers)
    if band_lo <= lo and hi <= band_hi:
        return PairedVerdict(SAME, **numbers)
    ci = f"CI [{lo:.3g}, {hi:.3g}]"
    if lo > band_hi or hi < band_lo:
        why = f"{ci} is beyond the threshold but the signed-rank test is not significant (p = {p:.2g})"
    elif np.log(hi / lo) < np.log(band_hi / band_lo):
        why = f"{ci} straddles the threshold {band_hi if hi > band_hi else band_lo:.3g} (p = {p:.2g})"
    else:
        spread = float(np.subtract(*np.percentile(d, [75, 25])))
        why = f"{ci} too wide to tell a {method.threshold:.0%} change: the pairs' log ratios spread {spread:.1%} (IQR)"
    return PairedVerdict(UNRELIABLE, why, **numbers)


def _medians(trials: pd.DataFrame) -> pd.Series:
    """Each trial's median: of its rounds, or pytest-benchmark's where the rounds were not kept."""
    return pd.Series([float(np.median(s)) if len(s) else m for s, m in zip(trials["samples"], trials["median_s"],
                      strict=True)], index=trials.index)  # fmt: skip


def _stacked(trials: list[Runs]) -> pd.DataFrame:
    """Every trial's benchmarks, indexed by identity and the trial's number."""
    frames = [_indexed(runs).assign(trial=i).set_index("trial", append=True) for i, runs in enumerate(trials)]
    return pd.concat(frames)


def compare_trials(base: list[Runs], new: list[Runs], method: PairedMethod | None = None, max_drift: float = 1e-4):
    """Pair trial ``i`` of BASE with trial ``i`` of NEW, benchmark by benchmark (by identity), and judge each."""
    method = method or PairedMethod()
    b, n = _stacked(base), _stacked(new)
    b_ids = b.index.droplevel("trial").unique()
    n_ids = n.index.droplevel("trial").unique()
    rows = []
    for identity in b_ids.intersection(n_ids, sort=False):
        rb, rn = b.xs(identity, level=IDENTITY), n.xs(identity, level=IDENTITY)
        both = rb.index.intersection(rn.index)  # the trials where both sides measured it
        base_med, new_med = _medians(rb.loc[both]), _medians(rn.loc[both])
        verdict = compare_pairs(base_med.to_numpy(), new_med.to_numpy(), method)
        drift, accuracy = _accuracy(rb.iloc[0], rn.iloc[0], max_drift)
        rows.append({
            **dict(zip(IDENTITY, identity, strict=True)),
            "base_rounds": int(rb["rounds"].sum()), "new_rounds": int(rn["rounds"].sum()),
            "base_median_s": float(np.median(base_med)), "new_median_s": float(np.median(new_med)),
            "ratio": verdict.ratio, "ci_low": verdict.ci_low, "ci_high": verdict.ci_high,
            "p_value": verdict.p_value, "drift": drift, "verdict": verdict.label, "reason": verdict.reason,
            "accuracy": accuracy, "accuracy_ok": accuracy == "ok", "pairs": verdict.pairs,
            "detectable": verdict.detectable,
        })  # fmt: skip
    return Comparison(
        table=pd.DataFrame(rows, columns=PAIRED_COLUMNS),
        added=[label(i) for i in n_ids.difference(b_ids, sort=False)],
        missing=[f"{label(i)}: not in NEW" for i in b_ids.difference(n_ids, sort=False)],
    )

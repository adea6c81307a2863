"""Is NEW slower than BASE? A verdict from every round's time of the two runs.

Rules: pure functions of two numpy arrays of per-round seconds; the statistics
are scipy's, the randomness a fixed seed, so one pair of samples always gets
the same verdict. A change is called only when two things hold at once: the
two-sided Mann–Whitney U test rejects "same distribution" at level ``alpha``,
and the whole ``1 − alpha`` bootstrap confidence interval of
median(NEW)/median(BASE) lies beyond the threshold (above ``1 + threshold``:
``slower``; below ``1 / (1 + threshold)``: ``faster``, the same distance on a
log scale). ``same`` needs the whole interval inside the band between them.
Anything else (too few rounds, no raw samples, an interval too wide or
straddling a band edge) is ``unreliable``, with the reason, and never a
failure: a shared machine's noise must not pass for a regression.

Memory is bounded whatever the number of rounds: up to ``EXACT_MAX_ROUNDS`` a
side, scipy resamples every round (500 resamples at a time: ~115 MiB at the
limit), as it always has, so such samples keep their intervals draw for draw;
beyond it, each resample's median is drawn directly from its order statistic
(the same bootstrap distribution, other random draws), in memory linear in the
rounds rather than in resamples × rounds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

SLOWER, FASTER, SAME, UNRELIABLE = "slower", "faster", "same", "unreliable"


def band(threshold: float) -> tuple[float, float]:
    """Ratios NEW/BASE counted as no change: [1/(1+t), 1+t], symmetric on a log scale."""
    return 1 / (1 + threshold), 1 + threshold


def verdict_rules(threshold: float) -> str:
    """How a test's p-value and a ratio's interval make a verdict, as ``compare`` and ``ab`` state it."""
    lo, hi = band(threshold)
    return (f"threshold {threshold:.0%}: slower = p < α and CI above {hi:.3g}, faster = p < α and CI below "
            f"{lo:.3g}, same = CI inside [{lo:.3g}, {hi:.3g}], otherwise unreliable")  # fmt: skip


@dataclass(frozen=True)
class Method:
    """How two samples are compared; ``describe()`` is the header ``compare`` and ``history`` print."""

    threshold: float = 0.10  # the smallest change worth a verdict, as a fraction of BASE's median
    alpha: float = 0.01  # level of the Mann–Whitney U test; the interval's confidence is 1 − alpha
    min_rounds: int = 5  # fewer rounds on a side: unreliable (the smallest U-test p-value with 4 + 4 is 0.029)
    n_resamples: int = 2000
    seed: int = 0
    test: ClassVar[str] = "two-sided Mann–Whitney U"
    interval: ClassVar[str] = "percentile bootstrap of median(NEW)/median(BASE)"

    @property
    def band(self) -> tuple[float, float]:
        return band(self.threshold)

    def describe(self) -> str:
        return (
            f"two-sided Mann–Whitney U test on every round's time, α = {self.alpha:g}; "
            f"{1 - self.alpha:.0%} percentile-bootstrap CI of median(NEW)/median(BASE) "
            f"({self.n_resamples} resamples, seed {self.seed}); {verdict_rules(self.threshold)}; "
            f"at least {self.min_rounds} rounds a side"
        )


@dataclass(frozen=True)
class Verdict:
    """The comparison of one benchmark's two samples."""

    label: str  # slower | faster | same | unreliable
    reason: str = ""
    ratio: float = float("nan")  # median(NEW) / median(BASE)
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    p_value: float = float("nan")
    base_rounds: int = 0
    new_rounds: int = 0

    @property
    def text(self) -> str:
        return f"{self.label}: {self.reason}" if self.reason else self.label


def spread(sample: np.ndarray) -> float:
    """Relative spread of a sample: IQR / median."""
    q1, median, q3 = np.percentile(sample, [25, 50, 75])
    return float((q3 - q1) / median) if median > 0 else float("inf")


def _ratio_of_medians(base: np.ndarray, new: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(new, axis=axis) / np.median(base, axis=axis)


#: Up to this many rounds on either side, scipy resamples whole samples (~115 MiB; 10⁶ rounds would need ~11 GiB).
EXACT_MAX_ROUNDS = 10_000


def ratio_ci(base: np.ndarray, new: np.ndarray, method: Method) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of median(new)/median(base), the samples resampled independently.

    Percentile, not scipy's default BCa: BCa's acceleration comes from the jackknife, which is not consistent
    for a median, and with a handful of rounds it warns and returns NaN.
    """
    if max(len(base), len(new)) > EXACT_MAX_ROUNDS:
        return _order_statistic_ci(base, new, method)
    from scipy import stats  # imported on first use: ~2 s that a report of one run never needs

    result = stats.bootstrap(
        (base, new),
        _ratio_of_medians,
        n_resamples=method.n_resamples,
        confidence_level=1 - method.alpha,
        method="percentile",
        vectorized=True,
        batch=500,  # bounds memory: 500 × EXACT_MAX_ROUNDS indices and values per side at a time
        rng=np.random.default_rng(method.seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def bootstrap_medians(sample: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """The medians of ``n_resamples`` bootstrap resamples of ``sample``, without drawing the resamples.

    A resample is ``sorted[floor(n·U_i)]`` for n uniforms U_i, and floor(n·u) is monotone in u, so its k-th
    smallest value is ``sorted[floor(n·U_(k))]`` with U_(k) ~ Beta(k, n − k + 1); for an even n the next one,
    U_(k+1), is U_(k) plus the smallest of the n − k uniforms above it: (1 − U_(k))·Beta(1, n − k). Exact,
    not an approximation: the same distribution as resampling every round, in O(n + n_resamples) memory.
    """
    ordered = np.sort(sample)
    n = len(ordered)
    k = (n + 1) // 2  # the lower middle, 1-based
    low = rng.beta(k, n - k + 1, n_resamples)
    lower = ordered[np.minimum((n * low).astype(np.int64), n - 1)]
    if n % 2:
        return lower
    high = low + (1 - low) * rng.beta(1, n - k, n_resamples)
    upper = ordered[np.minimum((n * high).astype(np.int64), n - 1)]
    return (lower + upper) / 2


def _order_statistic_ci(base: np.ndarray, new: np.ndarray, method: Method) -> tuple[float, float]:
    rng = np.random.default_rng(method.seed)
    base_medians = bootstrap_medians(base, method.n_resamples, rng)
    ratios = bootstrap_medians(new, method.n_resamples, rng) / base_medians
    low, high = np.quantile(ratios, [method.alpha / 2, 1 - method.alpha / 2])  # scipy's percentile interval
    return float(low), float(high)


def mann_whitney_p(base: np.ndarray, new: np.ndarray) -> float:
    """Two-sided Mann–Whitney U p-value; 1.0 where it is undefined (every time equal on both sides)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero variance of U: no evidence, handled below
        from scipy import stats

        p = float(stats.mannwhitneyu(new, base, alternative="two-sided").pvalue)
    return p if np.isfinite(p) else 1.0


def _clean(sample) -> np.ndarray:
    a = np.asarray(sample if sample is not None else [], dtype=float).ravel()
    return a[np.isfinite(a) & (a > 0)]


def compare_samples(base, new, method: Method | None = None) -> Verdict:
    """The verdict on NEW's per-round times against BASE's (see the module's rules)."""
    method = method or Method()
    base, new = _clean(base), _clean(new)
    counts = {"base_rounds": len(base), "new_rounds": len(new)}
    for side, sample in (("BASE", base), ("NEW", new)):
        if len(sample) == 0:
            return Verdict(UNRELIABLE, f"no raw samples in {side} (saved without --benchmark-save-data)", **counts)
    ratio = float(np.median(new) / np.median(base))
    for side, sample in (("BASE", base), ("NEW", new)):
        if len(sample) < method.min_rounds:
            return Verdict(UNRELIABLE, f"{side} has {len(sample)} rounds (< {method.min_rounds})", ratio, **counts)
    lo, hi = ratio_ci(base, new, method)
    p = mann_whitney_p(base, new)
    numbers = {"ratio": ratio, "ci_low": lo, "ci_high": hi, "p_value": p, **counts}
    band_lo, band_hi = method.band
    if p < method.alpha and lo > band_hi:
        return Verdict(SLOWER, **numbers)
    if p < method.alpha and hi < band_lo:
        return Verdict(FASTER, **numbers)
    if band_lo <= lo and hi <= band_hi:
        return Verdict(SAME, **numbers)
    return Verdict(UNRELIABLE, _why_undecided(base, new, lo, hi, p, method), **numbers)


def _why_undecided(base: np.ndarray, new: np.ndarray, lo: float, hi: float, p: float, method: Method) -> str:
    band_lo, band_hi = method.band
    ci = f"CI [{lo:.3g}, {hi:.3g}]"
    if lo > band_hi or hi < band_lo:
        return f"{ci} is beyond the threshold but the U test is not significant (p = {p:.2g} ≥ {method.alpha:g})"
    if np.log(hi / lo) < np.log(band_hi / band_lo):
        # Narrow enough to be decisive somewhere, but it covers an edge of the band: the change is near the threshold.
        edge = band_hi if hi > band_hi else band_lo
        return f"{ci} straddles the threshold {edge:.3g} (p = {p:.2g})"
    spreads = {"BASE": spread(base), "NEW": spread(new)}
    side = max(spreads, key=spreads.__getitem__)
    other = "NEW" if side == "BASE" else "BASE"
    rounds = {"BASE": len(base), "NEW": len(new)}
    return (
        f"{ci} too wide to tell a {method.threshold:.0%} change: {side}'s rounds spread {spreads[side]:.0%} "
        f"(IQR/median, {other} {spreads[other]:.0%}) over {rounds[side]} rounds"
    )

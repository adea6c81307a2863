"""reports.stats on synthetic per-round times: each verdict where it belongs, and few false alarms.

Samples are lognormal around 1 ms (sigma 5–10 %, as on a quiet machine), some with a shared machine's outliers:
a fraction of rounds 1.5–4× slower, as when a neighbour's job takes the core.
"""

from __future__ import annotations

import numpy as np
import pytest

from reports.stats import FASTER, SAME, SLOWER, UNRELIABLE, Method, compare_samples, ratio_ci

SEED = 20261125


def rounds(rng: np.random.Generator, n: int, factor: float = 1.0, sigma: float = 0.07, outliers: float = 0.0):
    x = factor * 1e-3 * rng.lognormal(0.0, sigma, n)
    hit = rng.random(n) < outliers
    x[hit] *= rng.uniform(1.5, 4.0, hit.sum())
    return x


@pytest.mark.parametrize(
    ("factor", "sigma", "expected"),
    [(1.0, 0.07, SAME), (1.03, 0.07, SAME), (1.3, 0.05, SLOWER), (1.3, 0.10, SLOWER), (1 / 1.3, 0.10, FASTER)],
)
def test_verdicts_on_50_rounds(factor, sigma, expected):
    rng = np.random.default_rng(SEED)
    verdict = compare_samples(rounds(rng, 50, sigma=sigma), rounds(rng, 50, factor, sigma=sigma))
    assert verdict.label == expected, verdict
    assert verdict.ci_low <= verdict.ratio <= verdict.ci_high
    assert verdict.ratio == pytest.approx(factor, rel=0.06)


def test_a_slow_down_is_called_on_every_seed():
    rng = np.random.default_rng(SEED)
    labels = [compare_samples(rounds(rng, 50, sigma=0.1), rounds(rng, 50, 1.3, sigma=0.1)).label for _ in range(50)]
    assert labels == [SLOWER] * 50


def test_three_rounds_are_unreliable():
    rng = np.random.default_rng(SEED)
    verdict = compare_samples(rounds(rng, 3), rounds(rng, 50, 2.0))
    assert verdict.label == UNRELIABLE
    assert verdict.reason == "BASE has 3 rounds (< 5)"
    assert verdict.ratio == pytest.approx(2.0, rel=0.2)  # the point ratio is still shown


def test_no_raw_samples_is_unreliable_not_an_error():
    verdict = compare_samples([], [1e-3] * 10)
    assert verdict.label == UNRELIABLE
    assert "no raw samples in BASE" in verdict.reason


def test_too_much_spread_names_the_noisy_side():
    rng = np.random.default_rng(SEED)
    verdict = compare_samples(rounds(rng, 20, sigma=0.05), rounds(rng, 20, sigma=0.6))
    assert verdict.label == UNRELIABLE
    assert "too wide to tell a 10% change: NEW's rounds spread" in verdict.reason


def test_a_change_near_the_threshold_is_not_called():
    rng = np.random.default_rng(SEED)
    verdict = compare_samples(rounds(rng, 1000, sigma=0.05), rounds(rng, 1000, 1.10, sigma=0.05))
    assert verdict.label == UNRELIABLE
    assert "straddles the threshold 1.1" in verdict.reason
    assert verdict.p_value < 1e-10  # a real change, but not shown to exceed 10 %


def test_many_rounds_make_a_small_change_significant_but_same():
    rng = np.random.default_rng(SEED)
    verdict = compare_samples(rounds(rng, 1000), rounds(rng, 1000, 1.03))
    assert verdict.p_value < 0.01
    assert verdict.label == SAME  # the threshold, not the test, decides what matters


def test_identical_times_are_the_same():
    verdict = compare_samples(np.full(10, 1e-3), np.full(10, 1e-3))
    assert (verdict.label, verdict.ratio, verdict.ci_low, verdict.ci_high) == (SAME, 1.0, 1.0, 1.0)


def test_verdicts_are_reproducible():
    rng = np.random.default_rng(SEED)
    base, new = rounds(rng, 40, outliers=0.1), rounds(rng, 40, 1.2, outliers=0.1)
    assert compare_samples(base, new) == compare_samples(base.copy(), new.copy())
    assert ratio_ci(base, new, Method(seed=1)) != ratio_ci(base, new, Method(seed=2))


A_A_PAIRS = 200
MAX_FALSE_ALARMS = 2  # 1 % of the pairs


@pytest.mark.parametrize("n", [5, 20, 50, pytest.param(200, marks=pytest.mark.slow)])
def test_few_false_alarms_between_equal_runs_on_a_noisy_machine(n):
    """A/A: both samples from one noisy distribution (sigma 10 %, 10 % of rounds 1.5–4× slow)."""
    rng = np.random.default_rng(SEED + n)
    labels = [
        compare_samples(rounds(rng, n, sigma=0.1, outliers=0.1), rounds(rng, n, sigma=0.1, outliers=0.1)).label
        for _ in range(A_A_PAIRS)
    ]
    assert labels.count(SLOWER) <= MAX_FALSE_ALARMS
    assert labels.count(FASTER) <= MAX_FALSE_ALARMS
    if n >= 200:
        assert labels.count(SAME) >= A_A_PAIRS // 2  # and with enough rounds, mostly a positive "same"


# --- bounded memory: the order-statistic bootstrap beyond EXACT_MAX_ROUNDS -------------------------------------

#: ratio_ci before the order-statistic path existed (commit 16b2e2d), on the samples of _interval_samples.
INTERVALS_BEFORE = {
    5: (0.9615325989002238, 1.3532563208626467),
    6: (0.9234390303680631, 1.11393816272981),
    50: (1.0204641175692606, 1.2016270538635618),
    333: (1.0667321102668395, 1.1295127512037386),
    1000: (1.0787346779495834, 1.111945299621675),
    4000: (1.0920718133420575, 1.1076113419548437),
}


def _interval_samples():
    rng = np.random.default_rng(SEED)
    for n in INTERVALS_BEFORE:
        yield n, 1e-3 * rng.lognormal(0, 0.1, n), 1.1e-3 * rng.lognormal(0, 0.1, n + (n % 7))


def _old_ratio_ci(base, new, method):
    """A copy of ratio_ci as it was (commit 16b2e2d): scipy's bootstrap over whole resamples."""
    from scipy import stats

    result = stats.bootstrap((base, new), lambda b, n, axis=-1: np.median(n, axis=axis) / np.median(b, axis=axis),
                             n_resamples=method.n_resamples, confidence_level=1 - method.alpha, method="percentile",
                             vectorized=True, batch=500, rng=np.random.default_rng(method.seed))  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def test_intervals_of_todays_sizes_are_unchanged():
    """Same seed, same interval, to the last bit, for samples up to EXACT_MAX_ROUNDS (today's are ≤ 1000)."""
    for n, base, new in _interval_samples():
        assert ratio_ci(base, new, Method()) == INTERVALS_BEFORE[n], n
    rng = np.random.default_rng(SEED)
    for n in (5, 17, 100, 1000):
        base, new = rounds(rng, n, outliers=0.1), rounds(rng, n + 3, 1.1, outliers=0.1)
        for method in (Method(), Method(seed=7, alpha=0.05, n_resamples=999)):
            assert ratio_ci(base, new, method) == _old_ratio_ci(base, new, method), (n, method)


@pytest.mark.parametrize("n", [1, 2, 6, 7])
def test_order_statistic_medians_have_the_resampled_distribution(n):
    """bootstrap_medians draws each resample's median directly: the same distribution as resampling (odd, even n)."""
    from reports.stats import bootstrap_medians

    rng = np.random.default_rng(SEED + n)
    sample = rng.lognormal(0, 0.3, n)
    draws = 200_000
    resampled = np.median(sample[rng.integers(0, n, (draws, n))], axis=1)
    direct = bootstrap_medians(sample, draws, rng)
    for value in np.unique(np.concatenate([resampled, direct])):
        assert (direct == value).mean() == pytest.approx((resampled == value).mean(), abs=0.006), value


def test_order_statistic_interval_agrees_with_scipys():
    """Past EXACT_MAX_ROUNDS the interval is another draw from the same bootstrap: it differs by Monte Carlo noise."""
    from reports.stats import EXACT_MAX_ROUNDS, _order_statistic_ci

    rng = np.random.default_rng(SEED)
    n = EXACT_MAX_ROUNDS // 4
    for factor in (1.0, 1.1):
        base, new = rounds(rng, n, outliers=0.05), rounds(rng, n + 1, factor, outliers=0.05)
        old, fresh = _old_ratio_ci(base, new, Method()), _order_statistic_ci(base, new, Method())
        width = old[1] - old[0]
        assert fresh == pytest.approx(old, abs=0.1 * width)


def test_a_million_rounds_a_side_in_bounded_memory():
    """10⁶ rounds a side: resampling them whole took ~11 GiB and minutes; now well under 300 MB, in seconds."""
    import time
    import tracemalloc

    rng = np.random.default_rng(SEED)
    base, new, same = rounds(rng, 10**6), rounds(rng, 10**6, 1.3), rounds(rng, 10**6, 1.01)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        slower, unchanged = compare_samples(base, new), compare_samples(base, same)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 300 * 2**20, f"{peak / 2**20:.0f} MiB"
    assert elapsed < 60
    assert (slower.label, unchanged.label) == (SLOWER, SAME), (slower, unchanged)
    assert slower.ci_low <= slower.ratio <= slower.ci_high
    assert slower.ratio == pytest.approx(1.3, rel=0.01)

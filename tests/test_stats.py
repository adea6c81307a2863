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


@pytest.mark.parametrize("n", [5, 20, 50, 200])
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

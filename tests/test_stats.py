"""Statistics over seeds: bootstrap CIs, their coverage, and paired differences.

Expected values are worked out by hand (closed forms written out below) or by a second,
deliberately plain implementation; scipy's t-test is not used to check our p-values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptivemix.report.stats import bootstrap_mean_ci, mean_std_ci, paired_difference


def plain_bootstrap(values: list[float], confidence: float, n_boot: int, seed: int):
    """Same draws (one (n_boot, n) integer draw), means by a loop, quantiles by hand."""
    idx = np.random.default_rng(seed).integers(0, len(values), size=(n_boot, len(values)))
    means = sorted(sum(values[j] for j in row) / len(values) for row in idx)

    def quantile(q: float) -> float:  # linear interpolation between order statistics
        pos = q * (n_boot - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, n_boot - 1)
        return means[lo] + (pos - lo) * (means[hi] - means[lo])

    alpha = 1 - confidence
    return quantile(alpha / 2), quantile(1 - alpha / 2)


# --- bootstrap_mean_ci -------------------------------------------------------------------


def test_bootstrap_matches_a_plain_implementation() -> None:
    values = [3.1, -0.4, 2.2, 7.5, 1.0, 0.3]
    got = bootstrap_mean_ci(values, confidence=0.9, n_boot=3000, seed=7)
    assert got == pytest.approx(plain_bootstrap(values, 0.9, 3000, 7), rel=1e-12)


def test_bootstrap_of_three_seeds_is_min_to_max() -> None:
    # Resampling 3 values gives 27 equally likely draws; "all three the smallest" has
    # probability 1/27 = 3.7% > 2.5%, so the 2.5% quantile is the minimum (and the 97.5%
    # quantile the maximum): the interval cannot reach beyond the seeds.
    assert bootstrap_mean_ci([1.0, 2.0, 3.0]) == (1.0, 3.0)
    # Two seeds: means 8 (1/4), 8.5 (1/2), 9 (1/4) -> [8, 9].
    assert bootstrap_mean_ci([9.0, 8.0]) == (8.0, 9.0)


def test_bootstrap_four_seeds_at_90_percent() -> None:
    # 256 resamples of (1, 2, 3, 4). Sum 4: 1 way, sum 5: 4 ways (1.95% together, below
    # 5%); sum 6: {1,1,1,3} 4 ways + {1,1,2,2} 6 ways -> 15/256 = 5.9% > 5%. So the 5%
    # quantile is the mean 6/4 = 1.5 and, by symmetry, the 95% quantile is 3.5.
    assert bootstrap_mean_ci([1.0, 2.0, 3.0, 4.0], confidence=0.90) == (1.5, 3.5)


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    values = np.random.default_rng(3).normal(size=20)
    assert bootstrap_mean_ci(values, seed=5) == bootstrap_mean_ci(values, seed=5)
    assert bootstrap_mean_ci(values, seed=5) != bootstrap_mean_ci(values, seed=6)


def test_bootstrap_nan_handling_and_bad_input() -> None:
    assert bootstrap_mean_ci([1.0, math.nan, 3.0]) == bootstrap_mean_ci([1.0, 3.0])
    for few in ([], [math.nan], [5.0, math.nan]):
        low, high = bootstrap_mean_ci(few)
        assert math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError, match=r"confidence.*95"):
        bootstrap_mean_ci([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match=r"n_boot.*got 0"):
        bootstrap_mean_ci([1.0, 2.0], n_boot=0)


# --- coverage ----------------------------------------------------------------------------


def coverage(n: int, reps: int = 2000) -> tuple[float, float]:
    """Fraction of bootstrap and t intervals holding the true mean 0 of N(0, 1) samples."""
    samples = np.random.default_rng(n).standard_normal((reps, n))
    boot = t = 0
    for i, row in enumerate(samples):
        s = mean_std_ci(row, n_boot=2000, seed=i)
        boot += s["ci_low"] <= 0.0 <= s["ci_high"]
        t += s["t_ci_low"] <= 0.0 <= s["t_ci_high"]
    return boot / reps, t / reps


def test_coverage_with_twenty_seeds_is_near_nominal() -> None:
    # The percentile bootstrap is about mean ± 1.96 s sqrt((n-1)/n) / sqrt(n): coverage
    # P(|t_19| <= 1.96 sqrt(19/20) = 1.91) ~ 0.929. With 2000 replications the standard
    # error is ~0.006, so the band [0.91, 0.96] allows 3 standard errors below theory.
    boot, t = coverage(20)
    assert 0.91 <= boot <= 0.96
    assert 0.93 <= t <= 0.97


def test_coverage_with_three_seeds_bootstrap_under_covers() -> None:
    # n = 3: P(|t_2| <= 1.96 sqrt(2/3) = 1.600); t_2's CDF is 1/2 + x / (2 sqrt(2 + x^2)),
    # so coverage ~ 1.6 / sqrt(4.56) = 0.749, far below 95%. The t interval stays at 95%.
    boot, t = coverage(3)
    assert 0.70 <= boot <= 0.82
    assert 0.93 <= t <= 0.97


# --- mean_std_ci -------------------------------------------------------------------------


def test_mean_std_ci_has_both_intervals() -> None:
    s = mean_std_ci([1.0, 2.0, 3.0])
    assert (s["mean"], s["std"], s["n"]) == (2.0, 1.0, 3)
    assert (s["ci_low"], s["ci_high"]) == (1.0, 3.0)  # bootstrap: min..max, see above
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) from printed tables
    assert (s["t_ci_low"], s["t_ci_high"]) == pytest.approx((2 - half, 2 + half), rel=1e-9)
    one = mean_std_ci([math.nan, 4.0])
    assert one["n"] == 1 and one["mean"] == 4.0
    assert all(math.isnan(one[k]) for k in ("std", "ci_low", "ci_high", "t_ci_low", "t_ci_high"))


# --- paired_difference -------------------------------------------------------------------


def test_paired_difference_by_hand() -> None:
    method = {0: 10.0, 1: 12.0, 2: 11.0, 3: 9.0, 4: math.nan}
    baseline = {2: 11.5, 1: 14.0, 0: 11.0, 4: 2.0, 5: 3.0}
    # Seeds 0, 1, 2 pair (3 and 5 lack a partner, 4 is NaN): differences -1, -2, -0.5.
    r = paired_difference(method, baseline)
    assert r["n_pairs"] == 3
    mean = -3.5 / 3
    sq = (-1 - mean) ** 2 + (-2 - mean) ** 2 + (-0.5 - mean) ** 2  # = 7/6
    std = math.sqrt(sq / 2)
    assert r["diff_mean"] == pytest.approx(mean)
    assert r["diff_std"] == pytest.approx(std)
    t = mean / (std / math.sqrt(3))
    assert t == pytest.approx(-math.sqrt(7))  # (-7/6) / sqrt(7/36)
    # two-sided p with 2 df: 2 F(-|t|), F(x) = 1/2 + x / (2 sqrt(2 + x^2)) -> 1 - sqrt(7)/3
    p = 2 * (0.5 - abs(t) / (2 * math.sqrt(2 + t * t)))
    assert r["p_value"] == pytest.approx(p) and p == pytest.approx(1 - math.sqrt(7) / 3)
    assert (r["ci_low"], r["ci_high"]) == (-2.0, -0.5)  # 3 pairs: min..max of differences
    assert r["significant"] is True  # the CI excludes 0, though p = 0.118


def test_paired_difference_not_significant_when_ci_holds_zero() -> None:
    r = paired_difference({0: 1.0, 1: 3.0, 2: 2.0}, {0: 2.0, 1: 1.0, 2: 2.0})
    # differences -1, 2, 0: mean 1/3, std sqrt(((4/3)^2 + (5/3)^2 + (1/3)^2) / 2) = sqrt(7/3)
    assert r["diff_mean"] == pytest.approx(1 / 3)
    assert r["diff_std"] == pytest.approx(math.sqrt(7 / 3))
    assert (r["ci_low"], r["ci_high"]) == (-1.0, 2.0)
    assert r["significant"] is False


def test_paired_difference_degenerate_cases() -> None:
    one = paired_difference({0: 1.0, 1: 5.0}, {1: 2.0})
    assert (one["n_pairs"], one["diff_mean"]) == (1, 3.0)
    assert all(math.isnan(one[k]) for k in ("diff_std", "ci_low", "ci_high", "p_value"))
    assert one["significant"] is False
    none = paired_difference({0: 1.0}, {1: 1.0})
    assert none["n_pairs"] == 0 and math.isnan(none["diff_mean"]) and not none["significant"]
    equal = paired_difference({0: 3.0, 1: 4.0, 2: 5.0}, {0: 2.0, 1: 3.0, 2: 4.0})
    assert equal["diff_std"] == 0.0 and math.isnan(equal["p_value"])  # t undefined
    assert (equal["ci_low"], equal["ci_high"]) == (1.0, 1.0) and equal["significant"] is True


def test_paired_difference_is_deterministic() -> None:
    rng = np.random.default_rng(11)
    a, b = dict(enumerate(rng.normal(size=12))), dict(enumerate(rng.normal(size=12)))
    assert paired_difference(a, b, seed=3) == paired_difference(a, b, seed=3)
    assert paired_difference(a, b, seed=3)["ci_low"] != paired_difference(a, b, seed=4)["ci_low"]

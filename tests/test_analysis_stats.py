"""The statistics of xp compare, each against an independent computation: enumeration of
every bootstrap resample or every permutation, brute-force pair counts, SciPy's own
bootstrap, and hand-worked examples."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats as sps

from xpcli.analysis.stats import (
    bootstrap_medians,
    cliffs_delta,
    finite,
    holm,
    mann_whitney_p,
    percentile_interval,
    wilcoxon_p,
)


def exact_bootstrap_median_distribution(values: list[float]) -> dict[float, float]:
    """P(median of a resample = m), by enumerating all n**n resamples."""
    n = len(values)
    counts: Counter[float] = Counter()
    for index in itertools.product(range(n), repeat=n):
        counts[float(np.median([values[i] for i in index]))] += 1
    return {m: c / n**n for m, c in counts.items()}


@pytest.mark.parametrize("values", [
    [0.3, 0.1, 0.5, 0.2, 0.9],  # odd n
    [0.4, 0.1, 0.1, 0.7, 0.2, 0.5],  # even n, with a tie
])
def test_bootstrap_medians_follow_the_exact_bootstrap_distribution(values: list[float]) -> None:
    exact = exact_bootstrap_median_distribution(values)
    draws = bootstrap_medians(np.array(values), 200_000, np.random.default_rng(7))
    seen = Counter(draws.tolist())
    assert set(seen) <= set(exact)  # only medians a resample can have
    for median, probability in exact.items():
        # 200,000 draws: the standard error of a frequency is at most 0.0012.
        assert abs(seen[median] / draws.size - probability) < 0.006, median


def test_bootstrap_medians_are_seeded_and_handle_one_value() -> None:
    values = np.array([3.0, 1.0, 2.0, 5.0])
    first = bootstrap_medians(values, 1000, np.random.default_rng(1))
    again = bootstrap_medians(values, 1000, np.random.default_rng(1))
    other = bootstrap_medians(values, 1000, np.random.default_rng(2))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert np.array_equal(bootstrap_medians(np.array([4.0]), 5, np.random.default_rng(0)),
                          np.full(5, 4.0))


def test_percentile_interval_of_a_median_difference_agrees_with_scipy_bootstrap() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.75, 0.02, 40), rng.normal(0.70, 0.03, 40)
    draws = (bootstrap_medians(a, 20_000, np.random.default_rng(1))
             - bootstrap_medians(b, 20_000, np.random.default_rng(2)))
    ours = percentile_interval(draws, 0.95)
    theirs = sps.bootstrap(
        (a, b), lambda x, y, axis: np.median(x, axis=axis) - np.median(y, axis=axis),
        vectorized=True, n_resamples=20_000, method="percentile", confidence_level=0.95,
        rng=np.random.default_rng(4)).confidence_interval
    width = theirs.high - theirs.low
    assert abs(ours[0] - theirs.low) < 0.05 * width
    assert abs(ours[1] - theirs.high) < 0.05 * width


def test_percentile_interval_is_the_quantiles() -> None:
    draws = np.arange(1, 101, dtype=float)  # 1..100
    assert percentile_interval(draws, 0.9) == pytest.approx((5.95, 95.05))


def brute_cliffs_delta(a: list[float], b: list[float]) -> float:
    more = sum(1 for x in a for y in b if x > y)
    less = sum(1 for x in a for y in b if x < y)
    return (more - less) / (len(a) * len(b))


@pytest.mark.parametrize("a,b", [
    ([1, 2, 3], [4, 5]),
    ([4, 5], [1, 2, 3]),
    ([1, 2, 2, 3, 5], [2, 2, 4]),  # ties across the samples
    ([1, 1], [1, 1, 1]),
])
def test_cliffs_delta_counts_pairs(a: list[float], b: list[float]) -> None:
    got = cliffs_delta(np.array(a, float), np.array(b, float))
    assert got == pytest.approx(brute_cliffs_delta(a, b))
    u = sps.mannwhitneyu(a, b, alternative="two-sided").statistic  # ties count 1/2
    assert got == pytest.approx(2 * u / (len(a) * len(b)) - 1)


def test_holm_hand_worked() -> None:
    # Sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 -> max(0.06, 0.04).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.01, None, 0.5]) == [pytest.approx(0.02), None, pytest.approx(0.5)]
    assert holm([0.6, 0.7]) == [pytest.approx(1.0), pytest.approx(1.0)]  # capped at 1
    assert holm([]) == []


def exact_mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided p of U by enumerating every split of the pooled values (no ties)."""
    pooled = a + b
    mean = len(a) * len(b) / 2
    observed = abs(sum(1 for x in a for y in b if x > y) - mean)
    extreme = total = 0
    for chosen in itertools.combinations(range(len(pooled)), len(a)):
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        u = sum(1 for i in chosen for y in rest if pooled[i] > y)
        total += 1
        extreme += abs(u - mean) >= observed - 1e-12
    return extreme / total


def test_mann_whitney_exact_p_matches_enumeration() -> None:
    a, b = [1.0, 3.0, 5.0, 8.0], [2.0, 4.0, 6.0, 7.0, 9.0, 10.0]
    assert mann_whitney_p(np.array(a), np.array(b)) == pytest.approx(exact_mann_whitney_p(a, b))


def test_mann_whitney_with_ties_is_the_corrected_normal_approximation() -> None:
    a = np.array([1, 2, 2, 3, 3, 3, 4, 5, 5, 6] * 3, dtype=float)
    b = np.array([2, 3, 4, 4, 5, 5, 6, 6, 7, 7] * 3, dtype=float)
    n1, n2 = a.size, b.size
    pooled = np.concatenate([a, b])
    ranks = sps.rankdata(pooled)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    n = n1 + n2
    ties = np.unique(pooled, return_counts=True)[1]
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - (ties**3 - ties).sum() / (n * (n - 1))))
    z = (abs(u - n1 * n2 / 2) - 0.5) / sigma  # continuity correction
    expected = math.erfc(z / math.sqrt(2))  # two-sided normal tail
    assert mann_whitney_p(a, b) == pytest.approx(expected, rel=1e-9)


def test_rank_tests_say_nothing_when_every_value_is_equal() -> None:
    same = np.full(5, 0.7)
    assert mann_whitney_p(same, same.copy()) is None
    assert wilcoxon_p(np.zeros(6)) is None


def test_wilcoxon_exact_p_matches_sign_flip_enumeration() -> None:
    d = np.array([0.5, -0.2, 1.1, 0.8, -0.4, 0.9, 1.3, 0.3])
    ranks = sps.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    w = [sum(r for r, s in zip(ranks, signs) if s) for signs in
         itertools.product([0, 1], repeat=d.size)]
    lower = np.mean([x <= observed for x in w])
    upper = np.mean([x >= observed for x in w])
    assert wilcoxon_p(d) == pytest.approx(min(1.0, 2 * min(lower, upper)))


def test_finite_drops_null_nan_and_infinities() -> None:
    assert finite([1.0, None, float("nan"), float("inf"), 2.0]).tolist() == [1.0, 2.0]

"""xp compare's table: every number against an independent computation, and the notes
for single-run groups, missing values, ties and unpaired runs."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from xpcli.analysis.compare import compare, compare_runs, group_label
from xpcli.errors import UsageError


def runs(groups: dict[float, list[float | None]], seeds: bool = True) -> pl.DataFrame:
    rows = [{"run": f"r{lr}-{i}", "lr": lr, "seed": i, "m": v}
            for lr, values in groups.items() for i, v in enumerate(values)]
    frame = pl.DataFrame(rows, schema={"run": pl.String, "lr": pl.Float64, "seed": pl.Int64,
                                       "m": pl.Float64})
    return frame if seeds else frame.drop("seed")


A = [0.71, 0.74, 0.69, 0.75, 0.73, 0.72]
B = [0.66, 0.70, 0.64, 0.68, 0.685, 0.67]  # no value shared with A: an exact test
C = [0.70, 0.72, 0.68, 0.71, 0.69, 0.73]


def brute_delta(a: list[float], b: list[float]) -> float:
    return sum((x > y) - (x < y) for x in a for y in b) / (len(a) * len(b))


def test_two_groups_every_column_by_hand() -> None:
    table = compare_runs(runs({1e-5: A, 3e-5: B}), ["m"], ["lr"], resamples=2000)
    assert table.height == 1
    row = table.row(0, named=True)
    assert (row["metric"], row["a"], row["b"]) == ("m", "1e-5", "3e-5")
    assert (row["n_a"], row["n_b"]) == (6, 6)
    assert row["median_a"] == pytest.approx(0.725)  # (0.72 + 0.73) / 2
    assert row["median_b"] == pytest.approx(0.675)
    assert row["median_diff"] == pytest.approx(0.05)
    assert row["mean_diff"] == pytest.approx(np.mean(A) - np.mean(B))
    assert row["delta"] == pytest.approx(brute_delta(A, B))
    # Exact two-sided Mann-Whitney p: every split of the 12 values into 6 and 6.
    pooled, mean = A + B, 18.0
    observed = abs(sum(x > y for x in A for y in B) - mean)
    us = [sum(pooled[i] > pooled[j] for i in chosen for j in range(12) if j not in chosen)
          for chosen in itertools.combinations(range(12), 6)]
    assert row["p"] == pytest.approx(np.mean([abs(u - mean) >= observed for u in us]))
    assert row["p_holm"] == pytest.approx(row["p"])  # one test
    assert row["ci_low"] <= row["median_diff"] <= row["ci_high"]
    assert row["ci_low"] > 0
    assert row["verdict"] == "1e-5 > 3e-5, CI excludes 0"
    assert row["note"] is None


def test_holm_runs_over_every_pair_and_the_verdicts_follow() -> None:
    table = compare_runs(runs({1e-5: A, 3e-5: B, 1e-4: C}), ["m"], ["lr"], resamples=2000)
    assert table.select("a", "b").rows() == [("1e-5", "3e-5"), ("1e-5", "1e-4"),
                                             ("3e-5", "1e-4")]
    ps = table["p"].to_list()
    order = np.argsort(ps)
    expected = [0.0] * 3
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * ps[i]))
        expected[i] = running
    assert table["p_holm"].to_list() == pytest.approx(expected)
    for row in table.iter_rows(named=True):
        excludes = row["ci_low"] > 0 or row["ci_high"] < 0
        assert ("CI excludes 0" in row["verdict"]) == (excludes and row["p_holm"] < 0.05)


def test_bootstrap_is_seeded_and_does_not_depend_on_other_groups() -> None:
    two = compare_runs(runs({1e-5: A, 3e-5: B}), ["m"], ["lr"], seed=1, resamples=500)
    again = compare_runs(runs({1e-5: A, 3e-5: B}), ["m"], ["lr"], seed=1, resamples=500)
    other = compare_runs(runs({1e-5: A, 3e-5: B}), ["m"], ["lr"], seed=2, resamples=500)
    three = compare_runs(runs({1e-5: A, 3e-5: B, 1e-4: C}), ["m"], ["lr"], seed=1,
                         resamples=500)
    cols = ["ci_low", "ci_high"]
    assert two.select(cols).rows() == again.select(cols).rows()
    assert two.select(cols).rows() != other.select(cols).rows()
    assert three.filter(pl.col("b") == "3e-5").select(cols).rows() == two.select(cols).rows()


def test_single_run_group_says_n_equals_1_and_has_no_nan() -> None:
    table = compare_runs(runs({1e-5: A, 3e-5: [0.6]}), ["m"], ["lr"], resamples=500)
    row = table.row(0, named=True)
    assert row["verdict"] == "n=1 in 3e-5: no CI or test"
    assert (row["ci_low"], row["ci_high"], row["p"], row["p_holm"]) == (None, None, None, None)
    assert row["median_diff"] == pytest.approx(0.725 - 0.6)
    assert row["n_b"] == 1
    for value in table.row(0):
        assert not (isinstance(value, float) and math.isnan(value))


def test_missing_values_are_left_out_and_counted() -> None:
    table = compare_runs(runs({1e-5: [*A, None, float("nan")], 3e-5: B}), ["m"], ["lr"],
                         resamples=500)
    row = table.row(0, named=True)
    assert row["n_a"] == 6 and row["median_a"] == pytest.approx(0.725)
    assert row["note"] == "2 of 8 runs in 1e-5 have no value"


def test_a_group_without_values_is_not_compared() -> None:
    table = compare_runs(runs({1e-5: A, 3e-5: [None, None]}), ["m"], ["lr"], resamples=500)
    row = table.row(0, named=True)
    assert row["verdict"] == "no values in 3e-5: not compared"
    assert row["p"] is None and row["median_diff"] is None


def test_all_equal_values_have_no_test_and_say_so() -> None:
    table = compare_runs(runs({1e-5: [0.5] * 4, 3e-5: [0.5] * 4}), ["m"], ["lr"],
                         resamples=500)
    row = table.row(0, named=True)
    assert row["p"] is None and row["p_holm"] is None
    assert (row["ci_low"], row["ci_high"]) == (0.0, 0.0)
    assert row["note"] == "every value is the same: no test"
    assert row["verdict"] == "no clear difference"
    assert row["delta"] == 0.0


def test_ties_across_groups_use_the_tie_corrected_test() -> None:
    a, b = [1.0, 2.0, 2.0, 3.0, 3.0], [2.0, 3.0, 3.0, 4.0, 4.0]
    row = compare_runs(runs({1.0: a, 2.0: b}), ["m"], ["lr"], resamples=500).row(0, named=True)
    assert row["p"] == pytest.approx(sps.mannwhitneyu(a, b, method="asymptotic").pvalue)
    assert row["delta"] == pytest.approx(brute_delta(a, b))


def test_baseline_compares_every_group_with_it_and_matches_numbers() -> None:
    frame = runs({1e-5: A, 3e-5: B, 1e-4: C})
    table = compare_runs(frame, ["m"], ["lr"], baseline="3e-5", resamples=500)
    assert table.select("a", "b").rows() == [("1e-5", "3e-5"), ("1e-4", "3e-5")]
    assert compare_runs(frame, ["m"], ["lr"], baseline="0.00003", resamples=500).height == 2
    with pytest.raises(UsageError, match=r"--baseline 5e-5: no such group of lr; groups: "
                                         r"1e-5, 3e-5, 1e-4"):
        compare_runs(frame, ["m"], ["lr"], baseline="5e-5")


def test_paired_by_seed_uses_the_differences_and_wilcoxon() -> None:
    a = [0.71, 0.74, 0.69, 0.75, 0.73, 0.72, 0.70, 0.76]
    b = [0.70, 0.70, 0.70, 0.70, 0.69, 0.71, 0.66, 0.74]
    frame = runs({1e-5: a, 3e-5: [*b, 0.5]})  # seed 8 only in 3e-5
    row = compare_runs(frame, ["m"], ["lr"], paired_by="seed", resamples=500).row(0, named=True)
    d = np.array(a) - np.array(b)
    assert (row["n_a"], row["n_b"]) == (8, 8)
    assert row["median_diff"] == pytest.approx(np.median(d))
    assert row["mean_diff"] == pytest.approx(d.mean())
    # Exact two-sided signed-rank p by flipping every sign (no ties, no zeros here).
    ranks = sps.rankdata(np.abs(d))
    w = [sum(r for r, s in zip(ranks, signs) if s) for signs in
         itertools.product([0, 1], repeat=d.size)]
    obs = ranks[d > 0].sum()
    p = min(1.0, 2 * min(np.mean([x <= obs for x in w]), np.mean([x >= obs for x in w])))
    assert row["p"] == pytest.approx(p)
    assert row["note"] == "1 runs without a partner in seed left out"


def test_paired_by_counts_missing_values_and_runs_without_partner_apart() -> None:
    a = [0.71, 0.74, None, 0.75, 0.73]
    b = [0.70, 0.70, 0.70, 0.70]  # no seed 4
    row = compare_runs(runs({1e-5: a, 3e-5: b}), ["m"], ["lr"], paired_by="seed",
                       resamples=500).row(0, named=True)
    assert (row["n_a"], row["n_b"]) == (3, 3)  # seeds 0, 1, 3
    assert row["median_diff"] == pytest.approx(np.median([0.01, 0.04, 0.05]))
    assert row["note"] == ("1 of 5 runs in 1e-5 have no value; "
                           "2 runs without a partner in seed left out")


def test_paired_by_refuses_duplicate_partners() -> None:
    frame = runs({1e-5: A, 3e-5: B}).with_columns(pl.lit(1).alias("seed"))
    with pytest.raises(UsageError, match=r"--paired-by seed: 6 runs of 1e-5 have seed=1"):
        compare_runs(frame, ["m"], ["lr"], paired_by="seed")


def test_bad_options_are_usage_errors() -> None:
    frame = runs({1e-5: A})
    with pytest.raises(UsageError, match="only one group"):
        compare_runs(frame, ["m"], ["lr"])
    with pytest.raises(UsageError, match="--ci 1.5"):
        compare_runs(runs({1e-5: A, 3e-5: B}), ["m"], ["lr"], level=1.5)
    with pytest.raises(UsageError, match="also in --by"):
        compare_runs(runs({1e-5: A, 3e-5: B}), ["m"], ["lr"], paired_by="lr")


def test_group_labels_are_exact() -> None:
    assert group_label(["lr"], [3e-5]) == "3e-5"
    assert group_label(["lr"], [0.123456]) == "0.123456"  # not rounded to 0.1235
    assert group_label(["lr", "opt"], [1e-4, "adam"]) == "lr=1e-4, opt=adam"
    assert group_label(["lr"], [None]) == "null"


def test_compare_on_sample_runs_paired_by_seed(sample_runs: Path) -> None:
    import xpcli

    result = compare(xpcli.load(sample_runs), "f1:lang=de", "lr", baseline="3e-5",
                     paired_by="seed", where="lr in (1e-5, 3e-5)", resamples=1000)
    row = result.table.row(0, named=True)
    assert (row["a"], row["b"], row["n_a"]) == ("1e-5", "3e-5", 40)
    assert row["verdict"] == "1e-5 > 3e-5, CI excludes 0"
    assert "Wilcoxon" in result.title and "paired by seed" in result.title

"""Forgetting statistics against hand-worked curves and independent numpy computations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from xpcli.analysis.forgetting import (
    analyse,
    curve_stats,
    forgetting_stats,
    group_forgetting,
    sparklines,
)
from xpcli.dataset import Dataset, load
from xpcli.errors import DataError, SpecError, UsageError

SAMPLE_RUNS = Path(__file__).resolve().parent.parent / "sample_runs"


def curves(**series: tuple[list[float], list[float]]) -> pl.DataFrame:
    """A curves frame: run ``r``, one context per keyword (x values, y values)."""
    rows = [
        {"run": "r", "context": name, "epoch": float(x), "value": float(v)}
        for name, (xs, vs) in series.items()
        for x, v in zip(xs, vs)
    ]
    return pl.DataFrame(rows, schema={"run": pl.String, "context": pl.String,
                                      "epoch": pl.Float64, "value": pl.Float64})


def row(frame: pl.DataFrame, context: str, run: str = "r") -> dict:
    rows = frame.filter((pl.col("run") == run) & (pl.col("context") == context))
    assert rows.height == 1
    return rows.row(0, named=True)


def numpy_stats(x: np.ndarray, v: np.ndarray) -> dict:
    """The statistics computed independently with numpy (max mode)."""
    i = int(np.argmax(v))  # first of equal maxima
    after_x, after_v = x[i + 1:], v[i + 1:]
    slope = np.polyfit(after_x, after_v, 1)[0] if len(after_x) >= 2 else None
    return {
        "peak": v[i], "peak_epoch": x[i], "final": v[-1], "drop": v[i] - v[-1],
        "rel_drop": (v[i] - v[-1]) / abs(v[i]), "since_peak": x[-1] - x[i],
        "slope": slope, "auc": np.trapezoid(v, x) / (x[-1] - x[0]),
    }


# -- one curve, hand-worked ------------------------------------------------------------


def test_peak_then_linear_decline_hand_worked() -> None:
    # Rises 0.1 per epoch to 0.4 at epoch 4, then falls 0.05 per epoch to 0.1 at 10.
    xs = list(range(1, 11))
    vs = [0.1, 0.2, 0.3, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1]
    got = row(curve_stats(curves(c=(xs, vs))), "c")
    assert got["peak"] == pytest.approx(0.4)
    assert got["peak_epoch"] == 4.0
    assert got["final"] == pytest.approx(0.1)
    assert got["drop"] == pytest.approx(0.3)
    assert got["rel_drop"] == pytest.approx(0.75)
    assert got["since_peak"] == 6.0
    assert got["slope"] == pytest.approx(-0.05)
    # Area: rise 1..4 = 0.75, fall 4..10 = 6 * (0.4 + 0.1) / 2 = 1.5; span 9.
    assert got["auc"] == pytest.approx(2.25 / 9)
    assert got["points"] == 10
    assert got["status"] == "past_peak"


def test_irregular_noisy_curve_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    x = np.sort(rng.choice(np.arange(0.0, 200.0, 0.5), size=40, replace=False))
    v = 0.8 * (1 - np.exp(-x / 20)) * np.exp(-x / 300) + rng.normal(0, 0.01, size=x.size)
    expected = numpy_stats(x, v)
    got = row(curve_stats(curves(c=(list(x), list(v)))), "c")
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_with_times_the_row_order_does_not_matter() -> None:
    xs, vs = [1, 2, 3, 4, 5], [0.2, 0.9, 0.5, 0.4, 0.1]
    timed = curves(c=(xs, vs)).with_columns(pl.col("epoch").alias("time"))
    ordered = curve_stats(timed)
    shuffled = curve_stats(timed.reverse())
    assert ordered.equals(shuffled)
    assert row(ordered, "c")["slope"] == pytest.approx(np.polyfit([3, 4, 5], [0.5, 0.4, 0.1], 1)[0])


def test_without_times_the_rows_are_the_logging_order() -> None:
    # Reversed rows without a time: logged 0.1 (epoch 5) first, 0.2 (epoch 1) last; the
    # epoch goes backwards, so since_peak, slope and auc are left empty.
    xs, vs = [1, 2, 3, 4, 5], [0.2, 0.9, 0.5, 0.4, 0.1]
    got = row(curve_stats(curves(c=(xs[::-1], vs[::-1]))), "c")
    assert (got["peak"], got["peak_epoch"], got["final"], got["points"]) == (0.9, 2.0, 0.2, 5)
    assert got["drop"] == pytest.approx(0.7)
    assert (got["since_peak"], got["slope"], got["auc"]) == (None, None, None)


# -- edge cases with documented answers ------------------------------------------------


def test_still_rising_curve_peaks_at_its_end() -> None:
    got = row(curve_stats(curves(c=([1, 2, 3], [0.1, 0.5, 0.6]))), "c")
    assert (got["peak"], got["peak_epoch"], got["final"]) == (0.6, 3.0, 0.6)
    assert got["drop"] == 0 and got["rel_drop"] == 0 and got["since_peak"] == 0
    assert got["slope"] is None
    assert got["status"] == "still_learning"


def test_flat_curve_peaks_at_its_first_point() -> None:
    got = row(curve_stats(curves(c=([1, 2, 3, 4], [0.5] * 4))), "c")
    assert got["peak_epoch"] == 1.0
    assert got["drop"] == 0 and got["since_peak"] == 3.0
    assert got["slope"] == pytest.approx(0.0)
    assert got["auc"] == pytest.approx(0.5)
    assert got["status"] == "plateau"


def test_tie_goes_to_the_first_maximum() -> None:
    got = row(curve_stats(curves(c=([1, 2, 3, 4, 5], [0.1, 0.7, 0.3, 0.7, 0.2]))), "c")
    assert got["peak_epoch"] == 2.0
    assert got["slope"] == pytest.approx(np.polyfit([3, 4, 5], [0.3, 0.7, 0.2], 1)[0])


def test_one_point_after_the_peak_has_no_slope() -> None:
    got = row(curve_stats(curves(c=([1, 2, 3], [0.1, 0.6, 0.5]))), "c")
    assert got["slope"] is None
    assert got["drop"] == pytest.approx(0.1)
    assert got["status"] == "past_peak"


def test_single_point() -> None:
    got = row(curve_stats(curves(c=([7], [0.42]))), "c")
    assert (got["peak"], got["peak_epoch"], got["final"]) == (0.42, 7.0, 0.42)
    assert got["drop"] == 0 and got["since_peak"] == 0
    assert got["slope"] is None
    assert got["auc"] == pytest.approx(0.42)
    assert got["status"] == "single_point"


def test_nan_and_infinite_values_are_ignored() -> None:
    xs = [1, 2, 3, 4, 5, 6, 7]
    vs = [0.2, math.nan, 0.9, math.inf, 0.6, 0.3, math.nan]
    got = row(curve_stats(curves(c=(xs, vs))), "c")
    expected = numpy_stats(np.array([1.0, 3, 5, 6]), np.array([0.2, 0.9, 0.6, 0.3]))
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    assert got["points"] == 4


def test_all_nan_curve_and_missing_context_are_missing() -> None:
    frame = pl.concat([
        curves(a=([1, 2, 3], [0.1, 0.5, 0.2]), b=([1, 2], [math.nan, math.nan])),
        curves(a=([1, 2], [0.3, 0.1])).with_columns(run=pl.lit("s")),
    ])
    stats = forgetting_stats(frame, contexts=["a", "b"])
    assert stats.height == 4
    for run in ("r", "s"):
        got = row(stats, "b", run)
        assert got["status"] == "missing" and got["points"] == 0
        assert got["peak"] is None and got["rel_drop"] is None
        assert got["rank"] == 2  # missing ranks last
    assert row(stats, "a", "s")["rank"] == 1


def test_lower_is_better_mode() -> None:
    xs, vs = [1, 2, 3, 4, 5], [2.0, 1.0, 0.5, 0.7, 0.9]
    got = row(curve_stats(curves(c=(xs, vs)), best="min"), "c")
    assert (got["peak"], got["peak_epoch"], got["final"]) == (0.5, 3.0, 0.9)
    assert got["drop"] == pytest.approx(0.4)
    assert got["rel_drop"] == pytest.approx(0.8)
    assert got["slope"] == pytest.approx(0.2)
    assert got["status"] == "past_peak"


def test_zero_peak_has_no_relative_drop() -> None:
    got = row(curve_stats(curves(c=([1, 2], [0.0, 0.0]))), "c")
    assert got["rel_drop"] is None and got["drop"] == 0


def test_bad_best_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="best"):
        curve_stats(curves(c=([1], [1.0])), best="highest")


# -- ranking, several runs, groups -----------------------------------------------------


def test_contexts_ranked_by_relative_drop() -> None:
    frame = curves(
        slow=([1, 2, 3], [0.5, 1.0, 0.9]),      # rel drop 0.10
        fast=([1, 2, 3], [0.2, 0.4, 0.2]),      # rel drop 0.50 (smaller absolute drop)
        rising=([1, 2, 3], [0.1, 0.2, 0.3]),    # 0
        tied=([1, 2, 3], [0.6, 1.0, 0.9]),      # 0.10, ties with slow: label order
    )
    stats = forgetting_stats(frame)
    assert stats["context"].to_list() == ["fast", "slow", "tied", "rising"]
    assert stats["rank"].to_list() == [1, 2, 3, 4]


def test_many_runs_match_one_run_at_a_time() -> None:
    rng = np.random.default_rng(3)
    parts = []
    for i in range(6):
        x = np.arange(1, 31, dtype=float)
        v = np.sin(x / (5 + i)) + rng.normal(0, 0.05, x.size)
        parts.append(curves(c=(list(x), list(v))).with_columns(run=pl.lit(f"r{i}")))
    frame = pl.concat(parts)
    stats = curve_stats(frame)
    for i, part in enumerate(parts):
        expected = numpy_stats(part["epoch"].to_numpy(), part["value"].to_numpy())
        got = row(stats, "c", f"r{i}")
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (i, key)


def test_group_medians_and_spread_match_numpy() -> None:
    rng = np.random.default_rng(11)
    parts, lrs = [], {}
    for i in range(9):
        x = np.arange(1, 21, dtype=float)
        v = np.exp(-((x - 5 - i) ** 2) / 30) + rng.normal(0, 0.02, x.size)
        run = f"r{i}"
        lrs[run] = 0.1 if i < 4 else 0.2
        parts.append(curves(c=(list(x), list(v))).with_columns(run=pl.lit(run)))
    per_run = forgetting_stats(pl.concat(parts))
    runs = pl.DataFrame({"run": list(lrs), "lr": list(lrs.values())})
    groups = group_forgetting(per_run, runs, ["lr"])
    for lr in (0.1, 0.2):
        members = [r for r, value in lrs.items() if value == lr]
        mine = per_run.filter(pl.col("run").is_in(members))
        got = groups.filter(pl.col("lr") == lr).row(0, named=True)
        assert got["runs"] == len(members)
        for name in ("peak", "peak_epoch", "final", "drop", "rel_drop", "slope", "auc"):
            assert got[name] == pytest.approx(np.median(mine[name].to_numpy())), name
        for name in ("rel_drop", "slope"):
            q75, q25 = np.percentile(mine[name].to_numpy(), [75, 25])
            assert got[f"{name}_iqr"] == pytest.approx(q75 - q25), name


# -- sparklines ------------------------------------------------------------------------


def test_sparkline_levels_and_flat_curve() -> None:
    frame = curves(up=(list(range(8)), [0, 1, 2, 3, 4, 5, 6, 7]), flat=([1, 2, 3], [2, 2, 2]))
    lines = dict(sparklines(frame, width=8).select("context", "curve").iter_rows())
    assert lines["up"] == "▁▂▃▄▅▆▇█"
    assert lines["flat"] == "▄▄▄"  # one character per non-empty bin, mid-height when flat


def test_sparkline_bins_long_curves_to_the_width() -> None:
    frame = curves(c=(list(range(60)), [float(i % 7) for i in range(60)]))
    (line,) = sparklines(frame, width=20)["curve"].to_list()
    assert len(line) == 20


# -- on a runs directory ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    return load(SAMPLE_RUNS)


def test_zh_forgets_fastest_for_the_best_english_run(sample) -> None:
    result = analyse(sample, "f1:lang=*", run="best:f1:lang=en", sparkline=True)
    table = result.table
    assert result.run == "lr3e-5-s05"
    assert table["context"].to_list()[0] == "lang=zh"
    assert table["rank"].to_list() == [1, 2, 3, 4, 5]
    assert table["context"].to_list()[-1] == "lang=en"
    assert "lr=3e-5" in result.title and "seed=5" in result.title
    assert all(len(s) == 16 for s in table["curve"].to_list())
    # The best English run's zh curve computed by hand from the points.
    zh = (sample.points.filter((pl.col("run") == "lr3e-5-s05") & (pl.col("lang") == "zh")
                               & (pl.col("name") == "f1"))
          .sort("epoch").collect())
    expected = numpy_stats(zh["epoch"].to_numpy(), zh["value"].to_numpy())
    got = row(table, "lang=zh", "lr3e-5-s05")
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


def test_groups_by_lr_rank_zh_first_where_models_learn(sample) -> None:
    result = analyse(sample, "f1:lang=*", by=["lr"])
    groups = result.table
    assert groups.height == 6 * 5
    assert set(groups["runs"].to_list()) == {40}
    first = groups.filter(pl.col("rank") == 1)
    learning = first.filter(pl.col("lr") >= 1e-5)
    assert set(learning["context"].to_list()) == {"lang=zh"}
    # As generated, larger learning rates forget more (zh median relative drop).
    zh = dict(groups.filter(pl.col("context") == "lang=zh").select("lr", "rel_drop")
              .iter_rows())
    assert zh[1e-6] < zh[1e-5] < zh[3e-5] < zh[1e-4]
    assert result.stats.height == 240 * 5
    assert result.group_curves is not None
    assert result.group_curves.height == 6 * 5 * 60


def test_where_and_step_axis(sample) -> None:
    result = analyse(sample, "loss:split=train", where="seed < 2 and lr == 1e-4", x="step",
                     best="min")
    assert sorted(result.table["run"].to_list()) == ["lr1e-4-s00", "lr1e-4-s01"]
    assert "peak_step" in result.table.columns


def test_errors(sample) -> None:
    args = (sample,)
    with pytest.raises(UsageError, match="whole curves"):
        analyse(*args, "f1:lang=*@max")
    with pytest.raises(UsageError, match="exclude"):
        analyse(*args, "f1:lang=*", run="lr1e-4-s00", by=["lr"])
    with pytest.raises(UsageError, match="--by"):
        analyse(*args, "f1:lang=*", by=["nope"])
    with pytest.raises(SpecError):
        analyse(*args, "f1:lang=*", run="no-such-run")
    with pytest.raises(DataError, match="keeps no run"):
        analyse(*args, "f1:lang=*", where="lr > 1")
    no_epoch = pl.DataFrame({"run": ["a", "a"], "name": ["acc", "acc"], "step": [1, 2],
                             "epoch": [None, None], "time": [1.0, 2.0], "value": [0.1, 0.2]},
                            schema_overrides={"epoch": pl.Float64})
    with pytest.raises(DataError, match="--x step"):
        analyse(Dataset.from_frames(pl.DataFrame({"run": ["a"]}), no_epoch), "acc", x="epoch")
    assert analyse(Dataset.from_frames(pl.DataFrame({"run": ["a"]}), no_epoch), "acc",
                   x="step").table.height == 1
    # By default (auto) the column without epochs is read on its steps.
    assert analyse(Dataset.from_frames(pl.DataFrame({"run": ["a"]}), no_epoch), "acc").x == "step"


def test_two_metrics_keep_full_labels_and_compact_display(sample) -> None:
    result = analyse(sample, "f1:lang=zh,f1:lang=en,lms_score", run="lr1e-4-s00", sparkline=True)
    assert sorted(result.table["context"].to_list()) == ["f1[lang=en]", "f1[lang=zh]",
                                                         "lms_score"]
    lms = row(result.table, "lms_score", "lr1e-4-s00")
    assert lms["status"] == "single_point" and lms["points"] == 1
    assert result.display(compact=True).columns == [
        "rank", "context", "curve", "peak", "peak_epoch", "final", "rel_drop", "slope", "auc",
        "status"]
    assert result.display().columns == result.table.columns


def test_a_resumed_run_counts_every_point_in_logging_order() -> None:
    # Epochs 1, 2, 3 = 0.5, 0.9, 0.6, then resumed: 2, 3 = 0.55, 0.6. Every point counts:
    # peak 0.9 (epoch 2, as @max says), final 0.6 (the last logged, as @last says).
    frame = pl.DataFrame({"run": ["r"] * 5, "context": ["lang=en"] * 5,
                          "epoch": [1.0, 2.0, 3.0, 2.0, 3.0], "time": [1.0, 2.0, 3.0, 4.0, 5.0],
                          "value": [0.5, 0.9, 0.6, 0.55, 0.6]})
    stats = row(curve_stats(frame), "lang=en")
    assert (stats["peak"], stats["peak_epoch"], stats["final"], stats["points"],
            stats["status"]) == (0.9, 2.0, 0.6, 5, "past_peak")
    assert stats["drop"] == pytest.approx(0.3)
    # The epoch goes backwards: nothing that needs x to move forward.
    assert (stats["since_peak"], stats["slope"], stats["auc"]) == (None, None, None)
    # On the order view every statistic is defined: x = 0..4.
    ordered = frame.with_columns(pl.int_range(5).cast(pl.Float64).alias("order"))
    stats = row(curve_stats(ordered, x="order"), "lang=en")
    assert (stats["peak_order"], stats["since_peak"]) == (1.0, 3.0)
    assert stats["slope"] == pytest.approx(np.polyfit([2, 3, 4], [0.6, 0.55, 0.6], 1)[0])
    assert stats["auc"] == pytest.approx(np.trapezoid([0.5, 0.9, 0.6, 0.55, 0.6]) / 4)
    # A later time wins over a later row: logged 0.5, 0.6, 0.55, 0.6, then 0.9 last.
    skewed = frame.with_columns(pl.Series("time", [1.0, 9.0, 3.0, 4.0, 5.0]))
    stats = row(curve_stats(skewed), "lang=en")
    assert (stats["peak"], stats["final"], stats["status"]) == (0.9, 0.9, "still_learning")


def test_where_takes_metric_specs_in_backticks(sample) -> None:
    result = analyse(sample, "f1:lang=en", where="`f1:lang=en@max` > 0.7 and lr == 3e-5")
    runs = set(result.stats["run"].to_list())
    expected = set(
        sample.points.filter((pl.col("name") == "f1") & (pl.col("lang") == "en"))
        .group_by("run").agg(pl.col("value").max()).filter(pl.col("value") > 0.7)
        .join(sample.runs.select("run", "lr").filter(pl.col("lr") == 3e-5), on="run")
        .collect()["run"].to_list())
    assert runs == expected and runs

"""Grouped statistics (xp group) against numpy, the statistics module and hand-worked values."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tables_helpers import f1, write_runs

from xpcli.analysis.group import (
    compact_frame,
    default_by,
    group_runs,
    group_table,
    parse_aggs,
    stat_column,
)
from xpcli.dataset import load
from xpcli.errors import UsageError

NAN = float("nan")
ALL = ["median", "mean", "std", "sem", "min", "max", "count", "q0", "q10", "q25", "q90", "q100"]


def runs_frame(groups: dict[str, list[float | None]]) -> pl.DataFrame:
    rows = [(g, f"{g}{i}", v) for g, values in groups.items() for i, v in enumerate(values)]
    return pl.DataFrame(rows, schema={"g": pl.String, "run": pl.String, "v": pl.Float64},
                        orient="row")


def one_group(values: list[float | None], aggs: list[str]) -> dict:
    wide = group_runs(runs_frame({"x": values}), ["g"], ["v"], aggs)
    assert wide.height == 1
    return wide.row(0, named=True)


@pytest.mark.parametrize("values", [
    [0.3, 0.1, 0.2, 0.4, 0.9],
    [1.0, 1.0, 2.0, 2.0, 2.0, 5.0],  # ties
    [0.71, 0.69, 0.70, 0.70, 0.73, 0.68, 0.74, 0.70],
    [-3.0, 7.5],
])
def test_statistics_match_numpy(values: list[float]) -> None:
    row = one_group(values, ALL)
    arr = np.array(values)
    assert row["n"] == len(values)
    assert row[stat_column("median", "v")] == pytest.approx(statistics.median(values))
    assert row[stat_column("mean", "v")] == pytest.approx(statistics.fmean(values))
    assert row[stat_column("std", "v")] == pytest.approx(statistics.stdev(values))
    assert row[stat_column("sem", "v")] == pytest.approx(
        np.std(arr, ddof=1) / math.sqrt(len(values)))
    assert row[stat_column("min", "v")] == min(values)
    assert row[stat_column("max", "v")] == max(values)
    assert row[stat_column("count", "v")] == len(values)
    for q in (0, 10, 25, 90, 100):
        assert row[stat_column(f"q{q}", "v")] == pytest.approx(
            np.quantile(arr, q / 100, method="linear")), q


def test_quantile_interpolation_hand_worked() -> None:
    # Sorted 1, 2, 3, 4, 10: h = 4 * 0.1 = 0.4 -> 1 + 0.4 * (2 - 1) = 1.4;
    # q90: h = 3.6 -> 4 + 0.6 * (10 - 4) = 7.6; q2.5: h = 0.1 -> 1.1.
    row = one_group([10.0, 4.0, 3.0, 2.0, 1.0], ["q10", "q90", "q2.5", "median"])
    assert row["q10(v)"] == pytest.approx(1.4)
    assert row["q90(v)"] == pytest.approx(7.6)
    assert row["q2.5(v)"] == pytest.approx(1.1)
    assert row["median(v)"] == 3.0


def test_single_run_group_has_undefined_spread() -> None:
    row = one_group([0.7], ALL)
    assert row["n"] == 1 and row["count(v)"] == 1
    assert row["std(v)"] is None and row["sem(v)"] is None
    assert row["median(v)"] == row["min(v)"] == row["max(v)"] == row["q10(v)"] == 0.7


def test_nan_and_missing_values_are_skipped_and_counted() -> None:
    values = [0.2, NAN, None, 0.4, 0.9]
    row = one_group(values, ALL)
    kept = [0.2, 0.4, 0.9]
    assert row["n"] == 5 and row["count(v)"] == 3
    assert row["mean(v)"] == pytest.approx(statistics.fmean(kept))
    assert row["std(v)"] == pytest.approx(statistics.stdev(kept))
    assert row["sem(v)"] == pytest.approx(statistics.stdev(kept) / math.sqrt(3))
    assert row["q25(v)"] == pytest.approx(np.nanquantile(np.array([0.2, NAN, 0.4, 0.9]), 0.25))


def test_group_with_no_values() -> None:
    row = one_group([None, NAN], ["median", "std", "count", "q90", "min"])
    assert row["n"] == 2 and row["count(v)"] == 0
    assert row["median(v)"] is None and row["std(v)"] is None and row["q90(v)"] is None


def test_groups_ordered_with_null_key_last() -> None:
    frame = pl.DataFrame({"run": list("abcde"), "lr": [0.1, None, 0.01, 0.1, 0.01],
                          "v": [1.0, 2.0, 3.0, 5.0, 4.0]})
    wide = group_runs(frame, ["lr"], ["v"], ["mean", "count"])
    assert wide.columns == ["lr", "n", "mean(v)", "count(v)"]
    assert wide.rows() == [(0.01, 2, 3.5, 2), (0.1, 2, 3.0, 2), (None, 1, 2.0, 1)]


def test_several_by_and_no_by() -> None:
    frame = pl.DataFrame({"run": list("abcd"), "lr": [1, 1, 2, 2], "opt": ["x", "y", "x", "x"],
                          "v": [1.0, 2.0, 3.0, 5.0]})
    wide = group_runs(frame, ["lr", "opt"], ["v"], ["max"])
    assert wide.rows() == [(1, "x", 1, 1.0), (1, "y", 1, 2.0), (2, "x", 2, 5.0)]
    assert group_runs(frame, [], ["v"], ["mean", "count"]).rows() == [(4, 2.75, 4)]


def test_parse_aggs() -> None:
    assert parse_aggs(None) == ["median", "min", "max"]
    assert parse_aggs(["Mean,q90", "q10", "mean", "q50.0"]) == ["mean", "q90", "q10", "q50"]
    with pytest.raises(UsageError, match="--agg 'avg': unknown statistic"):
        parse_aggs("avg")
    with pytest.raises(UsageError, match="q0..q100"):
        parse_aggs("q101")


def test_compact_view() -> None:
    frame = pl.DataFrame({"run": list("abcd"), "lr": [1, 1, 1, 2],
                          "v": [0.5, 0.25, None, 0.75]})
    wide = group_runs(frame, ["lr"], ["v"], ["median", "min", "max", "count"])
    compact, legend = compact_frame(wide, ["lr"], ["v"], ["median", "min", "max"])
    assert legend == "median [min, max]"
    assert compact.columns == ["lr", "n", "v"]
    assert compact["v"].to_list() == ["0.375 [0.250, 0.500] (2 of 3)", "0.750 [0.750, 0.750]"]
    wide = group_runs(frame, ["lr"], ["v"], ["mean", "std", "q10", "q90", "sem"])
    compact, legend = compact_frame(wide, ["lr"], ["v"], ["mean", "std", "q10", "q90", "sem"])
    assert legend == "mean ± std [q10, q90]"
    assert compact.columns == ["lr", "n", "v", "sem(v)"]
    assert compact["v"].to_list()[1] == "0.750 ± n/a [0.750, 0.750]"


@pytest.fixture
def seeds(tmp_path: Path):
    """lr 0.1: seeds 1-3 (German 0.2, 0.4, 0.9); lr 0.01: seed 1 only, no German at all."""
    return load(write_runs(tmp_path / "runs", [
        ("a1", {"lr": 0.1, "seed": 1}, f1(1, en=0.5, de=0.2)),
        ("a2", {"lr": 0.1, "seed": 2}, f1(1, en=0.6, de=0.4)),
        ("a3", {"lr": 0.1, "seed": 3}, f1(1, en=0.7, de=0.9)),
        ("b1", {"lr": 0.01, "seed": 1}, f1(1, en=0.8)),
    ]))


def test_group_table_defaults_exclude_seed(seeds) -> None:
    result = group_table(seeds, metrics="f1:lang=*", aggs="median,std,count")
    assert result.by == ["lr"]
    assert result.wide.columns == [
        "lr", "n", "median(f1[lang=de])", "std(f1[lang=de])", "count(f1[lang=de])",
        "median(f1[lang=en])", "std(f1[lang=en])", "count(f1[lang=en])"]
    assert result.wide.rows() == [
        (0.01, 1, None, None, 0, 0.8, None, 1),
        (0.1, 3, 0.4, pytest.approx(statistics.stdev([0.2, 0.4, 0.9])), 3,
         0.6, pytest.approx(0.1), 3),
    ]
    assert default_by(seeds.runs.collect(), ["lr", "seed"]) == ["lr"]


def test_group_table_where_and_compact(seeds) -> None:
    result = group_table(seeds, by="seed", metrics="f1:lang=de",
                         where="`f1:lang=en` >= 0.6")
    # a1 (English 0.5) is filtered out; b1 (seed 1) has no German value.
    assert result.wide.rows() == [
        (1, 1, None, None, None), (2, 1, 0.4, 0.4, 0.4), (3, 1, 0.9, 0.9, 0.9)]
    compact, legend = result.compact()
    assert legend == "median [min, max]"
    assert compact.rows() == [
        (1, 1, "n/a (0 of 1)"), (2, 1, "0.4 [0.4, 0.4]"), (3, 1, "0.9 [0.9, 0.9]")]
    # The runs without German show how many values the cell stands for.
    compact, _ = group_table(seeds, metrics="f1:lang=de").compact()
    assert compact["f1[lang=de]"].to_list() == ["n/a (0 of 1)", "0.4 [0.2, 0.9]"]


def test_group_table_errors(seeds) -> None:
    with pytest.raises(UsageError, match="unknown param 'lrr'"):
        group_table(seeds, by="lrr")
    with pytest.raises(UsageError, match="unknown param 'f1\\[lang=en\\]'"):
        group_table(seeds, by="f1[lang=en]", metrics="f1:lang=en")

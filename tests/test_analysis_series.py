"""Series extraction (x axes, duplicates, missing axes) and smoothing against references."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from xpcli.analysis.series import (
    Smoothing,
    extract_series,
    parse_smoothing,
    series_keys,
    smooth,
)
from xpcli.analysis.series_model import Notes
from xpcli.errors import DataError, UsageError
from xpcli.spec import expand, parse_metric_specs

NAN = float("nan")


def points_frame(rows: list[tuple]) -> pl.DataFrame:
    """rows: (run, name, lang, step, epoch, time, value)."""
    return pl.DataFrame(
        rows,
        schema={"run": pl.String, "name": pl.String, "lang": pl.String, "step": pl.Int64,
                "epoch": pl.Float64, "time": pl.Float64, "value": pl.Float64},
        orient="row",
    )


POINTS = points_frame([
    ("a", "f1", "de", 10, 1.0, 1000.0, 0.5),
    ("a", "f1", "de", 20, 2.0, 1010.0, 0.6),
    ("a", "f1", "en", 10, 1.0, 1000.0, 0.7),
    ("a", "loss", None, 0, 0.0, 995.0, 2.0),
    ("b", "f1", "de", 10, 1.0, 2002.0, 0.4),
    ("b", "f1", "de", 30, 3.0, 2030.0, 0.45),
    ("b", "f1", "de", 30, 3.0, 2040.0, 0.55),  # re-logged later: wins
    ("b", "f1", "en", 10, None, 2002.0, 0.8),  # no epoch
])


def columns(text: str, points: pl.DataFrame = POINTS):
    return expand(parse_metric_specs(text), points)


def test_extract_epoch_sorted_with_context_columns_and_last_logged_wins() -> None:
    cols = columns("f1:lang=*")
    assert series_keys(cols) == ["metric", "lang"]
    got = extract_series(POINTS, cols, "epoch")
    assert got.columns == ["run", "metric", "lang", "epoch", "value"]
    assert got.rows() == [
        ("a", "f1", "de", 1.0, 0.5),
        ("a", "f1", "de", 2.0, 0.6),
        ("b", "f1", "de", 1.0, 0.4),
        ("b", "f1", "de", 3.0, 0.55),
        ("a", "f1", "en", 1.0, 0.7),  # b's en point has no epoch: left out
    ]


def test_points_without_the_axis_are_left_out_and_counted() -> None:
    notes = Notes()
    extract_series(POINTS, columns("f1:lang=*"), "epoch", notes=notes)
    assert notes.warnings == ["1 point of f1[lang=en] (in 1 run) has no epoch; left out"]
    # b re-logged epoch 3 of de: the alignment kept the later value and says so.
    assert notes.lines()[0] == (
        "warning: run b, f1[lang=de]: epoch repeats (1 point at an epoch logged before); "
        "one value per epoch kept, the last logged (1 point discarded)")


def test_extract_step_keeps_integers() -> None:
    got = extract_series(POINTS, columns("f1:lang=de"), "step")
    assert got.schema["step"] == pl.Int64
    assert got["step"].to_list() == [10, 20, 10, 30]


def test_extract_time_is_seconds_since_the_runs_first_point() -> None:
    got = extract_series(POINTS, columns("f1:lang=de"), "time")
    # a's first point is its loss at 995; b's first is at 2002.
    assert got.filter(pl.col("run") == "a")["time"].to_list() == [5.0, 15.0]
    assert got.filter(pl.col("run") == "b")["time"].to_list() == [0.0, 28.0, 38.0]


def test_extract_limits_runs() -> None:
    got = extract_series(POINTS, columns("f1:lang=de"), "epoch", runs=["b"])
    assert set(got["run"]) == {"b"}


def test_extract_without_the_axis_names_another() -> None:
    pts = points_frame([("a", "f1", "de", 10, None, 1.0, 0.5)])
    with pytest.raises(DataError, match=r"f1\[lang=de\] has no epoch values; use --x step"):
        extract_series(pts, columns("f1:lang=de", pts), "epoch")


def test_extract_refuses_reduced_specs_and_bad_axis() -> None:
    with pytest.raises(UsageError, match="not reduced"):
        extract_series(POINTS, columns("f1:lang=de@max"), "epoch")
    with pytest.raises(UsageError, match="--x wall"):
        extract_series(POINTS, columns("f1:lang=de"), "wall")


def test_parse_smoothing() -> None:
    assert parse_smoothing(None) is None
    assert parse_smoothing("none") is None
    assert parse_smoothing("ema:0.6") == Smoothing("ema", weight=0.6)
    assert parse_smoothing("ma:5") == Smoothing("ma", window=5)
    for bad in ("ema:1", "ema:-0.1", "ma:0", "ma:2.5", "gauss:3", "ema"):
        with pytest.raises(UsageError, match="--smooth"):
            parse_smoothing(bad)


def tensorboard_ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's debiased EMA, transcribed from its smoothing code."""
    last, num_accum = 0.0, 0
    constant = all(v == values[0] for v in values)
    out = []
    for v in values:
        if constant or not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        num_accum += 1
        debias = 1 - weight**num_accum if weight != 1 else 1.0
        out.append(last / debias)
    return out


def single(values: list[float], run: str = "r") -> pl.DataFrame:
    return pl.DataFrame({
        "run": [run] * len(values), "metric": ["m"] * len(values),
        "epoch": [float(i) for i in range(len(values))], "value": values,
    })


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.95])
def test_ema_matches_tensorboard(weight: float) -> None:
    rng = np.random.default_rng(3)
    values = list(rng.normal(size=40).cumsum())
    values[5] = NAN
    values[17] = math.inf
    got = smooth(single(values), Smoothing("ema", weight=weight), "epoch")["value"].to_list()
    want = tensorboard_ema(values, weight)
    for g, w in zip(got, want):
        if math.isfinite(w):
            assert g == pytest.approx(w, rel=1e-12, abs=1e-12)
        else:
            assert (math.isnan(g) and math.isnan(w)) or g == w


def test_ema_keeps_a_constant_series_constant_and_runs_apart() -> None:
    frame = pl.concat([single([0.3] * 25, "a"), single([1.0, 3.0], "b")])
    got = smooth(frame, Smoothing("ema", weight=0.9), "epoch")
    assert got.filter(pl.col("run") == "a")["value"].to_list() == [0.3] * 25
    # b starts afresh (its first smoothed value is its first value).
    b = got.filter(pl.col("run") == "b")["value"].to_list()
    assert b == pytest.approx(tensorboard_ema([1.0, 3.0], 0.9))


@pytest.mark.parametrize("window", [1, 2, 3, 4, 5])
def test_centred_moving_average(window: int) -> None:
    values = [1.0, 2.0, NAN, 8.0, 16.0, 32.0, 64.0]
    got = smooth(single(values), Smoothing("ma", window=window), "epoch")["value"].to_list()
    before, after = window // 2, (window - 1) // 2
    arr = np.array(values)
    for i, g in enumerate(got):
        if not math.isfinite(values[i]):
            assert math.isnan(g)
            continue
        win = arr[max(0, i - before): i + after + 1]
        assert g == pytest.approx(np.nanmean(win))


def test_smoothing_orders_by_x_and_none_is_identity() -> None:
    frame = single([1.0, 2.0, 3.0]).reverse()
    assert smooth(frame, None, "epoch") is frame
    got = smooth(frame, Smoothing("ma", window=3), "epoch")
    assert got["epoch"].to_list() == [0.0, 1.0, 2.0]
    assert got["value"].to_list() == pytest.approx([1.5, 2.0, 2.5])

"""Aggregation across runs: centre, band and n against numpy, alignment, interpolation."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from xpcli.analysis.aggregate import (
    Band,
    aggregate,
    common_grid,
    describe_policy,
    interpolate,
    parse_band,
    t_quantile,
)
from xpcli.errors import UsageError

NAN = float("nan")
KEYS = ["metric", "lang"]

# Hand-made series: unequal lengths (r3 stops at epoch 2), a gap (r2 skips epoch 3),
# NaN (r1 at epoch 2), inf (r4 at 4), and a group with a single run (lr 0.1: r5).
SERIES = {
    # run: (lr, {epoch: value})
    "r1": (0.01, {1: 0.10, 2: NAN, 3: 0.50, 4: 0.55}),
    "r2": (0.01, {1: 0.20, 2: 0.40, 4: 0.70}),
    "r3": (0.01, {1: 0.15, 2: 0.35}),
    "r4": (0.01, {1: 0.05, 2: 0.30, 3: 0.45, 4: math.inf}),
    "r5": (0.1, {1: 0.60, 2: 0.65, 3: 0.61}),
}


def series_frame(lang: str = "de") -> pl.DataFrame:
    rows = [(run, "f1", lang, float(e), v) for run, (_, pts) in SERIES.items()
            for e, v in pts.items()]
    return pl.DataFrame(rows, schema={"run": pl.String, "metric": pl.String, "lang": pl.String,
                                      "epoch": pl.Float64, "value": pl.Float64}, orient="row")


RUNS = pl.DataFrame({"run": list(SERIES), "lr": [lr for lr, _ in SERIES.values()],
                     "seed": [1, 2, 3, 4, 5]})


def values_at(lr: float, epoch: int) -> np.ndarray:
    """The finite values the runs of group ``lr`` logged at ``epoch`` (numpy reference)."""
    out = [pts[epoch] for l_, pts in SERIES.values() if l_ == lr and epoch in pts]
    arr = np.array(out, dtype=float)
    return arr[np.isfinite(arr)]


def reference(lr: float, epoch: int, center: str, band: str) -> tuple:
    v = values_at(lr, epoch)
    n = len(v)
    c = {"mean": np.mean, "median": np.median, "min": np.min, "max": np.max}[center](v)
    mean = np.mean(v)
    if band == "minmax":
        return c, v.min(), v.max(), n
    if band.startswith("q"):
        lo, hi = (float(p[1:]) / 100 for p in band.split("-"))
        return c, np.quantile(v, lo), np.quantile(v, hi), n
    if n < 2:
        return c, None, None, n
    sd = np.std(v, ddof=1)
    spread = {"std": sd, "sem": sd / np.sqrt(n)}.get(band)
    if band == "ci95":
        t = {2: 12.706204736, 3: 4.302652730, 4: 3.182446305}[n]  # t(0.975, n-1), tables
        spread = t * sd / np.sqrt(n)
    return c, mean - spread, mean + spread, n


@pytest.mark.parametrize("center", ["mean", "median", "min", "max"])
@pytest.mark.parametrize("band", ["minmax", "std", "sem", "ci95", "q25-q75", "q10-q90"])
def test_exact_alignment_against_numpy(center: str, band: str) -> None:
    got = aggregate(series_frame(), KEYS, "epoch", runs=RUNS, by=["lr"], center=center,
                    band=band)
    assert got.columns == ["lr", "metric", "lang", "epoch", "center", "low", "high", "n"]
    expected_points = [(lr, e) for lr in (0.01, 0.1) for e in (1, 2, 3, 4)
                       if len(values_at(lr, e))]
    assert [(r["lr"], r["epoch"]) for r in got.iter_rows(named=True)] == [
        (lr, float(e)) for lr, e in expected_points
    ]
    for row in got.iter_rows(named=True):
        c, lo, hi, n = reference(row["lr"], int(row["epoch"]), center, band)
        assert row["n"] == n
        assert row["center"] == pytest.approx(c, rel=1e-12)
        if lo is None:
            assert row["low"] is None and row["high"] is None
        else:
            assert row["low"] == pytest.approx(lo, rel=1e-9)
            assert row["high"] == pytest.approx(hi, rel=1e-9)


def test_n_counts_finite_values_only() -> None:
    got = aggregate(series_frame(), KEYS, "epoch", runs=RUNS, by=["lr"])
    n = {(r["lr"], r["epoch"]): r["n"] for r in got.iter_rows(named=True)}
    # epoch 2: r1 NaN -> r2, r3, r4; epoch 3: r2 gap, r3 stopped -> r1, r4;
    # epoch 4: r4 inf, r3 stopped -> r1, r2; single-run group lr 0.1 -> 1 each.
    assert n == {(0.01, 1.0): 4, (0.01, 2.0): 3, (0.01, 3.0): 2, (0.01, 4.0): 2,
                 (0.1, 1.0): 1, (0.1, 2.0): 1, (0.1, 3.0): 1}


def test_min_runs_drops_thin_points() -> None:
    got = aggregate(series_frame(), KEYS, "epoch", runs=RUNS, by=["lr"], min_runs=3)
    assert [(r["lr"], r["epoch"], r["n"]) for r in got.iter_rows(named=True)] == [
        (0.01, 1.0, 4), (0.01, 2.0, 3)
    ]
    with pytest.raises(UsageError, match="--min-runs"):
        aggregate(series_frame(), KEYS, "epoch", min_runs=0)


def test_without_by_everything_is_one_group_per_column() -> None:
    frame = pl.concat([series_frame("de"), series_frame("en")])
    got = aggregate(frame, KEYS, "epoch", center="mean")
    assert got.columns == ["metric", "lang", "epoch", "center", "low", "high", "n"]
    de1 = got.filter((pl.col("lang") == "de") & (pl.col("epoch") == 1.0)).row(0, named=True)
    every = np.array([0.10, 0.20, 0.15, 0.05, 0.60])
    assert de1["n"] == 5
    assert de1["center"] == pytest.approx(every.mean())
    assert got.filter(pl.col("lang") == "en").height == got.filter(pl.col("lang") == "de").height


def test_interpolation_never_extrapolates() -> None:
    frame = pl.DataFrame({
        "run": ["a", "a", "a", "b", "b"],
        "metric": ["m"] * 5,
        "epoch": [0.0, 2.0, 4.0, 1.0, 3.0],
        "value": [0.0, 2.0, 8.0, 10.0, 30.0],
    })
    got = interpolate(frame, ["metric"], "epoch")
    a = got.filter(pl.col("run") == "a")
    b = got.filter(pl.col("run") == "b")
    # Grid = union {0,1,2,3,4}; a covers 0..4, b only 1..3 (no value at 0 or 4).
    assert a["epoch"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert a["value"].to_list() == pytest.approx(np.interp([0, 1, 2, 3, 4], [0, 2, 4], [0, 2, 8]))
    assert b["epoch"].to_list() == [1.0, 2.0, 3.0]
    assert b["value"].to_list() == pytest.approx([10.0, 20.0, 30.0])
    agg = aggregate(frame, ["metric"], "epoch", align="interp", center="mean")
    assert agg.select("epoch", "n").rows() == [(0.0, 1), (1.0, 2), (2.0, 2), (3.0, 2), (4.0, 1)]
    assert agg["center"].to_list() == pytest.approx([0.0, 5.5, 11.0, 17.5, 8.0])


def test_interpolation_bridges_nan_and_uses_an_even_grid_when_dense() -> None:
    frame = pl.DataFrame({
        "run": ["a"] * 4 + ["b"] * 2,
        "metric": ["m"] * 6,
        "time": [0.0, 1.5, 3.0, 9.0, 0.7, 2.2],
        "value": [0.0, NAN, 3.0, 9.0, 7.0, 7.0],
    })
    got = interpolate(frame, ["metric"], "time", grid=4)  # 6 distinct x > 4: even grid
    grid = np.linspace(0.0, 9.0, 4)
    a = got.filter(pl.col("run") == "a")
    assert a["time"].to_list() == pytest.approx(grid)
    assert a["value"].to_list() == pytest.approx(np.interp(grid, [0, 3, 9], [0, 3, 9]))
    # b lives on 0.7..2.2 only: the grid point 0.0 is before it, 3.0 after it.
    assert got.filter(pl.col("run") == "b").height == 0
    np.testing.assert_allclose(common_grid(np.array([3.0, 1.0, 1.0, 2.0])), [1.0, 2.0, 3.0])


def test_interp_keeps_groups_apart() -> None:
    got = aggregate(series_frame(), KEYS, "epoch", runs=RUNS, by=["lr"], align="interp",
                    center="mean", band="minmax")
    row = got.filter((pl.col("lr") == 0.01) & (pl.col("epoch") == 3.0)).row(0, named=True)
    # r1 NaN at 2 is bridged; r2 interpolated across its gap (0.55); r3 ended at 2;
    # r4 at 3 = 0.45 (its inf at 4 is dropped, so it ends at 3).
    vals = np.array([0.50, 0.55, 0.45])
    assert row["n"] == 3
    assert row["center"] == pytest.approx(vals.mean())
    assert (row["low"], row["high"]) == pytest.approx((vals.min(), vals.max()))
    single = got.filter(pl.col("lr") == 0.1)
    assert single["n"].to_list() == [1, 1, 1]


@pytest.mark.parametrize("df,table", [
    (1, 12.706204736), (2, 4.302652730), (3, 3.182446305), (5, 2.570581836),
    (10, 2.228138852), (29, 2.045229642), (100, 1.983971519), (1000, 1.962339081),
])
def test_t_quantile_matches_tables(df: int, table: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(table, abs=2e-9)


def test_t_quantile_against_numerical_integration() -> None:
    # P(|T| < t) by integrating the t density with numpy.
    for df in (4, 7, 250, 400):
        t = t_quantile(0.975, df)
        xs = np.linspace(-t, t, 200_001)
        log_c = (math.lgamma((df + 1) / 2) - math.lgamma(df / 2)
                 - 0.5 * math.log(df * math.pi))
        pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(xs**2 / df))
        assert np.trapezoid(pdf, xs) == pytest.approx(0.95, abs=1e-8)


def test_parse_band_and_errors() -> None:
    assert parse_band("q25-q75") == Band("quantile", 0.25, 0.75)
    assert parse_band("q25-q75").text == "q25-q75"
    assert parse_band("CI95") == Band("ci95")
    for bad in ("q75-q25", "q0-q101", "iqr", "q25"):
        with pytest.raises(UsageError, match="--band"):
            parse_band(bad)
    with pytest.raises(UsageError, match="--center"):
        aggregate(series_frame(), KEYS, "epoch", center="mode")
    with pytest.raises(UsageError, match="--align"):
        aggregate(series_frame(), KEYS, "epoch", align="nearest")


def test_describe_policy_says_the_alignment() -> None:
    assert "exact" in describe_policy("epoch", "exact")
    assert "interpolated" in describe_policy("time", "interp", min_runs=3)
    assert "fewer than 3 runs" in describe_policy("time", "interp", min_runs=3)


# -- random runs through the series model, against numpy -------------------------------

LANGS = ("de", "en", "zh")


def random_points(seed: int, messy: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Random f1 points of 12 runs in two lr groups, rows in read order with a time on
    each. Some runs miss a language (missing contexts), one logs every point at step 0,
    values include NaN. ``messy``: a resumed run re-logs epochs (a reset), and one run's
    rows come in a shuffled read order (its times give the logging order)."""
    rng = np.random.default_rng(seed)
    rows = []
    lrs = {}
    for r in range(12):
        run = f"r{r:02d}"
        lrs[run] = 1e-3 if r % 2 else 1e-4
        langs = [lang for lang in LANGS if rng.random() > 0.25] or ["en"]
        epochs = list(range(1, int(rng.integers(3, 8)) + 1))
        if messy and r == 3:
            epochs = epochs + list(range(2, len(epochs) + 3))  # resumed from epoch 2
        clock = 1000.0 * r
        mine = []
        for i, epoch in enumerate(epochs):
            for lang in langs:
                clock += 1.0
                value = float(rng.random()) if rng.random() > 0.1 else NAN
                step = 0 if r == 5 else 10 * (i + 1)
                mine.append((run, "f1", lang, step, float(epoch), clock, value))
        if messy and r == 7:
            mine = [mine[i] for i in rng.permutation(len(mine))]
        rows += mine
    points = pl.DataFrame(rows, orient="row", schema={
        "run": pl.String, "name": pl.String, "lang": pl.String, "step": pl.Int64,
        "epoch": pl.Float64, "time": pl.Float64, "value": pl.Float64})
    runs = pl.DataFrame({"run": list(lrs), "lr": list(lrs.values())})
    return points, runs


def numpy_aggregate(points: pl.DataFrame, runs: pl.DataFrame, x: str) -> dict:
    """(lr, lang, x) -> the finite values there, computed without Polars: each series in
    logging order (by time, then read position), one value per x, the last logged."""
    lr_of = dict(runs.iter_rows())
    series: dict[tuple, list] = {}
    for position, (run, _, lang, step, epoch, time, value) in enumerate(points.iter_rows()):
        series.setdefault((run, lang), []).append((time, position, {"step": step,
                                                                    "epoch": epoch}[x], value))
    out: dict[tuple, list] = {}
    for (run, lang), pts in series.items():
        last = {}
        for _, _, at, value in sorted(pts):
            last[at] = value
        for at, value in last.items():
            out.setdefault((lr_of[run], lang, float(at)), []).append(value)
    return {k: np.array([v for v in vs if np.isfinite(v)]) for k, vs in out.items()
            if np.isfinite(vs).any()}


@pytest.mark.parametrize("messy", [False, True])
@pytest.mark.parametrize("x", ["epoch", "step"])
@pytest.mark.parametrize("center,band", [("median", "minmax"), ("median", "q25-q75"),
                                         ("mean", "std"), ("mean", "ci95")])
def test_random_runs_against_numpy(messy: bool, x: str, center: str, band: str) -> None:
    from xpcli.analysis.series import load_series
    from xpcli.dataset import Dataset

    points, runs = random_points(7, messy)
    dataset = Dataset.from_frames(runs, points)
    data = load_series(dataset, "f1:lang=*", x=x)  # type: ignore[arg-type]
    # The clean runs on epoch are read in read order, unsorted; the rest by the general path.
    held = data.source()
    assert isinstance(held[0], list) == (not messy and x == "epoch")
    expected = numpy_aggregate(points, runs, x)
    for source, labels in (held, (data.series, None)):
        got = aggregate(source, data.keys, x, runs=runs, by=["lr"], center=center, band=band,
                        labels=labels)
        assert {(r["lr"], r["lang"], float(r[x])) for r in got.iter_rows(named=True)} == \
            set(expected)
        for row in got.iter_rows(named=True):
            v = expected[(row["lr"], row["lang"], float(row[x]))]
            assert row["n"] == len(v)
            assert row["center"] == pytest.approx(getattr(np, center)(v), rel=1e-12)
            if band == "minmax":
                lo, hi = v.min(), v.max()
            elif band == "q25-q75":
                lo, hi = np.quantile(v, 0.25), np.quantile(v, 0.75)
            elif len(v) < 2:
                assert row["low"] is None and row["high"] is None
                continue
            else:
                sd = np.std(v, ddof=1)
                spread = sd if band == "std" else t_quantile(0.975, len(v) - 1) * sd / np.sqrt(
                    len(v))
                lo, hi = np.mean(v) - spread, np.mean(v) + spread
            assert row["low"] == pytest.approx(lo, rel=1e-9)
            assert row["high"] == pytest.approx(hi, rel=1e-9)

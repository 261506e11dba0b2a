"""The table behind ``xp parcoords``, on small frames whose answers are worked by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from xpcli.analysis.parcoords import (
    RUN_NUMBER,
    match_axes,
    parcoords_table,
    readable_label,
    resolve_axis_words,
)
from xpcli.dataset import Dataset
from xpcli.errors import SpecError, UsageError
from xpcli.spec import expand, parse_metric_specs

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# run: (lr, seed, optimizer, created offset in hours)
RUNS = {
    "a": (1e-5, 0, "adam", 1),
    "b": (1e-4, 1, "sgd", 2),
    "c": (1e-3, 2, "adam", 3),
    "d": (1e-6, 3, "sgd", 0),
}
# (run, metric, lang, epoch, value); d has no German F1, c no lms_score.
POINTS = [
    ("a", "f1", "en", 1, 0.5), ("a", "f1", "en", 2, 0.6),
    ("a", "f1", "de", 1, 0.4), ("a", "f1", "de", 2, 0.3), ("a", "lms_score", None, 2, 0.35),
    ("b", "f1", "en", 1, 0.7), ("b", "f1", "en", 2, 0.8),
    ("b", "f1", "de", 1, 0.5), ("b", "f1", "de", 2, 0.45), ("b", "lms_score", None, 2, 0.5),
    ("c", "f1", "en", 1, 0.6), ("c", "f1", "en", 2, 0.9),
    ("c", "f1", "de", 1, 0.2), ("c", "f1", "de", 2, 0.1),
    ("d", "f1", "en", 1, 0.1), ("d", "f1", "en", 2, 0.2), ("d", "lms_score", None, 2, 0.15),
]


def table_of(runs: pl.DataFrame, points: pl.LazyFrame, *args, **kwargs):
    """``parcoords_table`` on a dataset of these frames."""
    return parcoords_table(Dataset.from_frames(runs, points), *args, **kwargs)


@pytest.fixture()
def runs() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "run": list(RUNS),
            "lr": [v[0] for v in RUNS.values()],
            "seed": [v[1] for v in RUNS.values()],
            "optimizer.name": [v[2] for v in RUNS.values()],
            "created": [T0 + dt.timedelta(hours=v[3]) for v in RUNS.values()],
            "status": ["finished"] * len(RUNS),
        }
    )


@pytest.fixture()
def points() -> pl.LazyFrame:
    return pl.DataFrame(
        {
            "run": [p[0] for p in POINTS],
            "name": [p[1] for p in POINTS],
            "lang": [p[2] for p in POINTS],
            "step": [p[3] * 10 for p in POINTS],
            "epoch": [float(p[3]) for p in POINTS],
            "time": [1000.0 + i for i in range(len(POINTS))],
            "value": [p[4] for p in POINTS],
        },
        schema={"run": pl.String, "name": pl.String, "lang": pl.String, "step": pl.Int64,
                "epoch": pl.Float64, "time": pl.Float64, "value": pl.Float64},
    ).lazy()


def test_one_row_per_run_one_column_per_axis_in_order(runs, points):
    pc = table_of(runs, points, ["lr", "seed"], "f1:lang=*,lms_score")
    assert pc.table.columns == ["run", "lr", "seed", "f1[lang=de]", "f1[lang=en]", "lms_score"]
    assert [a.label for a in pc.axes] == ["lr", "seed", "f1 lang=de", "f1 lang=en", "lms_score"]
    assert [a.kind for a in pc.axes] == ["param", "param", "metric", "metric", "metric"]
    # Ordered by creation time: d (hour 0), a, b, c.
    assert pc.table["run"].to_list() == ["d", "a", "b", "c"]
    # last = the value at the largest epoch, worked by hand from POINTS.
    assert pc.table["f1[lang=en]"].to_list() == [0.2, 0.6, 0.8, 0.9]
    assert pc.table["f1[lang=de]"].to_list() == [None, 0.3, 0.45, 0.1]
    assert pc.table["lms_score"].to_list() == [0.15, 0.35, 0.5, None]


def test_missing_values_are_kept_and_counted(runs, points):
    pc = table_of(runs, points, ["lr"], "f1:lang=*,lms_score")
    assert pc.table.height == 4
    assert pc.missing == {"f1[lang=de]": 1, "lms_score": 1}


def test_nan_param_counts_as_missing(runs, points):
    runs = runs.with_columns(pl.when(pl.col("run") == "a").then(float("nan"))
                             .otherwise(pl.col("lr")).alias("lr"))
    pc = table_of(runs, points, ["lr", "seed"], [])
    assert pc.missing == {"lr": 1}


def test_reduce_and_several_metric_options(runs, points):
    pc = table_of(runs, points, ["seed"], ["f1:lang=de@max", "f1:lang=en@first"])
    assert pc.table.columns == ["run", "seed", "f1[lang=de]@max", "f1[lang=en]@first"]
    assert pc.table["f1[lang=de]@max"].to_list() == [None, 0.4, 0.5, 0.2]
    assert pc.table["f1[lang=en]@first"].to_list() == [0.1, 0.5, 0.7, 0.6]
    assert [a.label for a in pc.axes][1:] == ["f1 lang=de @max", "f1 lang=en @first"]


def test_run_axis_number_and_id(runs, points):
    pc = table_of(runs, points, ["lr"], "f1:lang=en", run_axis="number")
    assert pc.axes[0].column == RUN_NUMBER and pc.axes[0].label == "run #"
    assert pc.table.columns == ["run", RUN_NUMBER, "lr", "f1[lang=en]"]
    assert pc.table[RUN_NUMBER].to_list() == [1, 2, 3, 4]
    pc = table_of(runs, points, ["lr"], "f1:lang=en", run_axis="id")
    assert [a.column for a in pc.axes] == ["run", "lr", "f1[lang=en]"]
    assert pc.table.columns == ["run", "lr", "f1[lang=en]"]


def test_where_filters_runs_and_title_counts(runs, points):
    pc = table_of(runs, points, ["lr", "seed"], "f1:lang=en", where="lr >= 1e-5")
    assert pc.table["run"].to_list() == ["a", "b", "c"]
    assert pc.title == "3 of 4 runs where lr >= 1e-5"
    assert table_of(runs, points, ["lr", "seed"], []).title == "4 runs"


def test_where_on_a_metric_spec(runs, points):
    pc = table_of(runs, points, ["lr", "seed"], [], where="`f1:lang=en` > 0.7")
    assert pc.table["run"].to_list() == ["b", "c"]


def test_where_matching_nothing_is_an_error(runs, points):
    with pytest.raises(UsageError, match="no runs match"):
        table_of(runs, points, ["lr", "seed"], [], where="lr > 1")


def test_highlights_resolve_among_kept_runs(runs, points):
    pc = table_of(runs, points, ["lr"], "f1:lang=en",
                         highlights=["best:f1:lang=en", "best:lms_score", "a"])
    assert pc.highlights == [("best:f1:lang=en", "c"), ("best:lms_score", "b"), ("a", "a")]
    pc = table_of(runs, points, ["lr"], "f1:lang=en", where="lr < 1e-3",
                         highlights=["best:f1:lang=en"])
    assert pc.highlights == [("best:f1:lang=en", "b")]
    assert pc.figure_kwargs()["highlights"] == [("b", "best:f1:lang=en")]


def test_default_color_is_the_last_metric_axis(runs, points):
    pc = table_of(runs, points, ["lr", "seed"], "f1:lang=*")
    assert (pc.color, pc.color_label) == ("f1[lang=en]", "f1 lang=en")
    pc = table_of(runs, points, ["lr", "seed"], [])
    assert pc.color == "seed"
    assert table_of(runs, points, ["lr", "seed"], [], color="none").color is None


def test_color_by_a_column_that_is_not_an_axis_adds_it(runs, points):
    pc = table_of(runs, points, ["lr", "seed"], "f1:lang=en", color="optimizer.name")
    assert pc.table.columns[-1] == "optimizer.name"
    assert pc.table["optimizer.name"].to_list() == ["sgd", "adam", "sgd", "adam"]
    pc = table_of(runs, points, ["lr", "seed"], "f1:lang=en", color="lms_score")
    assert pc.color == "lms_score"
    assert pc.table["lms_score"].to_list() == [0.15, 0.35, 0.5, None]
    pc = table_of(runs, points, ["lr", "seed"], "f1:lang=*", color="f1:lang=de")
    assert pc.color == "f1[lang=de]" and pc.table.width == 5


def test_color_naming_several_axes_is_an_error(runs, points):
    with pytest.raises(UsageError, match="several axes"):
        table_of(runs, points, ["lr"], "f1:lang=*", color="f1")


def test_default_params_are_those_that_vary(runs, points):
    runs = runs.with_columns(pl.lit("bert").alias("model"))
    pc = table_of(runs, points, None, "f1:lang=en")
    assert [a.column for a in pc.axes] == ["lr", "seed", "optimizer.name", "f1[lang=en]"]


def test_auto_log_candidates_are_numeric_params(runs, points):
    pc = table_of(runs, points, ["lr", "optimizer.name", "seed"], "f1:lang=en")
    assert pc.auto_log == ["lr", "seed"]


def test_axis_words_for_log_and_invert(runs, points):
    pc = table_of(runs, points, ["lr", "seed"], "f1:lang=*,lms_score",
                         log=["seed"], invert=["f1", "lms_score"], linear=["lr"])
    assert pc.log == ["seed"]
    assert pc.linear == ["lr"]
    assert pc.invert == ["f1[lang=de]", "f1[lang=en]", "lms_score"]
    axes = pc.axes
    assert [a.column for a in match_axes("f1:lang=de", axes)] == ["f1[lang=de]"]
    assert [a.column for a in match_axes("f1[lang=en]", axes)] == ["f1[lang=en]"]
    assert [a.column for a in match_axes("f1 lang=en", axes)] == ["f1[lang=en]"]
    assert [a.column for a in match_axes("f1:lang=*", axes)] == ["f1[lang=de]", "f1[lang=en]"]
    assert resolve_axis_words(["lr,seed"], axes, "--log") == ["lr", "seed"]
    with pytest.raises(UsageError, match="--invert: unknown axis 'loss'; known: lr, seed"):
        match_axes("loss", axes)


def test_axis_words_keep_commas_inside_brackets(runs, points):
    """``--invert 'f1:lang=de@at-max(f1[lang=en,split=dev]),lms_score'`` is two words."""
    points = points.with_columns(split=pl.when(pl.col("name") == "f1").then(pl.lit("dev")))
    spec = "f1:lang=de@at-max(f1[lang=en,split=dev])"
    pc = table_of(runs, points, ["lr"], f"{spec},lms_score",
                         invert=[f"{spec}, lms_score"], log=["lr,"])
    label = "f1[lang=de]@at-max(f1[lang=en,split=dev])"
    assert pc.table.columns == ["run", "lr", label, "lms_score"]
    assert pc.invert == [label, "lms_score"] and pc.log == ["lr"]
    # German F1 at the epoch of best English F1 (epoch 2 for a, b, c; d has no German F1).
    by_run = dict(zip(pc.table["run"], pc.table[label], strict=True))
    assert by_run == {"a": 0.3, "b": 0.45, "c": 0.1, "d": None}


def test_log_and_linear_on_the_same_axis_is_an_error(runs, points):
    with pytest.raises(UsageError, match="pick one"):
        table_of(runs, points, ["lr", "seed"], [], log=["lr"], linear=["lr"])


def test_errors_name_the_problem(runs, points):
    with pytest.raises(UsageError, match="unknown param 'lrr'"):
        table_of(runs, points, ["lrr"], "f1:lang=en")
    with pytest.raises(UsageError, match="at least 2 axes"):
        table_of(runs, points, ["lr"], [])
    with pytest.raises(SpecError):
        table_of(runs, points, ["lr"], "f2")
    with pytest.raises(SpecError):
        table_of(runs, points, ["lr"], "f1:lang=en", highlights=["nope"])


def test_readable_label():
    specs = parse_metric_specs("f1:lang=de@max,lms_score")
    points = pl.DataFrame({"run": ["a", "a"], "name": ["f1", "lms_score"], "lang": ["de", None],
                           "step": [1, 1], "epoch": [1.0, 1.0], "time": [0.0, 0.0],
                           "value": [0.1, 0.2]})
    labels = [readable_label(c) for c in expand(specs, points)]
    assert labels == ["f1 lang=de @max", "lms_score"]

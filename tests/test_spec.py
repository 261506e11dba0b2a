"""Tests of xpcli.spec: metric specs, reduces, --where and run pickers."""

from __future__ import annotations

import datetime as dt
import math
import operator
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xpcli.analysis.reduce import reduce_runs, resolve_picker
from xpcli.analysis.series_model import Notes
from xpcli.errors import SpecError, UsageError
from xpcli.spec import (
    Column,
    MetricSpec,
    Reduce,
    SchemaLike,
    compile_where,
    context_keys,
    expand,
    metric_names_in,
    parse_metric_spec,
    parse_metric_specs,
    parse_picker,
    parse_where,
    series_filter,
    split_list,
)

NAN = float("nan")
INF = float("inf")


def points(rows: list[tuple], keys: tuple[str, ...] = ("lang",)) -> pl.DataFrame:
    """Rows of (run, name, *context values, step, epoch, time, value)."""
    columns = ["run", "name", *keys, "step", "epoch", "time", "value"]
    schema = {
        **{c: pl.String for c in ["run", "name", *keys]},
        "step": pl.Int64,
        "epoch": pl.Float64,
        "time": pl.Float64,
        "value": pl.Float64,
    }
    return pl.DataFrame([dict(zip(columns, row, strict=True)) for row in rows], schema=schema)


def curve(run: str, name: str, lang: str | None, values: list[float], start: int = 1):
    """One point per epoch start, start+1, ...; step = 10 * epoch; time = epoch."""
    return [
        (run, name, lang, 10 * e, float(e), float(e), v) for e, v in enumerate(values, start=start)
    ]


def labels(columns: list[Column]) -> list[str]:
    return [c.label for c in columns]


def reduced(frame: pl.DataFrame, *specs: str, x: str = "epoch") -> dict[str, dict[str, float]]:
    table = reduce_runs(frame, expand(parse_metric_specs(list(specs)), frame), x=x)  # type: ignore[arg-type]
    return {row.pop("run"): row for row in table.iter_rows(named=True)}


# --------------------------------------------------------------------------------------
# Parsing metric specs
# --------------------------------------------------------------------------------------


def test_parse_plain_name() -> None:
    spec = parse_metric_spec("f1")
    assert spec == MetricSpec("f1", (), Reduce("last"), "f1")
    assert spec.is_single
    assert spec.label() == "f1"


def test_parse_context_and_reduce() -> None:
    spec = parse_metric_spec(" f1:lang=de:split=eval@max ")
    assert spec.name == "f1"
    assert spec.context == (("lang", "de"), ("split", "eval"))
    assert spec.reduce == Reduce("max")
    assert spec.text == "f1:lang=de:split=eval@max"
    assert spec.label() == "f1[lang=de,split=eval]@max"


def test_bracket_form_is_the_colon_form() -> None:
    a = parse_metric_spec("f1[split=eval, lang=de]@MAX")
    b = parse_metric_spec("f1:lang=de:split=eval@max")
    assert a.canonical_text() == b.canonical_text() == "f1:lang=de:split=eval@max"
    assert a.label() == b.label()


@pytest.mark.parametrize(
    ("text", "reduce"),
    [
        ("f1", Reduce("last")),
        ("f1@last", Reduce("last")),
        ("f1@first", Reduce("first")),
        ("f1@min", Reduce("min")),
        ("f1@mean", Reduce("mean")),
        ("f1@Median", Reduce("median")),
        ("f1@at=3", Reduce("at", at=3.0)),
        ("f1@at=2.5", Reduce("at", at=2.5)),
        ("f1@at=1e2", Reduce("at", at=100.0)),
        ("f1@at=step:500", Reduce("at", at=500.0, x="step")),
        ("f1@at=epoch:7", Reduce("at", at=7.0, x="epoch")),
        ("f1@at-max(f1:lang=en)", Reduce("at-max", ref=parse_metric_spec("f1:lang=en"))),
        ("f1@at-min(loss)", Reduce("at-min", ref=parse_metric_spec("loss"))),
    ],
)
def test_parse_reduces(text: str, reduce: Reduce) -> None:
    assert parse_metric_spec(text).reduce == reduce


def test_labels_of_reduces() -> None:
    def label(text: str) -> str:
        return parse_metric_spec(text).label()

    assert label("f1:lang=de@last") == "f1[lang=de]"
    assert label("f1:lang=de@at=3") == "f1[lang=de]@at=3"
    assert label("f1@at=step:2.5") == "f1@at=step:2.5"
    assert label("f1:lang=de@at-max(f1:lang=en)") == "f1[lang=de]@at-max(f1[lang=en])"


def test_wildcards_and_globs_are_not_single() -> None:
    assert not parse_metric_spec("f1:lang=*").is_single
    assert not parse_metric_spec("f1:lang=d*").is_single
    assert not parse_metric_spec("f1:lang=?e").is_single
    assert parse_metric_spec("f1:lang=").context == (("lang", ""),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "f1@maxx",
            "f1@maxx: unknown reduce 'maxx' (expected one of last, first, max, min, mean, "
            "median, at=N, at-max(SPEC), at-min(SPEC))",
        ),
        ("", "empty metric spec"),
        ("   ", "empty metric spec"),
        ("f1:lang", "f1:lang: expected KEY=VALUE at column 4, got 'lang'"),
        ("f1:", "f1:: expected KEY=VALUE at column 4"),
        ("f1:=de", "f1:=de: expected a context key at column 4"),
        (":lang=de", ":lang=de: expected a metric name at column 1"),
        ("f1:lang=en:lang=de", "context key 'lang' given twice (at column 12)"),
        ("f1@", "f1@: expected a reduce after '@' at column 4"),
        ("f1@at=", "expected a number at column 7"),
        ("f1@at=x", "expected a number at column 7"),
        ("f1@at=step:", "expected a number at column 12"),
        ("f1@at=1e999", "number out of range"),
        ("f1@at-max", "expected at-max(SPEC), e.g. at-max(f1:lang=en) at column 10"),
        ("f1@at-max()", "expected at-max(SPEC)"),
        ("f1@at-max(f1:lang=*)", "must name one series"),
        ("f1@at-max(f1:lang=e?)", "must name one series"),
        ("f1@at-max(f1@max)", "takes no @REDUCE"),
        ("f1@at-max(f1)x", "unexpected 'x' after at-max(...)"),
        ("f1@at-max(f1:lang)", "in at-max(...): f1:lang: expected KEY=VALUE"),
        ("f1(", "'(' at column 3 is never closed"),
        ("f1)", "unexpected ')' at column 3"),
        ("f1[lang=de", "'[' at column 3 is never closed"),
        ("f1[lang=de]x", "unexpected 'x' at column 12"),
        ("f1[]", "expected KEY=VALUE at column 4"),
        ("f*", "globs are allowed in context values only"),
        ("f 1", "unexpected ' ' in metric name at column 2"),
        ("f1:lang=a(b)", "unexpected '(' in the value of lang at column 10"),
        ("f1:lang==de", "unexpected '=' in the value of lang"),
        ("f1,lms", "unexpected ','"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_metric_spec(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_spec_error_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        parse_metric_spec("f1@nope")
    assert info.value.exit_code == 2


def test_parse_metric_specs_splits_at_top_level_commas() -> None:
    specs = parse_metric_specs("f1:lang=*@at-max(f1[lang=en,split=dev]), lms ,loss@min")
    assert [s.text for s in specs] == [
        "f1:lang=*@at-max(f1[lang=en,split=dev])",
        "lms",
        "loss@min",
    ]
    assert specs[0].reduce.ref is not None
    assert specs[0].reduce.ref.canonical_text() == "f1:lang=en:split=dev"


def test_parse_metric_specs_accepts_repeated_options() -> None:
    specs = parse_metric_specs(["f1:lang=*,lms", "loss"])
    assert [s.text for s in specs] == ["f1:lang=*", "lms", "loss"]


def test_split_list_keeps_commas_inside_brackets() -> None:
    text = "f1:lang=de@at-max(f1:lang=en),lms_score"
    assert split_list(text) == ["f1:lang=de@at-max(f1:lang=en)", "lms_score"]
    assert split_list(["f1@at-max(f1[lang=en,split=dev]) , lr", " seed,,", ""]) == [
        "f1@at-max(f1[lang=en,split=dev])", "lr", "seed",
    ]
    assert split_list(None) == [] and split_list("") == [] and split_list(" , ") == []
    # The same pieces parse_metric_specs sees.
    assert split_list(text) == [s.text for s in parse_metric_specs(text)]


def test_parse_metric_specs_rejects_empty_items() -> None:
    with pytest.raises(SpecError, match="empty metric spec at column 4"):
        parse_metric_specs("f1,,lms")
    with pytest.raises(SpecError, match="empty metric spec at column 4"):
        parse_metric_specs("f1,")


# --------------------------------------------------------------------------------------
# Expansion
# --------------------------------------------------------------------------------------


@pytest.fixture
def ner() -> pl.DataFrame:
    rows = []
    for run in ("r1", "r2"):
        for lang in ("en", "de", "es", "nl"):
            rows += curve(run, "f1", lang, [0.1, 0.2])
        rows += curve(run, "lms", None, [0.3, 0.4])
    return points(rows)


def test_context_keys(ner: pl.DataFrame) -> None:
    assert context_keys(ner) == ["lang"]
    assert context_keys(ner.lazy().drop("lang")) == []


def test_expand_exact_and_plain(ner: pl.DataFrame) -> None:
    columns = expand(parse_metric_specs("f1:lang=de,lms"), ner)
    assert labels(columns) == ["f1[lang=de]", "lms"]
    assert columns[0].context == (("lang", "de"),)
    assert columns[1].context == ()


def test_expand_wildcard_in_sorted_order(ner: pl.DataFrame) -> None:
    columns = expand(parse_metric_specs("f1:lang=*@max"), ner)
    assert labels(columns) == ["f1[lang=de]@max", "f1[lang=en]@max", "f1[lang=es]@max",
                               "f1[lang=nl]@max"]  # fmt: skip
    assert all(c.reduce == Reduce("max") for c in columns)


def test_expand_globs(ner: pl.DataFrame) -> None:
    assert labels(expand(parse_metric_specs("f1:lang=?e"), ner)) == ["f1[lang=de]"]
    assert labels(expand(parse_metric_specs("f1:lang=e*"), ner)) == ["f1[lang=en]", "f1[lang=es]"]


def test_expand_keeps_duplicate_labels_once(ner: pl.DataFrame) -> None:
    columns = expand(parse_metric_specs("f1:lang=*,f1:lang=de,f1[lang=de]@last"), ner)
    assert labels(columns) == ["f1[lang=de]", "f1[lang=en]", "f1[lang=es]", "f1[lang=nl]"]


def test_expand_resolves_the_reference(ner: pl.DataFrame) -> None:
    (column,) = expand([parse_metric_spec("f1:lang=de@at-max(f1:lang=en)")], ner)
    assert column.label == "f1[lang=de]@at-max(f1[lang=en])"
    assert column.ref is not None
    assert column.ref.context == (("lang", "en"),)
    assert column.ref.label == "f1[lang=en]"


def test_labels_parse_back_to_the_same_column(ner: pl.DataFrame) -> None:
    columns = expand(parse_metric_specs("f1:lang=*@at-max(f1:lang=en),f1:lang=d*@at=step:10"), ner)
    again = expand(parse_metric_specs([c.label for c in columns]), ner)
    assert labels(again) == labels(columns)


def test_expand_unknown_metric_suggests_the_closest(ner: pl.DataFrame) -> None:
    with pytest.raises(SpecError) as info:
        expand([parse_metric_spec("f2@max")], ner)
    assert str(info.value) == ("f2@max: unknown metric 'f2'; did you mean 'f1'? (metrics: f1, lms)")


def test_expand_unknown_value_lists_the_values(ner: pl.DataFrame) -> None:
    with pytest.raises(SpecError) as info:
        expand([parse_metric_spec("f1:lang=fr")], ner)
    assert (
        str(info.value) == "f1:lang=fr: no point of 'f1' has lang=fr (lang values: de, en, es, nl)"
    )
    with pytest.raises(SpecError, match="no point of 'f1' has lang=z\\*"):
        expand([parse_metric_spec("f1:lang=z*")], ner)


def test_expand_unknown_key(ner: pl.DataFrame) -> None:
    with pytest.raises(SpecError) as info:
        expand([parse_metric_spec("f1:langs=en")], ner)
    assert "metric 'f1' has no context key 'langs'; did you mean 'lang'? (its keys: lang)" in str(
        info.value
    )
    with pytest.raises(SpecError, match="metric 'lms' has no context key 'lang'"):
        expand([parse_metric_spec("lms:lang=en")], ner)


def test_expand_refuses_to_mix_contexts(ner: pl.DataFrame) -> None:
    with pytest.raises(SpecError) as info:
        expand([parse_metric_spec("f1@max")], ner)
    assert str(info.value) == (
        "f1@max: metric 'f1' is logged with several lang values (de, en, es, nl); name one "
        "column per value with f1:lang=*@max or pick one, e.g. f1:lang=de@max"
    )


def test_expand_mixing_with_and_without_a_key() -> None:
    frame = points(curve("r1", "loss", None, [1.0]) + curve("r1", "loss", "en", [2.0]))
    with pytest.raises(SpecError) as info:
        expand([parse_metric_spec("loss")], frame)
    assert "several lang values ((none), en)" in str(info.value)
    assert "loss:lang=en or loss:lang=" in str(info.value)
    # "KEY=" selects the points without the key; "*" only those with a value.
    assert labels(expand(parse_metric_specs("loss:lang=,loss:lang=*"), frame)) == [
        "loss[lang=]",
        "loss[lang=en]",
    ]
    assert reduced(frame, "loss:lang=", "loss:lang=*") == {
        "r1": {"loss[lang=]": 1.0, "loss[lang=en]": 2.0}
    }


def test_expand_mixing_in_another_key_per_wildcard_value() -> None:
    rows = [
        ("r1", "f1", "en", "dev", 1, 1.0, 1.0, 0.5),
        ("r1", "f1", "en", "test", 1, 1.0, 1.0, 0.6),
        ("r1", "f1", "de", "dev", 1, 1.0, 1.0, 0.7),
    ]
    frame = points(rows, keys=("lang", "split"))
    with pytest.raises(SpecError, match="several split values \\(dev, test\\)"):
        expand([parse_metric_spec("f1:lang=*")], frame)
    columns = expand([parse_metric_spec("f1:split=*:lang=*")], frame)
    assert labels(columns) == [
        "f1[lang=de,split=dev]",
        "f1[lang=en,split=dev]",
        "f1[lang=en,split=test]",
    ]
    # A key not given is unconstrained when the metric has a single value for it.
    assert labels(expand([parse_metric_spec("f1:lang=de")], frame)) == ["f1[lang=de]"]


def test_expand_reference_errors_name_the_outer_spec(ner: pl.DataFrame) -> None:
    with pytest.raises(SpecError, match="^lms@at-max\\(f1\\): in at-max\\(...\\): f1: metric"):
        expand([parse_metric_spec("lms@at-max(f1)")], ner)


def test_expand_without_points() -> None:
    with pytest.raises(SpecError, match="no metric points"):
        expand([parse_metric_spec("f1")], points([]))


def test_series_filter(ner: pl.DataFrame) -> None:
    (column,) = expand([parse_metric_spec("f1:lang=de")], ner)
    selected = ner.filter(series_filter(column))
    assert selected.height == 4
    assert set(selected["lang"]) == {"de"}
    assert set(selected["name"]) == {"f1"}
    (lms,) = expand([parse_metric_spec("lms")], ner)
    assert ner.filter(series_filter(lms)).height == 4


# --------------------------------------------------------------------------------------
# Reduce
# --------------------------------------------------------------------------------------


def test_reducers_against_numpy() -> None:
    rng = np.random.default_rng(7)
    rows: list[tuple] = []
    for r in range(25):
        run = f"run{r:02d}"
        epochs = rng.permutation(np.arange(1, 13))[: rng.integers(1, 12)]
        for lang in ("en", "de"):
            values = rng.normal(size=len(epochs)).round(3)
            values[rng.random(len(epochs)) < 0.15] = np.nan
            for e, v in zip(epochs, values, strict=True):
                rows.append((run, "f1", lang, int(e) * 10, float(e), float(e), float(v)))
    random.Random(7).shuffle(rows)  # reduces never depend on the order of the points
    frame = points(rows)
    table = reduced(
        frame,
        "f1:lang=de@last,f1:lang=de@first,f1:lang=de@max,f1:lang=de@min,f1:lang=de@mean",
        "f1:lang=de@median,f1:lang=de@at=5,f1:lang=de@at=step:70",
        "f1:lang=de@at-max(f1:lang=en),f1:lang=de@at-min(f1:lang=en)",
    )
    assert len(table) == 25

    def close(a: float | None, b: float) -> bool:
        return (a is None and math.isnan(b)) or (a is not None and math.isclose(a, b))

    for run, got in table.items():
        series = {}
        for lang in ("en", "de"):
            pts = sorted((r[4], r[6]) for r in rows if r[0] == run and r[2] == lang)
            series[lang] = [(e, v) for e, v in pts if not math.isnan(v)]
        de = series["de"]
        x = np.array([e for e, _ in de])
        v = np.array([v for _, v in de])
        nan = float("nan")
        assert close(got["f1[lang=de]"], v[-1] if len(v) else nan)
        assert close(got["f1[lang=de]@first"], v[0] if len(v) else nan)
        assert close(got["f1[lang=de]@max"], v.max() if len(v) else nan)
        assert close(got["f1[lang=de]@min"], v.min() if len(v) else nan)
        assert close(got["f1[lang=de]@mean"], v.mean() if len(v) else nan)
        assert close(got["f1[lang=de]@median"], float(np.median(v)) if len(v) else nan)
        assert close(got["f1[lang=de]@at=5"], v[x == 5][0] if (x == 5).any() else nan)
        assert close(got["f1[lang=de]@at=step:70"], v[x == 7][0] if (x == 7).any() else nan)
        en = series["en"]
        for kind, pick in (("max", np.argmax), ("min", np.argmin)):
            label = f"f1[lang=de]@at-{kind}(f1[lang=en])"
            if not en:
                assert got[label] is None
                continue
            at = en[int(pick([v for _, v in en]))][0]  # argmax/argmin: the first = earliest
            expected = dict(de).get(at, nan)
            assert close(got[label], expected), (run, label)


def test_last_and_first_are_the_last_and_first_logged_whatever_the_x() -> None:
    rows = [
        ("r1", "f1", "en", 20, 2.0, 100.0, 0.2),
        ("r1", "f1", "en", 30, 3.0, 50.0, 0.3),  # logged first, at the largest epoch
        ("r1", "f1", "en", 10, 1.0, 200.0, 0.1),  # logged last, at the smallest epoch
    ]
    # Logging order is by time (every point has one): 0.3, 0.2, 0.1.
    assert reduced(points(rows), "f1@last", "f1@first") == {"r1": {"f1": 0.1, "f1@first": 0.3}}
    for x in ("epoch", "step", "time", "order", "auto"):
        assert reduced(points(rows), "f1", "f1@first", x=x) == {
            "r1": {"f1": 0.1, "f1@first": 0.3}}, x


def test_points_at_one_x_all_count_and_at_n_takes_the_last_logged() -> None:
    rows = [
        ("r1", "f1", "en", 10, 1.0, 5.0, 0.2),
        ("r1", "f1", "en", 10, 1.0, 9.0, 0.4),  # re-logged at the same epoch, latest
        ("r1", "f1", "en", 10, 1.0, 7.0, 0.3),
    ]
    # Every point counts for first/max/mean (logging order 0.2, 0.3, 0.4); at=1 aligns
    # the series to one value per epoch, the last logged: 0.4.
    assert reduced(points(rows), "f1", "f1@first", "f1@at=1", "f1@max", "f1@min",
                   "f1@mean") == {"r1": {"f1": 0.4, "f1@first": 0.2, "f1@at=1": 0.4,
                                         "f1@max": 0.4, "f1@min": 0.2,
                                         "f1@mean": pytest.approx(0.3)}}


def resumed(run: str = "r1") -> list[tuple]:
    """Epochs 1, 2, 3 = 0.5, 0.9, 0.6, then resumed from epoch 1: 2, 3 = 0.55, 0.6 again."""
    first = curve(run, "f1", "en", [0.5, 0.9, 0.6])
    again = [(run, "f1", "en", 10 * e, float(e), 3.0 + e, v) for e, v in ((2, 0.55), (3, 0.6))]
    return first + again


def test_a_resumed_run_reduces_every_point_and_aligns_only_for_at() -> None:
    # Every point, by hand: 0.5, 0.9, 0.6, 0.55, 0.6 (times 1..5). at=2 and at-max read the
    # series aligned on epochs, the last logged: epoch 1 = 0.5, 2 = 0.55, 3 = 0.6.
    values = [0.5, 0.9, 0.6, 0.55, 0.6]
    notes = Notes()
    frame = points(resumed())
    table = reduce_runs(frame, expand(parse_metric_specs(
        "f1:lang=en@max,f1:lang=en,f1:lang=en@first,f1:lang=en@min,f1:lang=en@mean,"
        "f1:lang=en@median,f1:lang=en@at=2,f1:lang=en@at-max(f1:lang=en)"), frame),
        x="epoch", notes=notes)
    assert table.row(0, named=True) == {
        "run": "r1", "f1[lang=en]@max": 0.9, "f1[lang=en]": 0.6, "f1[lang=en]@first": 0.5,
        "f1[lang=en]@min": 0.5, "f1[lang=en]@mean": pytest.approx(float(np.mean(values))),
        "f1[lang=en]@median": float(np.median(values)), "f1[lang=en]@at=2": 0.55,
        "f1[lang=en]@at-max(f1[lang=en])": 0.6,
    }
    # The x goes backwards: one warning naming the run and series, with the points the
    # alignment discarded (epochs 2 and 3 logged twice: 2 points).
    assert notes.lines() == [
        "warning: run r1, f1[lang=en]: epoch goes backwards (3, then 2); at=, at-max and "
        "at-min read the last logged value at each epoch (2 points discarded)"]


def test_at_an_x_nobody_logged_is_an_error() -> None:
    rows = curve("r1", "f1", "de", [0.5, 0.6]) + curve("r2", "f1", "de", [0.7, NAN, 0.8])
    with pytest.raises(SpecError, match=r"^f1:lang=de@at=100: no run has a value at epoch 100 "
                       r"\(f1\[lang=de\] has epochs 1\.\.3\)$"):
        reduced(points(rows), "f1:lang=de@at=100")
    with pytest.raises(SpecError, match=r"at step 5 \(f1\[lang=de\] has steps 10\.\.30\)"):
        reduced(points(rows), "f1:lang=de@at=step:5")
    # Null for some runs only stays allowed.
    assert reduced(points(rows), "f1:lang=de@at=3") == {
        "r1": {"f1[lang=de]@at=3": None}, "r2": {"f1[lang=de]@at=3": 0.8}}


def test_at_max_ties_take_the_earliest_x() -> None:
    rows = (
        curve("r1", "f1", "en", [0.5, 0.9, 0.9, 0.1])
        + curve("r1", "f1", "de", [0.1, 0.2, 0.3, 0.4])
        + curve("r2", "f1", "en", [0.2, 0.2, 0.8, 0.2])
        + curve("r2", "f1", "de", [0.1, 0.2, 0.3, 0.4])
    )
    table = reduced(points(rows), "f1:lang=de@at-max(f1:lang=en)", "f1:lang=de@at-min(f1:lang=en)")
    assert table == {
        "r1": {"f1[lang=de]@at-max(f1[lang=en])": 0.2, "f1[lang=de]@at-min(f1[lang=en])": 0.4},
        "r2": {"f1[lang=de]@at-max(f1[lang=en])": 0.3, "f1[lang=de]@at-min(f1[lang=en])": 0.1},
    }


def test_at_max_without_a_target_point_at_that_x_is_null() -> None:
    rows = (
        curve("r1", "f1", "en", [0.5, 0.9, 0.1])
        + curve("r1", "f1", "de", [0.1], start=1)
        + curve("r1", "f1", "de", [0.3], start=3)
        + curve("r2", "f1", "de", [0.3])  # no reference at all
        + curve("r3", "f1", "en", [0.1, 0.2]) + curve("r3", "f1", "de", [0.6, 0.7])
    )
    table = reduced(points(rows), "f1:lang=de@at-max(f1:lang=en)")
    assert table == {
        "r1": {"f1[lang=de]@at-max(f1[lang=en])": None},
        "r2": {"f1[lang=de]@at-max(f1[lang=en])": None},
        "r3": {"f1[lang=de]@at-max(f1[lang=en])": 0.7},
    }
    # Null for every run is an error, not a column of blanks.
    with pytest.raises(SpecError, match=r"^f1:lang=de@at-max\(f1:lang=en\): no run has a value "
                       r"of f1\[lang=de\] at the epoch where f1\[lang=en\] is highest$"):
        reduced(points(rows[:-4]), "f1:lang=de@at-max(f1:lang=en)")


def test_nan_is_ignored_everywhere() -> None:
    rows = (
        curve("r1", "f1", "en", [0.1, NAN, 0.9, NAN])
        + curve("r1", "f1", "de", [0.5, 0.6, NAN, 0.7])
        + curve("r2", "f1", "en", [NAN, NAN])
        + curve("r2", "f1", "de", [NAN])
        + curve("r3", "f1", "en", [0.3, 0.4, 0.8]) + curve("r3", "f1", "de", [0.1, 0.2, 0.6])
    )
    table = reduced(
        points(rows),
        "f1:lang=*@last,f1:lang=*@first,f1:lang=*@max,f1:lang=*@min,f1:lang=*@mean",
        "f1:lang=*@median,f1:lang=en@at=2,f1:lang=de@at-max(f1:lang=en)",
    )
    assert table["r1"] == {
        "f1[lang=de]": 0.7,
        "f1[lang=en]": 0.9,
        "f1[lang=de]@first": 0.5,
        "f1[lang=en]@first": 0.1,
        "f1[lang=de]@max": 0.7,
        "f1[lang=en]@max": 0.9,
        "f1[lang=de]@min": 0.5,
        "f1[lang=en]@min": 0.1,
        "f1[lang=de]@mean": pytest.approx(0.6),
        "f1[lang=en]@mean": pytest.approx(0.5),
        "f1[lang=de]@median": 0.6,
        "f1[lang=en]@median": 0.5,
        "f1[lang=en]@at=2": None,  # only a NaN at epoch 2
        "f1[lang=de]@at-max(f1[lang=en])": None,  # en peaks at 3, where de is NaN
    }
    # A run whose series holds only NaN is present, with nulls.
    assert set(table["r2"].values()) == {None}
    assert table["r3"]["f1[lang=en]@at=2"] == 0.4
    assert table["r3"]["f1[lang=de]@at-max(f1[lang=en])"] == 0.6


def test_infinity_is_an_ordinary_number() -> None:
    rows = curve("r1", "loss", None, [1.0, INF, -INF, 2.0]) + curve("r2", "loss", None, [1.0, INF])
    assert reduced(points(rows), "loss@max,loss@min,loss@mean,loss") == {
        "r1": {
            "loss@max": INF,
            "loss@min": -INF,
            "loss@mean": pytest.approx(NAN, nan_ok=True),
            "loss": 2.0,
        },
        "r2": {"loss@max": INF, "loss@min": 1.0, "loss@mean": INF, "loss": INF},
    }


def test_a_run_missing_a_context_gets_null() -> None:
    rows = (
        curve("r1", "f1", "en", [0.5])
        + curve("r1", "f1", "de", [0.4])
        + curve("r2", "f1", "en", [0.6])
    )
    assert reduced(points(rows), "f1:lang=*@max") == {
        "r1": {"f1[lang=de]@max": 0.4, "f1[lang=en]@max": 0.5},
        "r2": {"f1[lang=de]@max": None, "f1[lang=en]@max": 0.6},
    }


def test_a_one_point_series() -> None:
    rows = curve("r1", "f1", "en", [0.5], start=4)
    table = reduced(
        points(rows),
        "f1,f1@first,f1@max,f1@min,f1@mean,f1@median,f1@at=4,f1@at-max(f1),f1@at-min(f1)",
    )
    assert table == {
        "r1": {
            "f1": 0.5,
            "f1@first": 0.5,
            "f1@max": 0.5,
            "f1@min": 0.5,
            "f1@mean": 0.5,
            "f1@median": 0.5,
            "f1@at=4": 0.5,
            "f1@at-max(f1)": 0.5,
            "f1@at-min(f1)": 0.5,
        }
    }


def test_auto_x_is_chosen_per_column() -> None:
    rows = [
        ("r1", "loss", None, 100, None, 1.0, 0.9),
        ("r1", "loss", None, 200, None, 2.0, 0.5),
        ("r1", "loss", None, 300, None, 3.0, 0.7),
        ("r2", "loss", None, 100, 1.0, 1.0, 0.4),
        ("r2", "loss", None, 200, 2.0, 2.0, 0.3),
        *curve("r1", "f1", None, [0.1, 0.2]),
    ]
    frame = points(rows)
    notes = Notes()
    specs = "loss,loss@at=200,loss@at=epoch:2,f1@at=2"
    table = reduce_runs(frame, expand(parse_metric_specs(specs), frame), notes=notes)
    # loss: r1 has no epochs, so the column is read on its steps (in both runs); f1 on
    # its epochs. at=epoch:N names its axis whatever x is.
    assert {row.pop("run"): row for row in table.iter_rows(named=True)} == {
        "r1": {"loss": 0.7, "loss@at=200": 0.5, "loss@at=epoch:2": None, "f1@at=2": 0.2},
        "r2": {"loss": 0.3, "loss@at=200": 0.3, "loss@at=epoch:2": 0.3, "f1@at=2": None},
    }
    assert notes.lines() == ["x: step for loss (3 points without epoch); epoch for the others"]


def test_x_views_place_at_n() -> None:
    rows = [
        ("r1", "f1", None, 30, 1.0, 5.0, 0.1),
        ("r1", "f1", None, 20, 2.0, 6.0, 0.2),
        ("r1", "f1", None, 10, 3.0, 4.0, 0.3),
    ]
    # Logging order (by time): 0.3 (step 10, epoch 3, t 4), 0.1 (30, 1, t 5), 0.2 (20, 2, 6).
    frame = points(rows)
    assert reduced(frame, "f1,f1@at=20,f1@at=30", x="step") == {
        "r1": {"f1": 0.2, "f1@at=20": 0.2, "f1@at=30": 0.1}}
    # time: seconds since the run's first point (t 4).
    assert reduced(frame, "f1,f1@first,f1@at=1,f1@at=2", x="time") == {
        "r1": {"f1": 0.2, "f1@first": 0.3, "f1@at=1": 0.1, "f1@at=2": 0.2}}
    # order: the index in logging order, from 0.
    assert reduced(frame, "f1@at=0,f1@at=2", x="order") == {
        "r1": {"f1@at=0": 0.3, "f1@at=2": 0.2}}
    assert reduced(frame, "f1@at=epoch:2,f1@at=step:10", x="time") == {
        "r1": {"f1@at=epoch:2": 0.2, "f1@at=step:10": 0.3}
    }
    with pytest.raises(UsageError, match="unknown x axis 'epochs'"):
        reduce_runs(frame, expand([parse_metric_spec("f1")], frame), x="epochs")  # type: ignore[arg-type]


def test_fractional_epochs() -> None:
    rows = [
        ("r1", "f1", None, 1, 0.1 + 0.2, 1.0, 0.1),  # 0.30000000000000004
        ("r1", "f1", None, 2, 0.6, 2.0, 0.2),
    ]
    assert reduced(points(rows), "f1@at=0.3,f1@at=0.6") == {
        "r1": {"f1@at=0.3": 0.1, "f1@at=0.6": 0.2}
    }


def test_logging_order_is_time_only_when_every_point_has_one() -> None:
    rows = [
        ("r1", "f1", None, None, None, 3.0, 0.3),
        ("r1", "f1", None, None, None, 1.0, 0.1),
        ("r2", "f1", None, None, None, 9.0, 0.9),
        ("r2", "f1", None, 5, None, 1.0, 0.5),
        ("r3", "f1", None, 1, None, 8.0, 0.8),  # r3: one point has no time: read order
        ("r3", "f1", None, 2, None, None, 0.2),
        ("r3", "f1", None, 3, None, 2.0, 0.4),
    ]
    assert reduced(points(rows), "f1,f1@first") == {
        "r1": {"f1": 0.3, "f1@first": 0.1},
        "r2": {"f1": 0.9, "f1@first": 0.5},
        "r3": {"f1": 0.4, "f1@first": 0.8},
    }


def test_reduce_runs_rows_and_types() -> None:
    rows = (
        curve("r2", "f1", "en", [0.5])
        + curve("r1", "lms", None, [1.0])
        + curve("r3", "other", None, [1.0])
    )
    frame = points(rows)
    columns = expand(parse_metric_specs("f1:lang=en,lms"), frame)
    table = reduce_runs(frame.lazy(), columns)
    assert table.schema == pl.Schema(
        {"run": pl.String, "f1[lang=en]": pl.Float64, "lms": pl.Float64}
    )
    # Only runs with a point in a column; sorted by run.
    assert table.rows() == [("r1", None, 1.0), ("r2", 0.5, None)]
    assert reduce_runs(frame, []).schema == pl.Schema({"run": pl.String})


def test_reduce_runs_on_many_runs() -> None:
    runs = 2000
    epochs = 30
    run_ids = np.repeat([f"r{i:05d}" for i in range(runs)], epochs * 2)
    epoch = np.tile(np.arange(1, epochs + 1, dtype=float), runs * 2)
    lang = np.tile(np.repeat(["en", "de"], epochs), runs)
    value = np.random.default_rng(1).random(runs * epochs * 2)
    frame = pl.DataFrame(
        {
            "run": run_ids,
            "name": "f1",
            "lang": lang,
            "step": (epoch * 10).astype(np.int64),
            "epoch": epoch,
            "time": epoch,
            "value": value,
        }
    )
    columns = expand(
        parse_metric_specs("f1:lang=*@max,f1:lang=de@at-max(f1:lang=en),f1:lang=en"), frame
    )
    table = reduce_runs(frame.lazy(), columns)
    assert table.height == runs
    block = value[: epochs * 2]
    first = table.row(0, named=True)
    assert first["f1[lang=en]@max"] == block[:epochs].max()
    assert first["f1[lang=de]@at-max(f1[lang=en])"] == block[epochs + int(block[:epochs].argmax())]
    assert first["f1[lang=en]"] == block[epochs - 1]


# --------------------------------------------------------------------------------------
# --where
# --------------------------------------------------------------------------------------


@pytest.fixture
def runs() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "run": ["a", "b", "c", "d", "e"],
            "optimizer.lr": [1e-5, 3e-5, 1e-4, None, 5e-5],
            "seed": [1, 2, 3, 4, None],
            "warmup-steps": [0, 100, 100, 0, 0],
            "model": ["bert", "roberta", "bert", None, "xlm-r"],
            "converged": [True, False, True, None, False],
            "f1[lang=de]@max": [0.7, NAN, 0.8, 0.6, None],
            "created": [
                dt.datetime(2024, 5, 1, 12),
                dt.datetime(2024, 5, 2),
                dt.datetime(2024, 6, 1),
                None,
                dt.datetime(2023, 1, 1),
            ],
        },
        schema_overrides={"model": pl.Categorical},
    )


def where_runs(frame: pl.DataFrame, text: str) -> list[str]:
    return frame.filter(compile_where(text, frame.schema))["run"].to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("optimizer.lr >= 1e-5", ["a", "b", "c", "e"]),
        ("optimizer.lr > 1e-5 and optimizer.lr < 1E-4", ["b", "e"]),
        ("optimizer.lr == 0.00003", ["b"]),
        ("optimizer.lr = 3e-5", ["b"]),
        ("1e-4 <= optimizer.lr", ["c"]),
        ("seed in (1, 2, 3)", ["a", "b", "c"]),
        ("seed in (1, 2.0,)", ["a", "b"]),
        ("seed not in (1, 2)", ["c", "d"]),
        ("seed NOT IN (1)", ["b", "c", "d"]),
        ("seed != 1", ["b", "c", "d"]),
        ("seed > -3.5E+2", ["a", "b", "c", "d"]),
        ("seed is null", ["e"]),
        ("seed is not null and optimizer.lr is NULL", ["d"]),
        ("warmup-steps > 0", ["b", "c"]),
        ("model == 'bert'", ["a", "c"]),
        ('model == "xlm-r" or model == "roberta"', ["b", "e"]),
        ("model in ('bert', 'xlm-r')", ["a", "c", "e"]),
        ("model < 'c'", ["a", "c"]),
        ("converged", ["a", "c"]),
        ("converged == true", ["a", "c"]),
        ("not converged", ["b", "e"]),
        ("converged != TRUE", ["b", "e"]),
        ("converged in (false)", ["b", "e"]),
        ("`f1[lang=de]@max` > 0.65", ["a", "c"]),
        ("`f1[lang=de]@max` is null", ["b", "e"]),
        ("not (seed == 1 or seed == 2)", ["c", "d"]),
        ("(seed == 1 or seed == 2) and model == 'bert'", ["a"]),
        ("seed == 1 or seed == 2 and model == 'roberta'", ["a", "b"]),
        ("not not seed == 1", ["a"]),
        ("seed < warmup-steps", ["b", "c"]),
        ("created >= '2024-05-01T12:00'", ["a", "b", "c"]),
        ('created < "2024-05-02"', ["a", "e"]),
    ],
)
def test_where_selects(runs: pl.DataFrame, text: str, expected: list[str]) -> None:
    assert where_runs(runs, text) == expected


def test_where_nulls_follow_polars(runs: pl.DataFrame) -> None:
    # Comparisons with null are null and the filter drops them, even under "not".
    assert "d" not in where_runs(runs, "optimizer.lr != 1e-5")
    assert "d" not in where_runs(runs, "not optimizer.lr > 1")
    assert "d" not in where_runs(runs, "model not in ('x')")
    assert where_runs(runs, "optimizer.lr is null or optimizer.lr > 1e-4") == ["d"]


def test_where_nan_counts_as_null(runs: pl.DataFrame) -> None:
    assert "b" not in where_runs(runs, "`f1[lang=de]@max` > 0.1")
    assert "b" not in where_runs(runs, "`f1[lang=de]@max` != 0.1")
    assert "b" in where_runs(runs, "`f1[lang=de]@max` is null")


def test_where_strings_and_escapes() -> None:
    frame = pl.DataFrame({"run": ["a", "b", "c"], "note": ["it's", 'say "hi"', "a\\b\tc"]})
    assert where_runs(frame, "note == 'it\\'s'") == ["a"]
    assert where_runs(frame, 'note == "it\'s"') == ["a"]
    assert where_runs(frame, 'note == "say \\"hi\\""') == ["b"]
    assert where_runs(frame, "note == 'a\\\\b\\tc'") == ["c"]


def test_where_names_and_ast() -> None:
    where = parse_where("lr > 1 AND (seed in (1, 2) or not `f1:lang=en@max` is null) and lr < 3")
    assert where.names() == ("lr", "seed", "f1:lang=en@max")
    assert where.text.startswith("lr > 1")


def test_where_long_chains_compile_flat() -> None:
    text = " or ".join(f"s=={i}" for i in range(400))
    assert len(text) < 4096
    frame = pl.DataFrame({"run": ["a", "b"], "s": [7, 1000]})
    assert where_runs(frame, text) == ["a"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lr <", '--where "lr <": expected a value at column 5'),
        ("lr", "lr is a Float64 column, not a condition at column 1; compare it, e.g. lr > 0"),
        ("", "expected an expression"),
        ("lr > 1 and", "expected a name, a value, 'not' or '(' at column 11"),
        ("(lr > 1", "expected ')' at column 8"),
        ("lr > 1)", "unexpected ')' at column 7"),
        ("lr >> 1", "unexpected '>' at column 5 (expected a value)"),
        ("lr ! 1", "unexpected character '!' at column 4"),
        ("lr > 1 2", "unexpected '2' at column 8"),
        ("lr > 1.2.3", "unexpected '1.2.' at column 6 (malformed number)"),
        ("lr > 1x", "malformed number"),
        ("lr > 'abc", "string opened with ' is never closed at column 6"),
        ("lr > 'a\\q'", "unknown escape '\\q' at column 8"),
        ("`lr > 1", "name opened with ` is never closed at column 1"),
        ("`` > 1", "empty name in backticks at column 1"),
        ("1 < 2", "a comparison needs a name on one side at column 1"),
        ("seed in 1", "unexpected '1' at column 9 (expected '(' and a list of values)"),
        ("seed in ()", "unexpected ')' at column 10 (expected a value)"),
        ("seed in (1 2)", "unexpected '2' at column 12 (expected ',' or ')')"),
        ("seed in (1, lr)", "unexpected 'lr' at column 13 (expected a value)"),
        ("seed in (1, null)", "null in a list never matches at column 13; use 'is null'"),
        ("seed is 1", "unexpected '1' at column 9 (expected 'null' or 'not null')"),
        ("seed is not", "expected 'null' at column 12"),
        ("lr > 1e999", "number 1e999 out of range"),
    ],
)
def test_where_syntax_errors(text: str, message: str) -> None:
    schema = {"lr": pl.Float64, "seed": pl.Int64}
    with pytest.raises(SpecError) as info:
        compile_where(text, schema)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "model == 3",
            "model is a String column but is compared with the number 3 at column 10;"
            " quote it ('3') to compare text",
        ),  # fmt: skip
        ("3 == model", "compared with the number 3 at column 1"),
        (
            "seed > '3'",
            "seed is a Int64 column but is compared with the string '3' at column 8; "
            "drop the quotes to compare numbers",
        ),  # fmt: skip
        ("flag == 1", "flag is a Boolean column but is compared with the number 1"),
        ("flag > true", "flag is Boolean; only == and != work"),
        ("seed == true", "seed is a Int64 column but is compared with true"),
        ("seed == null", "comparing with null is never true at column 9; use 'seed is null'"),
        ("model in (1, 2)", "compared with the number 1 at column 11"),
        ("seed in ('1')", "compared with the string '1'"),
        ("seed < model", "cannot compare seed (Int64) with model (String) at column 6"),
        ("tags == 'x'", "tags is a List(String) column, which --where cannot compare"),
        ("when == 'yesterday'", "expected an ISO date, got 'yesterday' at column 9"),
        ("when == 3", "when is a Datetime"),
        (
            "seeds == 1",
            "unknown name 'seeds' at column 1; did you mean 'seed'?",
        ),  # fmt: skip
    ],
)
def test_where_type_errors(text: str, message: str) -> None:
    schema: SchemaLike = {
        "seed": pl.Int64,
        "model": pl.String,
        "flag": pl.Boolean,
        "tags": pl.List(pl.String),
        "when": pl.Datetime("us"),
    }
    with pytest.raises(SpecError) as info:
        compile_where(text, schema)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nosuch > 1", '--fail-if "nosuch > 1": unknown name \'nosuch\' at column 1; known: lr,'),
        ("lr >", '--fail-if "lr >": expected a value at column 5'),
        ("lr > 'x", "--fail-if \"lr > 'x\": string opened with ' is never closed at column 6"),
        ("lr > 'a'", "--fail-if \"lr > 'a'\": lr is a Float64 column but is compared with"),
        ("", '--fail-if "": expected an expression'),
        ("lr\udc80 > 1", '--fail-if "lr\ufffd > 1": byte 0x80'),
    ],
)
def test_where_errors_name_the_option(text: str, message: str) -> None:
    schema = {"lr": pl.Float64, "seed": pl.Int64}
    with pytest.raises(SpecError) as info:
        compile_where(text, schema, option="--fail-if")
    assert str(info.value).startswith(message)
    assert "--where" not in str(info.value)
    with pytest.raises(SpecError) as info:
        parse_where(text, option="--fail-if").to_expr(schema)
    assert str(info.value).startswith(message)


def test_where_error_option_defaults_to_where() -> None:
    with pytest.raises(SpecError, match='^--where "nosuch > 1": unknown name'):
        compile_where("nosuch > 1", {"lr": pl.Float64})
    where = parse_where("`f1:lang=*` > 1", option="--fail-if")
    with pytest.raises(SpecError, match='^--fail-if "`f1:lang=\\*` > 1": .* in --fail-if$'):
        metric_names_in(where, known=set())


def test_where_unknown_name_truncates_the_known_list() -> None:
    schema = {f"param{i:02d}": pl.Int64 for i in range(30)}
    with pytest.raises(SpecError) as info:
        compile_where("zzz > 1", schema)
    message = str(info.value)
    assert message.endswith("; known: param00, param01, param02, param03, param04 and 25 more")


def test_where_date_columns_with_time_zones() -> None:
    frame = pl.DataFrame(
        {
            "run": ["a", "b"],
            "day": [dt.date(2024, 1, 1), dt.date(2024, 3, 1)],
            "utc": [dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 1, 12)],
        }
    ).with_columns(pl.col("utc").dt.replace_time_zone("UTC"))
    assert where_runs(frame, "day > '2024-02-01'") == ["b"]
    assert where_runs(frame, "utc > '2024-01-01T11:00'") == ["b"]
    assert where_runs(frame, "utc > '2024-01-01T12:00+03:00'") == ["a", "b"]


def test_where_limits() -> None:
    schema = {"lr": pl.Float64}
    with pytest.raises(SpecError, match="4097 characters long; the limit is 4096"):
        parse_where("lr > 1" + " " * 4091)
    assert parse_where("(" * 64 + "lr > 1" + ")" * 64).names() == ("lr",)
    with pytest.raises(SpecError, match="nesting deeper than 64 levels at column 65"):
        parse_where("(" * 65 + "lr > 1" + ")" * 65)
    with pytest.raises(SpecError, match="nesting deeper than 64 levels at column 257"):
        parse_where("not " * 65 + "lr > 1")
    expr = compile_where("not " * 64 + "lr > 1", schema)
    frame = pl.DataFrame({"lr": [0.5, 2.0]})
    assert frame.filter(expr)["lr"].to_list() == [2.0]


def test_where_never_evaluates_python(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payloads = [
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        f"lr.__class__.__init__.__globals__['os'].system('touch {marker}')",
        f"(lambda: open('{marker}', 'w'))()",
        f"[open('{marker}', 'w') for x in (1,)]",
        f"lr > 1 or exec(\"open('{marker}', 'w')\")",
        f"lr > 1; open('{marker}', 'w')",
        f"lr if open('{marker}', 'w') else lr",
        "x.__class__()",
        "lr[0] > 1",
        "lr + 1 > 2",
        "{lr} > 1",
        "lr > 1 ; import os",
    ]
    schema = {"lr": pl.Float64, "seed": pl.Int64}
    for payload in payloads:
        with pytest.raises(SpecError) as info:
            compile_where(payload, schema)
        assert "unexpected" in str(info.value), payload
    assert not marker.exists()
    assert list(tmp_path.iterdir()) == []


def test_where_call_fails_at_the_parenthesis() -> None:
    with pytest.raises(SpecError) as info:
        parse_where("x.__class__()")
    assert str(info.value) == (
        "--where \"x.__class__()\": unexpected '(' at column 12 "
        "(expected 'and', 'or' or the end of the expression)"
    )


def test_metric_names_in() -> None:
    where = parse_where("lr > 1e-5 and `f1:lang=en@max` > 0.7 and `f1[lang=de]` > 0 and lrr > 1")
    specs = metric_names_in(where, known={"lr", "f1[lang=de]"})
    assert [s.text for s in specs] == ["f1:lang=en@max", "lrr"]
    specs = metric_names_in(where, known={"lr", "f1[lang=de]"}, metrics={"f1", "loss"})
    assert [s.text for s in specs] == ["f1:lang=en@max"]
    assert metric_names_in(parse_where("`a b` > 1"), known=set()) == []
    with pytest.raises(SpecError, match="f1:lang=\\* names several columns"):
        metric_names_in(parse_where("`f1:lang=*` > 1"), known=set())


WHERE_ALPHABET = st.sampled_from(
    list("abcxyz_.-0123456789 ()[],'\"`\\=!<>+*eE:@\t\n")
    + ["and ", "or ", "not ", "in ", "is ", "null", "true", "false", "lr", "seed", "__"]
)
SCHEMA = {"lr": pl.Float64, "seed": pl.Int64, "a": pl.String, "b": pl.Boolean}


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(WHERE_ALPHABET, max_size=60).map("".join)))
def test_where_random_text_only_raises_spec_errors(text: str) -> None:
    try:
        where = parse_where(text)
    except SpecError:
        return
    assert isinstance(where.names(), tuple)
    try:
        expr = where.to_expr(SCHEMA)
    except SpecError:
        return
    assert isinstance(expr, pl.Expr)


#: The rows every compiled expression is evaluated on, and the same rows as Python values
#: for :func:`kleene`, with NaN already as null (``--where`` counts NaN as null).
WHERE_FRAME = pl.DataFrame(
    {
        "lr": [1.0, None, NAN, 0.25],
        "seed": [1, None, 3, 2],
        "a": ["x", None, "y", "x"],
        "b": [True, None, False, False],
    }
)
WHERE_ROWS = [
    {"lr": 1.0, "seed": 1, "a": "x", "b": True},
    {"lr": None, "seed": None, "a": None, "b": None},
    {"lr": None, "seed": 3, "a": "y", "b": False},
    {"lr": 0.25, "seed": 2, "a": "x", "b": False},
]


def kleene(node: object, row: dict[str, object]) -> bool | None:
    """An expression's value on one row, in plain Python with three-valued logic (None =
    unknown): the reference the compiled Polars expression is held against."""
    from xpcli.spec.where import BoolOp, Compare, InList, IsNull, Name, Not, Truth

    def operand(item: object) -> object:
        return row[item.name] if isinstance(item, Name) else item.value  # type: ignore[attr-defined]

    if isinstance(node, BoolOp):
        values = [kleene(n, row) for n in node.operands]
        decisive = node.op == "or"  # True decides an "or", False an "and"
        if decisive in values:
            return decisive
        return None if None in values else not decisive
    if isinstance(node, Not):
        inner = kleene(node.operand, row)
        return None if inner is None else not inner
    if isinstance(node, IsNull):
        return (row[node.name.name] is not None) if node.negated else row[node.name.name] is None
    if isinstance(node, Truth):
        return row[node.name.name]  # type: ignore[return-value]
    if isinstance(node, InList):
        value = row[node.name.name]
        if value is None:
            return None
        found = any(value == v.value for v in node.values)
        return not found if node.negated else found
    assert isinstance(node, Compare)
    left, right = operand(node.left), operand(node.right)
    if left is None or right is None:
        return None
    compare = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
               ">": operator.gt, ">=": operator.ge}[node.op]
    return bool(compare(left, right))


def kept_rows(text: str) -> list[int]:
    """The rows of WHERE_FRAME that the compiled expression keeps."""
    frame = WHERE_FRAME.with_row_index("row")
    return frame.filter(compile_where(text, SCHEMA))["row"].to_list()


def where_texts() -> st.SearchStrategy[str]:
    """Valid ``--where`` texts over SCHEMA: every kind of test, nested with not/and/or."""
    numbers = st.sampled_from(["0", "1", "2", "3", "0.25", "-1", "1e0", ".5", "2.0"])
    texts = st.sampled_from(["'x'", '"y"', "'z'", "''"])
    ops = st.sampled_from(["==", "=", "!=", "<", "<=", ">", ">="])
    numeric = st.sampled_from(["lr", "seed"])

    def joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.tuples(*parts).map(" ".join)

    def listed(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.lists(values, min_size=1, max_size=3).map(lambda v: f"({', '.join(v)})")

    leaf = st.one_of(
        joined(numeric, ops, numbers),
        joined(numbers, ops, numeric),
        joined(numeric, ops, numeric),
        joined(st.just("a"), ops, texts),
        joined(st.just("b"), st.sampled_from(["==", "!="]), st.sampled_from(["true", "FALSE"])),
        joined(numeric, st.sampled_from(["in", "not in"]), listed(numbers)),
        joined(st.just("a"), st.sampled_from(["in", "NOT IN"]), listed(texts)),
        joined(st.sampled_from(["lr", "seed", "a", "b"]), st.sampled_from(["is null",
                                                                         "is not null"])),
        st.just("b"),
    )
    return st.recursive(leaf, lambda inner: st.one_of(
        inner.map(lambda e: f"not {e}"),
        inner.map(lambda e: f"({e})"),
        joined(inner, st.sampled_from(["and", "or", "AND", "Or"]), inner),
    ), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(where_texts())
def test_valid_where_expressions_evaluate(text: str) -> None:
    """Every valid expression keeps exactly the rows where it is true, by kleene()."""
    root = parse_where(text).root
    assert kept_rows(text) == [i for i, row in enumerate(WHERE_ROWS)
                               if kleene(root, row) is True], text


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("lr > 0.5 or seed == 3", [0, 2]),  # row 2: lr is NaN (unknown), seed decides
        ("not lr > 0.5", [3]),  # unknown stays unknown under not: rows 1 and 2 dropped
        ("lr != 1", [3]),
        ("lr is null", [1, 2]),  # NaN counts as null
        ("seed in (1, 3)", [0, 2]),
        ("a not in ('x')", [2]),
        ("not b", [2, 3]),
        ("b == false and seed >= 2", [2, 3]),
        ("0.5 < lr or a == 'y'", [0, 2]),
        ("seed is not null and not (lr > 0.5 or b)", [3]),
    ],
)
def test_where_keeps_the_rows_worked_by_hand(text: str, rows: list[int]) -> None:
    assert kept_rows(text) == rows
    root = parse_where(text).root
    assert [i for i, row in enumerate(WHERE_ROWS) if kleene(root, row) is True] == rows


SPEC_ALPHABET = st.sampled_from(
    list("abf1_.-:=@*?,()[] \t") + ["lang", "max", "at=", "at-max(", "at-min(", "step:", "1e3"]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=100), st.lists(SPEC_ALPHABET, max_size=40).map("".join)))
def test_metric_spec_random_text_only_raises_spec_errors(text: str) -> None:
    try:
        specs = parse_metric_specs(text)
    except SpecError:
        return
    for spec in specs:
        # What parses prints back to something that parses to the same spec.
        again = parse_metric_spec(spec.canonical_text())
        assert again.canonical_text() == spec.canonical_text()
        assert (again.name, sorted(again.context), again.reduce.kind) == (
            spec.name,
            sorted(spec.context),
            spec.reduce.kind,
        )


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(SPEC_ALPHABET, max_size=20).map("best:".join)))
def test_picker_random_text_only_raises_spec_errors(text: str) -> None:
    """A picker is a run id unless it starts with best:, max:, worst: or min: followed by a
    metric spec; anything else is a SpecError."""
    stripped = text.strip()
    head, colon, tail = stripped.partition(":")
    kind = {"best": "best", "max": "best", "worst": "worst", "min": "worst"}.get(
        head.strip().lower()) if colon else None
    try:
        picker = parse_picker(text)
    except SpecError:
        if kind is None:
            assert not stripped, text  # only an empty run id is refused
        else:
            with pytest.raises(SpecError):
                parse_metric_spec(tail)
        return
    assert picker.text == stripped
    if kind is None:
        assert (picker.kind, picker.run, picker.spec) == ("run", stripped, None)
    else:
        assert (picker.kind, picker.run) == (kind, None)
        assert picker.spec == parse_metric_spec(tail) and picker.spec.text == tail.strip()


# --------------------------------------------------------------------------------------
# Run pickers
# --------------------------------------------------------------------------------------


@pytest.fixture
def picked() -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = (
        curve("run-1", "f1", "en", [0.5, 0.7])
        + curve("run-2", "f1", "en", [0.9, 0.7])
        + curve("run-3", "f1", "en", [0.2, NAN])
        + curve("run-4", "f1", "en", [0.6, 0.4])
        + curve("run-5", "f1", "en", [NAN, NAN])
        + curve("run-1", "f1", "de", [0.1, 0.3])
        + curve("run-2", "f1", "de", [0.2, 0.2])
    )
    frame = points(rows)
    return pl.DataFrame({"run": ["run-1", "run-2", "run-3", "run-4", "run-5", "run-6"]}), frame


def test_parse_picker() -> None:
    assert parse_picker(" run-7 ").kind == "run"
    assert parse_picker("run-7").run == "run-7"
    best = parse_picker("best:f1:lang=en@max")
    assert (best.kind, best.spec) == ("best", parse_metric_spec("f1:lang=en@max"))
    assert parse_picker("MAX:f1").kind == "best"
    assert parse_picker("worst:loss").kind == "worst"
    assert parse_picker("min:loss").kind == "worst"
    assert parse_picker("2024-05-01:run").kind == "run"
    with pytest.raises(SpecError, match="empty run picker"):
        parse_picker(" ")
    with pytest.raises(SpecError, match="expected a metric spec after 'best:'"):
        parse_picker("best:")
    with pytest.raises(SpecError, match="^best:f1@maxx: f1@maxx: unknown reduce 'maxx'"):
        parse_picker("best:f1@maxx")


def test_resolve_picker(picked: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    runs, pts = picked
    assert resolve_picker("run-4", runs, pts) == "run-4"
    assert resolve_picker("run-6", runs, pts) == "run-6"  # a run without points is still a run
    assert resolve_picker("best:f1:lang=en", runs, pts) == "run-1"  # last: 0.7 ties -> smallest
    assert resolve_picker("best:f1:lang=en@max", runs, pts) == "run-2"
    assert resolve_picker("max:f1:lang=en@max", runs, pts) == "run-2"
    # run-3's last non-NaN value 0.2 is the lowest; run-5 (only NaN) is never picked.
    assert resolve_picker("worst:f1:lang=en", runs, pts) == "run-3"
    assert resolve_picker("min:f1:lang=en@min", runs, pts) == "run-3"
    assert resolve_picker("worst:f1:lang=de", runs, pts) == "run-2"
    assert resolve_picker("best:f1:lang=de@at-max(f1:lang=en)", runs, pts) == "run-1"


def test_resolve_picker_only_picks_among_the_runs_given(
    picked: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    runs, pts = picked
    subset = runs.filter(pl.col("run").is_in(["run-3", "run-4"]))
    assert resolve_picker("best:f1:lang=en@max", subset, pts) == "run-4"
    with pytest.raises(SpecError, match="unknown run 'run-1'"):
        resolve_picker("run-1", subset, pts)


def test_resolve_picker_exact_run_id_wins() -> None:
    runs = pl.DataFrame({"run": ["best:f1", "x"]})
    pts = points(curve("x", "f1", None, [1.0]))
    assert resolve_picker("best:f1", runs, pts) == "best:f1"


def test_resolve_picker_errors(picked: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    runs, pts = picked
    with pytest.raises(SpecError) as info:
        resolve_picker("run-7", runs, pts)
    assert str(info.value) == (
        "unknown run 'run-7'; closest: run-4, run-5, run-6 (6 runs; a picker is a run id, "
        "best:SPEC or worst:SPEC)"
    )
    with pytest.raises(SpecError, match="names 2 columns \\(f1\\[lang=de\\], f1\\[lang=en\\]\\)"):
        resolve_picker("best:f1:lang=*", runs, pts)
    with pytest.raises(SpecError, match="unknown metric 'f2'"):
        resolve_picker("best:f2", runs, pts)
    with pytest.raises(SpecError, match="several lang values"):
        resolve_picker("best:f1", runs, pts)
    only_nan = runs.filter(pl.col("run") == "run-5")
    with pytest.raises(SpecError, match="best:f1:lang=en: no run has a value for f1\\[lang=en\\]"):
        resolve_picker("best:f1:lang=en", only_nan, pts)


# --------------------------------------------------------------------------------------
# The grammar docs
# --------------------------------------------------------------------------------------


def doc_examples() -> list[list[str]]:
    import xpcli.spec.metric
    import xpcli.spec.where

    blocks: list[list[str]] = []
    lines = ((xpcli.spec.metric.__doc__ or "") + (xpcli.spec.where.__doc__ or "")).splitlines()
    for i, line in enumerate(lines):
        if line == "Examples::":
            block = []
            for example in lines[i + 2 :]:
                if not example.startswith("    "):
                    break
                block.append(example.strip())
            blocks.append(block)
    return blocks


def test_the_documented_examples_parse() -> None:
    specs, wheres = doc_examples()
    for line in specs:
        parse_metric_spec(line.split("  ")[0])
    for line in wheres:
        parse_where(line)
    assert len(specs) == 5 and len(wheres) == 6


def test_the_reducer_table_drives_the_parser_and_the_error_text() -> None:
    from typing import get_args

    from xpcli.spec.metric import REDUCERS, ReduceKind

    assert list(REDUCERS) == list(get_args(ReduceKind))
    examples = {None: "", "N": "=3", "SPEC": "(f1:lang=en)"}
    for kind, reducer in REDUCERS.items():
        spec = parse_metric_spec(f"f1:lang=de@{kind.upper()}{examples[reducer.takes]}")
        assert spec.reduce.kind == kind
        assert spec.canonical_text() == f"f1:lang=de@{kind}{examples[reducer.takes]}".replace(
            "@last", "")
        assert parse_metric_spec(spec.canonical_text()).reduce == spec.reduce
    with pytest.raises(SpecError) as info:
        parse_metric_spec("f1@maxx")
    assert str(info.value) == (
        "f1@maxx: unknown reduce 'maxx' (expected one of last, first, max, min, mean, median, "
        "at=N, at-max(SPEC), at-min(SPEC))"
    )


# -- glob matching -----------------------------------------------------------------------------


def matching(values: list[str], pattern: str) -> list[str]:
    """The values of the context key ``k`` that ``f1:k=PATTERN`` expands to."""
    frame = pl.DataFrame({"run": "r", "name": "f1", "k": values, "step": 1, "epoch": 1.0,
                          "time": 1.0, "value": 0.5})
    try:
        columns = expand(parse_metric_specs(f"f1:k={pattern}"), frame)
    except SpecError as exc:
        assert "no point of 'f1' has" in str(exc)
        return []
    return [dict(c.context)["k"] for c in columns]


@pytest.mark.parametrize(("values", "pattern", "expected"), [
    (["de", "d", "ed", "en"], "d*", ["d", "de"]),
    (["de", "e", "dde", "en"], "?e", ["de"]),
    (["a.b", "axb"], "a.b", ["a.b"]),  # a dot is a dot
    (["a+b", "aab"], "a+*", ["a+b"]),
    (["x$^|{}\\", "x$"], "x$^|{}\\", ["x$^|{}\\"]),
    (["x$", "xy", "x"], "x?", ["x$", "xy"]),
    (["line\nbreak", "a\nb"], "line?break", ["line\nbreak"]),  # ? and * take a newline
    (["a\nb", "ab", "ba"], "a*b", ["a\nb", "ab"]),
    (["abcabc", "abcab"], "*bc", ["abcabc"]),
    (["abab", "ab", "aabb"], "a*b*b", ["aabb", "abab"]),
    (["aaa", "aa", "a"], "a*a*a", ["aaa"]),
])
def test_glob_semantics(values: list[str], pattern: str, expected: list[str]) -> None:
    assert matching(values, pattern) == expected


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.text(alphabet="ab.+\n", min_size=1, max_size=10), min_size=1,
                       max_size=5, unique=True),
       pattern=st.text(alphabet="ab.+*?", min_size=1, max_size=8))
def test_glob_agrees_with_fnmatch(values: list[str], pattern: str) -> None:
    """fnmatch, an independent implementation, on patterns without its [classes]."""
    import fnmatch

    assert matching(values, pattern) == sorted(v for v in values
                                               if fnmatch.fnmatchcase(v, pattern))


# -- a cap on expansion ----------------------------------------------------------------------


def many_langs(n: int, names: tuple[str, ...] = ("f1",)) -> pl.DataFrame:
    return pl.DataFrame({"run": "r", "name": [m for m in names for _ in range(n)],
                         "lang": [f"l{i:05d}" for _ in names for i in range(n)],
                         "step": 1, "epoch": 1.0, "time": 1.0, "value": 0.5})


def test_expansion_beyond_the_limit_is_an_error_before_any_column_is_made() -> None:
    from xpcli.spec.metric import DEFAULT_MAX_COLUMNS

    assert DEFAULT_MAX_COLUMNS == 1000
    points = many_langs(2500)
    with pytest.raises(SpecError) as info:
        expand(parse_metric_specs("f1:lang=*"), points)
    assert str(info.value) == ("f1:lang=* matches 2,500 series; narrow it or raise "
                               "--max-columns (now 1,000)")
    with pytest.raises(SpecError, match=r"^f1:lang=l00\* matches 1,000\b"):
        expand(parse_metric_specs("f1:lang=l00*"), points, max_columns=999)
    assert len(expand(parse_metric_specs("f1:lang=l00*"), points)) == 1000
    assert len(expand(parse_metric_specs("f1:lang=*"), points, max_columns=2500)) == 2500
    # The limit holds for all specs together.
    points = many_langs(600, ("f1", "loss"))
    with pytest.raises(SpecError, match=r"^the metric specs name 1,200 columns; narrow them"):
        expand(parse_metric_specs("f1:lang=*,loss:lang=*"), points)


def test_max_columns_option(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from xpcli import Run
    from xpcli.cli import cli
    from xpcli.spec.metric import DEFAULT_MAX_COLUMNS, MAX_COLUMNS

    with Run(tmp_path, "r", flush_seconds=0) as run:
        for i in range(12):
            run.track(i / 10, "f1", step=1, context={"lang": f"l{i:02d}"})
    for command in (["select", "-m", "f1:lang=*"], ["group", "-m", "f1:lang=*"],
                    ["aggregate", "f1:lang=*"], ["curves", "f1:lang=*"],
                    ["parcoords", "--metrics", "f1:lang=*"],
                    ["forgetting", "f1:lang=*", "--run", "r"],
                    ["selection", "-s", "f1:lang=l00", "-t", "f1:lang=*"],
                    ["compare", "-m", "f1:lang=*"], ["importance", "-m", "f1:lang=*"]):
        result = CliRunner().invoke(cli, [*command, "--runs", str(tmp_path), "--format",
                                          "csv", "--max-columns", "5"])
        assert result.exit_code == 2, (command, result.output)
        assert "f1:lang=* matches 12 series; narrow it or raise --max-columns (now 5)" \
            in result.stderr, command
        assert MAX_COLUMNS.get() == DEFAULT_MAX_COLUMNS  # one command's limit, not the next
    result = CliRunner().invoke(cli, ["select", "-m", "f1:lang=*", "--runs", str(tmp_path),
                                      "--format", "csv", "--max-columns", "12"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == "r," + ",".join(str(i / 10) for i in range(12))
    help_text = CliRunner().invoke(cli, ["select", "--help"]).output
    assert f"(default: {DEFAULT_MAX_COLUMNS})" in help_text


def test_where_compares_durations_in_seconds() -> None:
    frame = pl.DataFrame({"run": ["a", "b"],
                          "elapsed": [dt.timedelta(seconds=59), dt.timedelta(hours=2)]},
                         schema={"run": pl.String, "elapsed": pl.Duration("us")})
    kept = frame.filter(compile_where("elapsed > 3600", frame.schema))
    assert kept["run"].to_list() == ["b"]
    kept = frame.filter(compile_where("elapsed <= 59 or elapsed == 7200.0", frame.schema))
    assert kept["run"].to_list() == ["a", "b"]
    with pytest.raises(SpecError, match="'in' does not work on Duration"):
        compile_where("elapsed in (59)", frame.schema)
    with pytest.raises(SpecError, match="elapsed is a Duration"):
        compile_where("elapsed > '1h'", frame.schema)


# -- list membership: 'ner' in tags ------------------------------------------------------

LISTS = pl.DataFrame({
    "run": ["a", "b", "c", "d", "e"],
    "tags": ['["ner", "x"]', '["pos"]', None, "[]", '["ner"]'],  # how a runs table keeps them
    "ids": [[1, 2], [3], [4], [], None],
    "model": ["xlm", "bert", "xlm", "xlm", "bert"],
    "contains": [1, 2, 3, 4, 5],
})


@pytest.mark.parametrize("text, runs", [
    ("'ner' in tags", ["a", "e"]),
    ("tags contains 'ner'", ["a", "e"]),
    ("'ner' not in tags", ["b", "d"]),  # c (no tags) is null: dropped, like any null
    ("tags not contains 'ner'", ["b", "d"]),
    ("'ner' in tags and model == 'bert'", ["e"]),
    ("not 'pos' in tags", ["a", "d", "e"]),
    ("2 in ids", ["a"]),
    ("ids contains 2.0", ["a"]),
    ("3 not in ids", ["a", "c", "d"]),
    ("contains > 3", ["d", "e"]),  # a column may still be named contains
    ("'NER' in tags", []),  # text matches exactly
])
def test_list_membership(text: str, runs: list[str]) -> None:
    assert LISTS.filter(compile_where(text, LISTS.schema))["run"].to_list() == runs


@pytest.mark.parametrize("text, message", [
    ("ids == 'ner'", "a List(Int64) column"),
    ("'ner' in model", "model holds 'xlm', not a list: 'in' needs a list column (such as "
                       "tags); to compare the value, write model == 'ner'"),
    ("ids in (2)", "'in' does not work on List(Int64) columns at column 1; for list "
                   "membership write 2 in ids"),
    ("ids == 2", "ids is a List(Int64) column, which --where cannot compare at column 1; "
                 "test membership: 2 in ids"),
    ("'a' in ids", "ids holds Int64 items but is tested for the string 'a'"),
    ("'a' in 'b'", "'in' after a value needs a list column at column 8 (e.g. 'ner' in tags)"),
    ("tags contains ner", "unknown name 'ner' at column 15; to test for the text, quote "
                          "it: tags contains 'ner'"),
    ("null in tags", "null in a list never matches"),
    ("tags == 'ner'", "tags holds lists; test membership: 'ner' in tags"),
    ("tags != 'ner'", "tags holds lists; test membership: 'ner' in tags"),
    ("tags in ('ner', 'pos')", "test membership: 'ner' in tags or 'pos' in tags"),
])
def test_list_membership_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        LISTS.filter(compile_where(text, LISTS.schema))
    shown = str(caught.value)
    assert message in shown and "\n" not in shown, shown

"""The runs table (xp select) and the --fail-if gate, against hand-worked values."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from tables_helpers import f1, write_runs

from xpcli.analysis.gate import check_gate, gate_error
from xpcli.analysis.select import (
    SortKey,
    best_run,
    default_specs,
    parse_best,
    parse_sort_keys,
    select_runs,
    sort_table,
    split_list,
)
from xpcli.dataset import load
from xpcli.errors import DataError, GateError, SpecError, UsageError

NAN = float("nan")


@pytest.fixture
def four(tmp_path: Path):
    """Four runs: lr varies, model is constant, d lacks German, c's last English is NaN.

    last f1[lang=en]: a 0.80, b 0.90, c 0.60 (its epoch-2 NaN is skipped), d 0.90
    max  f1[lang=en]: a 0.85, b 0.90, c 0.60, d 0.95
    last f1[lang=de]: a 0.40, b 0.30, c 0.50, d missing
    """
    return load(write_runs(tmp_path / "runs", [
        ("a", {"lr": 0.1, "seed": 1, "model": "m"},
         f1(1, en=0.85, de=0.1) + f1(2, en=0.80, de=0.4) + [("loss", {}, 2, 1.5)]),
        ("b", {"lr": 0.01, "seed": 1, "model": "m"}, f1(1, en=0.7, de=0.2) + f1(2, en=0.9, de=0.3)),
        ("c", {"lr": 0.1, "seed": 2, "model": "m"}, f1(1, en=0.6, de=0.5) + f1(2, en=NAN)),
        ("d", {"lr": 0.001, "seed": 2, "model": "m"}, f1(1, en=0.95) + f1(2, en=0.9)),
    ]))


def column(frame: pl.DataFrame, name: str) -> list:
    return frame[name].to_list()


def test_default_columns_are_varying_params_and_last_values(four) -> None:
    table = select_runs(four)
    assert table.columns == ["run", "lr", "seed", "f1[lang=de]", "f1[lang=en]", "loss"]
    assert column(table, "run") == ["a", "b", "c", "d"]  # creation order
    assert column(table, "f1[lang=en]") == [0.80, 0.90, 0.60, 0.90]
    assert column(table, "f1[lang=de]") == [0.4, 0.3, 0.5, None]
    assert column(table, "loss") == [1.5, None, None, None]


def test_default_specs_spell_every_context() -> None:
    points = pl.DataFrame({
        "run": ["r"] * 4, "name": ["f1", "f1", "f1", "acc"], "lang": ["de", "en", None, None],
        "step": [1, 1, 1, 1], "epoch": [1.0] * 4, "time": [0.0] * 4, "value": [0.1] * 4,
    })
    texts = [s.text for s in default_specs(points)]
    assert texts == ["acc", "f1:lang=", "f1:lang=de", "f1:lang=en"]


def test_chosen_params_and_metrics(four) -> None:
    table = select_runs(four, "f1:lang=en@max", params=["model", "lr"])
    assert table.columns == ["run", "model", "lr", "f1[lang=en]@max"]
    assert column(table, "f1[lang=en]@max") == [0.85, 0.90, 0.60, 0.95]


def test_unknown_param_names_the_known_ones(four) -> None:
    with pytest.raises(UsageError, match="unknown param 'lrr'.*lr"):
        select_runs(four, "f1:lang=en", params=["lrr"])


def test_multi_key_sort_with_direction(four) -> None:
    # lr descending; the tie a/c (lr 0.1) broken by last English F1 ascending: c 0.6, a 0.8.
    table = select_runs(four, "f1:lang=en", sort=["-lr", "f1[lang=en]"])
    assert column(table, "run") == ["c", "a", "b", "d"]
    # Both keys descending: lr 0.1 first, inside it a (0.8) before c (0.6).
    table = select_runs(four, "f1:lang=en", sort="-lr,-f1[lang=en]")
    assert column(table, "run") == ["a", "c", "b", "d"]


def test_sort_ties_keep_creation_order(four) -> None:
    # b and d tie at 0.9 on last English F1; b was created first.
    table = select_runs(four, "f1:lang=en", sort="-f1[lang=en]")
    assert column(table, "run") == ["b", "d", "a", "c"]


def test_sort_by_a_metric_spec_adds_its_column(four) -> None:
    table = select_runs(four, "f1:lang=de", sort="-f1:lang=en@max", top=2)
    assert table.columns == ["run", "lr", "seed", "f1[lang=de]", "f1[lang=en]@max"]
    assert column(table, "run") == ["d", "b"]


def test_missing_values_sort_last_in_both_directions(four) -> None:
    assert column(select_runs(four, "f1:lang=de", sort="f1[lang=de]"), "run") == \
        ["b", "a", "c", "d"]
    assert column(select_runs(four, "f1:lang=de", sort="-f1[lang=de]"), "run") == \
        ["c", "a", "b", "d"]


def test_sort_table_puts_nan_and_null_last() -> None:
    frame = pl.DataFrame({"run": list("wxyz"), "v": [1.0, NAN, None, 3.0]})
    assert column(sort_table(frame, [SortKey("v")]), "run") == ["w", "z", "x", "y"]
    assert column(sort_table(frame, [SortKey("v", True)]), "run") == ["z", "w", "x", "y"]


def test_top(four) -> None:
    table = select_runs(four, "f1:lang=en@max", sort="-f1[lang=en]@max", top=3)
    assert column(table, "run") == ["d", "b", "a"]
    with pytest.raises(UsageError, match="positive"):
        select_runs(four, top=0)


def test_best_highest_lowest_and_ties(four) -> None:
    best = select_runs(four, "f1:lang=de", best="f1:lang=en@max")
    assert column(best, "run") == ["d"]
    assert best.columns[-1] == "f1[lang=en]@max"
    assert column(select_runs(four, best="min:f1:lang=en"), "run") == ["c"]
    # b and d tie at last English 0.9: the smaller id wins.
    assert column(select_runs(four, best="f1:lang=en"), "run") == ["b"]
    # d has no German value, so it never wins a German pick.
    assert column(select_runs(four, best="worst:f1:lang=de"), "run") == ["b"]


def test_best_ignores_nan_and_null() -> None:
    frame = pl.DataFrame({"run": ["a", "b", "c"], "v": [NAN, None, 0.1]})
    assert column(best_run(frame, "v", "best"), "run") == ["c"]
    assert best_run(frame.head(2), "v", "best").is_empty()


def test_best_needs_one_column_and_a_value(four) -> None:
    with pytest.raises(SpecError, match="names 2 columns"):
        select_runs(four, best="f1:lang=*")
    with pytest.raises(DataError, match="no selected run"):
        select_runs(four, best="f1:lang=de", where="run == 'd'")
    with pytest.raises(UsageError, match="drop --top"):
        select_runs(four, best="f1:lang=en", top=2)


def test_parse_best_and_sort_keys() -> None:
    spec, kind = parse_best("min:loss:split=train")
    assert (spec.name, spec.context, kind) == ("loss", (("split", "train"),), "worst")
    assert parse_best("f1:lang=en@max")[1] == "best"
    assert parse_sort_keys(["-f1[lang=de,split=x],lr", "+seed"]) == [
        SortKey("f1[lang=de,split=x]", True), SortKey("lr"), SortKey("seed")]
    with pytest.raises(UsageError, match="after the sign"):
        parse_sort_keys("-")
    assert split_list(["a,b[x=1,y=2]", " c "]) == ["a", "b[x=1,y=2]", "c"]


def test_unknown_sort_key(four) -> None:
    with pytest.raises(SpecError, match="unknown metric 'nope'"):
        select_runs(four, sort="nope")
    with pytest.raises(UsageError, match="neither a column nor a metric spec"):
        select_runs(four, sort="f1@@")


def test_where_over_params_and_meta(four) -> None:
    table = select_runs(four, "f1:lang=en", where="lr >= 0.01 and status == 'finished'")
    assert column(table, "run") == ["a", "b", "c"]


def test_where_over_reduced_metrics_not_shown(four) -> None:
    table = select_runs(four, "f1:lang=de", where="`f1:lang=en@max` > 0.8 and lr > 0.005")
    assert column(table, "run") == ["a", "b"]
    assert table.columns == ["run", "lr", "seed", "f1[lang=de]"]


def test_where_over_a_shown_label_and_missing_values(four) -> None:
    # d has no German value: a comparison with null drops it, 'is null' keeps only it.
    table = select_runs(four, "f1:lang=de", where="`f1[lang=de]` < 0.45")
    assert column(table, "run") == ["a", "b"]
    assert column(select_runs(four, "f1:lang=de", where="`f1[lang=de]` is null"), "run") == ["d"]


def test_where_unknown_name_lists_known(four) -> None:
    with pytest.raises(SpecError, match="unknown name 'lrate'"):
        select_runs(four, where="lrate > 1")


# -- the gate ------------------------------------------------------------------------------


def gate_frame() -> pl.DataFrame:
    return pl.DataFrame({"run": ["a", "b", "c"], "f1": [0.8, 0.65, None]})


def test_gate_passes_when_no_row_matches() -> None:
    frame = gate_frame().head(1)
    assert gate_error(frame, "f1 < 0.7", ["run"]) is None
    check_gate(frame, "f1 < 0.7", ["run"])


def test_gate_names_failing_and_undecided_rows() -> None:
    error = gate_error(gate_frame(), "f1 < 0.7", ["run"])
    assert isinstance(error, GateError) and error.exit_code == 3
    message = str(error)
    assert "holds for 2 of 3 rows" in message
    assert "b (f1=0.65)" in message
    assert "c (f1=null; undecided, a value is missing)" in message
    assert "a (" not in message


def test_gate_fails_on_no_rows_and_bad_condition() -> None:
    with pytest.raises(GateError, match="no rows to check"):
        check_gate(gate_frame().head(0), "f1 < 0.7", ["run"])
    with pytest.raises(SpecError, match="unknown name"):
        gate_error(gate_frame(), "f2 < 0.7", ["run"])


def test_gate_errors_name_the_gate_option() -> None:
    with pytest.raises(SpecError) as info:
        gate_error(gate_frame(), "nosuch > 1", ["run"])
    assert str(info.value) == (
        '--fail-if "nosuch > 1": unknown name \'nosuch\' at column 1; known: run, f1'
    )
    with pytest.raises(SpecError, match='^--gate "f1 <": expected a value at column 5$'):
        check_gate(gate_frame(), "f1 <", ["run"], option="--gate")


def test_gate_lists_at_most_five_rows() -> None:
    frame = pl.DataFrame({"run": [f"r{i}" for i in range(8)], "v": [float(i) for i in range(8)]})
    message = str(gate_error(frame, "v >= 0", ["run"]))
    assert "holds for 8 of 8 rows" in message and "and 3 more" in message
    assert "r4 (v=4)" in message and "r5" not in message

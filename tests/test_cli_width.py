"""Tables for people: fitted to the terminal's width, identifying columns whole, one
precision per column; --columns, --transpose and --precision on every table command."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import click
import polars as pl
import pytest
from click.testing import CliRunner, Result

from xpcli.cli import COMMANDS, cli
from xpcli.output import Terminal, View, number_formatter, table_renderable

TERMINAL = {"COLUMNS": "80", "LINES": "50", "XP_FORCE_TTY": "1", "NO_COLOR": "1"}


def _xp(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env or TERMINAL)


def _cells(stdout: str, column: int) -> list[str]:
    """The ``column``-th cell of each body row of a rich table (rows hold ``│``)."""
    return [line.split("│")[column].strip() for line in stdout.splitlines() if "│" in line]


def _fits(stdout: str, width: int = 80) -> None:
    lines = stdout.splitlines()[1:]  # the title line may be longer than the table
    assert lines and max(len(line.rstrip()) for line in lines) <= width, stdout


@pytest.mark.parametrize("args, ids", [
    (["select"], 1),
    (["runs"], 1),
    (["group", "--by", "lr,seed"], 2),
    (["selection", "-s", "f1:lang=en@max,lms_score,min:loss:split=train@last",
      "-t", "f1:lang=*", "--exclude", "lang=en"], 3),
])
def test_tables_fit_80_columns_and_keep_identifying_columns_whole(
        sample_runs: Path, args: list[str], ids: int) -> None:
    result = _xp("--runs", str(sample_runs), *args)
    assert result.exit_code == 0, result.stderr
    _fits(result.stdout)
    assert not any("…" in cell for i in range(ids) for cell in _cells(result.stdout, i))
    full = _xp("--runs", str(sample_runs), *args, "--format", "csv", env={})
    rows = list(csv.reader(io.StringIO(full.stdout)))
    header, body = rows[0], rows[1:]
    shown = [[_cells(result.stdout, i)[k] for i in range(ids)] for k in range(len(body))]
    assert shown == [row[:ids] for row in body]  # the identifying cells, whole, in order
    shown_header = [h.strip() for h in result.stdout.splitlines()[1].split("┃")]
    notes = [line for line in result.stderr.splitlines() if "left out" in line]
    assert len(notes) == 1  # at 80 columns each of these leaves some out
    # One line on stderr names them and says how to see them.
    assert "choose with --columns, or see all with --format csv" in notes[0]
    named = re.match(r"xp: (\d+) columns? left out to fit the terminal: (.*?)(?: and \d+ "
                     r"more)?; choose", notes[0])
    assert named is not None, notes[0]
    assert not set(named.group(2).split(", ")) & set(shown_header)
    if args[0] != "group":  # group's terminal columns are not its CSV ones
        left_out = [h for h in header if h not in shown_header]
        assert int(named.group(1)) == len(left_out)
        assert named.group(2).split(", ") == left_out[:4]


def test_selection_at_80_columns_names_each_selector_in_full(sample_runs: Path) -> None:
    selectors = ["f1[lang=en]@max", "lms_score", "loss[split=train]"]
    result = _xp("--runs", str(sample_runs), "selection", "-s",
                 "f1:lang=en@max,lms_score,min:loss:split=train", "-t", "f1:lang=*",
                 "--exclude", "lang=en")
    assert result.exit_code == 0, result.stderr
    column = _cells(result.stdout, 0)
    assert sorted(set(column)) == sorted(selectors), column
    assert sorted(set(_cells(result.stdout, 1))) == [
        "f1[lang=de]", "f1[lang=es]", "f1[lang=nl]", "f1[lang=zh]", "mean(targets)"]


def test_a_wide_terminal_shows_everything_without_a_note(sample_runs: Path) -> None:
    result = _xp("--runs", str(sample_runs), "select", env={**TERMINAL, "COLUMNS": "250"})
    assert result.exit_code == 0
    assert "left out" not in result.stderr and "loss[split=train]" in result.stdout


def test_number_formatter_aligns_decimal_points_and_keeps_trailing_zeros() -> None:
    show = number_formatter([0.4994, 0.928, 0.5, None, float("nan")])
    assert [show(v) for v in (0.4994, 0.928, 0.5, None, float("nan"))] == [
        "0.4994", "0.9280", "0.5000", "", "NaN"]
    loss = number_formatter([1.3651, 0.092, 0.11243])  # 4 digits for the largest value
    assert [loss(v) for v in (1.3651, 0.092, 0.11243)] == ["1.365", "0.092", "0.112"]
    assert number_formatter([0.01, 0.01])(0.01) == "0.01"  # no zeros nothing needs
    lr = number_formatter([1e-6, 3e-6, 1e-5])
    assert [lr(v) for v in (1e-6, 3e-6, 1e-5)] == ["1e-6", "3e-6", "1e-5"]
    mixed = number_formatter([1.5e-6, 3e-6])
    assert [mixed(v) for v in (1.5e-6, 3e-6)] == ["1.5e-6", "3.0e-6"]
    assert number_formatter([60.0, 2.0])(60.0) == "60"  # whole numbers: no decimals
    # The smallest value keeps two significant digits (up to 3 more decimals) ...
    assert [number_formatter([1461.3, 2.05])(v) for v in (1461.3, 2.05)] == ["1461.3", "2.0"]
    assert number_formatter([12.5, 0.0004])(0.0004) == "0.0004"
    # ... and one that would still read as 0 is shown scientific, alone.
    p_values = number_formatter([0.0355, 1.5e-30, 0.0])
    assert [p_values(v) for v in (0.0355, 1.5e-30, 0.0)] == ["0.03550", "1.5e-30", "0.00000"]
    assert number_formatter([0.123456], digits=2)(0.123456) == "0.12"


def test_table_columns_of_one_precision_line_up(sample_runs: Path) -> None:
    result = _xp("--runs", str(sample_runs), "select", "-m", "f1:lang=en", "--top", "40",
                 "--columns", "run,f1[lang=en]")
    assert result.exit_code == 0, result.stderr
    values = _cells(result.stdout, 1)
    assert len(values) == 40 and all(re.fullmatch(r"0\.\d{4}", v) for v in values), values
    ends = {line.index(v) + len(v) for line, v in zip(
        [x for x in result.stdout.splitlines() if "│" in x], values)}
    assert len(ends) == 1  # right-aligned with four decimals: the points line up


def test_group_csv_has_one_lr_notation_and_full_precision_unless_asked(sample_runs: Path) -> None:
    args = ["--runs", str(sample_runs), "group", "--by", "lr", "-m", "f1:lang=de",
            "--format", "csv"]
    rows = list(csv.DictReader(io.StringIO(_xp(*args, env={}).stdout)))
    assert [r["lr"] for r in rows] == ["1e-6", "3e-6", "1e-5", "3e-5", "1e-4", "3e-4"]
    medians = [r["median(f1[lang=de])"] for r in rows]
    # The median of lr 3e-6 is the float 0.6790499999999999 (a mean of two 4-digit
    # values, 0.6786 and 0.6795 in the run files): machine formats write 15 significant
    # digits by default, 0.67905; --precision 17 writes the exact float.
    assert medians[1] == "0.67905"
    exact = list(csv.DictReader(io.StringIO(_xp(*args, "--precision", "17", env={}).stdout)))
    assert exact[1]["median(f1[lang=de])"] == repr((0.6786 + 0.6795) / 2)
    assert exact[1]["median(f1[lang=de])"] == "0.6790499999999999"
    assert [r["lr"] for r in exact] == [r["lr"] for r in rows]
    assert [float(r["median(f1[lang=de])"]) for r in exact] == pytest.approx(
        [float(m) for m in medians], rel=1e-14)
    three = list(csv.DictReader(io.StringIO(_xp(*args, "--precision", "3", env={}).stdout)))
    assert three[1]["median(f1[lang=de])"] == "0.679"
    table = _xp(*args[:-2], "--precision", "2", "--format", "table")
    assert "0.68 [0.64, 0.72]" in table.stdout


def test_columns_picks_and_orders_and_hints(sample_runs: Path) -> None:
    result = _xp("--runs", str(sample_runs), "select", "--top", "2", "--columns",
                 "lms_score,run", "--columns", "lr", "--format", "csv", env={})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "lms_score,run,lr"
    result = _xp("--runs", str(sample_runs), "select", "--columns", "run,f1[lang=dee]")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --columns: unknown column 'f1[lang=dee]'; did you mean 'f1[lang=de]'?")


def test_every_table_command_takes_the_view_options() -> None:
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        options = {o for p in command.params for o in getattr(p, "opts", [])}
        if "--format" in options and name != "tail":  # tail streams points, no table
            assert {"--columns", "--transpose", "--precision"} <= options, name


def test_one_row_table_too_wide_is_shown_transposed(sample_runs: Path) -> None:
    result = _xp("--runs", str(sample_runs), "select", "--best", "f1:lang=en@max")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split("┃")[1].strip() == "lr3e-5-s05"  # the run heads the column
    names = [line.split("│")[0].strip() for line in lines if "│" in line]
    assert names[:3] == ["lr", "seed", "f1[lang=de]"] and "loss[split=train]" in names
    assert "left out" not in result.stderr
    _fits(result.stdout)


def test_transpose_on_markdown_and_refused_for_machine_formats(sample_runs: Path) -> None:
    base = ["--runs", str(sample_runs), "select", "--best", "f1:lang=en@max", "-m",
            "f1:lang=en@max", "--transpose"]
    result = _xp(*base, "--format", "markdown", env={})
    assert result.stdout.splitlines()[2:5] == [
        "| column | lr3e-5-s05 |", "|:---|---:|", "| lr | 3e-5 |"]
    result = _xp(*base, "--format", "csv", env={})
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --transpose is for tables and markdown; --format csv keeps one record per row")


def test_renderable_never_cuts_identifying_or_number_columns() -> None:
    frame = pl.DataFrame({"run": ["a-very-long-run-identifier-number-one", "b"],
                          "note": ["x" * 60, "y"], "value": [123456.5, 0.25],
                          "other": ["z" * 40, "w"]})
    shown = table_renderable(frame, None, Terminal(is_tty=True, width=70, color=False))
    assert shown.dropped == ["other"]
    out = io.StringIO()
    from xpcli.output import console

    console(out, Terminal(is_tty=True, width=70, color=False), shown.width).print(shown.table)
    text = out.getvalue()
    assert "a-very-long-run-identifier-number-one" in text and "123456.5" in text
    assert "xxxx…" in text and max(len(line.rstrip()) for line in text.splitlines()) <= 70
    keyed = table_renderable(frame, None, Terminal(is_tty=True, width=70, color=False),
                             keys=["note"], view=View(columns=("note", "run")))
    assert keyed.dropped == [] and keyed.width >= 60 + 3 + 37


def test_columns_with_one_value_in_every_row_are_left_out_first() -> None:
    frame = pl.DataFrame({"run": ["a", "b"], "model": ["xlm-r-base"] * 2,
                          "lr": [1e-5, 3e-5], "status": ["finished"] * 2,
                          "f1": [0.5, 0.75], "loss": [1.25, 0.5]})
    term = Terminal(is_tty=True, width=30, color=False)
    shown = table_renderable(frame, None, term)
    assert shown.dropped == ["model", "status"]  # in table order, the constant ones
    narrower = table_renderable(frame, None, Terminal(is_tty=True, width=20, color=False))
    assert narrower.dropped == ["model", "status", "loss"]  # then from the right


def test_where_filters_runs_by_tag(tmp_path: Path) -> None:
    from xpcli import Run

    for name, tags in (("a", ["ner", "baseline"]), ("b", ["pos"]), ("c", None), ("d", [])):
        meta = {"tags": tags} if tags is not None else {}
        with Run(tmp_path, name, params={"lr": 0.1}, meta=meta, flush_seconds=0) as run:
            run.track(1.0, "loss", step=0)

    def runs(where: str) -> Result:
        return _xp("--runs", str(tmp_path), "runs", "--where", where, "--format", "csv",
                   env={})

    def ids(where: str) -> list[str]:
        result = runs(where)
        assert result.exit_code == 0, result.stderr
        return [row["run"] for row in csv.DictReader(io.StringIO(result.stdout))]

    assert ids("'ner' in tags") == ["a"]
    assert ids("tags contains 'pos' or 'baseline' in tags") == ["a", "b"]
    assert ids("'ner' not in tags") == ["b", "d"]  # c has no tags: null, dropped
    result = runs("'ner' in run")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --where \"'ner' in run\": run holds 'a', not a list: 'in' needs a list "
        "column (such as tags); to compare the value, write run == 'ner'")
    for where in ("tags == 'ner'", "tags in ('ner')"):  # would match nothing: refused
        result = runs(where)
        assert result.exit_code == 2
        assert result.stderr.strip().endswith(
            "tags holds lists; test membership: 'ner' in tags")
    assert ids("tags == '[]'") == ["d"]  # a list written as text still compares as text

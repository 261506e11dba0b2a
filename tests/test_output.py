"""Output formats on a small frame with a float, NaN, null, a datetime and awkward strings."""

from __future__ import annotations

import datetime as dt
import io
import json

import polars as pl
import pytest

from xpcli.errors import UsageError
from xpcli.output import Terminal, emit, format_number, resolve_format, terminal

UTC = dt.UTC


@pytest.fixture
def frame() -> pl.DataFrame:
    return pl.DataFrame({
        "run": ["a", "b", "c"],
        "x": [0.123456789, float("nan"), None],
        "n": [1, None, 3],
        "t": [dt.datetime(2026, 1, 1, tzinfo=UTC), None,
              dt.datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)],
        "s": ["a,b|c", 'x"y', None],
    }).with_columns(pl.col("t").dt.cast_time_unit("us"))


@pytest.fixture(autouse=True)
def _no_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XP_FORCE_TTY", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "100")


def render(frame: pl.DataFrame, fmt: str, title: str | None = None) -> str:
    out = io.StringIO()
    emit(frame, fmt, out, title=title)
    return out.getvalue()


def test_csv(frame: pl.DataFrame) -> None:
    assert render(frame, "csv") == (
        "run,x,n,t,s\n"
        'a,0.123456789,1,2026-01-01T00:00:00Z,"a,b|c"\n'
        'b,NaN,,,"x""y"\n'
        "c,,3,2026-01-02T03:04:05.500Z,\n"
    )


def test_tsv(frame: pl.DataFrame) -> None:
    assert render(frame, "tsv") == (
        "run\tx\tn\tt\ts\n"
        "a\t0.123456789\t1\t2026-01-01T00:00:00Z\ta,b|c\n"
        'b\tNaN\t\t\t"x""y"\n'
        "c\t\t3\t2026-01-02T03:04:05.500Z\t\n"
    )


def test_jsonl(frame: pl.DataFrame) -> None:
    text = render(frame, "jsonl")
    assert text == (
        '{"run": "a", "x": 0.123456789, "n": 1, "t": "2026-01-01T00:00:00Z", "s": "a,b|c"}\n'
        '{"run": "b", "x": null, "n": null, "t": null, "s": "x\\"y"}\n'
        '{"run": "c", "x": null, "n": 3, "t": "2026-01-02T03:04:05.500000Z", "s": null}\n'
    )
    assert [json.loads(line)["s"] for line in text.splitlines()] == ["a,b|c", 'x"y', None]


def test_json(frame: pl.DataFrame) -> None:
    text = render(frame, "json")
    rows = json.loads(text)
    assert rows == [json.loads(line) for line in render(frame, "jsonl").splitlines()]
    assert text.startswith('[\n  {"run": "a"') and text.endswith("}\n]\n")
    assert render(frame.head(0), "json") == "[]\n"


def test_json_infinities() -> None:
    text = render(pl.DataFrame({"v": [float("inf"), -float("inf"), 1e-300]}), "jsonl")
    assert text == '{"v": "Infinity"}\n{"v": "-Infinity"}\n{"v": 1e-300}\n'


def test_markdown(frame: pl.DataFrame) -> None:
    assert render(frame, "markdown", title="T") == (
        "**T**\n\n"
        "| run | x | n | t | s |\n"
        "|:---|---:|---:|:---|:---|\n"
        "| a | 0.1235 | 1 | 2026-01-01 00:00:00 | a,b\\|c |\n"
        '| b | NaN |  |  | x"y |\n'
        "| c |  | 3 | 2026-01-02 03:04:05 |  |\n"
    )


def test_table(frame: pl.DataFrame) -> None:
    text = render(frame, "table", title="T")
    lines = [line.rstrip() for line in text.splitlines()]
    assert lines[0].strip() == "T"
    assert lines[1:] == [
        "run ┃      x ┃ n ┃ t                   ┃ s",
        "━━━━╇━━━━━━━━╇━━━╇━━━━━━━━━━━━━━━━━━━━━╇━━━━━━",
        "a   │ 0.1235 │ 1 │ 2026-01-01 00:00:00 │ a,b|c",
        'b   │    NaN │   │                     │ x"y',
        "c   │        │ 3 │ 2026-01-02 03:04:05 │",
    ]
    assert "\x1b[" not in text  # not a terminal: no colour codes


def test_parquet(frame: pl.DataFrame) -> None:
    out = io.BytesIO()
    emit(frame, "parquet", out)
    back = pl.read_parquet(io.BytesIO(out.getvalue()))
    assert back.equals(frame)


def test_auto_is_csv_in_a_pipe_and_table_on_a_terminal(frame: pl.DataFrame,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert render(frame, "auto") == render(frame, "csv")
    monkeypatch.setenv("XP_FORCE_TTY", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    assert render(frame, "auto") == render(frame, "table")
    assert "┃" in render(frame, "auto")
    with pytest.raises(UsageError, match="binary"):
        emit(frame, "parquet", io.BytesIO())


def test_no_color(frame: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XP_FORCE_TTY", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    assert terminal(io.StringIO()).color
    assert "\x1b[" in render(frame, "table")
    monkeypatch.setenv("NO_COLOR", "1")
    assert not terminal(io.StringIO()).color
    assert "\x1b[" not in render(frame, "table")


def test_resolve_format() -> None:
    tty = Terminal(is_tty=True, width=80, color=False)
    pipe = Terminal(is_tty=False, width=80, color=False)
    assert resolve_format("auto", tty) == "table"
    assert resolve_format("auto", pipe) == "csv"
    assert resolve_format("json", tty) == "json"
    with pytest.raises(UsageError, match="unknown format"):
        resolve_format("xml", pipe)


@pytest.mark.parametrize(
    "value, text",
    [(None, ""), (True, "true"), (float("nan"), "NaN"), (float("inf"), "inf"),
     (-float("inf"), "-inf"), (0.0, "0"), (0.123456, "0.1235"), (12.5, "12.5"),
     (1e-5, "1e-5"), (3e-4, "3e-4"), (1234567.0, "1.235e6"), (42, "42")],
)
def test_format_number(value: object, text: str) -> None:
    assert format_number(value) == text


def test_list_columns_as_json(frame: pl.DataFrame) -> None:
    listed = pl.DataFrame({"tags": [["a", "b"], []]})
    assert render(listed, "csv") == 'tags\n"[""a"", ""b""]"\n[]\n'
    assert render(listed, "jsonl") == '{"tags": ["a", "b"]}\n{"tags": []}\n'

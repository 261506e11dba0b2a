"""Output formats on a small frame with a float, NaN, null, a datetime and awkward strings."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import numpy as np
import polars as pl
import pytest
from conftest import raw_controls

from xpcli.errors import UsageError
from xpcli.output import (
    Terminal,
    emit,
    format_number,
    resolve_format,
    terminal,
    write_csv,
    write_json,
    write_jsonl,
)

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


# -- hostile text: terminals, Markdown, spreadsheets -------------------------------------

HOSTILE = {
    "csi": "\x1b[2J\x1b[Hcleared",
    "osc8": "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "title": "\x1b]0;pwned\x07",
    "bidi": "abc\u202egnp.exe",
    "c1": "x\x9b31mred",
    "cr": "line1\rline2\nline3\ttab",
    "zero": "a\u200bb\ufeff",
}


def test_visible_escapes_controls_and_bidi_and_keeps_the_rest() -> None:
    from xpcli.text import visible

    assert visible("f1[lang=de] é 中 😀 a b") == "f1[lang=de] é 中 😀 a b"
    assert visible("\x1b[2J") == "\\x1b[2J"
    assert visible("a\u202eb") == "a\\u202eb"
    assert visible("a\r\n\tb\x00\x7f\x9b") == "a\\r\\n\\tb\\x00\\x7f\\x9b"
    assert visible("bad\udcff") == "bad\\udcff"
    assert visible("tag\U000e0041") == "tag\\U000e0041"
    for text in HOSTILE.values():
        assert not raw_controls(visible(text))


@pytest.mark.parametrize("width", [40, 200])
def test_table_shows_control_and_bidi_characters_visibly(width: int) -> None:
    frame = pl.DataFrame({"run\x1b[31m": list(HOSTILE), "value": list(HOSTILE.values())})
    out = io.StringIO()
    from xpcli.output import write_table

    write_table(frame, out, title="runs \x1b]0;t\x07",
                term=Terminal(is_tty=True, width=width, color=False))
    text = out.getvalue()
    assert not raw_controls(text), raw_controls(text)
    assert "run\\x1b[31m" in text and "runs \\x1b]0;t\\x07" in text
    if width == 200:  # room for every cell in full
        assert "\\x1b]8;;http://evil.example/\\x1b\\click" in text
        assert "abc\\u202egnp.exe" in text and "line1\\rline2\\nline3\\ttab" in text


def test_markdown_escapes_html_links_images_pipes_and_line_breaks() -> None:
    cells = ["<img src=x onerror=alert(1)>", "![](http://t.example/p.png)",
             "[click](http://evil.example)", "a|b", "row\r| x |\nnext", "\x1b[2J",
             "&lt;b&gt;", "back\\|slash", "f1[lang=de]"]
    frame = pl.DataFrame({"run": [f"r{i}" for i in range(len(cells))], "note": cells})
    text = render(frame, "markdown", title="<b>t</b>")
    lines = text.splitlines()
    assert len(lines) == 2 + 2 + len(cells)  # title, blank, header, rule, one line per row
    assert lines[3] == "|:---|:---|"
    assert all(line.startswith("| ") and line.endswith(" |") for line in [lines[2], *lines[4:]])
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 3 for line in lines[2:])
    for bad in ("<img", "<b>", "![", "](", "\r", "\x1b"):
        assert bad not in text, bad
    rows = {line.split(" | ")[0][2:]: line.split(" | ", 1)[1][:-2] for line in lines[4:]}
    assert rows["r0"] == "&lt;img src=x onerror=alert(1)&gt;"
    assert rows["r1"] == "!\\[]\\(http://t.example/p.png)"
    assert rows["r2"] == "[click]\\(http://evil.example)"
    assert rows["r3"] == "a\\|b"
    assert rows["r4"] == "row\\\\r\\| x \\|\\\\nnext"
    assert rows["r6"] == "&amp;lt;b&amp;gt;"
    assert rows["r7"] == "back\\\\\\|slash"
    assert rows["r8"] == "f1[lang=de]"  # brackets alone are no link: left as they are
    assert "**&lt;b&gt;t&lt;/b&gt;**" in text


def test_csv_neutralises_formulas_and_keeps_numbers() -> None:
    cells = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx", "-0.5", "-1e-5", "+3",
             "plain", "=", "-", "- note"]
    frame = pl.DataFrame({"=head": cells, "n": list(range(len(cells)))})
    for fmt, sep in (("csv", ","), ("tsv", "\t")):
        out = io.StringIO()
        emit(frame, fmt, out)
        got = list(__import__("csv").reader(io.StringIO(out.getvalue()), delimiter=sep))
        assert got[0] == ["'=head", "n"]
        assert [row[0] for row in got[1:]] == [
            "'=1+2", "'+SUM(A1)", "'-2+3", "'@cmd", "'\tx", "'\rx", "-0.5", "-1e-5", "+3",
            "plain", "'=", "'-", "'- note"]
        raw = io.StringIO()
        emit(frame, fmt, raw, csv_raw=True)
        got = list(__import__("csv").reader(io.StringIO(raw.getvalue()), delimiter=sep))
        assert got[0] == ["=head", "n"] and [row[0] for row in got[1:]] == cells


def test_the_format_option_offers_exactly_the_formats_output_writes() -> None:
    from xpcli.commands._common import FORMAT_CHOICES
    from xpcli.output import FORMATS

    assert FORMAT_CHOICES == FORMATS  # two copies: --help must not import polars


def test_machine_floats_read_back_exactly_with_the_fewest_digits() -> None:
    import csv as csv_module

    rng = np.random.default_rng(7)
    values = [float(v) for v in rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000)]
    values += [0.1 + 0.2, 1e16, 5e-324, 1.7976931348623157e308, -0.0, 0.42464999999999997]
    frame = pl.DataFrame({"x": values, "tiny": [abs(v) % 1e-5 for v in values]})
    buf = io.StringIO()
    write_csv(frame, buf)
    rows = list(csv_module.DictReader(io.StringIO(buf.getvalue())))
    for column in ("x", "tiny"):
        texts = [row[column] for row in rows]
        originals = frame.get_column(column).to_list()
        assert [float(t) for t in texts] == originals  # full precision
        # no more significant digits than Python's shortest round-tripping repr
        def digits(text: str) -> int:
            mantissa = text.lower().split("e")[0].lstrip("-").replace(".", "")
            return len(mantissa.lstrip("0").rstrip("0"))
        assert all(digits(t) <= digits(repr(v)) for t, v in zip(texts, originals))
    json_buf = io.StringIO()
    write_jsonl(frame, json_buf)
    parsed = [json.loads(line) for line in json_buf.getvalue().splitlines()]
    assert [row["x"] for row in parsed] == values


def test_one_float_notation_per_column_in_csv_and_json() -> None:
    frame = pl.DataFrame({"lr": [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4],
                          "f1": [0.42464999999999997, 0.75675, 0.5, 2.0, 3.2e-05, 0.9]})
    buf = io.StringIO()
    write_csv(frame, buf)
    assert buf.getvalue().splitlines() == [
        "lr,f1", "1e-6,0.42464999999999997", "3e-6,0.75675", "1e-5,0.5", "3e-5,2.0",
        "1e-4,0.000032", "3e-4,0.9"]
    json_buf = io.StringIO()
    write_json(frame, json_buf)
    text = json_buf.getvalue()
    assert '{"lr": 1e-5, "f1": 0.5}' in text and '"f1": 0.000032}' in text
    assert [row["lr"] for row in json.loads(text)] == frame["lr"].to_list()


def test_durations_in_human_units_for_people_and_seconds_for_machines() -> None:
    frame = pl.DataFrame({"run": ["a", "b", "c"],
                          "elapsed": [dt.timedelta(hours=1, minutes=30, seconds=5.25),
                                      dt.timedelta(microseconds=1007), None]},
                         schema={"run": pl.String, "elapsed": pl.Duration("us")})
    out = io.StringIO()
    emit(frame, "csv", out)
    # 1 h 30 min 5.25 s = 3600 + 1800 + 5.25 s; 1007 us = 0.001007 s, to the last digit.
    assert out.getvalue() == "run,elapsed\na,5405.25\nb,0.001007\nc,\n"
    out = io.StringIO()
    emit(frame, "json", out)
    assert [row["elapsed"] for row in json.loads(out.getvalue())] == [5405.25, 0.001007, None]
    out = io.StringIO()
    emit(frame, "markdown", out)
    assert out.getvalue().splitlines()[1:] == ["|:---|---:|", "| a | 1h 30m |", "| b | 0s |",
                                               "| c |  |"]
    out = io.StringIO()
    emit(frame, "table", out)
    assert "1h 30m" in out.getvalue() and "5405" not in out.getvalue()
    out = io.BytesIO()
    emit(frame, "parquet", out)
    assert pl.read_parquet(io.BytesIO(out.getvalue())).schema["elapsed"] == pl.Duration("us")


def test_csv_rounding_writes_what_rounding_each_float_then_its_repr_writes() -> None:
    """CSV rounds float columns to N digits as it writes them; the text is what
    ``float(f"{v:.Ng}")`` and its repr give, in the column's notation, for every kind
    of double (tiny, huge, subnormal, the largest, -0, NaN, infinities, nulls)."""
    from decimal import Decimal

    def expected(value: float | None, digits: int, scientific: bool) -> str:
        if value is None:
            return ""
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        text = repr(float(f"{value:.{digits}g}") if value != 0 else value)
        if float(text) in (float("inf"), float("-inf")):
            return "inf" if float(text) > 0 else "-inf"
        number = Decimal(text)
        if scientific and number != 0:
            sign, ds, exponent = number.normalize().as_tuple()
            shown = "".join(map(str, ds))
            assert isinstance(exponent, int)
            mantissa = shown[0] + ("." + shown[1:] if len(shown) > 1 else "")
            return f"{'-' if sign else ''}{mantissa}e{exponent + len(shown) - 1}"
        if "e" in text or "E" in text:
            text = format(number, "f")
            return text if "." in text else text + ".0"
        return text

    rng = np.random.default_rng(11)
    mixed = [float(v) for v in rng.standard_normal(3000) * 10.0 ** rng.integers(-40, 40, 3000)]
    mixed += [0.1 + 0.2, 1e15, 9.999999999999999e15, 1e16, 1e-4, 9.9999999999999995e-5,
              5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 0.0, 3.0,
              float("nan"), float("inf"), float("-inf"), None, 0.42464999999999997]
    plain = [float(v) for v in rng.random(3000)] + [None, 0.0, 2.0, 0.99999999999999999]
    tiny = [float(v) for v in rng.random(3000) * 1e-3] + [3e-4, 1e-6, 0.5, None]
    for digits in (1, 3, 6, 15, 16, 17):
        for values in (mixed, plain, tiny):
            buf = io.StringIO()
            write_csv(pl.DataFrame({"x": values}, schema={"x": pl.Float64}), buf,
                      precision=digits)
            texts = buf.getvalue().splitlines()[1:]
            finite = [abs(float(f"{v:.{digits}g}")) for v in values
                      if v is not None and v == v and abs(v) != float("inf") and v != 0]
            sizes = [s for s in finite if s != float("inf")]
            scientific = bool(sizes) and (max(sizes) >= 1e16
                                          or (max(sizes) < 1 and min(sizes) < 1e-4))
            want = [expected(v, digits, scientific) for v in values]
            assert texts == want, digits
    buf = io.StringIO()
    write_csv(pl.DataFrame({"lr": [1e-6, 3.00000000000004e-5, None],
                            "f1": [0.6790499999999999, 12.0, 1.23456789e-5]}), buf, precision=15)
    assert buf.getvalue().splitlines() == ["lr,f1", "1e-6,0.67905", "3.00000000000004e-5,12.0",
                                           ",0.0000123456789"]

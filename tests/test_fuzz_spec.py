"""Fuzzing the metric-spec, ``--where`` and run-picker parsers with hostile text.

NUL bytes, lone surrogates (invalid UTF-8 in argv arrives so), huge numbers, deep nesting
and very long input: only :class:`SpecError` is ever raised, never a hang, and the message
says where the text broke (a column) or quotes the part it refuses. What parses compiles to
a Polars expression that evaluates.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import polars as pl
import pytest
from fuzz_helpers import fuzz_settings, no_hang
from hypothesis import given
from hypothesis import strategies as st

from xpcli.analysis.reduce import resolve_picker
from xpcli.errors import SpecError
from xpcli.spec import compile_where, parse_metric_specs, parse_picker

pytestmark = pytest.mark.slow  # the whole module: make test-fast leaves it out

PIECES = ["f1", "lang", "=", ":", "@", ",", "*", "?", "[", "]", "(", ")", "max", "at=",
          "at-max(", "at-min(", "step:", "epoch:", "and ", "or ", "not ", " in ", " is ",
          "null", "true", "`", "'", '"', "\\", "==", "!=", "<=", ">", "lr", "seed", "run",
          "\x00", "\udcff", "\ud800", "\u202e", "\n", "\t", "1e400", "-1e400", "1e-400",
          "9" * 30, "9" * 400, "NaN", "inf", "-0", "0x1f", "__import__('os')", "()",
          "__class__", "é", "日本", " "]


@st.composite
def hostile_text(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.text(max_size=300))
    if kind == 1:
        unit = draw(st.sampled_from(["(", "[", "not ", "at-max(", "`", "a", "9", "\x00"]))
        return unit * draw(st.sampled_from([10, 65, 1000, 5000])) + draw(st.text(max_size=5))
    return "".join(draw(st.lists(st.sampled_from(PIECES), max_size=40)))


def names_a_place(message: str, text: str) -> bool:
    """Does the message say where: a column, the input's size, or a quoted part of it?"""
    if not text.strip() or "column" in message or "characters long" in message:
        return True
    echoed = message.split(": ")[0].removeprefix("--where ").strip('"')
    if echoed and echoed in text:  # the item that failed, then why
        return True
    quoted = re.findall(r"'((?:[^'\\]|\\.)+)'|\"([^\"]+)\"", message)
    quoted = [a or b for a, b in quoted]
    return any(q.strip() and (q in text or q in repr(text)) for q in quoted)


SCHEMA = {"lr": pl.Float64, "seed": pl.Int64, "run": pl.String, "ok": pl.Boolean}
FRAME = pl.DataFrame({"lr": [1e-5, None, math.nan], "seed": [1, None, 3],
                      "run": ["a", None, "b"], "ok": [True, None, False]}, schema=SCHEMA)


@fuzz_settings(ci=150)
@given(text=hostile_text())
def test_where(text: str) -> None:
    with no_hang():
        try:
            expr = compile_where(text, SCHEMA)
        except SpecError as exc:
            assert str(exc).startswith("--where")
            assert names_a_place(str(exc), text), str(exc)
            return
        FRAME.filter(expr)


@fuzz_settings(ci=150)
@given(text=hostile_text())
def test_metric_specs(text: str) -> None:
    with no_hang():
        try:
            specs = parse_metric_specs(text)
        except SpecError as exc:
            assert names_a_place(str(exc), text), str(exc)
            return
    for spec in specs:
        assert spec.name


POINTS = pl.DataFrame({
    "run": ["a", "a", "b", "b"], "name": ["f1"] * 4, "lang": ["en", "de", "en", "de"],
    "step": [1, 1, 1, 1], "epoch": [1.0] * 4, "time": [1.0, 2.0, 3.0, 4.0],
    "value": [0.5, 0.7, math.nan, 0.2]})
RUNS = pl.DataFrame({"run": ["a", "b"]})


@fuzz_settings(ci=100)
@given(text=st.one_of(hostile_text(), hostile_text().map("best:".__add__),
                      hostile_text().map("worst:f1:lang=".__add__)))
def test_picker(text: str) -> None:
    with no_hang():
        try:
            parse_picker(text)
            picked = resolve_picker(text, RUNS.lazy(), POINTS.lazy())
        except SpecError as exc:
            assert names_a_place(str(exc), text) or "no run" in str(exc), str(exc)
            return
    assert picked in ("a", "b")


def test_invalid_utf8_in_a_metric_spec_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"byte 0xff is not valid UTF-8 at column 2"):
        parse_metric_specs("f\udcff")
    with pytest.raises(SpecError, match=r"^f1,f\ufffd: byte 0xff .* at column 5"):
        parse_metric_specs("f1,f\udcff")  # the column in the whole list


@pytest.mark.parametrize(("call", "start", "column"), [
    (lambda: compile_where('run == "a\udcff"', SCHEMA), '--where "run == "a\ufffd""', 10),
    (lambda: compile_where("`lr\udc80` > 1", SCHEMA), '--where "`lr\ufffd` > 1"', 4),
    (lambda: parse_picker("best:f1:lang=\udce9"), "best:f1:lang=\ufffd", 14),
    (lambda: parse_picker("run\udcff"), "run\ufffd", 4),
    (lambda: resolve_picker("a\udcff", RUNS.lazy(), POINTS.lazy()), "a\ufffd", 2),
    (lambda: parse_metric_specs("f1@at-max(f1:lang=\ud800)"), "f1@at-max(f1:lang=\ufffd)", 19),
])
def test_invalid_utf8_in_where_and_pickers_is_a_spec_error(call: Callable[[], object],
                                                          start: str, column: int) -> None:
    with pytest.raises(SpecError) as info:
        call()
    message = str(info.value)
    assert message.startswith(start + ": "), message
    assert f"at column {column} (pass UTF-8 text)" in message
    message.encode("utf-8")  # printable: no lone surrogate left in it


def test_valid_non_ascii_text_still_parses() -> None:
    assert parse_metric_specs("f1:lang=é")[0].context == (("lang", "é"),)
    FRAME.filter(compile_where('run == "日本"', SCHEMA))


# -- globs in linear time ----------------------------------------------------------------

#: One value of 306 characters on which a regex with one ``.*`` per star backtracks for
#: minutes: every way to place five ``a`` pieces is tried before failing on ``b``.
LONG_PATH = "a" * 305 + "c"
PATHS = pl.DataFrame({"run": ["r"] * 3, "name": ["f1"] * 3, "path": [LONG_PATH, "xay", "b"],
                      "step": [1] * 3, "epoch": [1.0] * 3, "time": [1.0] * 3,
                      "value": [0.1, 0.2, 0.3]})


def test_a_hostile_glob_answers() -> None:
    """Waits for the answer (no_hang only turns a hang into a failure)."""
    from xpcli.spec import expand

    with no_hang(), pytest.raises(SpecError, match=r"no point of 'f1' has path=\*a\*a"):
        expand(parse_metric_specs("f1:path=*a*a*a*a*a*b"), PATHS)
    with no_hang():
        (column,) = expand(parse_metric_specs("f1:path=*a*a*a*a*a*c"), PATHS)
    assert column.context == (("path", LONG_PATH),)
    with no_hang():
        columns = expand(parse_metric_specs("f1:path=*a*"), PATHS)
    assert [c.context for c in columns] == [(("path", LONG_PATH),), (("path", "xay"),)]


def test_a_hostile_glob_answers_through_the_command(tmp_path) -> None:  # noqa: ANN001
    from click.testing import CliRunner

    from xpcli import Run
    from xpcli.cli import cli

    with Run(tmp_path, "r", flush_seconds=0) as run:
        run.track(0.5, "f1", step=1, context={"path": LONG_PATH})
    with no_hang():
        result = CliRunner().invoke(cli, ["select", "--runs", str(tmp_path), "-m",
                                          "f1:path=*a*a*a*a*a*b", "--format", "csv"])
    assert result.exit_code == 2
    assert "no point of 'f1' has path=*a*a*a*a*a*b" in result.stderr

"""Every tabular output format, in one place: one dispatcher, one small function each.

Formats: ``table`` (rich, for people), ``csv``, ``tsv``, ``json`` (an array of objects),
``jsonl``, ``markdown`` (GitHub tables, for CI step summaries) and ``parquet``. ``auto``
is ``table`` on a terminal and ``csv`` in a pipe. CSV, TSV, JSON and JSONL write floats
to 15 significant digits (:data:`MACHINE_DIGITS`; ``--precision 17`` is exact), Parquet
exactly; ``table`` and ``markdown`` round further, for display. A Duration column (``elapsed``)
is shown in human units (``1h 30m``) by ``table`` and ``markdown`` and written as seconds
by ``csv``, ``tsv``, ``json`` and ``jsonl``; ``parquet`` keeps the Duration.

Text in cells comes from files anyone may write, so each format makes it inert for its
reader: ``table`` and ``markdown`` show control and bidi characters as escapes
(:func:`xpcli.text.visible`), ``markdown`` also escapes HTML, pipes and link/image syntax,
and ``csv``/``tsv`` put a ``'`` before a cell a spreadsheet would run as a formula
(unless ``csv_raw``). JSON, JSONL and Parquet carry the text exactly.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

import polars as pl

from .errors import UsageError
from .liveness import human_duration
from .text import visible

FORMATS = ("auto", "table", "csv", "tsv", "json", "jsonl", "markdown", "parquet")


@dataclass
class Terminal:
    """What the output looks like: TTY or pipe, width, colour. Tests override it."""

    is_tty: bool
    width: int
    color: bool
    height: int = 24


def terminal(stream: IO[Any] | None = None) -> Terminal:
    """The one place that detects a terminal (``XP_FORCE_TTY=1`` forces one, for tests)."""
    stream = stream if stream is not None else sys.stdout
    forced = os.environ.get("XP_FORCE_TTY")
    is_tty = forced == "1" if forced in ("0", "1") else bool(
        getattr(stream, "isatty", lambda: False)()
    )
    size = shutil.get_terminal_size((120, 24))
    color = is_tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
    return Terminal(is_tty=is_tty, width=size.columns, color=color, height=size.lines)


def resolve_format(fmt: str, term: Terminal | None = None) -> str:
    """``auto`` becomes ``table`` on a terminal and ``csv`` otherwise."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt != "auto":
        return fmt
    term = term or terminal()
    return "table" if term.is_tty else "csv"


def format_number(value: Any, digits: int = 4) -> str:
    """A float for people: 4 significant digits, scientific for tiny/huge values."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == 0:
            return "0"
        magnitude = abs(value)
        if magnitude < 1e-3 or magnitude >= 1e6:
            mantissa, exponent = f"{value:.{max(digits - 1, 1)}e}".split("e")
            if "." in mantissa:
                mantissa = mantissa.rstrip("0").rstrip(".")
            return f"{mantissa}e{int(exponent)}"
        text = f"{value:.{digits}g}"
        if "e" in text:
            text = f"{value:.0f}"
        return text
    return str(value)


DISPLAY_DIGITS = 4  # significant digits of a column's largest value, on a terminal


def _special(value: Any) -> str | None:
    """The text of a value no column rule applies to (null, bool, NaN, inf), else None."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, float) and not math.isfinite(value):
        return format_number(value)
    return None


def number_formatter(values: Any, digits: int | None = None) -> Callable[[Any], str]:
    """How a column of floats is shown to people: one rule for the whole column, chosen
    from its values, so decimal points line up and trailing zeros stay (``0.9280`` under
    ``0.4994``). ``digits`` (default 4, ``--precision``) significant digits go to the
    column's largest value and the others get as many decimals; a column of tiny values
    only (< 1e-3, a learning rate) or of huge ones (>= 1e6) is scientific with one
    mantissa length (``1e-6``, ``3e-5``); a column of whole numbers has no decimals."""
    digits = DISPLAY_DIGITS if digits is None else max(int(digits), 1)
    sizes = [abs(float(v)) for v in values if _special(v) is None and v != 0]
    if not sizes:
        return lambda v: _special(v) or "0"
    top, low = max(sizes), min(sizes)
    if top >= 1e6 or top < 1e-3:
        mantissa = 0
        for size in sizes:
            text = f"{size:.{digits - 1}e}".split("e")[0].rstrip("0").rstrip(".")
            mantissa = max(mantissa, len(text.split(".")[1]) if "." in text else 0)

        def scientific(value: Any) -> str:
            special = _special(value)
            if special is not None:
                return special
            if value == 0:
                return "0"
            head, exponent = f"{float(value):.{mantissa}e}".split("e")
            return f"{head}e{int(exponent)}"

        return scientific
    if all(float(v).is_integer() for v in values if _special(v) is None) and top < 1e15:
        decimals = 0
    else:
        # As many decimals as the values need at ``digits`` significant digits, and no
        # more than the largest value's (0.01 stays 0.01; 1.365 and 0.0804 give 1.365
        # and 0.080) ...
        decimals = max(digits - 1 - math.floor(math.log10(top)), 0)
        needed = 0
        for size in sizes:
            text = f"{size:.{digits}g}"
            if "e" not in text and "." in text:
                needed = max(needed, len(text.split(".")[1].rstrip("0")))
            elif "e" in text:
                needed = decimals
        decimals = min(decimals, needed)
        # ... but the smallest value keeps two significant digits, with up to 3 more
        # decimals (an F of 1461.3 beside one of 2.1, not 2).
        two = max(min(2, digits) - 1 - math.floor(math.log10(low)), 0)
        smallest = next((k for k in range(two) if round(low, k) == low), two)  # 0.01: 2
        if smallest <= decimals + 3:
            decimals = max(decimals, smallest)
    # A value that would still read as 0 (a p-value of 1e-30 under 0.035) is shown
    # scientific, alone: no decimal point to line up beats a wrong 0.
    tiny = 0.5 * 10.0 ** -decimals

    def positional(value: Any) -> str:
        special = _special(value)
        if special is not None:
            return special
        if value != 0 and abs(float(value)) < tiny:
            return format_number(float(value), digits)
        return f"{float(value):.{decimals}f}"

    return positional


_NUMBER_TEXT = re.compile(r"[-+]?(\d|inf|nan|NaN|n/a)")


def _display_rows(frame: pl.DataFrame, digits: int | None = None,
                  ) -> tuple[list[str], list[bool], list[list[str]]]:
    names = frame.columns
    floats = {i: number_formatter(frame.get_column(name).to_list(), digits)
              for i, name in enumerate(names) if frame.schema[name].is_float()}
    numeric = [frame.schema[n].is_numeric() or isinstance(frame.schema[n], pl.Duration)
               for n in names]
    for i, name in enumerate(names):  # text cells that hold numbers ("0.74 [0.7, 0.8]")
        if frame.schema[name] == pl.String and frame.height:
            cells = frame.get_column(name).drop_nulls()
            numeric[i] = cells.len() > 0 and all(
                _NUMBER_TEXT.match(c) is not None for c in cells.to_list())
    rows: list[list[str]] = []
    for row in frame.iter_rows():
        texts: list[str] = []
        for i, value in enumerate(row):
            if i in floats:
                texts.append(floats[i](value))
            elif isinstance(value, (float, bool)) or value is None:
                texts.append(format_number(value))
            elif isinstance(value, (list, dict)):
                texts.append(visible(json.dumps(value, default=str, ensure_ascii=False)))
            elif isinstance(value, dt.timedelta):
                texts.append(human_duration(value.total_seconds()))
            elif hasattr(value, "strftime") and hasattr(value, "hour"):
                texts.append(value.strftime("%Y-%m-%d %H:%M:%S"))
            else:
                texts.append(visible(str(value)))
        rows.append(texts)
    return [visible(name) for name in names], numeric, rows


def _machine_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested or list columns as JSON text, durations as seconds: what CSV can carry."""
    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Duration):
            # Seconds divided one by one: Polars divides a column by a constant through
            # its reciprocal, which is one unit in the last place off (0.0010069999...).
            exprs.append(pl.col(name).dt.total_microseconds().map_batches(
                lambda us: pl.Series([None if v is None else v / 1e6 for v in us.to_list()],
                                     dtype=pl.Float64), return_dtype=pl.Float64))
        elif isinstance(dtype, (pl.List, pl.Array, pl.Struct)):
            exprs.append(pl.col(name).map_elements(
                lambda v: json.dumps(v if not isinstance(v, pl.Series) else v.to_list(),
                                     default=str),
                return_dtype=pl.String))
        else:
            exprs.append(pl.col(name))
    return frame.select(exprs)


#: Columns that say which row is which: never cut short, never dropped to fit the width
#: (a command adds its own, such as group keys).
ID_COLUMNS = ("run", "selector", "target")
#: The narrowest a text column that is not an identifying one is cut to, to fit.
TEXT_MIN = 12
GAP = 3  # " │ " between two columns
_SPARK = set("▁▂▃▄▅▆▇█ ")  # a sparkline, which means nothing cut short


@dataclass(frozen=True)
class View:
    """How a table is shown (the shared options): only ``columns``, in that order
    (``--columns``); ``transpose``: one line per column (``--transpose``); ``precision``:
    floats to that many significant digits (``--precision``; tables default to 4,
    machine formats to every digit)."""

    columns: tuple[str, ...] | None = None
    transpose: bool = False
    precision: int | None = None


@dataclass
class Rendered:
    """A rich Table, the console width it needs, and the columns left out to fit."""

    table: Any
    width: int
    dropped: list[str]


def pick_columns(frame: pl.DataFrame, columns: Any) -> pl.DataFrame:
    """``frame`` with only ``columns``, in that order; an unknown name is a usage error
    with the closest known one (``--columns: unknown column 'f1[lang=dee]'; did you
    mean 'f1[lang=de]'?``)."""
    if not columns:
        return frame
    from .errors import unknown_name

    for name in columns:
        if name not in frame.columns:
            raise unknown_name("--columns", "column", name, frame.columns)
    return frame.select(list(dict.fromkeys(columns)))


def _grid(frame: pl.DataFrame, keys: Any, view: View,
          ) -> tuple[list[str], list[bool], list[list[str]], set[int]]:
    """The cells people see (names, right-aligned or not, rows, identifying columns),
    transposed when asked: one row per column, one column per row, headed by the row's
    identifying values (``row N`` when it has none)."""
    frame = pick_columns(frame, view.columns)
    names, numeric, rows = _display_rows(frame, view.precision)
    ids = {i for i, name in enumerate(frame.columns) if name in ID_COLUMNS or name in keys}
    if not view.transpose:
        return names, numeric, rows, ids
    return (*_transposed(names, rows, ids), {0})


def _transposed(names: list[str], rows: list[list[str]], ids: set[int],
                ) -> tuple[list[str], list[bool], list[list[str]]]:
    order = sorted(ids)
    headers = ["column"] + [" ".join(cells[i] for i in order) if order else f"row {k + 1}"
                            for k, cells in enumerate(rows)]
    body = [[name, *(cells[j] for cells in rows)] for j, name in enumerate(names)
            if j not in ids]
    return headers, [False] + [True] * len(rows), body


def table_renderable(frame: pl.DataFrame, title: str | None = None,
                     term: Terminal | None = None, keys: Any = (),
                     view: View | None = None) -> Rendered:
    """The rich Table :func:`write_table` prints, fitted to the terminal's width.

    Identifying columns (:data:`ID_COLUMNS` and ``keys``) are never cut; numbers and
    timestamps are never cut either (``144000`` cut to ``1440…`` reads as another
    number). Other text columns shrink to :data:`TEXT_MIN` characters; if the table is
    still too wide, columns are left out from the right, those that hold one value in
    every row first (``dropped`` names them). A
    one-row table that does not fit is shown transposed instead, one line per column.
    """
    from rich.table import Table
    from rich.text import Text

    term = term or terminal()
    view = view or View()
    names, numeric, rows, ids = _grid(frame, keys, view)
    if not view.transpose:
        atomic = [numeric[i] or frame.schema[n] != pl.String
                  or all(set(cells[i]) <= _SPARK for cells in rows)
                  for i, n in enumerate(pick_columns(frame, view.columns).columns)]
    else:
        atomic = list(numeric)
    natural = [max([len(name), *(len(cells[i]) for cells in rows)])
               for i, name in enumerate(names)]
    width = max(term.width, 20)

    def need(kept: list[int], widths: list[int]) -> int:
        return sum(widths[i] for i in kept) + GAP * max(len(kept) - 1, 0)

    everything = list(range(len(names)))
    if (not view.transpose and len(rows) == 1 and len(names) > 2
            and need(everything, natural) > width):
        return table_renderable(frame, title, term, keys,
                                View(view.columns, True, view.precision))
    least = [n if atomic[i] or i in ids else min(n, TEXT_MIN) for i, n in enumerate(natural)]
    kept, dropped = list(everything), list[str]()
    # Columns holding one value in every row tell the rows apart least: they go first.
    same = [i for i in everything if len(rows) > 1 and len({c[i] for c in rows}) == 1]
    while need(kept, least) > width:
        others = [i for i in kept if i not in ids]
        if len(others) <= 1:  # the identifying columns and one more, however wide
            break
        last = ([i for i in others if i in same] or others)[-1]
        kept.remove(last)
        dropped.append(names[last])
    dropped.sort(key=names.index)
    widths = list(least)
    room = width - need(kept, least)
    for i in kept:  # shrunk columns get back what room is left, left to right
        extra = min(max(room, 0), natural[i] - least[i])
        widths[i] += extra
        room -= extra
    title = visible(title) if title else title
    # A title is never wrapped: a line longer than the table beats a title cut in two.
    table = Table(title=Text(title, no_wrap=True, overflow="ignore") if title else None,
                  show_edge=False, header_style="bold", pad_edge=False)
    for i in kept:
        table.add_column(Text(names[i]), justify="right" if numeric[i] else "left",
                         no_wrap=True, overflow="ellipsis", width=widths[i])
    for cells in rows:
        table.add_row(*(Text(cells[i]) for i in kept))  # never rich markup
    # The title line may be longer than the table: the terminal wraps it, uncut.
    return Rendered(table, max(width, need(kept, widths), len(title or "")), dropped)


def console(out: IO[str], term: Terminal, width: int, live: bool = False) -> Any:
    """A rich Console on ``out`` as ``term`` says (colour or not), ``width`` wide, that
    never reads markup or highlights: what every table is printed with. ``live``: it
    moves the cursor to redraw (``--watch`` on a terminal), with or without colour."""
    from rich.console import Console

    return Console(file=out, width=width, color_system="auto" if term.color else None,
                   force_terminal=term.color or live, no_color=not term.color,
                   highlight=False, soft_wrap=False, markup=False)


def write_table(frame: pl.DataFrame, out: IO[str], title: str | None = None,
                term: Terminal | None = None, keys: Any = (),
                view: View | None = None) -> list[str]:
    """A rich table fitted to the terminal (:func:`table_renderable`): numbers
    right-aligned, one precision per column, nulls blank, control characters shown as
    escapes (before any cell is cut short, so no cut can split a sequence). Returns the
    columns left out to fit."""
    term = term or terminal(out)
    shown = table_renderable(frame, title, term, keys, view)
    console(out, term, shown.width).print(shown.table)
    return shown.dropped


#: A cell a spreadsheet would run as a formula (OWASP's list), unless it is a number.
_FORMULA_START = r"^[=+\-@\t\r]"
_PLAIN_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


def _formula_safe(text: str) -> str:
    if re.match(_FORMULA_START, text) and not re.match(_PLAIN_NUMBER, text):
        return "'" + text
    return text


def _neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells and column names starting with ``= + - @``, tab or CR get a leading
    ``'``, so a spreadsheet shows them instead of running them (``=HYPERLINK(...)``);
    numbers such as ``-0.5`` or ``+1e-5`` are left alone."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            risky = col.str.contains(_FORMULA_START) & ~col.str.contains(_PLAIN_NUMBER)
            col = pl.when(risky).then(pl.lit("'") + col).otherwise(col)
        exprs.append(col.alias(_formula_safe(name)))
    return frame.select(exprs)


def scientific_notation(values: list[Any]) -> bool:
    """One notation per float column: scientific when the column holds tiny values only
    (a learning rate: 1e-6 ... 3e-4) or huge ones; positional otherwise."""
    sizes = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    return bool(sizes) and (max(sizes) >= 1e16 or (max(sizes) < 1 and min(sizes) < 1e-4))


def machine_float(value: float, scientific: bool) -> str:
    """A float for CSV/TSV/JSON: the digits of ``repr`` (the shortest text that reads back
    as the same float: full precision), in the column's notation (``1e-6``, ``0.00001``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = repr(value)
    if value == 0:
        return text
    if scientific:
        sign, digits, exponent = Decimal(text).normalize().as_tuple()
        assert isinstance(exponent, int)
        shown = "".join(map(str, digits))
        mantissa = shown[0] + ("." + shown[1:] if len(shown) > 1 else "")
        return f"{'-' if sign else ''}{mantissa}e{exponent + len(shown) - 1}"
    if "e" in text:  # repr's own switch to scientific, within a positional column
        text = format(Decimal(text), "f")
        return text if "." in text else text + ".0"
    return text


def _machine_floats(frame: pl.DataFrame, precision: int | None = None) -> pl.DataFrame:
    """Float columns as their machine text (see :func:`machine_float`), after rounding to
    ``precision`` significant digits (:func:`round_significant`) when it is given."""
    exprs = []
    for name, dtype in frame.schema.items():
        column = frame.get_column(name)
        if dtype == pl.Float64 and precision is not None and precision <= _FAST_DIGITS:
            exprs.append(_rounded_texts(column, precision))
        elif dtype.is_float():
            if precision is not None:
                column = rounded(column.to_frame(), precision).get_column(name)
            values = column.cast(pl.Float64).to_list()
            sci = scientific_notation(values)
            texts = [None if v is None else machine_float(v, sci) for v in values]
            exprs.append(pl.Series(name, texts, dtype=pl.String))
        else:
            exprs.append(column)
    return pl.DataFrame(exprs) if exprs else frame


#: Up to this many significant digits, the text ``format(v, ".Ng")`` has the very digits
#: of ``repr(round_significant(v, N))``: a decimal of at most 15 digits reads back as a
#: double whose shortest text is that decimal (a double holds 15 decimal digits for
#: sure, DBL_DIG), for normal doubles; subnormal and the largest doubles are left to
#: :func:`machine_float` (their rounding can lose digits or overflow).
_FAST_DIGITS = 15
_NORMAL = (1e-307, 1e307)


def _rounded_texts(column: pl.Series, precision: int) -> pl.Series:
    """A Float64 column rounded to ``precision`` (<= 15) digits, as machine text: what
    :func:`round_significant` then :func:`machine_float` write, one format call a value
    instead of three conversions (a table of 10,000 runs has 100,000 floats)."""
    name, spec = column.name, f".{precision}g"
    values = column.to_list()
    texts = [None if v is None else format(v, spec) for v in values]
    # The notation is decided on the rounded values; rounding is monotonic in |v|, so the
    # extremes of the rounded column are the rounded extremes.
    sizes = column.abs().filter(column.is_finite() & (column != 0)).to_list()
    sci = bool(sizes) and scientific_notation(
        [round_significant(max(sizes), precision), round_significant(min(sizes), precision)])
    exotic = (column.is_finite() & (column != 0)
              & ((column.abs() < _NORMAL[0]) | (column.abs() > _NORMAL[1])))
    if sci:
        out = [None if t is None else _scientific_text(t) for t in texts]
        result = pl.Series(name, out, dtype=pl.String)
    else:
        text = pl.Series(name, texts, dtype=pl.String)
        expanded = text.str.contains("e", literal=True).fill_null(False)
        if expanded.any():  # %g's own switch to scientific, in a positional column
            where = expanded.arg_true().to_list()
            text = text.scatter(where, [_positional_text(texts[i]) for i in where])
        result = pl.select(
            pl.when(text == "nan").then(pl.lit("NaN"))
            .when(text.str.contains(".", literal=True) | text.is_in(["inf", "-inf"]))
            .then(text).otherwise(text + ".0")).to_series().alias(name)
    if exotic.any():
        where = exotic.arg_true().to_list()
        result = result.scatter(where, [machine_float(round_significant(values[i], precision), sci)
                                        for i in where])
    return result


def _positional_text(text: str) -> str:
    """``1e-05`` from %g as machine_float writes it in a positional column."""
    text = format(Decimal(text), "f")
    return text if "." in text else text + ".0"


def _scientific_text(text: str) -> str:
    """A %g text as machine_float writes it in a scientific column (``1e-6``)."""
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    if text in ("nan", "inf", "-inf"):
        return "NaN" if text == "nan" else text
    return machine_float(float(text), True)


def write_csv(frame: pl.DataFrame, out: IO[str], separator: str = ",",
              raw: bool = False, precision: int | None = None) -> None:
    """CSV (or TSV): a header row, full precision (or ``precision`` significant digits),
    empty cells for null.

    Cells that a spreadsheet would run as a formula get a leading ``'`` unless ``raw``
    (see :func:`_neutralise_formulas`)."""
    buf = io.StringIO()
    machine = _machine_frame(frame)
    if not raw:
        machine = _neutralise_formulas(machine)
    # Floats are written as text of one notation per column (machine_float), after the
    # formula guard, which leaves numbers such as -1e-6 alone anyway.
    _machine_floats(machine, precision).write_csv(
        buf, separator=separator, datetime_format="%Y-%m-%dT%H:%M:%S%.fZ")
    out.write(buf.getvalue())


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dt.timedelta):  # a Duration: seconds, as in CSV
        return value / dt.timedelta(microseconds=1) / 1e6
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, pl.Series):
        return [_json_value(v) for v in value.to_list()]
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _json_rows(frame: pl.DataFrame) -> Any:
    """Each row as JSON object text; float columns in their notation, as in CSV."""
    notation = {i: scientific_notation(frame.get_column(name).cast(pl.Float64).to_list())
                for i, (name, dtype) in enumerate(frame.schema.items()) if dtype.is_float()}
    keys = [json.dumps(name, ensure_ascii=False) + ": " for name in frame.columns]
    for row in frame.iter_rows():
        fields = []
        for i, value in enumerate(row):
            if value is None:
                text = "null"
            elif i in notation and math.isfinite(value):
                text = machine_float(value, notation[i])
            elif type(value) is int:
                text = str(value)
            else:
                text = json.dumps(_json_value(value), ensure_ascii=False, allow_nan=False)
            fields.append(keys[i] + text)
        yield "{" + ", ".join(fields) + "}"


def write_jsonl(frame: pl.DataFrame, out: IO[str]) -> None:
    """One JSON object per row; NaN becomes null, infinities ``"Infinity"``."""
    for row in _json_rows(frame):
        out.write(row + "\n")


def write_json(frame: pl.DataFrame, out: IO[str]) -> None:
    """A JSON array of row objects (same value rules as jsonl)."""
    out.write("[")
    for i, row in enumerate(_json_rows(frame)):
        out.write(("," if i else "") + "\n  " + row)
    out.write("\n]\n" if frame.height else "]\n")


_MD_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _md_escape(text: str) -> str:
    """A cell as inert Markdown: control characters as escapes (a CR or newline would end
    the row), HTML and autolinks as text (``<img onerror=...>``), pipes kept in the cell,
    and no inline link or image (``](`` and ``![`` are escaped; ``f1[lang=de]`` stays)."""
    text = visible(text).translate(_MD_ESCAPES)
    return text.replace("](", "]\\(").replace("![", "!\\[")


def write_markdown(frame: pl.DataFrame, out: IO[str], title: str | None = None,
                   keys: Any = (), view: View | None = None) -> None:
    """A GitHub-flavoured table (renders in CI step summaries); numbers right-aligned,
    one precision per column."""
    names, numeric, rows, _ = _grid(frame, keys, view or View())
    if title:
        out.write(f"**{_md_escape(title)}**\n\n")
    out.write("| " + " | ".join(_md_escape(n) for n in names) + " |\n")
    out.write("|" + "|".join("---:" if n else ":---" for n in numeric) + "|\n")
    for cells in rows:
        out.write("| " + " | ".join(_md_escape(c) for c in cells) + " |\n")


def write_parquet(frame: pl.DataFrame, out: IO[Any]) -> None:
    """Parquet bytes; refused on a terminal, where they would be noise."""
    if terminal(out).is_tty:
        raise UsageError("--format parquet writes binary data; redirect it to a file (> x.parquet)")
    buf = io.BytesIO()
    frame.write_parquet(buf)
    target = getattr(out, "buffer", out)
    target.write(buf.getvalue())


def point_text(point: dict[str, Any]) -> str:
    """One point as a line for people (``xp tail`` on a terminal), control characters
    escaped: ``16:30:01  f1[lang=de]  epoch 3  step 120  0.8125``."""
    context = point.get("context") or {}
    label = point["name"] + ("[" + ",".join(f"{k}={v}" for k, v in sorted(context.items()))
                             + "]" if context else "")
    parts = []
    if point.get("time") is not None:
        moment = dt.datetime.fromtimestamp(point["time"], dt.UTC)
        parts.append(moment.strftime("%Y-%m-%d %H:%M:%S"))
    parts.append(visible(label))
    if point.get("epoch") is not None:
        parts.append(f"epoch {format_number(point['epoch'])}")
    if point.get("step") is not None:
        parts.append(f"step {point['step']}")
    parts.append(format_number(point["value"]))
    return "  ".join(parts)


def point_json(point: dict[str, Any]) -> str:
    """One point as a JSON line (``xp tail`` in a pipe): the record's fields, ``time`` in
    unix seconds, NaN as null and infinities as strings, like ``--format jsonl``."""
    return json.dumps({k: _json_value(v) for k, v in point.items()}, ensure_ascii=False,
                      allow_nan=False)


_WRITERS: dict[str, Callable[..., None]] = {
    "json": write_json,
    "jsonl": write_jsonl,
    "parquet": write_parquet,
}


def emit(frame: pl.DataFrame, fmt: str = "auto", out: IO[Any] | None = None,
         title: str | None = None, csv_raw: bool = False, keys: Any = (),
         view: View | None = None) -> list[str]:
    """Write ``frame`` to ``out`` (stdout) in ``fmt``; the one entry point for tables.

    ``csv_raw`` writes CSV/TSV cells as they are, formulas included (``--csv-raw``);
    ``keys`` are identifying columns besides :data:`ID_COLUMNS` (group keys); ``view``
    the shared display options. Returns the columns a terminal table left out to fit."""
    out = out if out is not None else sys.stdout
    view = view or View()
    chosen = resolve_format(fmt, terminal(out))
    dropped: list[str] = []
    if chosen == "table":
        dropped = write_table(frame, out, title=title, keys=keys, view=view)
    elif chosen == "markdown":
        write_markdown(frame, out, title=title, keys=keys, view=view)
    else:
        if view.transpose:
            raise UsageError(f"--transpose is for tables and markdown; --format {chosen} "
                             "keeps one record per row")
        precision = view.precision
        if precision is None and chosen in TEXT_MACHINE_FORMATS:
            precision = MACHINE_DIGITS
        frame = pick_columns(frame, view.columns)
        if chosen in ("csv", "tsv"):  # rounded as the floats are written
            write_csv(frame, out, separator="," if chosen == "csv" else "\t", raw=csv_raw,
                      precision=precision)
        else:
            _WRITERS[chosen](rounded(frame, precision), out)
    out.flush()
    return dropped


# CSV, TSV, JSON and JSONL round floats to 15 significant digits unless --precision says
# otherwise: the arithmetic's last-bit noise goes (a median of 0.6786 and 0.6795 is the
# float 0.6790499999999999, written 0.67905), every digit a float64 holds for sure stays.
# --precision 17 writes the exact float; Parquet is exact unless --precision is given.
MACHINE_DIGITS = 15
TEXT_MACHINE_FORMATS = ("csv", "tsv", "json", "jsonl")


def round_significant(value: float, digits: int) -> float:
    """``value`` to ``digits`` significant digits (0.6790499999999999, 6 -> 0.67905)."""
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def rounded(frame: pl.DataFrame, precision: int | None) -> pl.DataFrame:
    """Float columns to ``precision`` significant digits (``--precision``); as they are
    when None, which machine formats then write in full (:func:`machine_float`)."""
    if precision is None:
        return frame
    columns = []
    for name, dtype in frame.schema.items():
        column = frame.get_column(name)
        if dtype.is_float():
            column = pl.Series(name, [None if v is None else round_significant(v, precision)
                                      for v in column.to_list()], dtype=dtype)
        columns.append(column)
    return pl.DataFrame(columns) if columns else frame

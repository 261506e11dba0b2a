"""Plain tables: CSV/TSV, JSON, JSONL and Parquet files that no tracker wrote.

A file (or every such file under a folder) is read as a table of rows, or, for a JSON
file holding one object, as one run:

- **Wide** (a column per metric: Keras ``CSVLogger``, a pandas ``to_csv``): each row is
  one moment of a run; every numeric cell one point at that row's step and epoch.
- **Long** (one row per run, step and metric: a ``name`` or ``metric`` column and a
  ``value`` column): each row is one point; the other columns that vary within a run
  become its context (``split``, ``lang``).
- **A JSON object** (one file per configuration): lists of numbers are series (step =
  position, or the ``step`` list, or an integral ``epoch``), top-level numbers final
  points at the last step a series reached, everything else (nested objects -> dotted
  names, text) params.

Columns are found by name, and options name them where the defaults do not fit:
``run_column`` (default ``run``, ``run_id`` or ``run_name``; without one a file is one
run), ``step_column`` (``step``, ``global_step``, ``_step``; without one an integral
epoch is also the step), ``epoch_column`` (``epoch``), ``name_column``/``value_column``
(the long layout) and ``param_column`` (more params). Two columns that could both be
one of these stop the import with an error asking which. In a table, a column that
holds the same value on every row of each run is a param (``lr`` beside the losses),
as are text columns; pandas' unnamed index column is left out.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import format as fmt
from ..errors import UsageError
from ._base import (
    BAD_STEP,
    Report,
    RunData,
    SourceRun,
    read_json,
    read_rows,
    report_bad_rows,
    step_or_none,
)

KIND = "table"
LOOK_FOR = "point it at a .csv, .tsv, .json, .jsonl or .parquet file, or a folder of them"

#: File endings read, and how.
EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".parquet")
#: pandas' unnamed index column, as ``to_csv`` writes it and ``read_csv`` names it.
_PANDAS_INDEX = re.compile(r"Unnamed: \d+")
_INTEGER = re.compile(r"[+-]?\d{1,18}")

#: Option -> (the flag, the default column names it looks for).
_AXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "run_column": ("--run-column", ("run", "run_id", "run_name")),
    "step_column": ("--step-column", ("step", "global_step", "_step")),
    "epoch_column": ("--epoch-column", ("epoch",)),
    "name_column": ("--name-column", ("name", "metric")),
    "value_column": ("--value-column", ("value",)),
}

_MISSING = object()


@dataclass
class _Table:
    """A file read as rows (``rows``), or as one JSON object (``document``)."""

    path: str
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    document: dict[str, Any] | None = None
    groups: dict[str, list[int]] = field(default_factory=dict)
    axes: dict[str, str | None] = field(default_factory=dict)
    roles: tuple[list[str], list[str], list[str]] | None = None


# -- reading files ---------------------------------------------------------------------------


def _files(source: str) -> list[str]:
    if os.path.isfile(source):
        return [source]
    found: list[str] = []
    for folder, dirs, files in os.walk(source, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(folder, f) for f in files
                     if not f.startswith(".") and f.lower().endswith(EXTENSIONS))
    return sorted(found)


def _read_table(path: str, report: Report) -> _Table | None:
    """The rows of ``path`` (or its JSON object), or None after reporting why not."""
    table = _Table(path)
    lower = path.lower()
    if lower.endswith((".csv", ".tsv")):
        rows = read_rows(path, report, "file skipped", "\t" if lower.endswith(".tsv") else ",")
        if rows is None:
            return None
        if not rows:
            report.skip(path, "empty files", "empty file; skipped")
            return None
        header = [h.strip() for h in rows[0]]
        table.columns = header
        bad = []
        for number, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                bad.append(number)
                continue
            table.rows.append({h: (c if c.strip() else None) for h, c in zip(header, row)})
            table.lines.append(number)
        report_bad_rows(report, path, bad)
        return table
    if lower.endswith((".jsonl", ".ndjson")):
        try:
            with open(path, encoding="utf-8-sig", errors="replace") as fh:
                lines = fh.read().splitlines()
        except OSError as exc:
            report.skip(path, "unreadable files", f"cannot read: {exc.strerror}; file skipped")
            return None
        bad = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                obj = None
            if not isinstance(obj, dict):
                bad.append(number)
                continue
            _add_row(table, obj, number)
        report_bad_rows(report, path, bad)
        return table
    if lower.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq

            records = pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds on bad bytes
            first = str(exc).strip().splitlines()[0][:80] if str(exc).strip() else ""
            report.skip(path, "unreadable files",
                        f"not a readable Parquet file ({type(exc).__name__}"
                        f"{': ' + first if first else ''}); file skipped")
            return None
        for number, obj in enumerate(records, start=1):
            _add_row(table, {k: _plain(v) for k, v in obj.items()}, number)
        return table
    try:
        data = read_json(path)
    except (OSError, ValueError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else (
            "nested too deep" if isinstance(exc, RecursionError) else str(exc))
        report.skip(path, "unreadable files", f"{reason}; file skipped")
        return None
    if isinstance(data, dict):
        table.document = data
        return table
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        for number, obj in enumerate(data, start=1):
            _add_row(table, obj, number)
        return table
    report.skip(path, "unreadable files",
                "neither a JSON object (one run) nor a list of objects (rows); file skipped")
    return None


def _add_row(table: _Table, obj: dict[Any, Any], number: int) -> None:
    row = {str(k): v for k, v in obj.items()}
    for key in row:
        if key not in table.columns:
            table.columns.append(key)
    table.rows.append(row)
    table.lines.append(number)


# -- columns -------------------------------------------------------------------------------


def _axis(table: _Table, option: str, options: Any, present: Sequence[str]) -> str | None:
    """The column (or document key) chosen for ``option``; a UsageError when the option
    names no column or two default names are both there."""
    flag, defaults = _AXES[option]
    named = options.get(option)
    if named is not None:
        if named not in present:
            shown = ", ".join(repr(c) for c in list(present)[:12])
            raise UsageError(f"{table.path}: {flag} {named!r} is not a column of this file "
                             f"(it has {shown}); name one of them")
        return str(named)
    found = [c for c in defaults if c in present]
    if len(found) > 1:
        raise UsageError(f"{table.path}: columns {found[0]!r} and {found[1]!r} could both be "
                         f"the {flag[2:].replace('-column', '')} column; pass {flag} to say "
                         "which")
    return found[0] if found else None


def _plain(value: Any) -> Any:
    """A Parquet cell as JSON data: dates, decimals and bytes become text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.loads(json.dumps(value, default=str))


def _text(value: Any) -> str:
    """Text that can be written as UTF-8 (a lone surrogate from JSON becomes ``?``)."""
    return str(value).encode("utf-8", "replace").decode("utf-8")


def _as_float(value: Any) -> float | None:
    """An int or float (not a bool) as a float; None for anything else or too large."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _same(value: Any) -> str:
    """A comparable text of any cell (NaN equals NaN)."""
    return json.dumps(value, default=str, sort_keys=True)


def _cell(value: Any) -> Any:
    """A cell as a number (float), text, other JSON data, or ``_MISSING``."""
    if value is None:
        return _MISSING
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        number = _as_float(value)
        return _text(value) if number is None else number
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return _MISSING
        try:
            return float(text)
        except ValueError:
            return value
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, float)


def discover(source: str, report: Report) -> list[SourceRun]:
    """Every table file under ``source``; one source run per file, or per run value."""
    options = report.options
    single = os.path.isfile(source)
    root = os.path.dirname(source) if single else source
    runs: list[SourceRun] = []
    for path in _files(source):
        table = _read_table(path, report)
        if table is None:
            continue
        stem = os.path.splitext(os.path.relpath(path, root))[0].replace(os.sep, "/")
        if table.document is not None:
            runs.append(SourceRun(stem, path, extra={"table": table}))
            continue
        if not table.rows:
            report.skip(path, "empty files", "no rows; skipped")
            continue
        for option in _AXES:
            table.axes[option] = _axis(table, option, options, table.columns)
        if (table.axes["name_column"] is None) != (table.axes["value_column"] is None):
            if options.get("name_column") or options.get("value_column"):
                raise UsageError(f"{path}: the long layout needs both --name-column and "
                                 "--value-column (one row per point)")
            table.axes["name_column"] = table.axes["value_column"] = None
        run_column = table.axes["run_column"]
        if run_column is None:
            table.groups[""] = list(range(len(table.rows)))
            runs.append(SourceRun(stem, path, extra={"table": table}))
            continue
        missing = []
        for i, row in enumerate(table.rows):
            value = row.get(run_column)
            if value is None or (isinstance(value, str) and not value.strip()):
                missing.append(table.lines[i])
                continue
            key = _text(value) if isinstance(value, str) else _same(value)
            table.groups.setdefault(key, []).append(i)
        if missing:
            report.skip(path, "rows without a run",
                        f"{len(missing)} rows have no {run_column!r}; skipped", len(missing))
        for key in table.groups:
            name = key if single else f"{stem}/{key}"
            runs.append(SourceRun(name, path, key=key, extra={"table": table}))
    return runs


# -- reading one run -------------------------------------------------------------------------


def read(run: SourceRun, report: Report) -> RunData | None:
    """Params and points of one run of a table (or of one JSON object)."""
    table: _Table = run.extra["table"]
    if table.document is not None:
        return _read_document(table, report)
    return _read_rows(table, table.groups[run.key], report)


def _constant(table: _Table, column: str) -> bool:
    """True when ``column`` holds one value on every row of each run, and some run has
    two rows or more (in a table of one row per run nothing is constant)."""
    seen_long = False
    for rows in table.groups.values():
        values = [_cell(table.rows[i].get(column)) for i in rows]
        if any(v is _MISSING for v in values) or len({_same(v) for v in values}) > 1:
            return False
        seen_long = seen_long or len(values) > 1
    return seen_long


def _roles(table: _Table, params_named: set[str]) -> tuple[list[str], list[str], list[str]]:
    """(param columns, metric or context columns, text columns skipped) of a table."""
    if table.roles is not None:
        return table.roles
    axes = {c for c in table.axes.values() if c is not None}
    params, data, skipped = [], [], []
    long = table.axes["value_column"] is not None
    for column in table.columns:
        if column in axes:
            continue
        if not column or _PANDAS_INDEX.fullmatch(column):
            continue
        if column in params_named:
            params.append(column)
            continue
        cells = [_cell(row.get(column)) for row in table.rows]
        numeric = any(_is_number(v) for v in cells)
        if _constant(table, column) or (not numeric and not long and all(
                _constant_in_run(table, column, rows) for rows in table.groups.values())):
            params.append(column)
        elif long and not _context_key(column):
            skipped.append(column)
        elif numeric or long:
            data.append(column)
        else:
            skipped.append(column)
    table.roles = (params, data, skipped)
    return table.roles


def _context_key(column: str) -> bool:
    try:
        fmt.check_context_key(column)
    except UsageError:
        return False
    return True


def _constant_in_run(table: _Table, column: str, rows: list[int]) -> bool:
    return len({_same(table.rows[i].get(column)) for i in rows}) == 1


def _param_value(value: Any) -> Any:
    cell = _cell(value)
    if cell is _MISSING:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    return cell


def _axes_of(table: _Table, row: dict[str, Any]) -> tuple[bool, int | None, float | None, bool]:
    """(row ok, step, epoch, step out of range) of one row."""
    step: int | None = None
    epoch: float | None = None
    step_column, epoch_column = table.axes["step_column"], table.axes["epoch_column"]
    if epoch_column is not None:
        cell = _cell(row.get(epoch_column))
        if cell is not _MISSING:
            if not _is_number(cell):
                return False, None, None, False
            epoch = cell if math.isfinite(cell) else None
    if step_column is not None:
        cell = _cell(row.get(step_column))
        if cell is not _MISSING:
            if not _is_number(cell) or (math.isfinite(cell) and not cell.is_integer()):
                return False, None, None, False
            step = step_or_none(cell)
            if step is None:
                return True, None, epoch, True
    elif epoch is not None and epoch.is_integer():
        step = step_or_none(epoch)
    return True, step, epoch, False


def _read_rows(table: _Table, rows: list[int], report: Report) -> RunData | None:
    params_named = set(report.options.get("param_column") or ())
    params, columns, skipped = _roles(table, params_named)
    data = RunData()
    first = table.rows[rows[0]]
    data.params = {c: v for c in params if (v := _param_value(first.get(c))) is not None}
    name_column, value_column = table.axes["name_column"], table.axes["value_column"]
    bad_rows: list[int] = []
    bad_cells = bad_steps = 0
    for i in rows:
        row = table.rows[i]
        ok, step, epoch, out_of_range = _axes_of(table, row)
        if not ok:
            bad_rows.append(table.lines[i])
            continue
        if out_of_range:
            bad_steps += 1
            continue
        if value_column is not None and name_column is not None:
            name, value = row.get(name_column), _cell(row.get(value_column))
            if name is None or not str(name).strip() or value is _MISSING:
                bad_rows.append(table.lines[i])
                continue
            if not _is_number(value):
                bad_cells += 1
                continue
            context = {c: _text(v) if isinstance(v, str) else _same(v) for c in columns
                       if (v := row.get(c)) is not None and v != ""}
            data.add(_text(name), value, step=step, epoch=epoch, context=context)
            continue
        for column in columns:
            cell = _cell(row.get(column))
            if cell is _MISSING:
                continue
            if not _is_number(cell):
                bad_cells += 1
                continue
            data.add(_text(column), cell, step=step, epoch=epoch)
    report_bad_rows(report, table.path, bad_rows)
    report.skip(table.path, "non-numeric values", count=bad_cells)
    report.skip(table.path, BAD_STEP, count=bad_steps)
    if skipped and rows is next(iter(table.groups.values())):
        report.note(table.path, "text columns",
                    "columns that are neither numbers, nor constant in a run, nor context "
                    f"keys skipped: {', '.join(map(repr, skipped[:8]))}")
    if not len(data):
        report.skip(table.path, "empty runs", "no numeric values; run skipped")
        return None
    return data


def _read_document(table: _Table, report: Report) -> RunData | None:
    """One JSON object: lists of numbers are series, top-level numbers final values."""
    options = report.options
    params_named = set(options.get("param_column") or ())
    flat = fmt.flatten({str(k): v for k, v in table.document.items()}) \
        if table.document else {}
    lists = [k for k, v in flat.items() if isinstance(v, list)]
    step_key = _axis(table, "step_column", options, lists)
    epoch_key = _axis(table, "epoch_column", options, lists)
    steps = _numbers(flat[step_key]) if step_key else None
    epochs = _numbers(flat[epoch_key]) if epoch_key else None
    data = RunData()
    finals: list[tuple[str, float]] = []
    bad_cells = bad_steps = 0
    last: int | None = None
    for key, value in flat.items():
        if key in (step_key, epoch_key):
            continue
        if key in params_named:
            data.params[key] = value
        elif isinstance(value, list) and any(_as_float(v) is not None for v in value):
            for i, item in enumerate(value):
                number = _as_float(item)
                if number is None:
                    bad_cells += 1
                    continue
                epoch = epochs[i] if epochs is not None and i < len(epochs) else None
                step: float | None = i
                if steps is not None:
                    step = steps[i] if i < len(steps) else None
                elif epoch is not None and epoch.is_integer():
                    step = epoch  # as in a table: an integral epoch is also the step
                step_int = None if step is None else step_or_none(step)
                if step is not None and step_int is None:
                    bad_steps += 1
                    continue
                data.add(_text(key), number, step=step_int, epoch=epoch)
                if step_int is not None:
                    last = step_int if last is None else max(last, step_int)
        elif (number := _as_float(value)) is not None and "." not in key:
            finals.append((key, number))
        elif value is not None:
            data.params[key] = value
    for key, number in finals:
        data.add(_text(key), number, step=last)
    report.skip(table.path, "non-numeric values", count=bad_cells)
    report.skip(table.path, BAD_STEP, count=bad_steps)
    if not len(data):
        report.skip(table.path, "empty runs", "no numbers outside params; run skipped")
        return None
    return data


def _numbers(values: list[Any]) -> list[float | None]:
    return [v if (v := _as_float(item)) is not None and math.isfinite(v) else None
            for item in values]

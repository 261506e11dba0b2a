"""``xp diff``: two or more runs side by side, params and reduced metrics, differences
first.

One row per param and per metric column (the same reduced values as ``xp select``: the
last value of every metric in every context unless metric specs are given), one column
per run. The rows whose values differ between the runs come first, then the ones they
share; within each, params before metrics, in the runs table's order. A row's values may
be of different types (a learning rate, a model name), so each run column holds text:
:meth:`DiffResult.exact` writes every float in full (as CSV does), :meth:`DiffResult.display`
rounds each row to one precision for people.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from ..dataset import Dataset
from ..errors import UsageError, unknown_name
from ..output import machine_float, number_formatter, scientific_notation
from .select import reduced_table, specs_or_defaults
from .series_model import Notes, XChoice


@dataclass
class DiffResult:
    """The runs compared, and per row its name, kind (param or metric), whether the runs
    differ, and each run's value (as read: float, int, text, bool, None)."""

    runs: list[str]
    rows: list[tuple[str, str, bool, list[Any]]]

    def _frame(self, cells: Callable[[list[Any]], list[str | None]]) -> pl.DataFrame:
        data: dict[str, list[Any]] = {
            "field": [r[0] for r in self.rows],
            "kind": [r[1] for r in self.rows],
            "differs": [r[2] for r in self.rows],
        }
        texts = [cells(r[3]) for r in self.rows]
        for i, run in enumerate(self.runs):
            data[run] = [t[i] for t in texts]
        schema = {"field": pl.String, "kind": pl.String, "differs": pl.Boolean,
                  **{run: pl.String for run in self.runs}}
        return pl.DataFrame(data, schema=schema)

    def exact(self, precision: int | None = None) -> pl.DataFrame:
        """Values as machine text: floats as CSV writes them (one notation per row;
        ``precision`` significant digits if given, else every digit), lists and dicts as
        JSON."""
        def cells(values: list[Any]) -> list[str | None]:
            floats = [v for v in values if isinstance(v, float)]
            if precision is not None:
                floats = [float(f"{v:.{precision}g}") if math.isfinite(v) else v
                          for v in floats]
            sci = scientific_notation(floats)
            out: list[str | None] = []
            for v in values:
                if isinstance(v, float) and precision is not None and math.isfinite(v):
                    v = float(f"{v:.{precision}g}")
                out.append(_text(v, lambda f: machine_float(f, sci)))
            return out

        return self._frame(cells)

    def display(self, digits: int | None = None) -> pl.DataFrame:
        """Values for people: the floats of a row share one precision (4 significant
        digits for the largest, or ``digits``), so they line up."""
        def cells(values: list[Any]) -> list[str | None]:
            shown = number_formatter([v for v in values if isinstance(v, float)], digits)
            return [_text(v, shown) for v in values]

        return self._frame(cells)


def _text(value: Any, floats: Callable[[float], str]) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return floats(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, pl.Series):
        return json.dumps(value.to_list(), ensure_ascii=False, default=str)
    return str(value)


def _same(values: list[Any]) -> bool:
    first = values[0]
    for value in values[1:]:
        if isinstance(first, float) and isinstance(value, float):
            if not (first == value or (math.isnan(first) and math.isnan(value))):
                return False
        elif type(first) is not type(value) or first != value:
            return False
    return True


def diff_runs(dataset: Dataset, runs: Sequence[str],
              metrics: str | Sequence[str] | None = None, *, x: XChoice = "auto",
              notes: Notes | None = None) -> DiffResult:
    """Compare ``runs`` (two or more run ids, each once): every param and every metric
    column of ``metrics`` (default: as ``xp select``), differing rows first."""
    wanted = list(runs)
    if len(wanted) < 2:
        raise UsageError("xp diff compares two or more runs; name at least two")
    repeated = [r for i, r in enumerate(wanted) if r in wanted[:i]]
    if repeated:
        raise UsageError(f"run {repeated[0]!r} is named twice; name each run once")
    known = dataset.runs.select("run").collect()["run"].to_list()
    for run in wanted:
        if run not in known:
            raise unknown_name("", "run", run, known)
    specs, points = specs_or_defaults(dataset, metrics)
    table = reduced_table(dataset, specs, points=points, x=x, notes=notes)
    frame = table.frame.filter(pl.col("run").is_in(wanted))
    by_run = {row["run"]: row for row in frame.iter_rows(named=True)}
    fields = [(name, "param") for name in table.params if name in frame.columns]
    fields += [(label, "metric") for label in table.metrics]
    rows = []
    for name, kind in fields:
        values = [by_run[run][name] for run in wanted]
        if all(v is None for v in values) and kind == "param":
            continue  # a param none of these runs has
        rows.append((name, kind, not _same(values), values))
    rows.sort(key=lambda row: not row[2])  # stable: differing rows first, order kept
    return DiffResult(wanted, rows)

"""Runs grouped by params, each reduced metric aggregated over the runs of a group.

Statistics (``--agg``), over the runs of a group that have a value (null and NaN are
skipped; ``count`` says how many that is, ``n`` how many runs the group has):

- ``median``, ``mean``, ``min``, ``max``, ``count``;
- ``std``: the sample standard deviation (divisor count - 1); ``sem``: std / sqrt(count).
  Both are null (undefined), not 0, for a group with fewer than two values;
- ``qNN``: the NN-th percentile, ``q10``, ``q90``, ``q2.5``, ``q0``..``q100``, by linear
  interpolation between the two nearest order statistics (NumPy's default ``linear``,
  Hyndman & Fan type 7): with the values sorted x[0] <= ... <= x[k-1] and
  h = (k - 1) * NN / 100, the result is x[floor h] + (h - floor h) * (x[floor h + 1] - x[floor h]).
  ``median`` is ``q50``.

The result has one row per group: the ``--by`` columns, ``n``, then one column per metric
and statistic, named ``STAT(LABEL)``: ``median(f1[lang=de])``, ``q90(lms_score)``. Groups
are ordered by their ``--by`` values (nulls last); runs without a ``--by`` param form a
group of their own (null there).

:func:`compact_frame` is the view for people: one text cell per metric, ``median ± std
[min, max]`` built from the statistics asked for, ``(k of n)`` when some runs of the group
have no value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from ..dataset import Dataset
from ..errors import UsageError, unknown_name
from ..output import number_formatter
from .binning import bin_params
from .select import (
    reduced_table,
    specs_or_defaults,
    split_list,
    varying_params,
)
from .series_model import Notes, XChoice

if TYPE_CHECKING:
    from .select import Engine

__all__ = [
    "DEFAULT_AGGS",
    "GroupResult",
    "compact_frame",
    "default_by",
    "group_runs",
    "group_table",
    "parse_aggs",
    "stat_column",
]

DEFAULT_AGGS = ("median", "min", "max")
SIMPLE_AGGS = ("median", "mean", "std", "sem", "min", "max", "count")
_QUANTILE_RE = re.compile(r"q(\d{1,3}(?:\.\d+)?)")
_AGG_HELP = "median, mean, std, sem, min, max, count or qNN such as q10, q90, q2.5"


def parse_aggs(texts: str | Iterable[str] | None) -> list[str]:
    """Validate ``--agg`` names (comma-separated or repeated); default median, min, max."""
    items = split_list(texts)
    if not items:
        return list(DEFAULT_AGGS)
    aggs: list[str] = []
    for item in items:
        name = item.lower()
        match = _QUANTILE_RE.fullmatch(name)
        if match:
            percent = float(match.group(1))
            if percent > 100:
                raise UsageError(f"--agg {item}: a quantile is q0..q100 (percent)")
            name = "q" + format(percent, "g")
        elif name not in SIMPLE_AGGS:
            raise UsageError(f"--agg {item!r}: unknown statistic; expected {_AGG_HELP}")
        if name not in aggs:
            aggs.append(name)
    return aggs


def stat_column(agg: str, label: str) -> str:
    """The column name of statistic ``agg`` of metric ``label``: ``median(f1[lang=de])``."""
    return f"{agg}({label})"


def _stat_expr(agg: str, label: str) -> pl.Expr:
    value = pl.col(label).fill_nan(None)
    count = value.count()
    if agg in ("median", "mean", "min", "max"):
        expr = getattr(value, agg)()
    elif agg == "count":
        expr = count
    elif agg == "std":
        expr = pl.when(count >= 2).then(value.std(ddof=1))
    elif agg == "sem":
        expr = pl.when(count >= 2).then(value.std(ddof=1) / count.cast(pl.Float64).sqrt())
    else:
        expr = value.quantile(float(agg[1:]) / 100.0, interpolation="linear")
    return expr.alias(stat_column(agg, label))


def default_by(runs: pl.DataFrame, params: Sequence[str]) -> list[str]:
    """Params that vary between runs, except seeds (a name containing ``seed``)."""
    return [p for p in varying_params(runs, params) if "seed" not in p.lower()]


def group_runs(frame: pl.DataFrame, by: Sequence[str], metrics: Sequence[str],
               aggs: Sequence[str]) -> pl.DataFrame:
    """Aggregate the ``metrics`` columns of a runs frame within each ``by`` group.

    ``frame`` has one row per run (as :func:`~xpcli.analysis.select.reduced_table` makes
    it). With no ``by`` every run is in one group. See the module docs for each statistic.
    """
    for name in (*by, *metrics):
        if name not in frame.columns:
            raise unknown_name("", "column", name, frame.columns)
    if "n" in by:
        raise UsageError("--by n: 'n' is the column of group sizes; rename the param")
    exprs = [pl.len().cast(pl.Int64).alias("n")]
    exprs += [_stat_expr(agg, label) for label in metrics for agg in aggs]
    if not by:
        return frame.select(exprs).with_columns(
            pl.col(c).cast(pl.Int64) for c in [stat_column("count", m) for m in metrics]
            if "count" in aggs
        )
    grouped = frame.group_by(list(by)).agg(exprs)
    counts = [stat_column("count", m) for m in metrics] if "count" in aggs else []
    return grouped.with_columns(pl.col(c).cast(pl.Int64) for c in counts).sort(
        list(by), nulls_last=True, maintain_order=True
    ).select(*by, "n", *[stat_column(a, m) for m in metrics for a in aggs])


@dataclass
class GroupResult:
    """What ``xp group`` computed: the per-run ``runs`` frame, the resolved ``by``,
    ``metrics`` and ``aggs``, and ``wide`` (one column per statistic)."""

    runs: pl.DataFrame
    by: list[str]
    metrics: list[str]
    aggs: list[str]
    wide: pl.DataFrame
    #: ``wide`` with the count columns too, when they were computed with it (Spark).
    counted: pl.DataFrame | None = None

    def compact(self, digits: int | None = None) -> tuple[pl.DataFrame, str]:
        """The terminal view and its legend; see :func:`compact_frame`."""
        aggs = self.aggs if "count" in self.aggs else [*self.aggs, "count"]
        wide = self.wide if aggs is self.aggs else self.counted if self.counted is not None \
            else group_runs(self.runs, self.by, self.metrics, aggs)
        return compact_frame(wide, self.by, self.metrics, self.aggs, digits)


def group_table(
    dataset: Dataset,
    by: str | Sequence[str] | None = None,
    metrics: str | Sequence[str] | None = None,
    aggs: str | Sequence[str] | None = None,
    *,
    where: str | None = None,
    x: XChoice = "auto",
    notes: Notes | None = None,
    engine: Engine | None = None,
) -> GroupResult:
    """``xp group``: reduce metrics per run, filter with ``where``, group by ``by``.

    ``by`` defaults to :func:`default_by`; an item such as ``lr:log=5`` groups by bins of
    a continuous param (:mod:`~xpcli.analysis.binning`); ``metrics`` to the summary of every metric
    (:func:`~xpcli.analysis.select.default_specs`); ``aggs`` to median, min, max. ``x``
    places ``at=N``/``at-max``/``at-min``; what the user should know is added to ``notes``.
    ``engine``: reduce, filter and aggregate on Spark (:mod:`xpcli.spark`).
    """
    agg_list = parse_aggs(aggs)
    by_list = list(dict.fromkeys(split_list(by)))
    binned = [item for item in by_list if ":" in item]
    if engine is not None and binned:
        raise UsageError(f"--by {binned[0]}: --engine spark cannot bin params; group by the "
                         "param itself or use --engine polars")
    specs, points = specs_or_defaults(dataset, metrics)
    table = reduced_table(dataset, specs, where=where, points=points, x=x, notes=notes,
                          engine=engine)
    if not by_list:
        by_list = default_by(dataset.runs.collect(), table.params)
    frame, by_list = bin_params(table.frame, by_list)  # lr:log=5 -> lr, binned
    known = [c for c in table.frame.columns if c != "run" and c not in table.metrics]
    for name in by_list:
        if name not in known:
            raise unknown_name("--by", "param", name, known)
    if engine is None:
        wide = group_runs(frame, by_list, table.metrics, agg_list)
        return GroupResult(frame, by_list, table.metrics, agg_list, wide)
    if "n" in by_list:
        raise UsageError("--by n: 'n' is the column of group sizes; rename the param")
    counted = [*agg_list, "count"] if "count" not in agg_list else agg_list
    stats = [(stat_column(a, m), a, m) for m in table.metrics for a in counted]
    full = engine.group(table.remote, by_list, stats, dict(frame.schema))
    wide = full.select(*by_list, "n", *[stat_column(a, m) for m in table.metrics
                                        for a in agg_list])
    return GroupResult(frame, by_list, table.metrics, agg_list, wide, counted=full)


def _cell(row: dict[str, object], label: str, placed: dict[str, str | None],
          shown: dict[str, Callable[[object], str]]) -> str:
    def show(agg: str | None) -> str:
        if agg is None:
            return ""
        value = row[stat_column(agg, label)]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        return shown[agg](value)

    if placed["count"] is not None and row[stat_column("count", label)] == 0:
        return f"n/a (0 of {row['n']})"
    parts = []
    if placed["centre"]:
        parts.append(show(placed["centre"]))
    if placed["spread"]:
        parts.append(f"± {show(placed['spread'])}")
    if placed["low"] and placed["high"]:
        parts.append(f"[{show(placed['low'])}, {show(placed['high'])}]")
    if placed["count"] is not None:
        count = row[stat_column("count", label)]
        if placed["count"] == "always" or count != row["n"]:
            parts.append(f"({count} of {row['n']})")
    return " ".join(parts)


def compact_frame(wide: pl.DataFrame, by: Sequence[str], metrics: Sequence[str],
                  aggs: Sequence[str], digits: int | None = None) -> tuple[pl.DataFrame, str]:
    """The terminal view of a group frame, and its legend (e.g. ``median [min, max]``).

    Each metric becomes one text column holding ``CENTRE ± SPREAD [LOW, HIGH]`` from the
    statistics asked for: centre = median or mean, spread = std or sem, band = min-max or
    the lowest and highest quantile. A statistic that fits no slot keeps its own column.
    ``(k of n)`` follows when only k of the group's n runs have a value (always when
    ``count`` is in ``aggs``; otherwise only if ``wide`` carries the count columns anyway,
    as :meth:`GroupResult.compact` arranges). Undefined statistics (std of one run) read
    ``n/a``. The numbers of a column share one precision (``digits`` significant digits,
    default 4, for its largest value; :func:`~xpcli.output.number_formatter`), the spread
    its own.
    """
    centre = next((a for a in aggs if a in ("median", "mean")), None)
    spread = next((a for a in aggs if a in ("std", "sem")), None)
    quantiles = sorted((a for a in aggs if a.startswith("q")), key=lambda a: float(a[1:]))
    low: str | None
    high: str | None
    if "min" in aggs and "max" in aggs:
        low, high = "min", "max"
    elif len(quantiles) >= 2:
        low, high = quantiles[0], quantiles[-1]
    else:
        low = high = None
    placed: dict[str, str | None] = {"centre": centre, "spread": spread, "low": low,
                                     "high": high, "count": "always" if "count" in aggs else None}
    if placed["count"] is None and all(stat_column("count", m) in wide.columns for m in metrics):
        placed["count"] = "auto"
    used = {a for a in (centre, spread, low, high) if a}
    if "count" in aggs:
        used.add("count")
    leftover = [a for a in aggs if a not in used]
    legend_parts = [centre or ""]
    if spread:
        legend_parts.append(f"± {spread}")
    if low:
        legend_parts.append(f"[{low}, {high}]")
    if "count" in aggs:
        legend_parts.append("(count of n)")
    legend = " ".join(p for p in legend_parts if p)
    formats: dict[str, dict[str, Callable[[object], str]]] = {}
    for label in metrics:
        values = [v for a in (centre, low, high) if a
                  for v in wide.get_column(stat_column(a, label)).to_list()]
        same = number_formatter(values, digits)
        formats[label] = {a: same for a in (centre, low, high) if a}
        if spread:
            formats[label][spread] = number_formatter(
                wide.get_column(stat_column(spread, label)).to_list(), digits)
    rows = []
    for row in wide.iter_rows(named=True):
        out: dict[str, object] = {name: row[name] for name in (*by, "n")}
        for label in metrics:
            out[label] = _cell(row, label, placed, formats[label])
            for agg in leftover:
                out[stat_column(agg, label)] = row[stat_column(agg, label)]
        rows.append(out)
    schema: dict[str, pl.DataType] = {name: wide.schema[name] for name in (*by, "n")}
    for label in metrics:
        schema[label] = pl.String()
        for agg in leftover:
            schema[stat_column(agg, label)] = wide.schema[stat_column(agg, label)]
    return pl.DataFrame(rows, schema=schema, orient="row"), legend

"""The series summary: per (run, series) what the plain reducers need, kept in the cache.

Every cache segment holds, beside its points, one row per (source file, run, metric name,
context text) of the points it holds (``seg-N.stats.parquet``): how many points, how many
have a value (not NaN, not null), how many have a NaN value and how many no time; the
smallest, largest and sum of the values; the time, step and epoch ranges; and the first
and last value in each of the two logging orders of :mod:`xpcli.analysis.series_model`:

- by read position (``r_first``/``r_last``, with the read position ``r_first_order``/
  ``r_last_order``): what ``first``/``last`` are when some point of the series lacks a
  time;
- by time, ties by read position (``t_first``/``t_last``, with ``t_first_time``/
  ``t_first_order`` and ``t_last_time``/``t_last_order``): what they are when every
  point has one.

The read position is the cache's ``__order``: within one metric name it rises exactly as
a query meets the points (segments in order, rows of a segment in order), so the summaries
of the parts of a series (segments written as a file grew, or context texts that decode to
one context) combine exactly (:func:`combine`): counts add, extremes take the extreme,
first/last take the part whose first/last comes first/last in the order that applies
(by time when no part has a point without time). A segment's summary is written with
the segment and dropped with it, so the summary follows appends, edits and merges as
the points do.

``mean`` is kept per part, computed as the reduction computes it over the points (the
values summed one after the other in read order,
:func:`sequential_mean`): bit for bit the same.
Over several parts the sum of their sums can round differently in the last bit, so the
reduction reads the points of such series for a mean (see :mod:`xpcli.analysis.reduce`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

ORDER = "__order"


def sequential_mean(values: pl.Expr) -> pl.Expr:
    """The mean of ``values`` summed one after the other in their order (read order):
    the same bits however the values are grouped or held, so the series summary of
    this module gives exactly the mean the points give (a group-wise ``mean`` may
    add in another order and round differently in the last bit)."""
    return values.cum_sum().last() / values.len()


#: The columns of a summary row beside its keys, with their types.
SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "points": pl.Int64(), "valid": pl.Int64(), "nan": pl.Int64(), "time_nulls": pl.Int64(),
    "first_time": pl.Float64(), "last_time": pl.Float64(),
    "step_min": pl.Int64(), "step_max": pl.Int64(),
    "epoch_min": pl.Float64(), "epoch_max": pl.Float64(),
    "min": pl.Float64(), "max": pl.Float64(), "sum": pl.Float64(), "mean": pl.Float64(),
    "r_first": pl.Float64(), "r_first_order": pl.Int64(),
    "r_last": pl.Float64(), "r_last_order": pl.Int64(),
    "t_first": pl.Float64(), "t_first_time": pl.Float64(), "t_first_order": pl.Int64(),
    "t_last": pl.Float64(), "t_last_time": pl.Float64(), "t_last_order": pl.Int64(),
}

_VALID = pl.col("value").is_not_null() & pl.col("value").is_not_nan()


def summarize(frame: Any, keys: Sequence[str]) -> Any:
    """The summary of the points of ``frame`` (raw records with ``__order``; other kinds
    are ignored), one row per ``keys``. Lazy in, lazy out; eager in, eager out.

    The points are grouped once; the values are reduced over the points that have one
    (filtered inside each group, in read order, so ``mean`` is computed as the reduction
    computes it over the points)."""
    keys = list(keys)
    value = pl.col("value").cast(pl.Float64)
    order = pl.col(ORDER).cast(pl.Int64)
    time = pl.col("time").cast(pl.Float64)
    points = frame.filter(pl.col("kind") == "point")
    has = value.is_not_null() & value.is_not_nan()
    v, t, o = value.filter(has), time.filter(has), order.filter(has)
    # Within a group the rows are in read order (a segment's rows of one metric are), so
    # the first and last by read position are the group's first and last valid row, and
    # the first (last) by (time, read position) the first (last) valid row at the
    # smallest (largest) time. NaN times (which sort after every other time) take a sort.
    if _nan_times(frame):
        by_time = [t, o]
        t_first = [c.sort_by(by_time).first() for c in (v, t, o)]
        t_last = [c.sort_by(by_time).last() for c in (v, t, o)]
    else:
        # arg_min/arg_max skip null times and give the first of equal ones; the last of
        # the largest is the first of the reversed values. No time at all: null.
        first_at = t.arg_min()
        last_at = t.len().cast(pl.Int64) - 1 - t.reverse().arg_max().cast(pl.Int64)
        t_first = [c.get(first_at, null_on_oob=True) for c in (v, t, o)]
        t_last = [c.get(last_at, null_on_oob=True) for c in (v, t, o)]
    summary = points.group_by(keys).agg(
        pl.len().cast(pl.Int64).alias("points"),
        value.is_nan().sum().cast(pl.Int64).alias("nan"),
        pl.col("time").null_count().cast(pl.Int64).alias("time_nulls"),
        pl.col("time").min().alias("first_time"), pl.col("time").max().alias("last_time"),
        pl.col("step").min().alias("step_min"), pl.col("step").max().alias("step_max"),
        pl.col("epoch").min().alias("epoch_min"), pl.col("epoch").max().alias("epoch_max"),
        v.len().cast(pl.Int64).alias("valid"),
        v.min().alias("min"), v.max().alias("max"), v.sum().alias("sum"),
        sequential_mean(v).alias("mean"),
        v.first().alias("r_first"), o.first().alias("r_first_order"),
        v.last().alias("r_last"), o.last().alias("r_last_order"),
        *(e.alias(f"t_first{c}") for e, c in zip(t_first, ("", "_time", "_order"))),
        *(e.alias(f"t_last{c}") for e, c in zip(t_last, ("", "_time", "_order"))),
    )
    # A series without a valid value has no sum (as no min, first or mean).
    none = pl.lit(None, dtype=pl.Float64)
    return (summary.with_columns(pl.when(pl.col("valid") > 0).then(pl.col("sum"))
                                 .otherwise(none).alias("sum"))
            .select(*keys, *(pl.col(c).cast(t) for c, t in SUMMARY_SCHEMA.items())))


def _nan_times(frame: Any) -> bool:
    """True when some point of ``frame`` has a NaN time."""
    nan = pl.col("time").cast(pl.Float64).is_nan().any()
    if isinstance(frame, pl.LazyFrame):
        return bool(frame.select(nan).collect().item())
    return bool(frame.select(nan).item())


def combine_aggs() -> list[pl.Expr]:
    """Aggregations that combine the summary rows of a group (the parts of one series)
    into one summary row: exactly the summary of all their points together. ``parts``
    (1 for a segment's row) adds up over the rows that hold a value."""
    has = pl.col("valid") > 0

    def pick(column: str, by: list[str], last: bool) -> pl.Expr:
        chosen = pl.col(column).filter(has).sort_by([pl.col(b).filter(has) for b in by])
        return (chosen.last() if last else chosen.first()).alias(column)

    r_first, r_last = ["r_first_order"], ["r_last_order"]
    t_first, t_last = ["t_first_time", "t_first_order"], ["t_last_time", "t_last_order"]
    return [
        *(pl.col(c).sum().alias(c) for c in ("points", "valid", "nan", "time_nulls")),
        pl.col("first_time").min(), pl.col("last_time").max(),
        pl.col("step_min").min(), pl.col("step_max").max(),
        pl.col("epoch_min").min(), pl.col("epoch_max").max(),
        pl.col("min").min(), pl.col("max").max(), pl.col("sum").filter(has).sum(),
        # One part: its own mean; several: what their sums give (the reduction reads the
        # points of such a series for its mean, see the module docs).
        pl.when(pl.col("parts").filter(has).sum() == 1).then(pl.col("mean").filter(has).first())
        .otherwise(pl.col("sum").filter(has).sum() / pl.col("valid").sum()).alias("mean"),
        pl.col("parts").filter(has).sum().cast(pl.Int64).alias("parts"),
        pick("r_first", r_first, False), pick("r_first_order", r_first, False),
        pick("r_last", r_last, True), pick("r_last_order", r_last, True),
        *(pick(c, t_first, False) for c in ("t_first", "t_first_time", "t_first_order")),
        *(pick(c, t_last, True) for c in ("t_last", "t_last_time", "t_last_order")),
    ]


def combine(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """One summary row per ``keys`` from the rows of its parts (:func:`combine_aggs`),
    with ``parts``: how many of them hold a value (a row without ``parts`` is one)."""
    if "parts" not in frame.columns:
        frame = frame.with_columns(pl.lit(1, dtype=pl.Int64).alias("parts"))
    if frame.select(pl.struct(list(keys)).is_unique().all()).item():
        # One part each (the usual case): already combined.
        parts = pl.when(pl.col("valid") > 0).then(pl.col("parts")).otherwise(0)
        return frame.with_columns(parts.cast(pl.Int64).alias("parts")).select(
            *keys, *SUMMARY_SCHEMA, "parts")
    return frame.group_by(list(keys)).agg(combine_aggs())


def reduced(kind: str) -> pl.Expr:
    """The value of a plain reducer from a combined summary row (null without a value):
    ``first``/``last`` in the logging order of the series (by time when every point has
    one), ``min``, ``max``, ``mean``."""
    timed = pl.col("time_nulls") == 0
    none = pl.lit(None, dtype=pl.Float64)
    if kind in ("first", "last"):
        return pl.when(pl.col("valid") == 0).then(none).when(timed).then(
            pl.col(f"t_{kind}")).otherwise(pl.col(f"r_{kind}"))
    if kind == "mean":
        return pl.when(pl.col("valid") == 0).then(none).otherwise(pl.col("mean"))
    if kind in ("min", "max"):
        return pl.col(kind)
    raise ValueError(f"not answered from the summary: {kind}")


#: The reducers the summary answers exactly.
SUMMARY_REDUCERS = frozenset({"first", "last", "min", "max", "mean"})

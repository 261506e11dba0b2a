"""The reduction: every series reduced to one number per run, and run pickers resolved.

:func:`reduce_runs` computes the REDUCE of each column (the rows of
:data:`xpcli.spec.metric.REDUCERS` say what each one means and give its aggregation);
:func:`last_logged` is the "one value per x" rule every reduce, curve and forgetting
table applies first; :func:`resolve_picker` turns ``best:SPEC`` into a run id. The
grammar and the meaning of each reduce are in :mod:`xpcli.spec.metric` (and
``docs/specs.md``).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Literal, get_args

import polars as pl

from ..errors import SpecError
from ..spec.metric import REDUCERS, Column, expand, series_filter, spec_number
from ..spec.picker import parse_picker

__all__ = ["X_AXES", "XAxis", "check_x", "last_logged", "reduce_runs", "resolve_picker"]

#: The axes a series can be read along: what orders its points and places ``at=N``.
XAxis = Literal["epoch", "step", "time"]
X_AXES: tuple[XAxis, ...] = get_args(XAxis)


def check_x(x: str) -> None:
    """Refuse an x axis other than epoch, step or time (a :class:`SpecError`, exit 2)."""
    if x not in X_AXES:
        raise SpecError(f"--x {x}: unknown x axis {x!r} (expected epoch, step or time)")


def last_logged(
    points: pl.DataFrame, by: Sequence[str] = ("run",), x: str = "epoch"
) -> pl.DataFrame:
    """One point per ``by`` + ``x`` value: the last logged one (see "One value per x").

    ``by`` names a series (``run`` of a frame holding one column's points, or ``run``,
    ``context``); the last logged point has the latest ``time`` (null counts as
    earliest; without a ``time`` column only the order counts), then the latest row:
    the frame's row order is the read order. Points whose ``x`` is null are all kept.
    The kept rows keep their order.

    Vectorised: a pass over neighbouring rows finds the series that may repeat an x
    (x not strictly increasing in read order, or the series' rows not contiguous); only
    those are sorted, so the usual frame without repeats costs one cheap pass.
    """
    by = list(by)
    same = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(1)) for k in by])
    same = same & pl.int_range(pl.len()).gt(0)
    rising = (pl.col(x) > pl.col(x).shift(1)).fill_null(False)
    lazy = points.lazy()
    starts = lazy.filter(~same).group_by(by).len().filter(pl.col("len") > 1).select(by)
    suspects = pl.concat([lazy.filter(same & ~rising).select(by), starts]).unique().collect()
    if suspects.is_empty():
        return points
    read = "__last_logged_row"
    indexed = points.with_row_index(read)
    check = indexed.join(suspects, on=by, how="semi", nulls_equal=True)
    times = ["time"] if "time" in points.columns else []
    check = check.sort([*by, x, *times, read], nulls_last=False)
    later = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(-1)) for k in [*by, x]])
    kept = check.filter(~(later & pl.col(x).is_not_null()).fill_null(False))
    clean = indexed.join(suspects, on=by, how="anti", nulls_equal=True)
    return pl.concat([clean, kept]).sort(read).drop(read)


def reduce_runs(
    points: pl.DataFrame | pl.LazyFrame,
    columns: Sequence[Column],
    x: XAxis = "epoch",
) -> pl.DataFrame:
    """Reduce every column to one number per run: ``run`` + one Float64 column per label.

    One row per run that has any point (even NaN) in any column, sorted by run; a run
    without a value for a column gets null there. ``x`` orders the points and places
    ``at=N``/``at-max``/``at-min``: with ``x="epoch"`` a series (run, column) that has no
    epoch at all uses its step instead. The work is grouped Polars aggregations, one per
    distinct series, never a loop over runs. :mod:`xpcli.spec.metric` says what each
    reduce means and what NaN does.
    """
    check_x(x)
    unique: dict[str, Column] = {}
    for column in columns:
        unique.setdefault(column.label, column)
    if not unique:
        return pl.DataFrame(schema={"run": pl.String})

    def key(column: Column) -> tuple[str, tuple[tuple[str, str], ...]]:
        return column.spec.name, column.context

    filters: dict[tuple[str, tuple[tuple[str, str], ...]], pl.Expr] = {}
    for column in unique.values():
        for c in (column, column.ref):
            if c is not None:
                filters.setdefault(key(c), series_filter(c))
    used_keys = sorted({k for _, context in filters for k, _ in context})
    # Select the needed points once, so a lazy scan is read once for all columns.
    base = (
        points.lazy()
        .filter(pl.any_horizontal(list(filters.values())))
        .select(
            "run",
            "name",
            *used_keys,
            pl.col("step").cast(pl.Float64).alias("_step"),
            pl.col("epoch").cast(pl.Float64).alias("_epoch"),
            pl.col("time").cast(pl.Float64),
            pl.col("value").cast(pl.Float64),
        )
        .with_row_index("_row")
        .collect()
        .lazy()
    )
    default_x = {
        "epoch": pl.when(pl.col("_epoch").is_not_null().any().over("run"))
        .then(pl.col("_epoch"))
        .otherwise(pl.col("_step")),
        "step": pl.col("_step"),
        "time": pl.col("time"),
    }[x]

    kept: dict[tuple[str, tuple[tuple[str, str], ...]], pl.DataFrame] = {}

    def logged(series: tuple[str, tuple[tuple[str, str], ...]]) -> pl.DataFrame:
        # One value per (run, x) of the series, the last logged, before anything else.
        if series not in kept:
            frame = (
                base.filter(filters[series])
                .select("run", "_step", "_epoch", "time", "value", "_row")
                .collect()
            )
            x_expr = default_x
            if x == "epoch":  # the per-run fallback costs a window; skip it when moot
                missing = frame.get_column("_epoch").null_count()
                if missing in (0, frame.height):
                    x_expr = pl.col("_epoch" if missing == 0 else "_step")
            frame = frame.with_columns(x_expr.alias("_x"))
            kept[series] = last_logged(frame, ("run",), "_x")
        return kept[series]

    def valid(series: tuple[str, tuple[tuple[str, str], ...]]) -> pl.LazyFrame:
        return logged(series).lazy().filter(
            pl.col("value").is_not_null() & pl.col("value").is_not_nan()
        )

    targets = list(dict.fromkeys(key(c) for c in unique.values()))
    result = pl.concat([base.filter(filters[s]).select("run") for s in targets]).unique()
    for series in targets:
        points_ok = valid(series)
        aggs: list[pl.Expr] = []
        for column in (c for c in unique.values() if key(c) == series):
            reducer = REDUCERS[column.reduce.kind]
            aggregate = reducer.aggregate(column.reduce).alias(column.label)
            if reducer.ref is None:
                aggs.append(aggregate)
                continue
            # A value at the x where another series of the run peaks: that x first.
            assert column.ref is not None
            extreme = getattr(pl.col("value"), reducer.ref)()
            at_x = valid(key(column.ref)).group_by("run").agg(
                pl.col("_x").filter(pl.col("value") == extreme).min().alias("_at")
            )
            picked = points_ok.join(at_x, on="run", how="inner").group_by("run").agg(aggregate)
            result = result.join(picked, on="run", how="left")
        if aggs:
            result = result.join(points_ok.group_by("run").agg(aggs), on="run", how="left")
    table = (
        result.select("run", *[pl.col(label).cast(pl.Float64) for label in unique])
        .sort("run")
        .collect()
    )
    for column in unique.values():
        if REDUCERS[column.reduce.kind].takes is not None and table.height and \
                table[column.label].null_count() == table.height:
            raise _nowhere(column, logged(key(column)), x)
    return table


def _nowhere(column: Column, points: pl.DataFrame, x: XAxis) -> SpecError:
    """The error for an at=N or at-max/at-min column that is null for every run."""
    red = column.reduce
    reducer = REDUCERS[red.kind]
    text = str(column.spec)
    label = column.label.split("@")[0]
    if reducer.takes == "SPEC":
        assert column.ref is not None
        where = "highest" if reducer.ref == "max" else "lowest"
        return SpecError(f"{text}: no run has a value of {label} at the {x} where "
                         f"{column.ref.label} is {where}")
    axis = red.x or x
    xs = points.get_column({"step": "_step", "epoch": "_epoch"}.get(axis, "_x"))
    xs = xs.filter(xs.is_not_null() & xs.is_not_nan() & points["value"].is_not_nan()
                   & points["value"].is_not_null())
    lo, hi = xs.cast(pl.Float64).min(), xs.cast(pl.Float64).max()
    have = (f"{label} has {axis}s {spec_number(_as_float(lo))}..{spec_number(_as_float(hi))}"
            if xs.len() else f"{label} has no value with a{'n' if axis == 'epoch' else ''} {axis}")
    return SpecError(f"{text}: no run has a value at {axis} {spec_number(red.at)} ({have})")


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def resolve_picker(
    text: str,
    runs: pl.DataFrame | pl.LazyFrame,
    points: pl.DataFrame | pl.LazyFrame,
    x: XAxis = "epoch",
) -> str:
    """Resolve a picker to a run id among ``runs``.

    An exact run id wins over the picker syntax. ``best``/``worst`` reduce the spec over
    the runs of ``runs`` only, skip null/NaN values, and break ties by the smallest id.
    """
    ids = runs.lazy().select(pl.col("run").cast(pl.String)).collect().to_series()
    id_set = set(ids.to_list())
    if text.strip() in id_set:
        return text.strip()
    picker = parse_picker(text)
    if picker.kind == "run":
        close = sorted(difflib.get_close_matches(picker.text, sorted(id_set), n=3, cutoff=0.5))
        hint = f"; closest: {', '.join(close)}" if close else ""
        count = f"{len(id_set)} runs" if id_set else "there are no runs"
        raise SpecError(
            f"unknown run {picker.text!r}{hint} ({count}; a picker is a run id, best:SPEC"
            " or worst:SPEC)"
        )
    assert picker.spec is not None
    columns = expand([picker.spec], points)
    if len(columns) != 1:
        labels = ", ".join(c.label for c in columns[:6])
        raise SpecError(f"{picker.text}: names {len(columns)} columns ({labels}); pick one")
    (column,) = columns
    scoped = points.lazy().filter(pl.col("run").is_in(pl.lit(ids).implode()))
    table = reduce_runs(scoped, columns, x=x)
    ranked = table.filter(
        pl.col(column.label).is_not_null() & pl.col(column.label).is_not_nan()
    ).sort([column.label, "run"], descending=[picker.kind == "best", False])
    if ranked.is_empty():
        raise SpecError(f"{picker.text}: no run has a value for {column.label}")
    return str(ranked["run"][0])

"""The reduction: every series reduced to one number per run, and run pickers resolved.

:func:`reduce_runs` computes the REDUCE of each column (the rows of
:data:`xpcli.spec.metric.REDUCERS` say what each one means and give its aggregation) on
the series model of :mod:`xpcli.analysis.series_model`: ``first``, ``last``, ``min``,
``max``, ``mean`` and ``median`` over every point of a series in logging order;
``at=N``, ``at-max`` and ``at-min`` on the series aligned to one value per x, the last
logged. :func:`resolve_picker` turns ``best:SPEC`` into a run id. The grammar and the
meaning of each reduce are in :mod:`xpcli.spec.metric` (and ``docs/specs.md``).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import polars as pl

from ..errors import SpecError
from ..spec.metric import REDUCERS, Column, expand, series_filter, spec_number
from ..spec.picker import parse_picker
from ..summary import SUMMARY_REDUCERS, combine, reduced
from .series_model import (
    ROW,
    TIME_KEY,
    X_AXES,
    AxisChoice,
    Notes,
    XAxis,
    XChoice,
    align,
    check_x,
    read_series,
    run_starts,
    series_checks,
    series_problems,
    x_values,
)

__all__ = ["X_AXES", "XAxis", "XChoice", "check_x", "reduce_runs", "resolve_picker"]

Series = tuple[str, tuple[tuple[str, str], ...]]

#: What the at-reducers do with a series whose x repeats or goes backwards.
AT_ACTION = "at=, at-max and at-min read the last logged value at each {axis}"


def _series_label(column: Column) -> str:
    """The label of a column's series, without its reduce: ``f1[lang=de]``."""
    return column.label.split("@", 1)[0]


def reduce_runs(
    points: pl.DataFrame | pl.LazyFrame,
    columns: Sequence[Column],
    x: XChoice = "auto",
    *,
    starts: pl.DataFrame | pl.LazyFrame | None = None,
    notes: Notes | None = None,
    summary: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Reduce every column to one number per run: ``run`` + one Float64 column per label.

    One row per run that has any point (even NaN) in any column, sorted by run; a run
    without a value for a column gets null there. ``first``/``last``/``min``/``max``/
    ``mean``/``median`` read every point of the series in logging order; ``x`` (an axis
    or ``auto``, see :mod:`xpcli.analysis.series_model`) places ``at=N``/``at-max``/
    ``at-min``, on the series aligned to one value per x. ``starts`` (``run``,
    ``__start``) is where each run's ``time`` x starts (default: its first time in
    ``points``). What the user should know (the axis ``auto`` chose, series whose x
    repeats) is added to ``notes``. The work is grouped Polars aggregations, one per
    distinct series, never a loop over runs. :mod:`xpcli.spec.metric` says what each
    reduce means and what NaN does.

    ``summary``: the series summary of exactly the series of ``points`` (a dataset's
    ``series``, :mod:`xpcli.summary`). The reduces it answers (first, last, min, max,
    mean) come from it without reading a point; the answer is the same. The other
    plain reduces (median) read the points in one streaming query, grouped by series
    and run, so memory does not grow with the points read; at=, at-max and at-min read
    only the points of the series they name and reference, beside them.
    """
    check_x(x)
    notes = notes if notes is not None else Notes()
    unique: dict[str, Column] = {}
    for column in columns:
        unique.setdefault(column.label, column)
    if not unique:
        return pl.DataFrame(schema={"run": pl.String})
    plain = [c for c in unique.values() if REDUCERS[c.reduce.kind].takes is None]
    if len(plain) == len(unique):
        return _reduce_plain(points, plain, summary)
    if plain:  # the plain ones as without at=; only the at= series' points are read
        at_table = reduce_runs(points, [c for c in unique.values() if c not in plain], x,
                               starts=starts, notes=notes)
        table = at_table.join(_reduce_plain(points, plain, summary), on="run", how="full",
                              coalesce=True)
        return table.select("run", *unique).sort("run")

    def key(column: Column) -> Series:
        return column.spec.name, column.context

    filters: dict[Series, pl.Expr] = {}
    labels: dict[Series, str] = {}
    for column in unique.values():
        for c in (column, column.ref):
            if c is not None:
                filters.setdefault(key(c), series_filter(c))
                labels.setdefault(key(c), _series_label(c))
    used_keys = sorted({k for _, context in filters for k, _ in context})
    # Select the needed points once, so a lazy scan is read once for all columns.
    base = (
        points.lazy()
        .filter(pl.any_horizontal(list(filters.values())))
        .select(
            "run",
            "name",
            *used_keys,
            *[pl.col(c).cast(pl.Float64) for c in ("step", "epoch", "time", "value")],
        )
        .with_row_index(ROW)
        .collect()
    )
    valid = pl.col("value").is_not_null() & pl.col("value").is_not_nan()
    frames: dict[Series, pl.DataFrame] = {}
    # The points split once by (name, used keys), the only columns a filter reads; a
    # series is then the parts its filter keeps, evaluated on one row per part.
    parts = base.partition_by("name", *used_keys, as_dict=True, maintain_order=True)
    part_keys = list(parts)
    part_table = pl.DataFrame(part_keys, schema=base.select("name", *used_keys).schema,
                              orient="row").with_row_index("__part")

    def frame_of(series: Series) -> pl.DataFrame:
        if series not in frames:
            picked = part_table.filter(filters[series]).get_column("__part").to_list()
            chosen = [parts[part_keys[i]] for i in picked]
            frame = (pl.concat(chosen) if chosen else base.clear()).select(
                "run", "step", "epoch", "time", "value", ROW)
            frames[series] = frame.sort(ROW) if len(chosen) > 1 else frame
        return frames[series]

    # The series at=/at-max/at-min read (targets and references), aligned all at once.
    at_columns = [c for c in unique.values() if REDUCERS[c.reduce.kind].takes is not None]
    at_series = list(dict.fromkeys(key(c) for col in at_columns
                                   for c in (col, col.ref) if c is not None))
    numbers = {s: i for i, s in enumerate(at_series)}
    aligned = _Aligned([frame_of(s) for s in at_series], x, notes,
                       starts if starts is not None else run_starts(points))

    def axis_of(column: Column) -> XAxis:
        if column.reduce.x is not None:  # at=step:N, at=epoch:N
            return column.reduce.x
        # at-max(SPEC)/at-min(SPEC) read the target on the reference's axis.
        axis_column = column.ref if column.ref is not None else column
        if x != "auto":
            return x
        choice = aligned.choice(numbers[key(axis_column)])
        notes.chose(_series_label(axis_column), choice)
        return choice.axis

    pairs = [(numbers[key(c)], axis_of(col), labels[key(c)]) for col in at_columns
             for c in (col, col.ref) if c is not None]
    aligned.align(pairs)

    def aligned_on(series: Series, axis: XAxis) -> pl.DataFrame:
        return aligned.frame(numbers[series], axis)

    targets = list(dict.fromkeys(key(c) for c in unique.values()))
    result = pl.concat([frame_of(s).lazy().select("run") for s in targets]).unique()
    for series in targets:
        at_n: dict[XAxis, list[pl.Expr]] = {}
        for column in (c for c in unique.values() if key(c) == series):
            reducer = REDUCERS[column.reduce.kind]
            aggregate = reducer.aggregate(column.reduce).alias(column.label)
            axis = axis_of(column)
            if reducer.ref is None:
                at_n.setdefault(axis, []).append(aggregate)
                continue
            # A value at the x where another series of the run peaks: that x first.
            assert column.ref is not None
            extreme = getattr(pl.col("value"), reducer.ref)()
            at_x = aligned_on(key(column.ref), axis).lazy().filter(valid).group_by("run").agg(
                pl.col("_x").filter(pl.col("value") == extreme).min().alias("_at")
            )
            picked = (aligned_on(series, axis).lazy().filter(valid)
                      .join(at_x, on="run", how="inner").group_by("run").agg(aggregate))
            result = result.join(picked, on="run", how="left")
        for axis, aggs in at_n.items():
            picked = aligned_on(series, axis).lazy().filter(valid).group_by("run").agg(aggs)
            result = result.join(picked, on="run", how="left")
    table = (
        result.select("run", *[pl.col(label).cast(pl.Float64) for label in unique])
        .sort("run")
        .collect()
    )
    for column in unique.values():
        if REDUCERS[column.reduce.kind].takes is not None and table.height and \
                table[column.label].null_count() == table.height:
            axis = axis_of(column)
            raise _nowhere(column, aligned_on(key(column), axis), axis)
    return table


def _reduce_plain(points: pl.DataFrame | pl.LazyFrame, columns: list[Column],
                  summary: pl.DataFrame | None) -> pl.DataFrame:
    """:func:`reduce_runs` without at-reduces: from the summary what it answers, the rest
    from the points (:func:`_reduce_points`); the two joined on run."""
    by_summary = [c for c in columns if summary is not None
                  and c.reduce.kind in SUMMARY_REDUCERS]
    rest = [c for c in columns if c not in by_summary]
    parts = []
    if by_summary:
        assert summary is not None
        parts.append(_reduce_summary(points, by_summary, summary))
    if rest:
        parts.append(_reduce_points(points, rest))
    table = parts[0]
    if len(parts) > 1:
        table = table.join(parts[1], on="run", how="full", coalesce=True)
    return table.select("run", *[c.label for c in columns]).sort("run")


def _reduce_points(points: pl.DataFrame | pl.LazyFrame, columns: list[Column]) -> pl.DataFrame:
    """Plain reduces from the points, in one streaming query: the points of every column's
    series (a point may be in several), numbered in read order, keyed by series, grouped
    by series and run. The same frame the reducers read in :func:`reduce_runs`: valid
    points, with the time that orders each series and the read position."""
    def key(column: Column) -> Series:
        return column.spec.name, column.context

    series = list(dict.fromkeys(key(c) for c in columns))
    number = {s: i for i, s in enumerate(series)}
    first: dict[Series, Column] = {}
    for column in columns:
        first.setdefault(key(column), column)
    member = pl.concat_list([pl.when(series_filter(first[s])).then(pl.lit(i, pl.Int32))
                             for i, s in enumerate(series)]).list.drop_nulls()
    time = pl.col("time").cast(pl.Float64)
    frame = (
        points.lazy()
        .filter(pl.any_horizontal([series_filter(first[s]) for s in series]))
        .select("run", time.alias("time"), pl.col("value").cast(pl.Float64), member.alias("__s"))
        .with_row_index(ROW)
        .explode("__s")
        .with_columns(pl.when(pl.col("time").is_null().any().over("__s", "run"))
                      .then(pl.lit(None, dtype=pl.Float64)).otherwise(pl.col("time"))
                      .alias(TIME_KEY))
    )
    valid = pl.col("value").is_not_null() & pl.col("value").is_not_nan()
    present = frame.select("__s", "run").unique()
    reduced = frame.filter(valid).group_by("__s", "run").agg(
        [REDUCERS[c.reduce.kind].aggregate(c.reduce).alias(c.label) for c in columns])
    table = present.join(reduced, on=["__s", "run"], how="left").collect(engine="streaming")
    runs = table.select("run").unique()
    for s in series:
        mine = [c.label for c in columns if key(c) == s]
        part = table.filter(pl.col("__s") == number[s]).select("run", *mine)
        runs = runs.join(part, on="run", how="left")
    return runs.select("run", *[pl.col(c.label).cast(pl.Float64) for c in columns]).sort("run")


def _reduce_summary(points: pl.DataFrame | pl.LazyFrame, columns: list[Column],
                    summary: pl.DataFrame) -> pl.DataFrame:
    """:func:`reduce_runs` of plain reduces from the series summary: each column's summary
    rows (its filter on the summary, as on the points) combined per run. A mean over a
    series kept in several parts (segments written as its file grew) is read from the
    points of those runs, so its rounding is the points' own."""
    def key(column: Column) -> Series:
        return column.spec.name, column.context

    per_series: dict[Series, pl.DataFrame] = {}
    for column in columns:
        if key(column) not in per_series:
            rows = summary.filter(series_filter(column))
            per_series[key(column)] = combine(rows, ["run"]) if rows.height else \
                pl.DataFrame(schema={"run": pl.String, "parts": pl.Int64})
    runs = pl.concat([frame.select("run") for frame in per_series.values()]).unique()
    table = runs
    again: set[str] = set()
    for series, frame in per_series.items():
        mine = [c for c in columns if key(c) == series]
        if frame.height:
            table = table.join(frame.select("run", *[reduced(c.reduce.kind).alias(c.label)
                                                     for c in mine]), on="run", how="left")
        else:
            table = table.with_columns(pl.lit(None, dtype=pl.Float64).alias(c.label)
                                       for c in mine)
        if any(c.reduce.kind == "mean" for c in mine):
            again.update(frame.filter(pl.col("parts") > 1).get_column("run").to_list())
    table = table.select("run", *[pl.col(c.label).cast(pl.Float64) for c in columns]).sort("run")
    if again:
        means = [c for c in columns if c.reduce.kind == "mean"]
        picked = points.lazy().filter(pl.col("run").is_in(sorted(again)))
        exact = reduce_runs(picked, means)
        table = table.update(exact, on="run", how="left", include_nulls=True).sort("run")
    return table


class _Aligned:
    """The series that at=/at-max/at-min read, in logging order and aligned to one value
    per (run, x), the last logged: all of them sorted, checked and aligned at once."""

    def __init__(self, frames: list[pl.DataFrame], x: XChoice, notes: Notes,
                 starts: pl.DataFrame | pl.LazyFrame) -> None:
        self.x, self.notes, self.starts = x, notes, starts
        self.frames: dict[tuple[int, XAxis], pl.DataFrame] = {}
        if not frames:
            self.ordered = self.checks = pl.DataFrame()
            self.choices: dict[int, AxisChoice] = {}
            return
        stacked = pl.concat([frame.with_columns(pl.lit(i, dtype=pl.Int64).alias("__series"))
                             for i, frame in enumerate(frames)])
        read = read_series(stacked, ["__series", "run"], x, "__series")
        self.ordered, self.checks, self.choices = read.frame, read.checks, read.choices

    def choice(self, series: int) -> AxisChoice:
        """The axis ``auto`` chose for a series."""
        return self.choices[series]

    def align(self, pairs: list[tuple[int, XAxis, str]]) -> None:
        """Align each (series, axis) asked for; note the series whose x repeats or goes
        backwards there (``label`` names the series)."""
        wanted = list(dict.fromkeys((series, axis) for series, axis, _ in pairs))
        if not wanted:
            return
        labels = {series: label for series, _, label in pairs}
        parts = []
        for number, (series, axis) in enumerate(wanted):
            mine = self.checks.filter(pl.col("__series") == series)
            if axis != "order" and f"{axis}.dup" not in mine.columns:
                mine = series_checks(self.ordered.filter(pl.col("__series") == series),
                                     ["__series", "run"], [axis])
            for run, label, problem, dup, _ in series_problems(mine, axis, labels, "__series"):
                self.notes.problem(run, label, problem, AT_ACTION.format(axis=axis), dup)
            frame = self.ordered.filter(pl.col("__series") == series)
            if axis == "time":
                frame = frame.join(self.starts.lazy().collect(), on="run", how="left")
            parts.append(frame.with_columns(x_values(axis).alias("_x"),
                                            pl.lit(number, dtype=pl.Int64).alias("__pair")))
        every = align(pl.concat(parts, how="diagonal_relaxed"), ["__pair", "run"], "_x")
        for number, pair in enumerate(wanted):
            self.frames[pair] = every.filter(pl.col("__pair") == number)

    def frame(self, series: int, axis: XAxis) -> pl.DataFrame:
        """The aligned points of a series on an axis (``_x``: the x)."""
        return self.frames[(series, axis)]


def _nowhere(column: Column, points: pl.DataFrame, axis: XAxis) -> SpecError:
    """The error for an at=N or at-max/at-min column that is null for every run."""
    red = column.reduce
    reducer = REDUCERS[red.kind]
    text = str(column.spec)
    label = _series_label(column)
    if reducer.takes == "SPEC":
        assert column.ref is not None
        where = "highest" if reducer.ref == "max" else "lowest"
        return SpecError(f"{text}: no run has a value of {label} at the {axis} where "
                         f"{column.ref.label} is {where}")
    xs = points.get_column("_x")
    xs = xs.filter(xs.is_not_null() & xs.is_not_nan() & points["value"].is_not_nan()
                   & points["value"].is_not_null())
    lo, hi = xs.cast(pl.Float64).min(), xs.cast(pl.Float64).max()
    article = "an" if axis in ("epoch", "order") else "a"
    have = (f"{label} has {axis}s {spec_number(_as_float(lo))}..{spec_number(_as_float(hi))}"
            if xs.len() else f"{label} has no value with {article} {axis}")
    return SpecError(f"{text}: no run has a value at {axis} {spec_number(red.at)} ({have})")


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def resolve_picker(
    text: str,
    runs: pl.DataFrame | pl.LazyFrame,
    points: pl.DataFrame | pl.LazyFrame,
    x: XChoice = "auto",
    notes: Notes | None = None,
    summary: pl.DataFrame | None = None,
    keys: Sequence[str] = (),
) -> str:
    """Resolve a picker to a run id among ``runs``.

    An exact run id wins over the picker syntax. ``best``/``worst`` reduce the spec over
    the runs of ``runs`` only, skip null/NaN values, and break ties by the smallest id.
    ``summary``: the series summary of ``points`` (its context key columns ``keys``): the
    spec is resolved against it, and a plain reduce read from it.
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
    columns = expand([picker.spec], points if summary is None
                     else summary.select("run", "name", *keys))
    if len(columns) != 1:
        labels = ", ".join(c.label for c in columns[:6])
        raise SpecError(f"{picker.text}: names {len(columns)} columns ({labels}); pick one")
    (column,) = columns
    scoped = points.lazy().filter(pl.col("run").is_in(pl.lit(ids).implode()))
    if summary is not None:
        summary = summary.filter(pl.col("run").is_in(pl.lit(ids).implode()))
    table = reduce_runs(scoped, columns, x=x, notes=notes, summary=summary)
    ranked = table.filter(
        pl.col(column.label).is_not_null() & pl.col(column.label).is_not_nan()
    ).sort([column.label, "run"], descending=[picker.kind == "best", False])
    if ranked.is_empty():
        raise SpecError(f"{picker.text}: no run has a value for {column.label}")
    return str(ranked["run"][0])

"""Series: one run's values of one metric column over an x axis, and their smoothing.

A *series* is what ``xp curves`` draws and ``xp aggregate`` aggregates: the points of one
run in one expanded metric column (``f1[lang=de]``), ordered by x.

The long series frame has the columns ``run``, ``metric``, one String column per context
key the columns name (``lang``), the x column and ``value``. The *series keys* are
``metric`` plus those context columns: together they say which column a row belongs to.

x is a view of the series model (:mod:`xpcli.analysis.series_model`): ``epoch``,
``step``, ``time`` (seconds since the run's first point) or ``order`` (the index in
logging order), or ``auto``, which picks one per column. The x column is named after the
axis when every column has the same one, else it is ``x`` with an ``x_axis`` column
beside it. Points without a value on the axis are left out (and counted on stderr).

Alignment: a line has one value per x, so several points of one run at the same x (a
resumed job re-logging an epoch) keep the last logged one; the command says on stderr
how many points that discarded, in which runs and series.

Smoothing (off by default), per run and column, along x:

- ``ema:W`` - exponential moving average with weight ``W`` in [0, 1), debiased the way
  TensorBoard does it: ``s_t = (1-W) * sum_i W^i v_(t-i) / (1 - W^(t+1))`` over the
  finite values seen so far, so a constant series stays constant and the first point is
  kept as is. ``ema:0`` is no smoothing.
- ``ma:K`` - centred moving average over ``K`` points (the window is the point, ``K//2``
  before and ``(K-1)//2`` after), shrinking at the ends; the mean of the finite values in
  the window.

Non-finite values (NaN, inf) are neither smoothed nor used to smooth their neighbours:
they stay in place, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from ..dataset import Dataset
from ..errors import DataError, UsageError, unknown_name
from ..spec.metric import Column, series_filter
from .series_model import (
    ROW,
    X_AXES,
    AxisChoice,
    Notes,
    XAxis,
    XChoice,
    align,
    check_x,
    missing_x,
    read_series,
    run_starts,
    series_problems,
    x_values,
)


@dataclass(frozen=True)
class Smoothing:
    """A smoothing method: ``ema`` with ``weight`` or ``ma`` with ``window`` points."""

    kind: Literal["ema", "ma"]
    weight: float = 0.0
    window: int = 1

    def describe(self) -> str:
        """``debiased EMA, weight 0.6`` or ``centred moving average of 5 points``."""
        if self.kind == "ema":
            return f"debiased EMA, weight {self.weight:g}"
        return f"centred moving average of {self.window} points"


def parse_smoothing(text: str | None) -> Smoothing | None:
    """Parse ``--smooth``: ``ema:0.6``, ``ma:5`` or ``none``/empty (no smoothing)."""
    if text is None or text.strip().lower() in ("", "none", "off"):
        return None
    kind, _, arg = text.strip().partition(":")
    kind = kind.strip().lower()
    try:
        if kind == "ema":
            weight = float(arg)
            if not 0.0 <= weight < 1.0:
                raise ValueError
            return Smoothing("ema", weight=weight)
        if kind == "ma":
            window = int(arg)
            if window < 1:
                raise ValueError
            return Smoothing("ma", window=window)
    except ValueError:
        pass
    raise UsageError(
        f"--smooth {text}: expected ema:W with 0 <= W < 1 (e.g. ema:0.6), ma:K with K >= 1 "
        "points (e.g. ma:5), or none"
    )


def series_keys(columns: Sequence[Column]) -> list[str]:
    """``metric`` plus every context key the columns name, in order of first appearance."""
    keys = ["metric"]
    for column in columns:
        for key, _ in column.context:
            if key not in keys:
                keys.append(key)
    return keys


def extract_series(
    points: pl.DataFrame | pl.LazyFrame,
    columns: Sequence[Column],
    x: XChoice = "auto",
    runs: Sequence[str] | pl.Series | None = None,
    *,
    notes: Notes | None = None,
    action: str = "one value per {axis} kept, the last logged",
) -> pl.DataFrame:
    """The long series frame of ``columns``: ``run``, series keys, x, ``value``.

    ``x`` is an axis or ``auto`` (per column, :mod:`xpcli.analysis.series_model`). When
    every column has the same axis the x column is named after it (``epoch``, ``step``,
    ``time``, ``order``); otherwise it is ``x``, followed by ``x_axis`` naming each row's
    axis. Each series is aligned to one value per x, the last logged; points without an
    x are left out. ``runs`` limits the runs (e.g. those a ``--where`` kept). Rows are
    sorted by series keys, run and x. What the user should know (the axis ``auto``
    chose, series whose x repeats or goes backwards, with ``action`` saying what was
    done, points without an x) is added to ``notes``. A column with points but none on
    the chosen axis raises :class:`DataError` naming an axis to use instead; reduced
    columns (``f1@max``) raise :class:`UsageError`, since a series is not reduced.
    """
    notes = notes if notes is not None else Notes()
    _check_columns(columns, x)
    fast = series_in_read_order(points, columns, x, runs, notes=notes)
    if fast is not None:
        return fast.sorted(series_keys(columns))
    return _extract_general(points, columns, x, runs, notes, action)


def _check_columns(columns: Sequence[Column], x: str) -> None:
    """Refuse an unknown x, reduced columns (a series is not reduced) and no column."""
    check_x(x)
    for column in columns:
        if column.reduce.kind != "last":
            raise UsageError(
                f"{column.spec.text or column.label}: a series is not reduced; drop the "
                f"'@{column.reduce.kind}' part"
            )
    if not columns:
        raise UsageError("no metric column to draw; name one, e.g. f1:lang=*")


def _extract_general(points: pl.DataFrame | pl.LazyFrame, columns: Sequence[Column],
                     x: XChoice, runs: Sequence[str] | pl.Series | None, notes: Notes,
                     action: str) -> pl.DataFrame:
    """:func:`extract_series` for any series: logging order, checks and alignment by the
    series model's general functions."""
    keys = series_keys(columns)
    context_keys = keys[1:]
    lazy = _runs_filtered(points.lazy(), runs)
    # One scan for every column: the metric names and the context keys they filter on.
    names = pl.Series(sorted({c.name for c in columns}), dtype=pl.String)
    base = lazy.filter(pl.col("name").is_in(pl.lit(names).implode())).select(
        "run", "name", *context_keys, "step", "epoch", "time", "value"
    )
    starts = None
    if x == "time":
        # The run's clock starts at its first point over every metric it logged.
        selected, starts = pl.collect_all([base, run_starts(lazy)])
    else:
        selected = base.collect()
    selected = selected.with_row_index(ROW)

    # Sorting 3 M rows by text keys takes seconds; sort by integer codes instead: each
    # column's rank in the order of its (metric, context) key, and each run's rank by id.
    def key_order(column: Column) -> tuple[Any, ...]:
        given = dict(column.context)
        values = [column.name, *[given.get(key) for key in context_keys]]
        return tuple((v is not None, v or "") for v in values)  # nulls first, as before

    ranked = sorted(columns, key=key_order)
    rank = {id(c): i for i, c in enumerate(ranked)}
    label_of = {i: c.label for i, c in enumerate(ranked)}
    run_ids = selected.get_column("run").unique().sort()
    selected = selected.with_columns(
        pl.col("run").replace_strict(run_ids, pl.int_range(run_ids.len(), eager=True),
                                     return_dtype=pl.Int64).alias("__run")
    )
    parts = []
    for column in columns:
        given = dict(column.context)
        parts.append(
            selected.filter(series_filter(column)).select(
                "run",
                pl.lit(column.name, dtype=pl.String).alias("metric"),
                *[pl.lit(given.get(key), dtype=pl.String).alias(key) for key in context_keys],
                "step",
                pl.col("epoch").cast(pl.Float64),
                pl.col("time").cast(pl.Float64),
                pl.col("value").cast(pl.Float64),
                ROW,
                pl.lit(rank[id(column)], dtype=pl.Int64).alias("__col"),
                "__run",
            )
        )
    by = ["__col", "__run"]
    read = read_series(pl.concat(parts), by, x, "__col")
    frame, checks = read.frame, read.checks
    if x == "auto":
        for col, choice in sorted(read.choices.items()):
            notes.chose(label_of[col], choice)
        axis_of: dict[int, XAxis] = {col: choice.axis for col, choice in read.choices.items()}
    else:
        axis_of = {col: x for col in checks.get_column("__col").unique().to_list()}
        _check_axis(checks, label_of, x, notes)
    used: list[XAxis] = sorted(set(axis_of.values()), key=X_AXES.index) or [
        "epoch" if x == "auto" else x]
    for axis in used:
        mine = checks.filter(pl.col("__col").is_in([c for c, a in axis_of.items() if a == axis]))
        for run, label, problem, dup, _ in series_problems(mine, axis, label_of, "__col"):
            notes.problem(run, label, problem, action.format(axis=axis), dup)
    if "time" in used:
        assert starts is not None
        frame = frame.join(starts, on="run", how="left")
    name: str
    if len(used) == 1:
        x_expr = x_values(used[0]) if used[0] != "step" else pl.col("step")
        name, dtype = used[0], (pl.Int64 if used[0] in ("step", "order") else pl.Float64)
    else:
        chain: Any = pl
        for axis in used:
            cols = [c for c, a in axis_of.items() if a == axis]
            chain = chain.when(pl.col("__col").is_in(cols)).then(x_values(axis))
        x_expr, name, dtype = chain, "x", pl.Float64
        frame = frame.with_columns(pl.col("__col").replace_strict(
            {c: a for c, a in axis_of.items()}, return_dtype=pl.String).alias("x_axis"))
    if name in keys:
        raise UsageError(f"context key {name!r} has the name of the x column; pick an x with "
                         "--x epoch, --x step or --x time")
    frame = align(frame.with_columns(x_expr.alias("__x")), by, "__x")
    return frame.select(
        "run", *keys, pl.col("__x").cast(dtype).alias(name),
        *(["x_axis"] if name == "x" else []), "value"
    )


def _runs_filtered(lazy: pl.LazyFrame, runs: Sequence[str] | pl.Series | None) -> pl.LazyFrame:
    """``lazy`` limited to ``runs`` (all of them when None); one run is an equality, which
    the scan checks against each row group's statistics."""
    if runs is None:
        return lazy
    ids = runs if isinstance(runs, pl.Series) else pl.Series(list(runs), dtype=pl.String)
    if ids.len() == 1:
        return lazy.filter(pl.col("run") == ids.item())
    return lazy.filter(pl.col("run").is_in(pl.lit(ids).implode()))


def _disjoint(columns: Sequence[Column]) -> bool:
    """True when no point can be in two of ``columns``: for two columns of one metric, a
    context key both name with different values (an empty value is "no value", which no
    named value equals)."""
    for i, a in enumerate(columns):
        given_a = dict(a.context)
        for b in columns[i + 1:]:
            if a.name != b.name:
                continue
            given_b = dict(b.context)
            if not any(k in given_b and given_b[k] != v for k, v in given_a.items()):
                return False
    return True


#: The column number of a point in :class:`ReadOrderSeries` (its series keys are in
#: ``labels``).
COLUMN = "__column"


@dataclass
class ReadOrderSeries:
    """The long series frame of :func:`extract_series` as a lazy query, unsorted (see
    :func:`series_in_read_order`), one query per column (``parts``): ``run``,
    :data:`COLUMN`, x and ``value``; ``labels`` has the series keys of each column
    number, ``x`` is the x column's name and ``runs`` the runs with a point."""

    parts: list[pl.LazyFrame]
    labels: pl.DataFrame
    x: str
    runs: pl.Series

    def sorted(self, keys: Sequence[str]) -> pl.DataFrame:
        """The frame collected, with its series keys, sorted as :func:`extract_series`
        returns it."""
        return (pl.concat(self.parts).collect().join(self.labels, on=COLUMN, how="left")
                .select("run", *keys, self.x, "value")
                .sort([*keys, "run", self.x], nulls_last=False))


def series_in_read_order(
    points: pl.DataFrame | pl.LazyFrame,
    columns: Sequence[Column],
    x: XChoice = "auto",
    runs: Sequence[str] | pl.Series | None = None,
    *,
    notes: Notes | None = None,
) -> ReadOrderSeries | None:
    """:func:`extract_series` without a sort, where the series model allows it; else None.

    The usual case: no point is in two columns, and in every series the points are logged
    in read order (the times never go back along the read position, or some point has
    no time) and the x axis (``epoch`` or ``step``; for ``auto``, ``epoch`` in every
    column) is present on every point and increases at every point. Then the logging
    order is the read order, ``auto`` chooses ``epoch`` without a remark, alignment keeps
    every point and nothing goes to stderr: the series frame is the selected points with
    their x. Checking this takes one pass over each column's points in read order (a
    series is a run there; a run whose points are not together in the scan, or anything
    else, falls back to :func:`extract_series`' general path, which gives the same
    answer). Returns the lazy frame (``run``, series keys, x, ``value``) and the runs
    with a point; ``auto``'s choice goes to ``notes``.
    """
    axis: XAxis
    if x == "auto":
        axis = "epoch"
    elif x in ("epoch", "step"):
        axis = x
    else:
        return None
    columns = list(columns)
    if not columns or any(c.reduce.kind != "last" for c in columns) or not _disjoint(columns):
        return None
    keys = series_keys(columns)
    if axis in keys:
        return None  # the general path says why the name is taken
    lazy = _runs_filtered(points.lazy(), runs)
    names = pl.Series(sorted({c.name for c in columns}), dtype=pl.String)
    base = lazy.filter(pl.col("name").is_in(pl.lit(names).implode()))
    run, time, value = pl.col("run"), pl.col("time").cast(pl.Float64), pl.col(axis)
    same = (run == run.shift(1)).fill_null(False)
    checks = [
        base.filter(series_filter(c)).select(
            run.filter(~same).implode().alias("starts"),
            (~same | (time >= time.shift(1))).fill_null(True).all().alias("time_ok"),
            (value.is_null() | value.cast(pl.Float64).is_nan()).any().alias("missing"),
            (~same | (value > value.shift(1))).fill_null(True).all().alias("rises"),
        )
        for c in columns
    ]
    # One column at a time: memory holds one column's points, not every column's.
    found = pl.concat([check.collect() for check in checks])
    if found.is_empty() or found.get_column("missing").any() or \
            not found.get_column("time_ok").all() or not found.get_column("rises").all():
        return None
    starts = found.get_column("starts")
    if not any(part.len() for part in starts):
        return None  # no point at all: the general path names the x
    if any(part.len() != part.n_unique() for part in starts):  # a run in several places
        return None
    if x == "auto":
        notes = notes if notes is not None else Notes()
        for column, part in zip(columns, starts):
            if part.len():
                notes.chose(column.label, AxisChoice("epoch"))
    dtype = pl.Int64 if axis == "step" else pl.Float64
    # Each column's points with its number (no point is in two); the keys joined on last.
    parts = [base.filter(series_filter(column)).select(
        "run", pl.lit(number, dtype=pl.UInt32).alias(COLUMN), pl.col(axis).cast(dtype),
        pl.col("value").cast(pl.Float64)) for number, column in enumerate(columns)]
    labels = pl.DataFrame(
        [pl.Series(COLUMN, range(len(columns)), dtype=pl.UInt32),
         pl.Series("metric", [c.name for c in columns], dtype=pl.String),
         *[pl.Series(key, [dict(c.context).get(key) for c in columns], dtype=pl.String)
           for key in keys[1:]]])
    present = starts.explode().drop_nulls().unique().sort().alias("run")
    return ReadOrderSeries(parts, labels, axis, present)


def _check_axis(checks: pl.DataFrame, label_of: dict[int, str], x: XAxis, notes: Notes) -> None:
    """Fail when a column has points but none on the x axis; note columns where some
    points lack it (they are left out)."""
    for col, n, nulls, runs in missing_x(checks, x, "__col"):
        label = label_of[col]
        if nulls == n:
            other = "step" if x != "step" else "epoch"
            raise DataError(f"{label} has no {x} values; use --x {other}, --x time or --x order")
        if nulls:
            notes.without_x(label, nulls, runs, x)


def smooth(series: pl.DataFrame, smoothing: Smoothing | None, x: str,
           keys: Sequence[str] | None = None) -> pl.DataFrame:
    """Smooth ``value`` per run and series (module docs); ``None`` returns ``series``.

    ``keys`` are the series keys (default: every column but ``run``, ``x`` and ``value``).
    The frame comes back sorted by series keys, run and x.
    """
    if smoothing is None:
        return series
    if keys is None:
        keys = [c for c in series.columns if c not in ("run", x, "value")]
    over = ["run", *keys]
    finite = pl.col("value").is_finite()
    clean = pl.when(finite).then(pl.col("value"))  # non-finite -> null, skipped below
    if smoothing.kind == "ema":
        smoothed = clean.ewm_mean(
            alpha=1.0 - smoothing.weight, adjust=True, ignore_nulls=True
        ).over(over)
        # TensorBoard keeps a constant series exactly constant (no rounding drift).
        constant = (
            clean.min().over(over) == clean.max().over(over)
        )
        smoothed = pl.when(constant).then(pl.col("value")).otherwise(smoothed)
    else:
        k = smoothing.window
        # A centred window of K points: K//2 before, (K-1)//2 after. Polars centres odd
        # windows; for even K it puts the extra point before, as here.
        smoothed = clean.rolling_mean(window_size=k, center=True, min_samples=1).over(over)
    return (
        series.sort([*keys, "run", x], maintain_order=True)
        .with_columns(pl.when(finite).then(smoothed).otherwise(pl.col("value")).alias("value"))
    )


class SeriesSet:
    """The series of some metric columns over the runs a ``--where`` kept.

    ``series`` is the long frame of :func:`extract_series` (smoothed if asked), ``keys``
    its series keys, ``runs`` the runs table of the kept runs (params and meta), ``x``
    the name of its x column (an axis, or ``x`` when the columns' axes differ: then
    ``series`` has ``x_axis`` too). Series read in read order
    (:func:`series_in_read_order`) are kept as a lazy query until ``series`` is asked
    for: :meth:`source` hands the query on (an aggregate never holds every point).
    """

    def __init__(self, series: pl.DataFrame | ReadOrderSeries, columns: list[Column],
                 keys: list[str], runs: pl.DataFrame, x: str,
                 smoothing: Smoothing | None = None) -> None:
        self._frame = series if isinstance(series, pl.DataFrame) else None
        self._read_order = series if isinstance(series, ReadOrderSeries) else None
        self.columns, self.keys, self.runs, self.x = columns, keys, runs, x
        self.smoothing = smoothing

    @property
    def series(self) -> pl.DataFrame:
        """The long series frame, sorted by series keys, run and x."""
        if self._frame is None:
            assert self._read_order is not None
            self._frame = self._read_order.sorted(self.keys)
        return self._frame

    def source(self) -> tuple[pl.DataFrame | list[pl.LazyFrame], pl.DataFrame | None]:
        """The series frame as it is held, and the series keys of its column numbers: a
        lazy query per column (rows in no particular order, :data:`COLUMN` in place of
        the keys) until :attr:`series` was asked for, then that frame (and None)."""
        if self._frame is None and self._read_order is not None:
            return self._read_order.parts, self._read_order.labels
        return self.series, None

    def present_runs(self) -> pl.Series:
        """The runs with at least one point in the series (``run``, sorted)."""
        if self._frame is None and self._read_order is not None:
            return self._read_order.runs
        return self.series.get_column("run").unique().sort()

    def describe_x(self) -> str:
        """``epoch``, or ``order for acc; step for loss`` when the columns' axes differ."""
        if self.x != "x":
            return self.x
        by_axis: dict[str, list[str]] = {}
        for row in self.series.select(*self.keys, "x_axis").unique(maintain_order=True).rows():
            *key, axis = row
            context = ",".join(f"{k}={v}" for k, v in zip(self.keys[1:], key[1:]) if v)
            by_axis.setdefault(axis, []).append(f"{key[0]}[{context}]" if context else key[0])
        return "; ".join(f"{axis} for {', '.join(labels)}" for axis, labels in by_axis.items())

    @property
    def n_runs(self) -> int:
        """How many runs have at least one point in the series."""
        return self.present_runs().len()


def load_series(
    dataset: Dataset,
    specs: str | Sequence[str],
    *,
    x: XChoice = "auto",
    where: str | None = None,
    smoothing: Smoothing | None = None,
    notes: Notes | None = None,
    action: str = "one value per {axis} kept, the last logged",
) -> SeriesSet:
    """Expand ``specs`` (``f1:lang=*``), keep the runs matching ``where`` (params, meta and
    metric specs in backticks, as in ``xp select``), extract and smooth their series.

    What the user should know is added to ``notes`` (see :func:`extract_series`; also a
    spec that names a context value most of its metric's points lack)."""
    from ..spec.metric import expand, parse_metric_specs
    from .select import coverage_notes, reduced_table

    check_x(x)
    notes = notes if notes is not None else Notes()
    parsed = parse_metric_specs(specs)
    if not parsed:
        raise UsageError("name at least one metric spec, e.g. f1:lang=*")
    columns = expand(parsed, dataset.series_keys())
    coverage_notes(dataset, columns, notes)
    if where is not None:
        runs = reduced_table(dataset, [], where=where, notes=notes).frame.select(
            dataset.runs.collect_schema().names())
    else:
        runs = dataset.runs.collect()
    kept = runs["run"] if where is not None else None
    keys = series_keys(columns)
    _check_columns(columns, x)
    fast = series_in_read_order(dataset.points, columns, x, kept, notes=notes)
    if fast is not None and smoothing is None:
        return SeriesSet(fast, columns, keys, runs, fast.x)
    series = fast.sorted(keys) if fast is not None else \
        _extract_general(dataset.points, columns, x, kept, notes, action)
    x_name = series.columns[1 + len(keys)]
    series = smooth(series, smoothing, x_name, keys)
    return SeriesSet(series, columns, keys, runs, x_name, smoothing)


def with_params(series: pl.DataFrame, runs: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """``series`` with the run columns ``names`` (params or meta) joined on, after ``run``.

    Raises :class:`UsageError` for a name that is not a column of ``runs``.
    """
    names = [n for n in dict.fromkeys(names) if n not in series.columns]
    check_run_columns(runs, names, "--color")
    if not names:
        return series
    joined = series.join(runs.select("run", *names), on="run", how="left", maintain_order="left")
    return joined.select("run", *names, *[c for c in series.columns if c != "run"])


def check_run_columns(runs: pl.DataFrame, names: Sequence[str], option: str) -> None:
    """Raise :class:`UsageError` when a name is not a param/meta column of ``runs``."""
    for name in names:
        if name not in runs.columns or name == "run":
            raise unknown_name(option, "param or meta column", name,
                               [c for c in runs.columns if c != "run"])

"""Series: one run's values of one metric column over an x axis, and their smoothing.

A *series* is what ``xp curves`` draws and ``xp aggregate`` aggregates: the points of one
run in one expanded metric column (``f1[lang=de]``), ordered by x.

The long series frame has the columns ``run``, ``metric``, one String column per context
key the columns name (``lang``), the x column (named after the axis: ``epoch``, ``step``
or ``time``) and ``value``. The *series keys* are ``metric`` plus those context columns:
together they say which column a row belongs to.

x axes
------
- ``epoch`` and ``step``: as logged. Points without a value on the axis are left out.
- ``time``: relative wall time, seconds since the run's first point (its earliest
  ``time`` over every metric it logged, so the series of one run share one clock).

Several points of one run at the same x (a resumed job re-logging an epoch): the last
logged one wins (the latest ``time``, then the later one read).

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
from ..errors import DataError, UsageError
from ..spec.metric import Column, series_filter
from .reduce import check_x


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
    x: str = "epoch",
    runs: Sequence[str] | pl.Series | None = None,
) -> pl.DataFrame:
    """The long series frame of ``columns`` (``run``, series keys, ``x``, ``value``).

    ``runs`` limits the runs (e.g. those a ``--where`` kept). Rows are sorted by series
    keys, run and x. A column with points but none on the chosen axis raises
    :class:`DataError` naming an axis to use instead; reduced columns (``f1@max``) raise
    :class:`UsageError`, since a series is not reduced.
    """
    check_x(x)
    keys = series_keys(columns)
    context_keys = keys[1:]
    for column in columns:
        if column.reduce.kind != "last":
            raise UsageError(
                f"{column.spec.text or column.label}: a series is not reduced; drop the "
                f"'@{column.reduce.kind}' part"
            )
    lazy = points.lazy()
    if runs is not None:
        ids = runs if isinstance(runs, pl.Series) else pl.Series(list(runs), dtype=pl.String)
        lazy = lazy.filter(pl.col("run").is_in(pl.lit(ids).implode()))
    # One scan for every column: the metric names and the context keys they filter on.
    names = pl.Series(sorted({c.name for c in columns}), dtype=pl.String)
    source_x = "time" if x == "time" else x
    base = lazy.filter(pl.col("name").is_in(pl.lit(names).implode())).select(
        "run", "name", *context_keys, *dict.fromkeys([source_x, "time"]), "value"
    )
    if x == "time":
        # The run's clock starts at its first point over every metric it logged.
        starts = lazy.group_by("run").agg(pl.col("time").min().alias("__start"))
        selected, start = pl.collect_all([base, starts])
        selected = selected.join(start, on="run", how="left").with_columns(
            (pl.col("time") - pl.col("__start")).alias("__x")
        )
    else:
        selected = base.collect().with_columns(pl.col(x).alias("__x"))
    selected = selected.with_row_index("__order")

    # Sorting 3 M rows by text keys takes seconds; sort by integer codes instead: each
    # column's rank in the order of its (metric, context) key, and each run's rank by id.
    def key_order(column: Column) -> tuple[Any, ...]:
        given = dict(column.context)
        values = [column.name, *[given.get(key) for key in context_keys]]
        return tuple((v is not None, v or "") for v in values)  # nulls first, as before

    rank = {id(c): i for i, c in enumerate(sorted(columns, key=key_order))}
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
                "__x",
                pl.col("value").cast(pl.Float64),
                pl.col("time"),
                "__order",
                pl.lit(rank[id(column)], dtype=pl.Int64).alias("__col"),
                "__run",
            )
        )
    if not parts:
        raise UsageError("no metric column to draw; name one, e.g. f1:lang=*")
    frame = pl.concat(parts)
    _check_axis(frame, columns, keys, x)
    # Several points at one x of a series: the last logged wins (latest time, then read
    # order); after the sort those are the last row of each (column, run, x) stretch.
    frame = frame.filter(pl.col("__x").is_not_null()).sort(
        ["__col", "__run", "__x", "time", "__order"], nulls_last=False)
    same = [pl.col(c) == pl.col(c).shift(-1) for c in ("__col", "__run", "__x")]
    frame = frame.filter(~(same[0] & same[1] & same[2]).fill_null(False))
    x_dtype = pl.Float64 if x != "step" else pl.Int64
    return frame.select(
        "run", *keys, pl.col("__x").cast(x_dtype).alias(x), "value"
    )


def _check_axis(frame: pl.DataFrame, columns: Sequence[Column], keys: list[str], x: str) -> None:
    """Fail when a column has points but none with a value on the x axis."""
    by = ["__col"] if "__col" in frame.columns else keys  # an integer key is much cheaper
    counts = frame.group_by(by).agg(pl.col("__x").is_not_null().any().alias("with_x"),
                                    *[pl.col(k).first() for k in keys if k not in by])
    empty = counts.filter(~pl.col("with_x"))
    if empty.is_empty():
        return
    row = empty.row(0, named=True)
    label = next(
        (c.label for c in columns
         if c.name == row["metric"] and all(row.get(k) == v for k, v in c.context)),
        row["metric"],
    )
    other = "step" if x != "step" else "epoch"
    raise DataError(f"{label} has no {x} values; use --x {other} or --x time")


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


@dataclass
class SeriesSet:
    """The series of some metric columns over the runs a ``--where`` kept.

    ``series`` is the long frame of :func:`extract_series` (smoothed if asked), ``keys``
    its series keys, ``runs`` the runs table of the kept runs (params and meta).
    """

    series: pl.DataFrame
    columns: list[Column]
    keys: list[str]
    runs: pl.DataFrame
    x: str
    smoothing: Smoothing | None = None

    @property
    def n_runs(self) -> int:
        """How many runs have at least one point in the series."""
        return self.series["run"].n_unique()


def load_series(
    dataset: Dataset,
    specs: str | Sequence[str],
    *,
    x: str = "epoch",
    where: str | None = None,
    smoothing: Smoothing | None = None,
) -> SeriesSet:
    """Expand ``specs`` (``f1:lang=*``), keep the runs matching ``where`` (params, meta and
    metric specs in backticks, as in ``xp select``), extract and smooth their series."""
    from ..spec.metric import expand, parse_metric_specs
    from .select import reduced_table

    check_x(x)
    parsed = parse_metric_specs(specs)
    if not parsed:
        raise UsageError("name at least one metric spec, e.g. f1:lang=*")
    columns = expand(parsed, dataset.series_keys())
    if where is not None:
        runs = reduced_table(dataset, [], where=where).frame.select(dataset.runs.collect_schema()
                                                                    .names())
    else:
        runs = dataset.runs.collect()
    series = extract_series(dataset.points, columns, x,
                            runs=runs["run"] if where is not None else None)
    keys = series_keys(columns)
    series = smooth(series, smoothing, x, keys)
    return SeriesSet(series, columns, keys, runs, x, smoothing)


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
            known = ", ".join(c for c in runs.columns if c != "run")
            raise UsageError(f"{option} {name}: not a param or meta column; known: {known}")

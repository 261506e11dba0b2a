"""Forgetting: how each context of a metric peaks and declines, per run and per group.

A *curve* is one run's series of one context of a metric (``f1`` with ``lang=zh``): its
points in logging order (:mod:`xpcli.analysis.series_model`: by time when every point has
one, else as read), each placed on an x axis (``epoch``, ``step``, ``time`` or ``order``;
``auto`` picks one axis for every curve of the command, see the series model). For each
curve :func:`curve_stats` computes:

- ``peak`` and ``peak_<x>``: the best value and where it happened. The best value is the
  maximum (``best="max"``, e.g. F1) or the minimum (``best="min"``, e.g. a loss) of every
  point, as ``@max``/``@min`` say. Ties go to the *first logged* of equal best values, so
  a flat curve peaks at its first point.
- ``final``: the last value logged, as ``@last`` says.
- ``drop``: how far the final value is from the peak, in the metric's units, always >= 0
  (``peak - final`` for max, ``final - peak`` for min).
- ``rel_drop``: ``drop / |peak|``, the share of the peak lost by the end (null when the
  peak is 0).
- ``since_peak``: x units (epochs, steps, seconds, points) from the peak to the last point.
- ``slope``: least-squares slope of value over x of the points logged strictly *after*
  the peak, in metric units per x unit (negative = declining F1). Null with fewer than 2
  points after the peak, so a curve still rising at its end has no slope. The peak itself
  is left out because, chosen as the maximum, it sits above the trend by its own noise.
- ``auc``: area under the curve by the trapezoid rule over x, *divided by the x span*
  (last x - first x): the curve's mean height, in the metric's units, comparable across
  runs of different lengths. One point: that point's value.
- ``since_peak``, ``slope`` and ``auc`` need x to move forward: they are null for a curve
  whose x goes backwards (an epoch counter reset by a resumed job; ``auto`` never picks
  such an axis, ``--x`` may), and the command warns.
- ``points``: how many points the statistics used.
- ``status``: ``past_peak`` (final below the peak), ``still_learning`` (the peak is the
  last point: drop 0, slope null), ``plateau`` (the final value equals an earlier peak,
  e.g. a flat curve), ``single_point``, or ``missing`` (the run has no finite point in
  this context: every statistic null).

Every point counts, in logging order: nothing is aligned to one value per x, so
``peak``, ``final`` and ``points`` agree with ``xp select -m 'f1:lang=en@max,f1:lang=en'``
(a job resumed from a checkpoint that re-logs its epochs keeps both values of an epoch).
NaN, infinite and null values, and points without an x value, are dropped before
anything is computed: they neither peak nor enter the slope or the area.

``rank`` orders the contexts of a run (or of a group) by how much they forget: by
``rel_drop``, largest first (1 = forgets most), ties by context label, missing last. The
relative drop is the criterion because it is scale-free (a language peaking at 0.6 and
one peaking at 0.9 compare) and robust: the slope of a noisy curve whose peak falls
near the end rests on a handful of points and swings widely.

For many runs :func:`group_forgetting` aggregates the per-run statistics over the runs
of each group (e.g. each learning rate): the median of every statistic, the
interquartile range (q75 - q25, linear interpolation) of ``rel_drop`` and ``slope`` as
the spread, the number of runs with data and how many are still learning.

Contexts are labelled ``lang=de`` when the spec names one metric (``f1:lang=*``), else
by the full column label ``f1[lang=de]``. A run kept by ``--where`` that lacks a context
gets a ``missing`` row, so every run has one row per context. Points without the chosen
x (no epoch) are dropped (and counted on stderr); when none has it, the error suggests
another axis.

For people, :func:`sparklines` draws each curve in unicode blocks and
:meth:`Forgetting.display` picks the columns that fit a terminal.

Everything is vectorised over runs: one group-by over all curves, no Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from ..dataset import Dataset
from ..errors import DataError, UsageError, unknown_name
from ..spec.metric import Column, expand, parse_metric_specs, series_filter
from .reduce import resolve_picker
from .select import coverage_notes, reduced_table, varying_params
from .series_model import (
    ROW,
    Notes,
    XAxis,
    XChoice,
    check_x,
    in_logging_order,
    missing_x,
    read_series,
    run_starts,
    series_problems,
    x_values,
)

KEYS = ("run", "context")
BEST = ("max", "min")
STATUSES = ("past_peak", "still_learning", "plateau", "single_point", "missing")
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 16
#: Per-run statistics that the group table summarises with a median.
MEDIAN_STATS = ("peak", "final", "drop", "rel_drop", "since_peak", "slope", "auc")
SPREAD_STATS = ("rel_drop", "slope")


def _check(curves: pl.DataFrame, x: str, keys: Sequence[str], best: str) -> None:
    if best not in BEST:
        raise UsageError(f"best={best!r}: use 'max' (e.g. F1) or 'min' (e.g. a loss)")
    missing = [c for c in (*keys, x, "value") if c not in curves.columns]
    if missing:
        raise UsageError(f"curves frame lacks column {missing[0]!r}; it needs "
                         f"{', '.join((*keys, x, 'value'))}")


def clean_curves(curves: pl.DataFrame | pl.LazyFrame, x: str = "epoch",
                 keys: Sequence[str] = KEYS) -> pl.DataFrame:
    """Finite values with an x, each curve's points together in logging order: what every
    statistic sees.

    The logging order is the series model's: with a ``time`` column, by time when every
    point of the curve has one, then row order; without, row order. Then non-finite
    values and points without an x are dropped. Nothing is aligned: every point counts.
    """
    frame = curves.collect() if isinstance(curves, pl.LazyFrame) else curves
    # On x = time the x is the run's clock, which orders the points as their time does.
    times = ["time"] if "time" in frame.columns and x != "time" else []
    frame = frame.select(*keys, pl.col(x).cast(pl.Float64), *times,
                         pl.col("value").cast(pl.Float64)).with_row_index(ROW)
    return (
        in_logging_order(frame, keys).lazy().select(*keys, x, "value")
        .filter(pl.col("value").is_finite() & pl.col(x).is_not_null()
                & pl.col(x).is_finite())
        .collect()
    )


def curve_stats(curves: pl.DataFrame | pl.LazyFrame, x: str = "epoch",
                keys: Sequence[str] = KEYS, best: str = "max") -> pl.DataFrame:
    """Peak, final, drop, slope after the peak and AUC of every curve (see module doc).

    ``curves`` is long: ``keys`` (default ``run``, ``context``) name a curve, ``x`` its
    x axis, ``value`` its values, an optional ``time`` the logging order (see
    :func:`clean_curves`). Returns one row per curve that has at least one finite point,
    with ``keys``, ``peak``, ``peak_<x>``, ``final``, ``drop``, ``rel_drop``,
    ``since_peak``, ``slope``, ``auc``, ``points``, ``status`` (unranked).
    """
    keys = list(keys)
    frame = curves.collect() if isinstance(curves, pl.LazyFrame) else curves
    _check(frame, x, keys, best)
    clean = clean_curves(frame, x, keys)
    sign = 1.0 if best == "max" else -1.0
    value, xs = pl.col("value"), pl.col(x)
    # First index of the best value: arg_max returns the first of equal maxima.
    at_peak = (value * sign).arg_max()
    after = pl.int_range(pl.len()) > at_peak
    x_after, v_after = xs.filter(after), value.filter(after)
    n_after = after.sum()
    slope = pl.when(n_after >= 2).then(pl.cov(x_after, v_after) / x_after.var())
    span = xs.last() - xs.first()
    area = (xs.diff() * (value + value.shift(1)) / 2).sum()
    forward = ~(xs.diff() < 0).any()  # since_peak, slope and auc need x to move forward
    stats = clean.group_by(keys, maintain_order=True).agg(
        value.gather(at_peak).first().alias("peak"),
        xs.gather(at_peak).first().alias(f"peak_{x}"),
        value.last().alias("final"),
        pl.when(forward).then(xs.last() - xs.gather(at_peak).first()).alias("since_peak"),
        pl.when(forward).then(slope).alias("slope"),
        pl.when(forward).then(pl.when(span > 0).then(area / span).otherwise(value.mean()))
        .alias("auc"),
        pl.len().cast(pl.Int64).alias("points"),
        (at_peak == pl.len() - 1).alias("_peak_is_last"),
    )
    drop = (pl.col("peak") - pl.col("final") if best == "max"
            else pl.col("final") - pl.col("peak")).alias("drop")
    stats = stats.with_columns(drop).with_columns(
        pl.when(pl.col("peak") != 0).then(pl.col("drop") / pl.col("peak").abs())
        .alias("rel_drop"),
        # A vertical run of points after the peak (same x) has no defined slope.
        pl.col("slope").fill_nan(None),
        pl.when(pl.col("points") == 1).then(pl.lit("single_point"))
        .when(pl.col("_peak_is_last")).then(pl.lit("still_learning"))
        .when(pl.col("drop") > 0).then(pl.lit("past_peak"))
        .otherwise(pl.lit("plateau")).alias("status"),
    )
    return stats.select(*keys, "peak", f"peak_{x}", "final", "drop", "rel_drop",
                        "since_peak", "slope", "auc", "points", "status")


def rank_contexts(stats: pl.DataFrame, within: Sequence[str] = ("run",),
                  criterion: str = "rel_drop") -> pl.DataFrame:
    """Add ``rank`` (1 = forgets most) per ``within`` group, by ``criterion`` descending.

    Ties go to the context label (alphabetical); rows with a null criterion rank last.
    The frame comes back sorted by ``within`` then rank.
    """
    within = list(within)
    ordered = stats.sort([*within, criterion, "context"], descending=[
        *([False] * len(within)), True, False], nulls_last=True, maintain_order=True)
    ranked = ordered.with_columns(
        pl.int_range(1, pl.len() + 1).over(within).cast(pl.Int64).alias("rank")
        if within else pl.int_range(1, pl.len() + 1).cast(pl.Int64).alias("rank")
    )
    return ranked.select(*within, "rank", *[c for c in stats.columns if c not in within])


def sparklines(curves: pl.DataFrame | pl.LazyFrame, x: str = "epoch",
               keys: Sequence[str] = KEYS, width: int = SPARK_WIDTH) -> pl.DataFrame:
    """A unicode sparkline per curve (``curve`` column): ``▁▂▃▄▅▆▇█``.

    The x range is cut into at most ``width`` equal bins, each showing the mean of its
    points; each line is scaled to its own min..max (read levels from the numbers, the
    line shows the shape). A flat curve is a row of ``▄``. Non-finite values are dropped.
    """
    keys = list(keys)
    clean = clean_curves(curves, x, keys)
    xs, value = pl.col(x), pl.col("value")
    lo, hi = xs.min().over(keys), xs.max().over(keys)
    bins = pl.min_horizontal(
        pl.when(hi > lo).then(((xs - lo) / (hi - lo) * width).floor()).otherwise(0.0),
        width - 1,
    ).cast(pl.Int64)
    binned = (clean.with_columns(bins.alias("_bin"))
              .group_by([*keys, "_bin"]).agg(value.mean()))
    vlo, vhi = value.min().over(keys), value.max().over(keys)
    top = len(SPARK_BLOCKS) - 1
    level = pl.when(vhi > vlo).then(((value - vlo) / (vhi - vlo) * top).round()).otherwise(
        top // 2 + 0.0).cast(pl.Int64)
    chars = level.replace_strict(dict(enumerate(SPARK_BLOCKS)), return_dtype=pl.String)
    return (binned.with_columns(chars.alias("_char"))
            .group_by(keys, maintain_order=True)
            .agg(pl.col("_char").sort_by("_bin").str.join("").alias("curve")))


def forgetting_stats(curves: pl.DataFrame | pl.LazyFrame, x: str = "epoch",
                     runs: Sequence[str] | None = None, contexts: Sequence[str] | None = None,
                     best: str = "max", sparkline: bool = False) -> pl.DataFrame:
    """Per run and context: the statistics of :func:`curve_stats`, ranked per run.

    ``curves`` has ``run``, ``context``, ``x`` and ``value``. Every pair of ``runs``
    (default: the runs in ``curves``) and ``contexts`` (default: those in ``curves``) gets
    a row; a run without a finite point in a context gets status ``missing`` and nulls.
    ``sparkline`` adds a ``curve`` column of unicode blocks (for terminals).
    """
    frame = curves.collect() if isinstance(curves, pl.LazyFrame) else curves
    stats = curve_stats(frame, x=x, best=best)
    run_ids = (pl.Series("run", list(runs), dtype=pl.String) if runs is not None
               else frame.get_column("run").unique(maintain_order=True))
    labels = (pl.Series("context", list(contexts), dtype=pl.String) if contexts is not None
              else frame.get_column("context").unique(maintain_order=True))
    grid = run_ids.to_frame("run").join(labels.to_frame("context"), how="cross")
    full = grid.join(stats, on=list(KEYS), how="left").with_columns(
        pl.col("status").fill_null("missing"), pl.col("points").fill_null(0))
    ranked = rank_contexts(full)
    if sparkline:
        lines = sparklines(frame, x=x)
        ranked = ranked.join(lines, on=list(KEYS), how="left").select(
            "run", "rank", "context", "curve",
            *[c for c in ranked.columns if c not in ("run", "rank", "context")])
    return ranked


def group_forgetting(per_run: pl.DataFrame, runs: pl.DataFrame | pl.LazyFrame,
                     by: Sequence[str], x: str = "epoch") -> pl.DataFrame:
    """Aggregate per-run statistics over the runs of each group of ``by`` params.

    ``per_run`` is :func:`forgetting_stats` output; ``runs`` holds ``run`` and the ``by``
    columns. Per group and context: ``runs`` (with data), the median of each statistic,
    ``rel_drop_iqr`` and ``slope_iqr`` (q75 - q25), ``still_learning`` (run count), and
    ``rank`` of the contexts within the group by median ``rel_drop``.
    """
    by = list(by)
    table = runs.lazy().select("run", *by).collect()
    joined = per_run.join(table, on="run", how="left")
    has_data = pl.col("status") != "missing"
    aggs: list[Any] = [has_data.sum().cast(pl.Int64).alias("runs")]
    for name in ("peak", f"peak_{x}", *MEDIAN_STATS[1:]):
        aggs.append(pl.col(name).median().alias(name))
        if name in SPREAD_STATS:
            aggs.append((pl.col(name).quantile(0.75, "linear")
                         - pl.col(name).quantile(0.25, "linear")).alias(f"{name}_iqr"))
    aggs.append((pl.col("status") == "still_learning").sum().cast(pl.Int64)
                .alias("still_learning"))
    grouped = joined.group_by([*by, "context"]).agg(aggs).sort([*by, "context"],
                                                                nulls_last=True)
    return rank_contexts(grouped, within=by)


# -- from a loaded runs directory ------------------------------------------------------


@dataclass
class Forgetting:
    """The result of :func:`analyse`: tables for output, curves for the figure.

    ``stats``: one row per run and context (:func:`forgetting_stats`, plus the ``by``
    columns). ``groups``: per group and context (:func:`group_forgetting`), or None
    without ``by``. ``curves``: the points used (``run``, ``context``, ``x``, ``value``
    and the ``by`` columns); ``group_curves``: per group (all runs without ``by``),
    context and x, the median over the group's runs, and ``group_stats`` their
    :func:`curve_stats` (None for one run). ``run``: the picked run id (one-run mode).
    ``picked_by``: ``best on f1:lang=en`` when a picker chose the run. ``title``: what
    the table shows, naming the run and its params.
    """

    stats: pl.DataFrame
    groups: pl.DataFrame | None
    curves: pl.DataFrame
    group_curves: pl.DataFrame | None
    group_stats: pl.DataFrame | None
    x: str
    best: str
    by: list[str]
    run: str | None
    run_params: dict[str, Any]
    metric: str
    picked_by: str
    title: str

    @property
    def table(self) -> pl.DataFrame:
        """What the command prints: the group table with ``by``, else per run."""
        return self.groups if self.groups is not None else self.stats

    def display(self, compact: bool = False) -> pl.DataFrame:
        """:attr:`table`, or with ``compact`` the columns that fit a terminal.

        Compact (for a rich table): one run drops ``run`` (the title names it), ``drop``,
        ``since_peak`` and ``points``; many runs also drop ``auc``; groups show ``runs``,
        medians of peak, its x, rel_drop and slope, the rel_drop IQR and the count of runs
        still learning, in rank order without the ``rank`` column. Machine formats always
        get every column.
        """
        table = self.table
        if not compact:
            return table
        wanted = [*self.by, "run", "rank", "context", "curve", "runs", "peak",
                  f"peak_{self.x}", "final", "rel_drop", "rel_drop_iqr", "slope", "auc",
                  "still_learning", "status"]
        drop = {"rank", "final", "auc"} if self.groups is not None else set()
        if self.run is not None:
            drop |= {"run"}
        elif self.groups is None:
            drop |= {"auc"}
        return table.select(c for c in wanted if c in table.columns and c not in drop)


def context_labels(columns: Sequence[Column]) -> dict[str, str]:
    """Column label -> context label: ``lang=de`` when every column is of one metric and
    names a context, else the full label ``f1[lang=de]`` (unambiguous across metrics)."""
    names = {c.spec.name for c in columns}
    if len(names) == 1 and all(c.context for c in columns):
        return {c.label: ",".join(f"{k}={v}" for k, v in c.context) for c in columns}
    return {c.label: c.label for c in columns}


#: What xp forgetting does with a curve whose x goes backwards, or repeats.
BACKWARDS_ACTION = ("peak, final and drop read every point in logging order; since_peak, "
                    "slope and auc left empty")
REPEATS_ACTION = "every point counted, in logging order"


def series_curves(points: pl.DataFrame | pl.LazyFrame, columns: Sequence[Column],
                  x: XChoice = "auto", notes: Notes | None = None,
                  starts: pl.DataFrame | pl.LazyFrame | None = None) -> pl.DataFrame:
    """The points of each column as one long frame in logging order: ``run``,
    ``context`` (see :func:`context_labels`: ``lang=de``), the x column and ``value``.

    ``x`` is an axis, or ``auto``: one axis for every curve, chosen by the rule of
    :mod:`xpcli.analysis.series_model`; the x column is named after it. Every point
    counts (no alignment); points without an x are left out. What the user should know
    (the axis chosen, curves whose x goes backwards or repeats, points without an x) is
    added to ``notes``. ``starts`` (``run``, ``__start``) is where each run's ``time``
    starts (default: its first time in ``points``). One filter per column (a handful),
    never a loop over runs.
    """
    check_x(x)
    notes = notes if notes is not None else Notes()
    labels = context_labels(columns)
    parts = [
        points.lazy().filter(series_filter(column)).select(
            pl.col("run").cast(pl.String), pl.lit(labels[column.label]).alias("context"),
            *[pl.col(c).cast(pl.Float64) for c in ("step", "epoch", "time", "value")])
        for column in columns
    ]
    if not parts:
        return pl.DataFrame(schema={"run": pl.String, "context": pl.String,
                                    "epoch" if x == "auto" else x: pl.Float64,
                                    "value": pl.Float64})
    read = read_series(pl.concat(parts).collect().with_row_index(ROW), KEYS, x, None)
    frame, checks = read.frame, read.checks
    axis: XAxis
    if x == "auto":
        choice = read.choices.get(None)
        axis = choice.axis if choice is not None else "epoch"
        for column in columns:
            if choice is not None:
                notes.chose(column.label, choice)
    else:
        axis = x
    by_context = {label: column for column, label in
                  ((c, labels[c.label]) for c in columns)}
    shown = {context: column.label for context, column in by_context.items()}
    for run, label, problem, _, back in series_problems(checks, axis, shown, "context"):
        notes.problem(run, label, problem, BACKWARDS_ACTION if back else REPEATS_ACTION)
    for context, n, nulls, runs in missing_x(checks, axis, "context"):
        if 0 < nulls < n:
            notes.without_x(shown[context], nulls, runs, axis)
    if axis == "time":
        source = starts if starts is not None else run_starts(points)
        frame = frame.join(source.lazy().collect(), on="run", how="left")
    return frame.select("run", "context", x_values(axis).alias(axis), "value")


def describe_params(values: dict[str, Any]) -> str:
    """``lr=3e-05, seed=5``: params as a short, readable phrase."""
    def show(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:g}".replace("e-0", "e-").replace("e+0", "e+")  # 3e-5, like ids
        return str(value)
    return ", ".join(f"{k}={show(v)}" for k, v in values.items())


def analyse(dataset: Dataset, spec: str, *, run: str | None = None,
            where: str | None = None, by: Sequence[str] = (), x: XChoice = "auto",
            best: str = "max", sparkline: bool = False,
            notes: Notes | None = None) -> Forgetting:
    """Forgetting of the contexts of ``spec`` (``f1:lang=*``) for one run or many.

    ``run`` is a run id or picker (``best:f1:lang=en``), resolved among the runs kept by
    ``where`` (params, meta and metric specs in backticks, ```f1:lang=en@max` > 0.9``, as
    in ``xp select``); without it every kept run is analysed. ``by`` (params) adds the group
    table. The title names the run's params (``dataset.params``) that vary. ``x`` is an
    axis or ``auto`` (:mod:`xpcli.analysis.series_model`); what the user should know about
    the curves read is added to ``notes``.
    Raises :class:`UsageError`/:class:`SpecError` for bad input, :class:`DataError` when
    no point has the x axis.
    """
    check_x(x)
    notes = notes if notes is not None else Notes()
    points, runs, params = dataset.points, dataset.runs, dataset.params
    if best not in BEST:
        raise UsageError(f"--best {best}: use max (e.g. F1) or min (e.g. a loss)")
    by = list(by)
    if run is not None and by:
        raise UsageError("--run and --by exclude each other: --by aggregates many runs")
    specs = parse_metric_specs(spec)
    for item in specs:
        if item.reduce.kind != "last" or "@" in item.text:
            raise UsageError(f"{item.text}: forgetting reads whole curves; drop the '@...' "
                             f"(e.g. {item.name}{''.join(f':{k}={v}' for k, v in item.context)})")
    all_runs = runs.collect()
    runs_frame = all_runs
    unknown = [b for b in by if b not in runs_frame.columns]
    if unknown:
        raise unknown_name("--by", "param", unknown[0], params)
    if where:
        kept = reduced_table(dataset, [], where=where, notes=notes).frame.get_column("run")
        runs_frame = runs_frame.filter(pl.col("run").is_in(kept.implode()))
        if runs_frame.is_empty():
            raise DataError(f"--where {where!r} keeps no run")
    columns = expand(specs, points)
    coverage_notes(points, columns, notes)
    picked_by = ""
    if run is not None:
        picker = run.strip()
        run = resolve_picker(run, runs_frame, points, x=x, notes=notes)
        runs_frame = runs_frame.filter(pl.col("run") == run)
        if picker != run:
            kind, _, what = picker.partition(":")
            word = {"max": "best", "min": "worst"}.get(kind.lower(), kind.lower())
            picked_by = f"{word} on {what}"
    run_ids = runs_frame.get_column("run").cast(pl.String)
    curves = series_curves(points.filter(pl.col("run").is_in(run_ids.implode())),
                           columns, x, notes, starts=run_starts(points))
    axis = curves.columns[2]
    if curves.filter(pl.col(axis).is_not_null()).is_empty():
        raise DataError(f"no point of {', '.join(c.label for c in columns[:4])} in these runs "
                        f"has a{'n' if axis == 'epoch' else ''} {axis}; try --x "
                        f"{'step' if axis == 'epoch' else 'epoch'} or --x order")
    labels = list(context_labels(columns).values())
    stats = forgetting_stats(curves, x=axis, runs=run_ids.to_list(), contexts=labels,
                             best=best, sparkline=sparkline and not by)
    shown = [p for p in params if p in runs_frame.columns]
    run_params: dict[str, Any] = {}
    groups = group_curves = group_stats = None
    if run is None:
        # The median curve of each group (all runs without --by) and its peak, to draw.
        if by:
            curves = curves.join(runs_frame.select("run", *by), on="run", how="left")
        group_curves = (curves.filter(pl.col("value").is_finite())
                        .group_by([*by, "context", axis])
                        .agg(pl.col("value").median())
                        .sort([*by, "context", axis], nulls_last=True))
        group_stats = curve_stats(group_curves, x=axis, keys=[*by, "context"], best=best)
    metric = ", ".join(dict.fromkeys(s.name for s in specs))
    order = "most forgotten first (by rel_drop)"
    if run is not None:
        varying = varying_params(all_runs, shown) or shown
        row = runs_frame.row(0, named=True)
        run_params = {p: row[p] for p in varying}
        described = describe_params(run_params)
        title = f"{run} ({described}): {metric} per context, {order}" if described else \
            f"{run}: {metric} per context, {order}"
    elif by:
        groups = group_forgetting(stats, runs_frame.select("run", *by), by, x=axis)
        if sparkline:
            assert group_curves is not None
            lines = sparklines(group_curves.with_columns(
                pl.concat_str([pl.col(b).cast(pl.String) for b in by], separator="/")
                .alias("_group")), x=axis, keys=["_group", "context"])
            keyed = groups.with_columns(
                pl.concat_str([pl.col(b).cast(pl.String) for b in by], separator="/")
                .alias("_group"))
            groups = keyed.join(lines, on=["_group", "context"], how="left").select(
                *by, "rank", "context", "curve",
                *[c for c in groups.columns if c not in (*by, "rank", "context")])
        title = (f"{metric} per {', '.join(by)} and context, medians over {run_ids.len()} "
                 f"runs, {order}")
    else:
        title = f"{metric} per run and context ({run_ids.len()} runs), {order}"
    return Forgetting(stats=stats, groups=groups, curves=curves, group_curves=group_curves,
                      group_stats=group_stats, x=axis, best=best, by=by, run=run,
                      run_params=run_params, metric=metric, picked_by=picked_by,
                      title=title)

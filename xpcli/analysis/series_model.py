"""The series model: how every command reads the points of a series.

A *series* is the points of one run in one metric column: one metric name with one
context (``f1`` with ``lang=de``, in run ``r1``). Every command reads a series through
this module, so ``xp select``, ``xp group``, ``xp curves``, ``xp aggregate``,
``xp forgetting``, ``xp parcoords`` and ``xp selection`` agree on what its points are.

Logging order
=============

Every point of a series has a place in the series' *logging order*:

- when **every** point of the series has a ``time``: by ``time``, ties by read position;
- otherwise (some or all points lack a time): by read position alone. A series is never
  sorted by time in part, so the order is always well defined.

The *read position* is where the reader met the point: lines in file order (rows in a
Parquet file), a series spread over several files file by file. A run's points are
usually in one file, appended as they are logged, and :class:`~xpcli.writer.Run` writes
a time on every point, so both rules agree. Importers write a source's points in the
source's own order, with the source's timestamps. A point's ``order`` is its index in
the logging order of its series: 0 for the first point logged.

Reducers
========

``first``, ``last``, ``min``, ``max``, ``mean`` and ``median`` reduce over **every** point
of the series, NaN and null values dropped first, never a deduplicated subset: ``last``
is the last logged value, ``first`` the first; x plays no part in them.

x views
=======

x places a point on an axis; it never changes which points a reducer sees. ``--x``
(every command that draws, aligns or places ``at=N`` has it):

- ``epoch``, ``step``: as logged (a point without one has no x there);
- ``time``: seconds since the run's first point (its earliest ``time`` over every metric
  it logged, so the series of one run share one clock);
- ``order``: the index in logging order;
- ``auto`` (the default), per column (a metric and context, over every run the command
  reads, so a panel or an aggregate has one x): the first of

  1. ``epoch`` when, in every run, every point has an epoch and epochs increase at every
     point;
  2. ``step``, likewise;
  3. ``epoch`` when, in every run, every point has an epoch, epochs never go backwards and
     are not all equal (a series of one point needs only an epoch);
  4. ``step``, likewise;
  5. ``order``.

  So a counter that resets (a resumed job), is missing on some points or is the same
  for every point (all at step 0) is not used; a repeated epoch gives way to a step that
  increases (a per-step loss logged with a whole-number epoch). stderr says which axis
  was chosen and why when it is not ``epoch`` for every column. ``xp forgetting``
  compares the contexts of a run along one x, so it makes this choice once for all of its
  columns.

A series whose x goes backwards or repeats gets a one-line warning naming the run and the
series, saying what the command did with it.

Alignment
=========

One value per (run, series, x), the last logged, is the *alignment* rule of ``xp curves``
and ``xp aggregate`` (a line or an aggregate has one value at an x) and of the ``at=N``,
``at-max(SPEC)`` and ``at-min(SPEC)`` reducers (a value *at* an x). When it discards
points, stderr says how many, in which runs and series. Nothing else aligns:
``xp forgetting`` reads every point in logging order (its peak is ``@max``, its final
value ``@last``) and when x goes backwards in a series it leaves that series'
``since_peak``, ``slope`` and ``auc`` empty, since they need x to move forward.

What the user is told
=====================

Functions here and the analysis entry points add what the user should know to a
:class:`Notes` (which axis ``auto`` chose, series whose x goes backwards or repeats,
points alignment discarded, specs that select a minority of a metric's points); the
command prints :meth:`Notes.lines` on stderr. Analysis never prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import polars as pl

from ..errors import UsageError
from ..spec.metric import POSITION, ROW, TIME_KEY, series_filter
from . import X_AXES as _AXES
from . import X_CHOICES as _CHOICES

__all__ = [
    "POSITION",
    "ROW",
    "ReadSeries",
    "START",
    "TIME_KEY",
    "X_AXES",
    "X_CHOICES",
    "AxisChoice",
    "Notes",
    "XAxis",
    "XChoice",
    "align",
    "auto_checks",
    "check_x",
    "choose_axes",
    "context_coverage",
    "in_logging_order",
    "missing_x",
    "read_series",
    "run_starts",
    "series_checks",
    "series_problems",
    "time_key",
    "x_values",
]

XAxis = Literal["epoch", "step", "time", "order"]
XChoice = Literal["auto", "epoch", "step", "time", "order"]
X_AXES = cast("tuple[XAxis, ...]", _AXES)
X_CHOICES = cast("tuple[XChoice, ...]", _CHOICES)

#: Column names this module adds to the frames it is given (the reducers of
#: :mod:`xpcli.spec.metric` read the first three): the time that orders a series (null when
#: any point lacks one), the index in logging order (the order x), the read position, and
#: the run's first time (where the time x starts).
START = "__start"

#: How many series or runs a message names before "and N more".
SHOWN = 3
#: The axes ``auto`` considers, in order of preference; ``order`` always works.
_AUTO = ("epoch", "step")


def check_x(x: str) -> None:
    """Refuse an x other than auto, epoch, step, time or order (exit 2)."""
    if x not in X_CHOICES:
        raise UsageError(f"--x {x}: unknown x axis {x!r} (expected one of "
                         f"{', '.join(X_CHOICES)})")


# -- logging order ----------------------------------------------------------------------


def time_key(frame: pl.DataFrame, by: Sequence[str]) -> pl.Expr:
    """The time that orders the points of each series (``by``): its ``time`` when every
    point of the series has one, else null, so the read position alone orders it.

    The window over ``by`` is skipped when every or no point of ``frame`` has a time.
    """
    if "time" not in frame.columns:
        return pl.lit(None, dtype=pl.Float64)
    missing = frame.get_column("time").null_count()
    if missing == 0:
        return pl.col("time").cast(pl.Float64)
    if missing == frame.height:
        return pl.lit(None, dtype=pl.Float64)
    return (pl.when(pl.col("time").is_null().any().over(list(by)))
            .then(pl.lit(None, dtype=pl.Float64))
            .otherwise(pl.col("time").cast(pl.Float64)))


def _same_series(by: Sequence[str]) -> pl.Expr:
    """True where a row belongs to the series of the row before it."""
    same = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(1)) for k in by]) \
        if by else pl.lit(True)
    return same & (pl.int_range(pl.len()) > 0)


def in_logging_order(frame: pl.DataFrame, by: Sequence[str], row: str = ROW) -> pl.DataFrame:
    """``frame`` sorted by series (``by``), then logging order, with :data:`TIME_KEY` and
    :data:`POSITION` (0 for the first point logged of each series).

    ``frame``'s rows are in read order within each series, and ``row`` holds the read
    position. Usually a series' times already rise in read order: then a stable sort by
    series is all it takes.
    """
    by = list(by)
    keyed = frame.with_columns(time_key(frame, by).alias(TIME_KEY))
    ordered = keyed.sort(by, maintain_order=True) if by else keyed
    key = pl.col(TIME_KEY)
    if not ordered.select((~_same_series(by) | key.is_null() | (key >= key.shift(1)))
                          .all()).item():
        ordered = keyed.sort([*by, TIME_KEY, row], nulls_last=False)
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    start = pl.when(~_same_series(by)).then(index).forward_fill()
    return ordered.with_columns((index - start).alias(POSITION))


def run_starts(points: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """``run`` and :data:`START`, the run's earliest ``time`` over every point given: where
    the ``time`` x of its series starts."""
    return points.lazy().group_by("run").agg(
        pl.col("time").cast(pl.Float64).min().alias(START))


def x_values(axis: XAxis) -> pl.Expr:
    """The x of each point on ``axis`` (Float64): ``epoch``/``step`` as logged, ``time``
    minus the run's :data:`START`, ``order`` its :data:`POSITION`."""
    if axis == "time":
        return (pl.col("time").cast(pl.Float64) - pl.col(START)).cast(pl.Float64)
    if axis == "order":
        return pl.col(POSITION).cast(pl.Float64)
    return pl.col(axis).cast(pl.Float64)


# -- checking and choosing x ------------------------------------------------------------


def series_checks(frame: pl.DataFrame, by: Sequence[str],
                  axes: Sequence[str] = ("epoch", "step", "time")) -> pl.DataFrame:
    """Per series (``by``; ``frame`` from :func:`in_logging_order`, each series' rows
    together in logging order): what each axis does along it.

    Columns: ``by``, ``run`` (its first value when ``run`` is not in ``by``), ``n``
    (points), and per axis ``A`` present in ``frame``: ``A.nulls`` (points without one),
    ``A.back`` (goes backwards somewhere), ``A.from``/``A.to`` (the first backward step),
    ``A.dup`` (points at an x logged before in the series: what alignment discards),
    ``A.distinct`` and ``A.lo`` (the smallest value).

    Row-wise steps and one cheap group-by; counting distinct values (a sort per series)
    is left to the series that go backwards, which are rare.
    """
    by = list(by)
    axes = [a for a in axes if a in frame.columns]
    series_id = (~_same_series(by)).cum_sum()
    steps: list[pl.Expr] = []
    aggs: list[pl.Expr] = [pl.len().alias("n")]
    if "run" not in by:
        aggs.append(pl.col("run").first())
    for axis in axes:
        value = pl.col(axis).cast(pl.Float64)
        # The previous value of the series on this axis, skipping points without one.
        prev = value.forward_fill().shift(1)
        prev_series = pl.when(value.is_not_null()).then(series_id).forward_fill().shift(1)
        step = pl.when(value.is_not_null() & (prev_series == series_id)).then(value - prev)
        steps += [step.alias(f"__{axis}.step"), prev.alias(f"__{axis}.prev")]
        went_back = pl.col(f"__{axis}.step") < 0
        aggs += [
            value.null_count().alias(f"{axis}.nulls"),
            went_back.sum().alias(f"{axis}.backs"),
            (pl.col(f"__{axis}.step") == 0).sum().alias(f"{axis}.ties"),
            pl.col(f"__{axis}.prev").filter(went_back).first().alias(f"{axis}.from"),
            value.filter(went_back).first().alias(f"{axis}.to"),
            value.min().alias(f"{axis}.lo"),
        ]
    marked = frame.with_columns(steps)
    checks = marked.group_by(by).agg(aggs)
    for axis in axes:
        count = pl.col("n") - pl.col(f"{axis}.nulls")
        # Without a step back, the ties are the repeats; otherwise count distinct values.
        backwards = checks.filter(pl.col(f"{axis}.backs") > 0).select(by)
        distinct = (marked.join(backwards, on=by, how="semi", nulls_equal=True)
                    .group_by(by).agg(pl.col(axis).drop_nulls().n_unique()
                                      .alias(f"__{axis}.distinct")))
        checks = checks.join(distinct, on=by, how="left", nulls_equal=True).with_columns(
            (pl.col(f"{axis}.backs") > 0).alias(f"{axis}.back"),
            pl.coalesce(pl.col(f"__{axis}.distinct"), count - pl.col(f"{axis}.ties"))
            .alias(f"{axis}.distinct"),
        ).with_columns((count - pl.col(f"{axis}.distinct")).alias(f"{axis}.dup")).drop(
            f"__{axis}.distinct", f"{axis}.backs", f"{axis}.ties")
    return checks


def auto_checks(frame: pl.DataFrame, by: Sequence[str], extra: Sequence[str] = ()
                ) -> pl.DataFrame:
    """:func:`series_checks` of what ``auto`` needs (and the ``extra`` axes): the epoch,
    and the step only when the epoch does not increase at every point of every series
    (usually it does, and the step is never looked at)."""
    checks = series_checks(frame, by, ["epoch", *extra])
    strict = ((pl.col("epoch.nulls") == 0) & ~pl.col("epoch.back") & (pl.col("epoch.dup") == 0))
    if "epoch.nulls" in checks.columns and checks.select(strict.all()).item():
        return checks
    return series_checks(frame, by, ["epoch", "step", *extra])


@dataclass(frozen=True)
class AxisChoice:
    """The x ``auto`` chose for a column, and why not ``epoch`` (empty when epoch)."""

    axis: XAxis
    reason: str = ""


def _runs(names: Sequence[str], count: int) -> str:
    more = f" and {count - len(names)} more" if count > len(names) else ""
    return ("run " if count == 1 else "runs ") + ", ".join(names) + more


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _runs_where(condition: pl.Expr, name: str) -> list[pl.Expr]:
    """The first few runs (sorted) of a column's series where ``condition`` holds, and
    how many there are."""
    runs = pl.col("run").cast(pl.String).filter(condition)
    return [runs.unique().sort().head(SHOWN).alias(f"{name}.runs"),
            runs.n_unique().alias(f"{name}.count")]


def _verdict_aggs(axis: str) -> list[pl.Expr]:
    """Per column: what :func:`_judge` needs to know about ``axis`` over its series."""
    nulls, n = pl.col(f"{axis}.nulls"), pl.col("n")
    flat = (n > 1) & (pl.col(f"{axis}.distinct") == 1)
    return [
        (nulls == n).all().alias(f"{axis}.none"),
        nulls.sum().alias(f"{axis}.missing"),
        *_runs_where(pl.col(f"{axis}.back"), f"{axis}.back"),
        *_runs_where(flat, f"{axis}.flat"),
        flat.all().alias(f"{axis}.flat_all"),
        pl.col(f"{axis}.lo").filter(flat).unique().head(2).alias(f"{axis}.flat_values"),
        *_runs_where(pl.col(f"{axis}.dup") > 0, f"{axis}.rep"),
    ]


def _judge(row: dict[str, Any], axis: str) -> tuple[str, str]:
    """("strict" | "usable" | "unusable", why not strict) for ``axis`` over a column."""
    if f"{axis}.none" not in row or row[f"{axis}.none"]:
        return "unusable", f"no {axis}s"
    missing = row[f"{axis}.missing"]
    if missing:
        return "unusable", f"{missing:,} point{'s' if missing > 1 else ''} without {axis}"
    if row[f"{axis}.back.count"]:
        return "unusable", (f"{axis} goes backwards in "
                            f"{_runs(row[f'{axis}.back.runs'], row[f'{axis}.back.count'])}")
    if row[f"{axis}.flat.count"]:
        values = row[f"{axis}.flat_values"]
        if row[f"{axis}.flat_all"] and len(values) == 1:
            return "unusable", f"{axis} is {_number(values[0])} for every point"
        return "unusable", (f"{axis} does not change in "
                            f"{_runs(row[f'{axis}.flat.runs'], row[f'{axis}.flat.count'])}")
    if row[f"{axis}.rep.count"]:
        return "usable", (f"{axis} repeats in "
                          f"{_runs(row[f'{axis}.rep.runs'], row[f'{axis}.rep.count'])}")
    return "strict", ""


def _choose(row: dict[str, Any]) -> AxisChoice:
    verdicts = {axis: _judge(row, axis) for axis in _AUTO}
    for wanted in ("strict", "usable"):
        for axis in _AUTO:
            if verdicts[axis][0] == wanted:
                return AxisChoice(cast(XAxis, axis), "" if axis == "epoch"
                                  else verdicts["epoch"][1])
    return AxisChoice("order", "; ".join(verdicts[a][1] for a in _AUTO))


def choose_axes(checks: pl.DataFrame, column: str | None) -> dict[Any, AxisChoice]:
    """The ``auto`` x of each ``column`` value of :func:`series_checks` output (every
    series of a column, over its runs, gets one axis); with ``column`` None, one choice
    for all, under the key None. See the module docs for the rule.

    One group-by over the series, then a few lines of Python per column."""
    aggs = [agg for axis in _AUTO if f"{axis}.nulls" in checks.columns
            for agg in _verdict_aggs(axis)]
    if checks.is_empty():
        return {}
    key = pl.col(column) if column is not None else pl.lit(None, dtype=pl.Int64)
    per = checks.group_by(key.alias("__key")).agg(aggs)
    return {row["__key"]: _choose(row) for row in per.iter_rows(named=True)}


@dataclass
class ReadSeries:
    """Series in logging order (``frame``, with :data:`POSITION`), what each axis does
    along them (``checks``, :func:`series_checks`), and the axes ``auto`` chose per
    column value (``choices``; key None when one choice covers all; empty unless auto)."""

    frame: pl.DataFrame
    checks: pl.DataFrame
    choices: dict[Any, AxisChoice]


def read_series(frame: pl.DataFrame, by: Sequence[str], x: XChoice,
                column: str | None) -> ReadSeries:
    """Order the series of ``frame`` (``by``; rows in read order, :data:`ROW` the read
    position), check the axes ``x`` needs, and for ``auto`` choose one per ``column``
    value (one for all when ``column`` is None): the first step of every command."""
    ordered = in_logging_order(frame, by)
    checks = (auto_checks(ordered, by) if x == "auto" else
              series_checks(ordered, by, [x] if x != "order" else []))
    return ReadSeries(ordered, checks, choose_axes(checks, column) if x == "auto" else {})


def series_problems(checks: pl.DataFrame, axis: XAxis, labels: dict[Any, str],
                    column: str | None) -> list[tuple[str, str, str, int, bool]]:
    """(run, series label, problem, points at a repeated x, goes backwards) for each
    series of :func:`series_checks` output whose ``axis`` goes backwards or repeats.

    ``labels`` maps a ``column`` value (None: every row) to the series label shown."""
    if axis == "order" or f"{axis}.dup" not in checks.columns:
        return []
    out = []
    flagged = checks.filter((pl.col(f"{axis}.dup") > 0) | pl.col(f"{axis}.back"))
    for row in flagged.iter_rows(named=True):
        dup = int(row.get(f"{axis}.dup") or 0)
        back = bool(row.get(f"{axis}.back"))
        if not (dup or back):
            continue
        if back:
            problem = (f"{axis} goes backwards ({_number(row[f'{axis}.from'])}, then "
                       f"{_number(row[f'{axis}.to'])})")
        else:
            article = "an" if axis == "epoch" else "a"
            problem = (f"{axis} repeats ({dup:,} point{'s' if dup > 1 else ''} at {article} "
                       f"{axis} logged before)")
        label = labels[row[column] if column is not None else None]
        out.append((str(row["run"]), label, problem, dup, back))
    return out


def missing_x(checks: pl.DataFrame, axis: XAxis, column: str) -> list[tuple[Any, int, int, int]]:
    """Per ``column`` value of :func:`series_checks` output, sorted: (value, points,
    points without ``axis``, runs with such points); nothing for ``order`` (every point
    has one)."""
    if axis == "order" or f"{axis}.nulls" not in checks.columns:
        return []
    nulls = pl.col(f"{axis}.nulls")
    per = checks.group_by(column).agg(pl.col("n").sum(), nulls.sum(),
                                      pl.col("run").filter(nulls > 0).n_unique().alias("runs"))
    return [tuple(row) for row in per.sort(column).iter_rows()]


def align(frame: pl.DataFrame, by: Sequence[str], x: str) -> pl.DataFrame:
    """One row per series (``by``) and ``x``: the last logged (the largest
    :data:`POSITION`). ``frame`` comes from :func:`in_logging_order`; rows without an x
    are dropped, and the rows come back sorted by series, then x.

    A series whose x increases at every point is left as it is (no sort)."""
    by = list(by)
    frame = frame.filter(pl.col(x).is_not_null() & pl.col(x).is_not_nan())
    rising = (pl.col(x) > pl.col(x).shift(1)).fill_null(False)
    if frame.select((~_same_series(by) | rising).all()).item():
        return frame
    ordered = frame.sort([*by, x, POSITION])
    later = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(-1)) for k in [*by, x]])
    return ordered.filter(~later.fill_null(False))


# -- context keys some points lack -------------------------------------------------------


def context_coverage(columns: Iterable[Any], counts: pl.DataFrame) -> list[str]:
    """Warnings for specs that name a context value most of their metric's points lack.

    ``columns`` are expanded :class:`~xpcli.spec.metric.Column` objects; ``counts`` has
    ``name``, the context key columns and ``points`` (one row per (name, context), any
    number of rows per run). ``loss:split=train`` when 15,643 of loss's 15,652 points have
    no ``split`` still selects its 9 points, and says so, unless ``loss:split=`` (those
    points) is among the columns too, as in the default table of ``xp select``."""
    columns = list(columns)
    by_spec: dict[str, list[Any]] = {}
    for column in columns:  # f1:lang=de@max and f1:lang=de select the same points
        by_spec.setdefault(str(column.spec).split("@", 1)[0].strip(), []).append(column)
    out: list[str] = []
    for text, group in by_spec.items():
        spec = group[0].spec
        named = [(k, v) for k, v in spec.context if v != ""]
        if not named:
            continue
        mine = counts.filter(pl.col("name") == spec.name)
        total = int(mine["points"].sum())
        for key, _ in named:
            others = any(c.name == spec.name and dict(c.context).get(key) == ""
                         for c in columns)
            if key not in mine.columns or others:  # loss:split= is asked for too
                continue
            value = pl.col(key).cast(pl.String)
            lacking = int(mine.filter(value.is_null() | (value == ""))["points"].sum())
            if 2 * lacking <= total:
                continue
            picked = mine.filter(pl.any_horizontal([series_filter(c) for c in group]))
            selected = int(picked["points"].sum())
            out.append(f"{text} selects {selected:,} of {total:,} points of {spec.name}; "
                       f"{lacking:,} have no {key} — use {spec.name}:{key}= for those")
    return out


# -- what the user is told ----------------------------------------------------------------


@dataclass(frozen=True)
class SeriesNote:
    """A series whose x goes backwards or repeats, and what a command did about it."""

    run: str
    label: str
    problem: str
    action: str
    discarded: int = 0


@dataclass
class Notes:
    """What a command tells the user on stderr about the series it read.

    Analysis functions add to it (``notes=`` arguments); the command prints
    :meth:`lines`. Adding the same thing twice (two reduces of one column) keeps one.
    """

    axes: dict[str, AxisChoice] = field(default_factory=dict)
    series: dict[tuple[str, str, str], SeriesNote] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def chose(self, label: str, choice: AxisChoice) -> None:
        """Record the axis ``auto`` chose for a column."""
        self.axes.setdefault(label, choice)

    def problem(self, run: str, label: str, problem: str, action: str,
                discarded: int = 0) -> None:
        """Record a series whose x goes backwards or repeats (``discarded``: points the
        command's alignment left out)."""
        self.series.setdefault((run, label, action),
                               SeriesNote(run, label, problem, action, discarded))

    def without_x(self, label: str, points: int, runs: int, axis: str) -> None:
        """Record that ``points`` points of a column (in ``runs`` runs) have no ``axis``
        and were left out."""
        many = points > 1
        self.warn(f"{points:,} point{'s' if many else ''} of {label} (in {runs} "
                  f"run{'s' if runs > 1 else ''}) {'have' if many else 'has'} no {axis}; "
                  "left out")

    def warn(self, text: str) -> None:
        """Record a warning (kept once)."""
        if text not in self.warnings:
            self.warnings.append(text)

    def __bool__(self) -> bool:
        return bool(self.axes or self.series or self.warnings)

    def x_line(self) -> str | None:
        """``x: step for loss (no epochs); order for acc (...)``, or None when ``auto``
        chose epoch for every column (or was not used)."""
        if not self.axes or all(c.axis == "epoch" for c in self.axes.values()):
            return None
        groups: dict[AxisChoice, list[str]] = {}
        for label, choice in self.axes.items():
            groups.setdefault(choice, []).append(label)
        parts = []
        for choice, labels in groups.items():
            if choice.axis == "epoch":
                continue
            shown = ", ".join(labels[:SHOWN]) + (
                f" and {len(labels) - SHOWN} more" if len(labels) > SHOWN else "")
            parts.append(f"{choice.axis} for {shown}"
                         + (f" ({choice.reason})" if choice.reason else ""))
        if any(c.axis == "epoch" for c in self.axes.values()):
            parts.append("epoch for the others")
        return "x: " + "; ".join(parts)

    def lines(self, limit: int = 10) -> list[str]:
        """The lines to print (without the ``xp:`` prefix): the x choice, then one
        warning per series whose x goes backwards or repeats (at most ``limit``, then a
        count), a total of the points alignment discarded, then the other warnings."""
        out = []
        x_line = self.x_line()
        if x_line:
            out.append(x_line)
        notes = sorted(self.series.values(), key=lambda n: (n.label, n.run, n.action))
        for note in notes[:limit]:
            left = (f" ({note.discarded:,} point{'s' if note.discarded > 1 else ''} "
                    "discarded)" if note.discarded else "")
            out.append(f"warning: run {note.run}, {note.label}: {note.problem}; "
                       f"{note.action}{left}")
        if len(notes) > limit:
            out.append(f"warning: {len(notes) - limit} more series whose x goes backwards "
                       "or repeats")
        dropped = [n for n in notes if n.discarded]
        if len(dropped) > 1:
            total = sum(n.discarded for n in dropped)
            runs = len({n.run for n in dropped})
            out.append(f"warning: one value per (run, series, x), the last logged: "
                       f"{total:,} points discarded in {len(dropped)} series of {runs} "
                       f"run{'s' if runs > 1 else ''}")
        out += [f"warning: {text}" for text in self.warnings]
        return out

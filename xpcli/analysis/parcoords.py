"""The table behind a parallel-coordinates figure: one row per run, one column per axis.

Axes come in the order asked for: an optional run axis (run number or run id) first, then
params, then one column per metric spec (``f1:lang=*`` expands to one column per language,
each reduced to one number per run by :func:`xpcli.analysis.reduce.reduce_runs`). A run
without a value on an axis stays in the table with a null there, and is counted in
:attr:`Parcoords.missing`, so a figure can show the gap instead of dropping the run.

The colour column (``color``) and the highlighted runs (``highlights``, from run pickers
such as ``best:f1:lang=en``) are resolved here too, so a notebook user gets the same
figure as ``xp parcoords``::

    pc = parcoords_table(ds, ["lr", "seed"], "f1:lang=*", highlights=["best:f1:lang=en"])
    fig = parcoords_figure(**pc.figure_kwargs())   # xpcli.plots.parcoords
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from ..dataset import Dataset
from ..errors import SpecError, UsageError, did_you_mean, unknown_name
from ..spec.metric import (
    Column,
    MetricSpec,
    expand,
    parse_metric_spec,
    parse_metric_specs,
    split_list,
)
from ..spec.picker import parse_picker
from ..spec.where import Where, metric_names_in, parse_where
from .reduce import reduce_runs, resolve_picker
from .select import coverage_notes, series_starts
from .series_model import Notes, XChoice, context_coverage, run_starts

RUN_NUMBER = "run_number"
RUN_ID = "run"
AxisKind = Literal["param", "metric", "run"]


@dataclass(frozen=True)
class Axis:
    """One axis of the figure: the table column it reads and how people name it.

    ``column`` is the column in :attr:`Parcoords.table` (a param name, a metric label such
    as ``f1[lang=de]``, ``run_number`` or ``run``); ``label`` is the readable form shown on
    the figure (``f1 lang=de``); ``names`` are the words ``--log``/``--invert``/``--color``
    accept for it (column, label, spec text as written and canonical, metric name).
    """

    column: str
    label: str
    kind: AxisKind
    names: tuple[str, ...] = ()


@dataclass
class Parcoords:
    """What a parallel-coordinates figure draws.

    ``table``: ``run`` (when the run id is not itself an axis, it is still the first
    column), then one column per axis in order, then the colour column if it is not an
    axis. Rows are ordered by creation time, then run id (the run number's order).
    ``missing``: axis column -> runs without a finite value there (only axes with gaps).
    ``highlights``: (picker as written, run id), in the order given.
    ``auto_log``: axis columns that may get a log scale on their own (numeric params).
    """

    table: pl.DataFrame
    axes: list[Axis]
    missing: dict[str, int] = field(default_factory=dict)
    color: str | None = None
    color_label: str | None = None
    highlights: list[tuple[str, str]] = field(default_factory=list)
    auto_log: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    linear: list[str] = field(default_factory=list)
    invert: list[str] = field(default_factory=list)
    where: str | None = None
    total_runs: int = 0

    @property
    def title(self) -> str:
        """``2,400 runs``, or ``160 of 240 runs where lr >= 1e-5``: what the figure draws."""
        n = self.table.height
        if self.where is None:
            return f"{n:,} runs"
        where = self.where if len(self.where) <= 60 else self.where[:57] + "..."
        return f"{n:,} of {self.total_runs:,} runs where {where}"

    def figure_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`xpcli.plots.parcoords.parcoords_figure` for this table."""
        return {
            "table": self.table,
            "axes": [axis.column for axis in self.axes],
            "labels": self.labels,
            "log": self.log,
            "linear": self.linear,
            "auto_log": self.auto_log,
            "invert": self.invert,
            "color": self.color,
            "color_label": self.color_label,
            "highlights": [(run, text) for text, run in self.highlights],
            "title": self.title,
        }

    @property
    def labels(self) -> dict[str, str]:
        """Axis column -> readable label (the colour column included)."""
        out = {axis.column: axis.label for axis in self.axes}
        if self.color is not None and self.color_label is not None:
            out.setdefault(self.color, self.color_label)
        return out


def readable_label(column: Column) -> str:
    """``f1[lang=de]`` as a figure shows it: ``f1 lang=de`` (``f1 lang=de @max``)."""
    parts = [column.spec.name, *(f"{key}={value}" for key, value in column.context)]
    suffix = column.label[column.label.find("@"):] if "@" in column.label else ""
    if suffix:
        parts.append(suffix)
    return " ".join(parts)


def _metric_names(column: Column) -> tuple[str, ...]:
    keys = "".join(f":{key}={value}" for key, value in column.context)
    canonical = f"{column.spec.name}{keys}{column.spec.reduce.spec_text()}"
    return tuple(dict.fromkeys(
        [column.label, readable_label(column), canonical, column.spec.text, column.spec.name]
    ))


def match_axes(word: str, axes: Sequence[Axis], option: str = "--invert") -> list[Axis]:
    """The axes a word names (``lr``, ``f1:lang=de``, ``f1[lang=de]``, ``f1:lang=*``, ``f1``).

    An exact column or label match wins; otherwise every axis that lists the word among
    its names (a metric name or a wildcard spec names several). Raises
    :class:`UsageError` naming the axes that exist when nothing matches.
    """
    word = word.strip()
    exact = [a for a in axes if word in (a.column, a.label)]
    if exact:
        return exact
    found = [a for a in axes if word in a.names]
    if found:
        return found
    try:
        spec = parse_metric_spec(word)
    except SpecError:
        spec = None
    if spec is not None:
        canonical = spec.canonical_text()
        found = [a for a in axes if canonical in a.names]
        if found:
            return found
    raise unknown_name(option, "axis", word, [a.column for a in axes])


def resolve_axis_words(words: Sequence[str], axes: Sequence[Axis], option: str) -> list[str]:
    """Columns named by ``--log``/``--invert`` words (each may be a comma-separated list)."""
    columns: list[str] = []
    for word in split_list(words):
        for axis in match_axes(word, axes, option):
            if axis.column not in columns:
                columns.append(axis.column)
    return columns


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() and not isinstance(dtype, pl.Boolean)


def _missing_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if dtype.is_float():
        return col.is_null() | ~col.is_finite()
    return col.is_null()


def _names_read(specs: Sequence[MetricSpec]) -> set[str]:
    """The metrics a list of specs reads, references of at-max/at-min included."""
    names = {spec.name for spec in specs}
    return names | {spec.reduce.ref.name for spec in specs if spec.reduce.ref is not None}


class _Points:
    """The points a table needs, read once: only the metrics named, kept in memory.

    Every spec, picker and colour is resolved against this subset (one scan instead of
    one per call); when resolving fails, it is retried on every point so the error names
    the metrics and contexts that do exist. With a series index (``series``), specs are
    resolved against it and plain reduces come from its summary: no point is read
    unless a reduce needs them (:func:`~xpcli.analysis.reduce.reduce_runs`).
    """

    def __init__(self, points: pl.LazyFrame, names: set[str], notes: Notes,
                 series: pl.DataFrame | None = None, keys: Sequence[str] = ()) -> None:
        self.all = points
        self.notes = notes
        self.summary = series
        if series is None:
            self.subset = points.filter(pl.col("name").is_in(sorted(names))).collect().lazy()
            self.starts = run_starts(points)
            return
        self.subset = points.filter(pl.col("name").is_in(sorted(names)))
        self.keys = list(keys)
        self.starts = series_starts(series)

    def _series_keys(self) -> pl.DataFrame:
        assert self.summary is not None
        return self.summary.select("run", "name", *self.keys)

    def keep_runs(self, ids: pl.Series) -> None:
        self.subset = self.subset.filter(pl.col("run").is_in(ids.implode()))
        if self.summary is not None:
            self.summary = self.summary.filter(pl.col("run").is_in(ids.implode()))

    def expand(self, specs: Sequence[MetricSpec]) -> list[Column]:
        if self.summary is not None:
            return expand(specs, self._series_keys())
        try:
            return expand(specs, self.subset)
        except SpecError:
            return expand(specs, self.all)

    def pick(self, text: str, runs: pl.DataFrame, x: XChoice) -> str:
        if self.summary is not None:
            return resolve_picker(text, runs, self.subset, x=x, notes=self.notes,
                                  summary=self.summary, keys=self.keys)
        try:
            return resolve_picker(text, runs, self.subset, x=x, notes=self.notes)
        except SpecError:
            return resolve_picker(text, runs, self.all, x=x, notes=self.notes)

    def reduce(self, columns: Sequence[Column], x: XChoice) -> pl.DataFrame:
        """The columns reduced per run (:func:`~xpcli.analysis.reduce.reduce_runs`)."""
        return reduce_runs(self.subset, columns, x=x, notes=self.notes, starts=self.starts,
                           summary=self.summary)

    def coverage(self, columns: Sequence[Column]) -> None:
        """Warn about specs naming a context value most points of their metric lack."""
        if self.summary is None:
            coverage_notes(self.subset, columns, self.notes)
        elif any(v for c in columns for _, v in c.spec.context):
            counts = self.summary.select("name", *self.keys, "points")
            for text in context_coverage(columns, counts):
                self.notes.warn(text)


def _filter_runs(
    runs: pl.DataFrame, points: _Points, where: Where, specs: list[MetricSpec], x: XChoice
) -> pl.DataFrame:
    """``--where`` over params/meta, and over metric specs such as ```f1:lang=en` > 0.8``."""
    frame = runs
    if specs:
        columns = points.expand(specs)
        reduced = points.reduce(columns, x).rename(
            {c.label: s.text for c, s in zip(columns, specs)}
        )
        frame = frame.join(reduced, on="run", how="left")
    kept = frame.filter(where.to_expr(frame.schema))
    return kept.select(runs.columns)


def parcoords_table(
    dataset: Dataset,
    params: Sequence[str] | None = None,
    metrics: str | Sequence[str] | Sequence[MetricSpec] = (),
    *,
    run_axis: Literal["number", "id"] | None = None,
    where: str | None = None,
    color: str | None = None,
    highlights: Sequence[str] = (),
    log: Sequence[str] = (),
    linear: Sequence[str] = (),
    invert: Sequence[str] = (),
    x: XChoice = "auto",
    notes: Notes | None = None,
) -> Parcoords:
    """Build the table behind ``xp parcoords``.

    ``params``: run columns to use as axes, in order (default: every param that takes more
    than one value). ``metrics``: metric specs (``"f1:lang=*,lms_score"``), one axis per
    expanded column, reduced per run (``x`` places ``at=N``/``at-max``/``at-min``).
    ``run_axis``: prepend a run number (1..N in creation order) or run id axis.
    ``where``: keep runs matching the expression. ``color``: an axis, a run column or a
    metric spec colouring the lines (default: the last metric axis, else the last axis;
    ``"none"``: no colour).
    ``highlights``: run pickers (``best:f1:lang=en``, a run id) resolved among the kept
    runs. ``log``/``linear``/``invert``: words naming axes (``lr``, ``f1:lang=*``, ``f1``;
    comma-separated lists allowed) forced to a log or linear scale, or drawn top-down.
    Raises :class:`UsageError`/:class:`SpecError` naming what is unknown; what the user
    should know about the series read is added to ``notes``.
    """
    notes = notes if notes is not None else Notes()
    run_frame, points = dataset.runs.collect(), dataset.points
    total_runs = run_frame.height
    if "run" not in run_frame.columns:
        raise UsageError("the runs table has no 'run' column")

    if isinstance(metrics, str):
        metrics = [metrics]
    specs: list[MetricSpec] = []
    for item in metrics:
        # A string may hold a comma-separated list; a repeated --metrics adds items.
        if isinstance(item, MetricSpec):
            specs.append(item)
        elif item.strip():
            specs += parse_metric_specs(item)
    pickers = [parse_picker(text) for text in highlights]
    extra = [p.spec for p in pickers if p.spec is not None]
    if color is not None and color.strip().lower() != "none":
        try:
            extra.append(parse_metric_spec(color))
        except SpecError:
            pass  # a param or an axis label, resolved later
    parsed_where = parse_where(where) if where is not None else None
    where_specs: list[MetricSpec] = []
    if parsed_where is not None and any(n not in run_frame.columns for n in parsed_where.names()):
        known = set(dataset.series_keys().get_column("name").unique())
        where_specs = metric_names_in(parsed_where, run_frame.columns, known)
    point_set = _Points(points, _names_read([*specs, *extra, *where_specs]), notes,
                        dataset.series, dataset.context_keys)

    if parsed_where is not None:
        run_frame = _filter_runs(run_frame, point_set, parsed_where, where_specs, x)
    if run_frame.is_empty():
        what = f" match --where {where!r}" if where is not None else " in the runs table"
        raise UsageError(f"no runs{what}; nothing to draw")

    order = ["created", "run"] if "created" in run_frame.columns else ["run"]
    run_frame = run_frame.sort(order, nulls_last=True).with_row_index(RUN_NUMBER, offset=1)
    run_frame = run_frame.with_columns(pl.col(RUN_NUMBER).cast(pl.Int64))
    if where is not None:
        point_set.keep_runs(run_frame.get_column("run"))

    reserved = {RUN_NUMBER}
    if params is None:
        candidates = [c for c in run_frame.columns if c not in _META_COLUMNS and c not in reserved]
        params = [c for c in candidates if run_frame.get_column(c).n_unique() > 1]
    params = list(dict.fromkeys(p.strip() for p in params if p.strip()))
    for name in params:
        if name not in run_frame.columns or name in reserved:
            raise unknown_name("--params", "param", name,
                               [c for c in run_frame.columns if c not in _META_COLUMNS])
    if "run" in params:
        raise UsageError("--params run: use --run-axis id for a run-id axis")

    columns = point_set.expand(specs) if specs else []
    point_set.coverage(columns)
    clash = [c.label for c in columns if c.label in params or c.label in reserved]
    if clash:
        raise UsageError(f"metric column {clash[0]!r} has the name of a param; rename one")

    axes: list[Axis] = []
    if run_axis == "number":
        axes.append(Axis(RUN_NUMBER, "run #", "run", (RUN_NUMBER, "run #", "run")))
    elif run_axis == "id":
        axes.append(Axis(RUN_ID, "run", "run", (RUN_ID, "run id")))
    elif run_axis is not None:
        raise UsageError(f"--run-axis {run_axis}: use number or id")
    axes += [Axis(p, p, "param", (p,)) for p in params]
    axes += [Axis(c.label, readable_label(c), "metric", _metric_names(c)) for c in columns]
    if len(axes) < 2:
        raise UsageError(
            "parallel coordinates need at least 2 axes; name them with --params and "
            "--metrics, e.g. --params lr,seed --metrics 'f1:lang=*'"
        )

    table = run_frame.select("run", RUN_NUMBER, *params)
    if columns:
        reduced = point_set.reduce(columns, x)
        table = table.join(reduced, on="run", how="left", maintain_order="left")

    color_column, color_label, table = _color(color, axes, table, run_frame, point_set, x)

    ordered = list(dict.fromkeys(["run", *(a.column for a in axes)]))
    if color_column is not None and color_column not in ordered:
        ordered.append(color_column)
    table = table.select(ordered)

    counts = table.select(
        [_missing_expr(a.column, table.schema[a.column]).sum().alias(a.column) for a in axes]
    ).row(0, named=True)
    missing = {name: int(n) for name, n in counts.items() if n}

    log_columns = resolve_axis_words(log, axes, "--log")
    linear_columns = resolve_axis_words(linear, axes, "--linear")
    both = [c for c in log_columns if c in linear_columns]
    if both:
        raise UsageError(f"--log and --linear both name {both[0]}; pick one")
    invert_columns = resolve_axis_words(invert, axes, "--invert")
    picked = [(text, point_set.pick(text, run_frame, x)) for text in highlights]
    auto_log = [a.column for a in axes
                if a.kind == "param" and _is_numeric(table.schema[a.column])]
    return Parcoords(table=table, axes=axes, missing=missing, color=color_column,
                     color_label=color_label, highlights=picked, auto_log=auto_log,
                     log=log_columns, linear=linear_columns, invert=invert_columns,
                     where=where, total_runs=total_runs)


#: Run-table columns that describe bookkeeping, not the experiment: never default axes.
_META_COLUMNS = frozenset({
    "run", "status", "created", "ended", "host", "pid", "format", "tags", "points",
    "metrics", "first_time", "last_time", "pid_start", "heartbeat", "resumed", "error",
    "reason", "started", "last_activity", "elapsed",
})


def _color(
    color: str | None,
    axes: list[Axis],
    table: pl.DataFrame,
    run_frame: pl.DataFrame,
    points: _Points,
    x: XChoice,
) -> tuple[str | None, str | None, pl.DataFrame]:
    """The colour column: an axis, a run column, or a metric spec reduced for the purpose."""
    if color is not None and color.strip().lower() == "none":
        return None, None, table
    if color is None:
        metric_axes = [a for a in axes if a.kind == "metric"]
        axis = metric_axes[-1] if metric_axes else axes[-1]
        return axis.column, axis.label, table
    word = color.strip()
    try:
        found = match_axes(word, axes, "--color")
    except UsageError:
        found = []
    if len(found) == 1:
        return found[0].column, found[0].label, table
    if len(found) > 1:
        names = ", ".join(a.column for a in found)
        raise UsageError(f"--color {word}: names several axes ({names}); pick one")
    if word in run_frame.columns:
        return word, word, table.join(run_frame.select("run", word), on="run", how="left",
                                      maintain_order="left")
    try:
        columns = points.expand([parse_metric_spec(word)])
    except SpecError as exc:
        hint = did_you_mean(word, [*(a.column for a in axes), *run_frame.columns])
        if hint.startswith("did you mean"):  # a typo of a name: the name, not the spec error
            raise UsageError(f"--color {word}: not an axis, a param or a metric; {hint}") from None
        raise UsageError(
            f"--color {word}: not an axis or a run column, nor a metric spec ({exc})"
        ) from None
    if len(columns) != 1:
        labels = ", ".join(c.label for c in columns[:6])
        raise UsageError(f"--color {word}: names {len(columns)} columns ({labels}); pick one")
    (column,) = columns
    reduced = points.reduce([column], x)
    table = table.join(reduced, on="run", how="left", maintain_order="left")
    return column.label, readable_label(column), table


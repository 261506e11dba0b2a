"""The runs table: one row per run with chosen params and reduced metrics.

:func:`select_runs` is ``xp select``; :func:`reduced_table` is the part that ``group`` and
``selection`` share (reduce the metric specs, join them to the runs, apply ``--where``).

Sort keys
=========

``--sort`` takes one or more keys, comma-separated or repeated; the first key sorts first::

    KEY   := ["-" | "+"] NAME
    NAME  := a column of the table (``lr``, ``f1[lang=de]``, ``created``)
           | a metric spec naming one column (``f1:lang=de@max``), added to the table

A leading ``-`` sorts that key descending (largest first), ``+`` or nothing ascending.
Nulls and NaN always sort last, whatever the direction; remaining ties keep the default
order (creation time, then run id), so the result is deterministic.

``--best SPEC`` keeps the run with the highest value of SPEC (``min:SPEC`` or
``worst:SPEC``: the lowest; ``max:``/``best:`` are accepted too). Runs without a value are
never picked and ties go to the smallest run id, exactly like the run picker
``best:SPEC`` (:func:`xpcli.analysis.reduce.resolve_picker`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import polars as pl

from ..dataset import Dataset
from ..errors import DataError, SpecError, UsageError, unknown_name
from ..spec.metric import (
    Column,
    MetricSpec,
    context_keys,
    expand,
    parse_metric_spec,
    parse_metric_specs,
    split_list,
)
from ..spec.picker import parse_picker
from ..spec.where import metric_names_in, parse_where
from .reduce import reduce_runs
from .series_model import START, Notes, XChoice, context_coverage, run_starts

if TYPE_CHECKING:
    from ..spec.where import Where


class Engine(Protocol):
    """Another engine for the tables of select, group and selection (:mod:`xpcli.spark`):
    it reduces, filters and groups where the data lives; this module plans."""

    def table(self, columns: Sequence[Column], where: Where | None, aliases: dict[str, str],
              schema: dict[str, pl.DataType]) -> tuple[Any, pl.DataFrame]:
        """The runs joined to the reduced ``columns`` and filtered by ``where``: the
        engine's own frame, and ``run`` + one Float64 column per label, collected."""
        ...

    def group(self, frame: Any, by: Sequence[str], stats: Sequence[tuple[str, str, str]],
              runs_schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """Per group of ``frame``'s rows: ``by``, ``n`` and each (name, statistic, label)."""
        ...

__all__ = [
    "ReducedTable",
    "SortKey",
    "best_run",
    "collect_points",
    "coverage_notes",
    "default_specs",
    "parse_best",
    "parse_sort_keys",
    "reduced_table",
    "select_runs",
    "sort_table",
    "split_list",
    "varying_params",
]


@dataclass(frozen=True)
class SortKey:
    """One ``--sort`` key: a column name or metric spec text, and its direction."""

    name: str
    descending: bool = False


@dataclass
class ReducedTable:
    """Runs joined with their reduced metrics, after ``--where``.

    ``frame`` holds every runs column (params, meta, counts) plus one Float64 column per
    metric label (shown ones and those only ``--where``/``--sort`` needed). ``metrics``
    lists the labels in display order; ``columns`` maps each label to its spec
    :class:`~xpcli.spec.Column`; ``extra`` maps a spec text used by ``--sort``/``--best``
    to its label.
    """

    frame: pl.DataFrame
    params: list[str]
    metrics: list[str]
    columns: dict[str, Column] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    #: With the Spark engine: the Spark DataFrame of ``frame`` (``xp group`` goes on there).
    remote: Any = None


def parse_sort_keys(texts: str | Iterable[str] | None) -> list[SortKey]:
    """Parse ``--sort`` keys: ``-f1[lang=de],lr`` -> descending f1[lang=de], then lr."""
    keys = []
    for item in split_list(texts):
        descending = item.startswith("-")
        name = item[1:].strip() if item[:1] in "+-" else item
        if not name:
            raise UsageError(f"--sort {item!r}: expected a column or metric spec after the sign")
        keys.append(SortKey(name, descending))
    return keys


def parse_best(text: str) -> tuple[MetricSpec, Literal["best", "worst"]]:
    """Parse ``--best``: ``SPEC``, ``max:SPEC``, ``best:SPEC`` -> highest value wins;
    ``min:SPEC``, ``worst:SPEC`` -> lowest wins."""
    head = text.strip().split(":", 1)[0].lower()
    if head in ("best", "max", "worst", "min"):
        picker = parse_picker(text)
        assert picker.spec is not None and picker.kind != "run"
        return picker.spec, picker.kind
    return parse_metric_spec(text), "best"


def default_specs(points: pl.DataFrame | pl.LazyFrame) -> list[MetricSpec]:
    """A summary of every metric: its last value in each context it is logged with.

    One spec per distinct (metric, context); a context key the metric sometimes lacks is
    spelled ``key=`` (no value) there, so no column mixes contexts.
    """
    keys = [c for c in points.lazy().collect_schema().names()
            if c not in ("run", "name", "step", "epoch", "time", "value")]
    combos = (
        points.lazy()
        .select(pl.col("name").cast(pl.String),
                *[pl.col(k).cast(pl.String).replace("", None) for k in keys])
        .unique()
        .collect()
    )
    used: dict[str, list[str]] = {}
    for name in combos["name"].unique().to_list():
        sub = combos.filter(pl.col("name") == name)
        used[name] = [k for k in keys if sub[k].is_not_null().any()]
    specs = []
    for row in combos.iter_rows(named=True):
        context = tuple((k, row[k] or "") for k in used[row["name"]])
        specs.append(MetricSpec(row["name"], context))
    specs.sort(key=lambda s: (s.name, s.context))
    return [MetricSpec(s.name, s.context, text=s.canonical_text()) for s in specs]


def varying_params(runs: pl.DataFrame, params: Sequence[str]) -> list[str]:
    """The params whose value differs between runs: what tells them apart.

    Null counts as a value; a nested value (a list param) is compared by its text; a
    param that is not a column of ``runs`` is left out."""
    out = []
    for name in params:
        if name not in runs.columns:
            continue
        column = runs[name]
        try:
            distinct = column.n_unique()
        except pl.exceptions.PolarsError:  # a nested type polars cannot hash
            distinct = len({repr(v) for v in column.to_list()})
        if distinct > 1:
            out.append(name)
    return out


def _spec_names(texts: Iterable[str | MetricSpec]) -> set[str]:
    """Metric names (with at-max/at-min references) of the texts that parse as specs."""
    names: set[str] = set()
    for item in texts:
        try:
            spec = item if isinstance(item, MetricSpec) else parse_metric_spec(item)
        except SpecError:
            continue
        names.add(spec.name)
        if spec.reduce.ref is not None:
            names.add(spec.reduce.ref.name)
    return names


def specs_or_defaults(dataset: Dataset, metrics: str | Sequence[str] | None
                      ) -> tuple[list[MetricSpec], pl.DataFrame | None]:
    """The metric specs a command was given, or the default ones (the last value of every
    metric in every context) with the points read to find them (None when given)."""
    if metrics:
        return parse_metric_specs(metrics), None
    points = collect_points(dataset)
    return default_specs(points), points if dataset.series is None else None


def collect_points(dataset: Dataset, specs: Iterable[str | MetricSpec] | None = None,
                   where: str | None = None) -> pl.DataFrame:
    """The points a command needs, read once: all of them (``specs`` None), or only the
    metrics that ``specs`` and the metric specs in ``where`` name.

    Every later step (expansion, reduction) then works on this frame instead of scanning
    the runs directory's points again. A dataset with a series index gives that instead
    (``run``, ``name`` and the context keys, one row per series): all that expansion needs,
    and the reduction reads the summary or the points itself (:func:`reduced_table`).
    """
    if dataset.series is not None:
        return dataset.series_keys()
    if specs is None:
        return dataset.points.collect()
    required = _spec_names(specs)
    names = required | (_spec_names(parse_where(where).names()) if where is not None else set())
    frame = dataset.points.filter(pl.col("name").is_in(sorted(names))).collect()
    if not required <= set(frame["name"].unique().to_list()):
        # A misspelt metric: read everything so the error can list the metrics that exist.
        return dataset.points.collect()
    return frame


def coverage_notes(source: Dataset | pl.DataFrame | pl.LazyFrame, columns: Iterable[Column],
                   notes: Notes) -> None:
    """Warn (in ``notes``) about specs naming a context value that most points of their
    metric lack (:func:`xpcli.analysis.series_model.context_coverage`), counted from a
    dataset's series index, or from the points (a dataset's or the frame given)."""
    columns = list(columns)
    if not any(v for c in columns for _, v in c.spec.context):
        return
    if isinstance(source, Dataset) and source.series is not None:
        counts = source.series.select("name", *source.context_keys, "points")
    else:
        points = source.points if isinstance(source, Dataset) else source
        keys = context_keys(points)
        counts = points.lazy().group_by("name", *keys).agg(pl.len().alias("points")).collect()
    for text in context_coverage(columns, counts):
        notes.warn(text)


def _single_column(spec: MetricSpec, points: pl.DataFrame | pl.LazyFrame,
                   option: str) -> Column:
    columns = expand([spec], points)
    if len(columns) != 1:
        labels = ", ".join(c.label for c in columns[:6])
        raise SpecError(f"{option} {spec.text}: names {len(columns)} columns ({labels}); name one")
    return columns[0]


def reduced_table(
    dataset: Dataset,
    specs: Sequence[MetricSpec],
    *,
    where: str | None = None,
    extra: Sequence[tuple[str, str | MetricSpec]] = (),
    columns: Sequence[Column] = (),
    points: pl.DataFrame | None = None,
    x: XChoice = "auto",
    notes: Notes | None = None,
    engine: Engine | None = None,
) -> ReducedTable:
    """Reduce ``specs`` per run, join to the runs table and keep the runs matching ``where``.

    ``extra`` holds (option, name) pairs of ``--sort``/``--best``: a text that is a column
    (param, meta or shown label) names it; otherwise it (or a :class:`MetricSpec`) must be a
    metric spec naming one column, reduced too; ``ReducedTable.extra`` maps each to its
    column.

    ``columns`` are already expanded columns, shown after those of ``specs``; ``points``
    the points frame they were expanded against (default: :func:`collect_points` for
    ``specs``, ``extra`` and ``where``). With the dataset's series index, plain reduces
    come from its summary and the others from the dataset's points
    (:func:`~xpcli.analysis.reduce.reduce_runs`).
    ``where`` may use params, meta and metric specs in backticks
    (```f1:lang=en@max` > 0.8``), reduced here even when not shown. Runs with no point in
    any column still appear, with null metrics. Rows are ordered by creation time, then id.
    ``x`` places ``at=N``/``at-max``/``at-min`` (:func:`~xpcli.analysis.reduce.reduce_runs`);
    what the user should know is added to ``notes``. With ``engine`` (the Spark engine)
    the reduction and ``where`` run there; ``ReducedTable.remote`` is its result.
    """
    runs = dataset.runs.collect()
    if points is None:
        metric_items = [item for _, item in extra
                        if not (isinstance(item, str) and item in runs.columns)]
        points = collect_points(dataset, [*specs, *metric_items], where)
    wanted = [*(expand(specs, points) if specs else []), *columns]
    by_label: dict[str, Column] = {}
    for column in wanted:
        by_label.setdefault(column.label, column)
    shown = list(by_label)
    names: dict[str, str] = {}
    for option, item in extra:
        if isinstance(item, str) and (item in runs.columns or item in by_label):
            names[item] = item
            continue
        if isinstance(item, str):
            try:
                spec = parse_metric_spec(item)
            except SpecError as exc:
                listed = ", ".join([c for c in runs.columns if c != "run"] + shown)
                raise UsageError(f"{option} {item!r} is neither a column nor a metric spec "
                                 f"({exc}); columns: {listed}") from None
        else:
            spec = item
        column = _single_column(spec, points, option)
        by_label.setdefault(column.label, column)
        names[spec.text] = column.label
    aliases: dict[str, str] = {}  # where spec text -> label
    parsed = parse_where(where) if where is not None else None
    if parsed is not None:
        known = set(runs.columns) | set(by_label)
        metric_set = set(points["name"].unique().to_list())
        for spec in metric_names_in(parsed, known, metric_set):
            column = _single_column(spec, points, "--where")
            by_label.setdefault(column.label, column)
            aliases[spec.text] = column.label
    clash = [label for label in by_label if label in runs.columns]
    if clash:
        raise DataError(
            f"metric column {clash[0]!r} has the name of a param or meta column; "
            "add a context or @REDUCE to tell them apart"
        )
    if notes is not None:
        coverage_notes(dataset, by_label.values(), notes)
    order = ["created", "run"] if "created" in runs.columns else ["run"]
    if engine is not None:
        schema = dict(runs.schema) | {label: pl.Float64() for label in by_label}
        schema |= {text: pl.Float64() for text, label in aliases.items()}
        if parsed is not None:
            # The same errors as the Polars engine, before Spark runs: the types, and the
            # checks of the values of runs columns (a text column of lists compared with
            # text), run here on the runs table with the metric columns empty.
            probe = runs.with_columns(pl.lit(None, dtype=pl.Float64).alias(name)
                                      for name in schema if name not in runs.columns)
            probe.select(parsed.to_expr(probe.schema))
        remote, rows = engine.table(list(by_label.values()), parsed, aliases, schema)
        frame = runs.join(rows, on="run", how="inner").sort(order, nulls_last=True)
        return ReducedTable(frame=frame, params=list(dataset.params), metrics=shown,
                            columns=by_label, extra=names, remote=remote)
    if dataset.series is not None:
        reduced = reduce_runs(dataset.points, list(by_label.values()), x=x, notes=notes,
                              starts=series_starts(dataset.series), summary=dataset.series)
    else:
        reduced = reduce_runs(points, list(by_label.values()), x=x, notes=notes,
                              starts=run_starts(dataset.points))
    frame = runs.join(reduced, on="run", how="left")
    frame = frame.sort(order, nulls_last=True)
    if parsed is not None:
        with_aliases = frame.with_columns(
            [pl.col(label).alias(text) for text, label in aliases.items() if text != label]
        )
        mask = parsed.to_expr(with_aliases.schema)
        frame = frame.filter(with_aliases.select(mask.fill_null(False)).to_series())
    return ReducedTable(frame=frame, params=list(dataset.params), metrics=shown,
                        columns=by_label, extra=names)


def series_starts(series: pl.DataFrame) -> pl.LazyFrame:
    """:func:`~xpcli.analysis.series_model.run_starts` from a series index: each run's
    earliest time over every point it logged."""
    return series.lazy().group_by("run").agg(
        pl.col("first_time").cast(pl.Float64).min().alias(START))


def sort_table(frame: pl.DataFrame, keys: Sequence[SortKey],
               names: dict[str, str] | None = None) -> pl.DataFrame:
    """Sort by ``keys`` (``names`` maps a spec text to its column); nulls/NaN last.

    The sort is stable, so rows that tie on every key keep their order.
    """
    names = names or {}
    if not keys:
        return frame
    exprs, descending = [], []
    for key in keys:
        name = names.get(key.name, key.name)
        if name not in frame.columns:
            raise unknown_name("--sort", "column", key.name, frame.columns)
        col = pl.col(name)
        exprs.append(col.fill_nan(None) if frame.schema[name].is_float() else col)
        descending.append(key.descending)
    return frame.sort(exprs, descending=descending, nulls_last=True, maintain_order=True)


def best_run(frame: pl.DataFrame, label: str, kind: Literal["best", "worst"]) -> pl.DataFrame:
    """The one row with the highest (``best``) or lowest (``worst``) ``label``.

    Null and NaN never win; ties go to the smallest run id. Empty if no row has a value.
    """
    ranked = frame.filter(pl.col(label).is_not_null() & pl.col(label).is_not_nan()).sort(
        [label, "run"], descending=[kind == "best", False]
    )
    return ranked.head(1)


def select_runs(
    dataset: Dataset,
    metrics: str | Sequence[str] | None = None,
    params: Sequence[str] | None = None,
    *,
    where: str | None = None,
    sort: str | Sequence[str] | None = None,
    top: int | None = None,
    best: str | None = None,
    x: XChoice = "auto",
    notes: Notes | None = None,
    engine: Engine | None = None,
) -> pl.DataFrame:
    """The runs table of ``xp select``: ``run``, ``params``, one column per metric label.

    ``metrics`` is a metric-spec list (default: :func:`default_specs`, the last value of
    every metric in every context); ``params`` the params or meta columns to show
    (default: the params that vary between runs). ``where`` filters runs, ``sort`` orders
    them (see the module docs), ``top`` keeps the first N, ``best`` keeps the winner.
    Metric specs used by ``sort``/``best`` that are not shown yet are added as columns.
    ``x`` places ``at=N``/``at-max``/``at-min``; what the user should know is added to
    ``notes``. ``engine``: reduce and filter on Spark (:mod:`xpcli.spark`).
    """
    if best is not None and top is not None:
        raise UsageError("--best keeps one run; drop --top (or use --sort ... --top N)")
    if top is not None and top < 1:
        raise UsageError(f"--top {top}: expected a positive number of runs")
    specs, points = specs_or_defaults(dataset, metrics)
    sort_keys = parse_sort_keys(sort)
    extra: list[tuple[str, str | MetricSpec]] = [("--sort", key.name) for key in sort_keys]
    best_kind: Literal["best", "worst"] = "best"
    if best is not None:
        best_spec, best_kind = parse_best(best)
        extra.append(("--best", best_spec))
    table = reduced_table(dataset, specs, where=where, extra=extra, points=points, x=x,
                          notes=notes, engine=engine)
    frame = table.frame
    if params is None:
        # Judged over all runs, so filtering does not change which columns appear.
        all_runs = dataset.runs.collect()
        shown_params = varying_params(all_runs, table.params)
        if not shown_params and all_runs.height == 1:
            shown_params = list(table.params)
    else:
        unknown = [p for p in params if p not in frame.columns or p == "run"]
        if unknown:
            known = [c for c in dataset.runs.collect_schema().names() if c != "run"]
            raise unknown_name("--params", "param", unknown[0], known)
        shown_params = list(params)
    metric_cols = list(table.metrics)
    for label in table.extra.values():
        if label in table.columns and label not in metric_cols:
            metric_cols.append(label)
    frame = sort_table(frame, sort_keys, table.extra)
    if best is not None:
        label = table.extra[best_spec.text]
        frame = best_run(frame, label, best_kind)
        if frame.is_empty():
            raise DataError(f"--best {best}: no selected run has a value for {label}")
    if top is not None:
        frame = frame.head(top)
    return frame.select("run", *dict.fromkeys(shown_params), *metric_cols)

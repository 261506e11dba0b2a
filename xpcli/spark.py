"""The Spark engine (``--engine spark``): xp's tables computed on a Spark session.

It reads the shared dataset that ``xp compact --to DIR`` writes (:mod:`xpcli.export`,
docs/format.md) and computes on Spark what grows with the data:

- the reduction of every metric column to one number per run: ``first``, ``last``,
  ``min``, ``max`` and ``mean`` from the series summary (one row per run and series,
  written in logging order by xp), ``median`` from the points;
- ``--where``, compiled from its parsed AST (:mod:`xpcli.spec.where`) to Spark
  ``Column`` expressions over the runs table joined to those numbers;
- the statistics of ``xp group`` per group of runs;
- ``xp aggregate``: the series model on the points (logging order from the dataset's
  ``order``, the checks ``--x auto`` judges, one value per (run, column, x), the last
  logged) and the centre and band statistics per group, column and x.

The client keeps what is one row per run (or per series) or less: expanding metric
specs against the distinct (metric, context) pairs, ``--sort``/``--top``/``--best``, the
rank statistics of ``xp selection``, choosing ``--x auto`` from the per-series checks,
the bands of ``xp aggregate`` from its per-point statistics, and every figure. Nothing
is ever turned into SQL text: user input reaches Spark only as literal values of
DataFrame expressions.

What the Spark engine cannot do is refused with one line naming it: the reducers that
need a series aligned on x (``at=N``, ``at-max(SPEC)``, ``at-min(SPEC)``), binned
``--by`` params of ``xp group`` (``lr:log=5``; ``xp aggregate`` bins them on the client),
and ``--smooth`` of ``xp aggregate``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce as fold
from typing import Any

import polars as pl

from .analysis.series_model import X_AXES, Notes
from .dataset import Dataset
from .errors import DataError, SpecError, UsageError, XpError
from .export import MANIFEST, context_column, read_manifest
from .records import Diagnostics
from .spec.metric import Column
from .spec.where import (
    BoolOp,
    Compare,
    InList,
    IsNull,
    Member,
    Name,
    Node,
    Not,
    Truth,
    Value,
    Where,
    _category,
)

__all__ = ["DEFAULT_MASTER", "SUMMARY_REDUCERS", "SparkEngine", "spark_session"]

DEFAULT_MASTER = "local[*]"
#: The reducers read from the series summary; ``median`` reads the points.
SUMMARY_REDUCERS = ("first", "last", "min", "max", "mean")
SPARK_REDUCERS = (*SUMMARY_REDUCERS, "median")
_OPS = {"==": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__",
        ">=": "__ge__"}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def spark_session(master: str = DEFAULT_MASTER) -> Any:
    """The Spark session of this process (made on first use; a later ``master`` is the
    one of the session already running). A missing pyspark or Java is an
    :class:`XpError` saying what to install."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise XpError("--engine spark needs pyspark: pip install 'xpcli[spark]'") from None
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise XpError("--engine spark needs Java 17 or newer: java is not on PATH and "
                      "JAVA_HOME is not set (install a JRE, e.g. apt-get install "
                      "default-jre-headless)")
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    logs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spark-log4j2.properties")
    builder = (SparkSession.builder.master(master).appName("xp")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.log.level", "ERROR"))
    if master.startswith("local"):
        # One machine: errors only from the JVM's logs, no web UI, and a few shuffle
        # partitions instead of 200 (a cluster keeps its spark-defaults.conf).
        builder = (builder
                   .config("spark.driver.extraJavaOptions",
                           f"-Dlog4j2.configurationFile=file:{logs}")
                   .config("spark.ui.enabled", "false")
                   .config("spark.sql.shuffle.partitions", "8"))
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start (a bad master, a broken Java)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise XpError(f"--engine spark: cannot start Spark on {master!r}: {first}") from None
    return session


def _col(name: str) -> Any:
    """A column by its exact name (``optimizer.lr`` is one column, not a field)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _collect(frame: Any) -> pl.DataFrame:
    """Run a Spark query and bring its (small) result to the client as a Polars frame; a
    Spark error becomes one line."""
    try:
        table = frame.toArrow()
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("pyspark", "py4j"):
            raise
        text = str(exc).strip()
        first = text.splitlines()[0][:300] if text else type(exc).__name__
        raise XpError(f"--engine spark: query failed: {first}") from None
    result = pl.from_arrow(table)
    assert isinstance(result, pl.DataFrame)
    return result


def _unsupported(columns: Sequence[Column]) -> None:
    for column in columns:
        if column.reduce.kind not in SPARK_REDUCERS:
            raise SpecError(
                f"{column.spec.text}: --engine spark cannot reduce @{column.reduce.kind} "
                f"(it does {', '.join(SPARK_REDUCERS)}; at=N, at-max and at-min need the "
                "series aligned on x): use --engine polars")


class SparkEngine:
    """The tables of one shared dataset (``folder``), computed on a Spark session."""

    def __init__(self, folder: str, master: str = DEFAULT_MASTER) -> None:
        if "://" in folder:
            raise UsageError(f"--runs {folder}: --engine spark reads a dataset in a folder "
                             "every Spark executor can read (a local or shared file system); "
                             "one on object storage is not read by it yet")
        if not os.path.isfile(os.path.join(folder, MANIFEST)) and not os.path.isdir(folder):
            raise DataError(f"--engine spark: no dataset at {folder}; write one with "
                            f"`xp compact --runs RUNS --to {folder}`")
        self.folder = folder
        self.manifest = read_manifest(folder)
        self.spark = spark_session(master)
        contexts = self.manifest.get("context_keys") or {}
        assert isinstance(contexts, dict)
        self.context_keys: list[str] = [str(k) for k in contexts.values()]
        self._runs: pl.DataFrame | None = None

    def _path(self, table: str) -> str:
        return os.path.join(self.folder, table)

    def _table(self, table: str) -> Any:
        return self.spark.read.parquet(self._path(table))

    def runs(self) -> pl.DataFrame:
        """The runs table (one row per run), read on the client."""
        if self._runs is None:
            self._runs = pl.read_parquet(os.path.join(self._path("runs"), "part-0.parquet"))
        return self._runs

    def dataset(self) -> Dataset:
        """A :class:`Dataset` the analysis code plans with: the runs table, and as
        ``points`` and ``series`` the distinct (metric, context) pairs with their point
        counts, computed on Spark (what spec expansion and coverage notes read)."""
        from pyspark.sql import functions as F

        keys = self.context_keys
        frame = _collect(self._table("series")
                         .groupBy("name", *[_col(context_column(k)) for k in keys])
                         .agg(F.sum("count").alias("points")))
        frame = frame.rename({context_column(k): k for k in keys}).with_columns(
            pl.col("points").cast(pl.Int64), *[pl.col(k).cast(pl.String) for k in keys])
        params = [str(p) for p in self.manifest.get("params") or []]  # type: ignore[attr-defined]
        meta = [str(m) for m in self.manifest.get("meta") or []]  # type: ignore[attr-defined]
        # ``series`` keeps the shape of the series index (a ``run`` column, here empty:
        # one row per (metric, context), not per run), which spec expansion reads.
        series = frame.with_columns(pl.lit(None, dtype=pl.String).alias("run"))
        return Dataset(runs=self.runs().lazy(), points=frame.drop("points").lazy(),
                       params=params, meta=meta, context_keys=list(keys), files=[],
                       diagnostics=Diagnostics(), series=series)

    # -- the reduction ------------------------------------------------------------------

    def _series_filter(self, column: Column) -> Any:
        expr = _col("name") == column.spec.name
        for key, value in column.context:
            ctx = _col(context_column(key))
            expr = expr & (ctx.isNull() if value == "" else ctx == value)
        return expr

    def reduce(self, columns: Sequence[Column]) -> Any:
        """A Spark DataFrame: ``run`` + one double column per label, one row per run with
        any point (even NaN) in any column; see the module docs for where each comes from."""
        from pyspark.sql import functions as F

        _unsupported(columns)
        unique: dict[str, Column] = {}
        for column in columns:
            unique.setdefault(column.label, column)
        # Two columns may select the same rows (``loss`` and ``loss:split=``), so each
        # label keeps the rows of its own filter, in one aggregation over the union.
        filters = {label: self._series_filter(c) for label, c in unique.items()}
        anywhere = fold(lambda a, b: a | b, filters.values())
        n = F.col("count") - F.col("nan_count")
        stat = {"first": F.col("first"), "last": F.col("last"), "min": F.col("min"),
                "max": F.col("max"), "mean": F.when(n > 0, F.col("sum") / n)}
        picks = [F.first(F.when(filters[label], stat[c.reduce.kind]), ignorenulls=True)
                 .alias(label) for label, c in unique.items() if c.reduce.kind != "median"]
        # Every run with a point in a column, medians or not (the summary has them all).
        result = self._table("series").filter(anywhere).groupBy("run").agg(
            F.count(F.lit(1)).alias("__n"), *picks)
        medians = [label for label, c in unique.items() if c.reduce.kind == "median"]
        if medians:
            value = F.col("value")
            points = self._table("points").filter(
                fold(lambda a, b: a | b, [filters[label] for label in medians])
                & value.isNotNull() & ~F.isnan(value))
            cells = [F.percentile(F.when(filters[label], value), 0.5).alias(label)
                     for label in medians]
            result = result.join(points.groupBy("run").agg(*cells), on="run", how="left")
        return result.select("run", *[_col(label).cast("double").alias(label)
                                      for label in unique])

    def table(self, columns: Sequence[Column], where: Where | None,
              aliases: dict[str, str], schema: dict[str, pl.DataType]) -> tuple[Any, pl.DataFrame]:
        """The runs table joined to the reduced columns and filtered by ``where`` on Spark:
        the Spark DataFrame, and the collected rows (``run`` + one Float64 per label).

        ``aliases`` maps a metric spec text used in ``where`` to its label; ``schema``
        is the Polars schema ``where`` was checked against (it picks each column's
        category, as the Polars compiler does)."""
        labels = list(dict.fromkeys(c.label for c in columns))
        runs = self._table(os.path.join("runs", "part-0.parquet"))
        if columns:
            frame = runs.join(self.reduce(columns), on="run", how="left")
        else:
            frame = runs
        if where is not None:
            for text, label in aliases.items():
                if text != label:
                    frame = frame.withColumn(text, _col(label))
            frame = frame.filter(_WhereCompiler(schema).node(where.root))
        rows = _collect(frame.select("run", *[_col(label) for label in labels]))
        rows = rows.with_columns(pl.col("run").cast(pl.String),
                                 *[pl.col(label).cast(pl.Float64) for label in labels])
        return frame, rows

    # -- xp group -----------------------------------------------------------------------

    def group(self, frame: Any, by: Sequence[str], stats: Sequence[tuple[str, str, str]],
              runs_schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """The statistics of ``xp group`` (:mod:`xpcli.analysis.group`) per group of the
        rows of ``frame`` (from :meth:`table`), computed on Spark: ``by``, ``n``, then one
        column per (name, statistic, metric label) of ``stats``; groups sorted by ``by``,
        nulls last. ``runs_schema`` gives the ``by`` columns their types back."""
        from pyspark.sql import functions as F

        exprs = [F.count(F.lit(1)).cast("long").alias("n")]
        for name, agg, label in stats:
            value = F.when(F.isnan(_col(label)), F.lit(None)).otherwise(_col(label))
            count = F.count(value)
            if agg in ("mean", "min", "max"):
                expr = {"mean": F.avg, "min": F.min, "max": F.max}[agg](value)
            elif agg == "count":
                expr = count.cast("long")
            elif agg == "std":
                expr = F.when(count >= 2, F.stddev_samp(value))
            elif agg == "sem":
                expr = F.when(count >= 2, F.stddev_samp(value) / F.sqrt(count))
            else:  # median, qNN: exact, linear between the two nearest order statistics
                share = 0.5 if agg == "median" else float(agg[1:]) / 100.0
                expr = F.percentile(value, share)
            exprs.append(expr.alias(name))
        reduced = frame.groupBy(*[_col(b) for b in by]).agg(*exprs) if by else frame.agg(*exprs)
        wide = _collect(reduced).with_columns(
            *[pl.col(b).cast(runs_schema[b]) for b in by if b in runs_schema],
            pl.col("n").cast(pl.Int64),
            *[pl.col(name).cast(pl.Int64 if agg == "count" else pl.Float64)
              for name, agg, _ in stats])
        if by:
            wide = wide.sort(list(by), nulls_last=True, maintain_order=True)
        return wide.select(*by, "n", *[name for name, _, _ in stats])


    # -- xp aggregate -------------------------------------------------------------------

    def series(self, dataset: Dataset, specs: Sequence[str], *, x: str = "auto",
               where: str | None = None, notes: Notes | None = None,
               action: str = "one value per {axis} kept, the last logged") -> SparkSeries:
        """The series of ``specs`` over the runs ``where`` keeps, read by the series model
        on Spark (:mod:`xpcli.analysis.series_model`): each series in logging order (the
        dataset's ``order``), x per column (``auto`` chosen from per-series checks made on
        Spark and judged on the client by the same rules), then aligned to one value per
        (run, column, x), the last logged. ``notes`` gets what the Polars engine says."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        from .analysis.select import coverage_notes, reduced_table
        from .analysis.series import _check_axis, series_keys
        from .analysis.series_model import check_x, choose_axes, series_problems
        from .spec.metric import expand, parse_metric_specs

        check_x(x)
        notes = notes if notes is not None else Notes()
        parsed = parse_metric_specs(list(specs))
        if not parsed:
            raise UsageError("name at least one metric spec, e.g. f1:lang=*")
        columns = expand(parsed, dataset.series_keys())
        for column in columns:
            if column.reduce.kind != "last":
                raise UsageError(f"{column.spec.text or column.label}: a series is not "
                                 f"reduced; drop the '@{column.reduce.kind}' part")
        coverage_notes(dataset, columns, notes)
        if where is not None:
            runs = reduced_table(dataset, [], where=where, notes=notes, engine=self).frame \
                .select(dataset.runs.collect_schema().names())
        else:
            runs = dataset.runs.collect()
        keys = series_keys(columns)
        context_keys = keys[1:]

        # Columns ranked as the Polars engine sorts them: by (metric, context), nulls first.
        def key_order(column: Column) -> tuple[Any, ...]:
            given = dict(column.context)
            values = [column.name, *[given.get(key) for key in context_keys]]
            return tuple((v is not None, v or "") for v in values)

        ranked = sorted(columns, key=key_order)
        label_of = {i: c.label for i, c in enumerate(ranked)}
        names = sorted({c.name for c in columns})
        points = self._table("points").filter(_col("name").isin(names))
        if where is not None:
            kept = self.spark.createDataFrame([(r,) for r in runs["run"].to_list()],
                                              "run string")
            points = points.join(F.broadcast(kept), on="run", how="left_semi")
        # A point goes to each column whose filter it passes (its rank in ``__col``).
        tags = F.array(*[F.when(self._series_filter(c), F.lit(i)) for i, c in enumerate(ranked)])
        # Kept once read: the checks, the alignment and the aggregation all start here.
        points = (points.withColumn("__col", F.explode(F.filter(tags, lambda t: t.isNotNull())))
                  .select("__col", "run", "order", "step", "epoch", "time", "value")).persist()

        # What each axis does along each series (series_checks of the series model).
        axes = ["epoch", "step"] if x == "auto" else ([x] if x != "order" else [])
        series_w = Window.partitionBy("__col", "run").orderBy("order")
        before = series_w.rowsBetween(Window.unboundedPreceding, -1)
        marked = points
        aggs = [F.count(F.lit(1)).alias("n")]
        for axis in axes:
            value = _col(axis).cast("double")
            prev = F.last(value, ignorenulls=True).over(before)
            marked = marked.withColumn(f"__{axis}.prev", prev).withColumn(
                f"__{axis}.step", F.when(value.isNotNull(), value - F.col(f"`__{axis}.prev`")))
            step = F.col(f"`__{axis}.step`")
            back = F.when(step < 0, F.col("order"))
            count = F.count(value)
            aggs += [
                (F.count(F.lit(1)) - count).alias(f"{axis}.nulls"),
                (F.count(back) > 0).alias(f"{axis}.back"),
                F.min_by(F.col(f"`__{axis}.prev`"), back).alias(f"{axis}.from"),
                F.min_by(value, back).alias(f"{axis}.to"),
                F.min(value).alias(f"{axis}.lo"),
                F.when(F.count(back) > 0, F.count_distinct(_col(axis)))
                .otherwise(count - F.count(F.when(step == 0, 1))).alias(f"{axis}.distinct"),
            ]
        checks = _collect(marked.groupBy("__col", "run").agg(*aggs))
        checks = checks.with_columns(
            pl.col("__col").cast(pl.Int64), pl.col("run").cast(pl.String),
            *[(pl.col("n") - pl.col(f"{a}.nulls") - pl.col(f"{a}.distinct")).alias(f"{a}.dup")
              for a in axes]).sort("__col", "run")
        if x == "auto":
            choices = choose_axes(checks, "__col")
            for col, choice in sorted(choices.items()):
                notes.chose(label_of[col], choice)
            axis_of: dict[int, str] = {col: choice.axis for col, choice in choices.items()}
        else:
            axis_of = {col: x for col in checks["__col"].unique().to_list()}
            _check_axis(checks, label_of, x, notes)  # type: ignore[arg-type]
        used = sorted(set(axis_of.values()), key=X_AXES.index) or [
            "epoch" if x == "auto" else x]
        for axis in used:
            mine = checks.filter(pl.col("__col").is_in(
                [c for c, a in axis_of.items() if a == axis]))
            for run, label, problem, dup, _ in series_problems(mine, axis, label_of,  # type: ignore[arg-type]
                                                               "__col"):
                notes.problem(run, label, problem, action.format(axis=axis), dup)

        # x per column, then one value per (run, column, x): the last logged.
        if "time" in used:
            starts = self._table("series").groupBy("run").agg(
                F.min("time_min").alias("__start"))
            points = points.join(starts, on="run", how="left")
        on_axis = {"epoch": _col("epoch").cast("double"), "step": _col("step").cast("double"),
                   "order": _col("order").cast("double"),
                   "time": _col("time").cast("double") - F.col("__start")}
        x_expr: Any = None
        for axis in used:
            cols = [c for c, a in axis_of.items() if a == axis]
            x_expr = (F if x_expr is None else x_expr).when(F.col("__col").isin(cols),
                                                            on_axis[axis])
        name = used[0] if len(used) == 1 else "x"
        if name in keys:
            raise UsageError(f"context key {name!r} has the name of the x column; pick an x "
                             "with --x epoch, --x step or --x time")
        located = points.withColumn("__x", x_expr)
        aligned = (located.filter(F.col("__x").isNotNull() & ~F.isnan("__x"))
                   .groupBy("__col", "run", "__x")
                   .agg(F.max_by("value", "order").alias("value"))).persist()
        present = _collect(aligned.select("run").distinct()).with_columns(
            pl.col("run").cast(pl.String)).sort("run")
        points.unpersist()
        return SparkSeries(frame=aligned, columns=columns, ranked=ranked, keys=keys,
                           runs=runs, x=name, axis_of=axis_of, present=present)

    def aggregate(self, data: SparkSeries, *, runs: pl.DataFrame | None = None,
                  by: Sequence[str] = (), center: str = "median", band: Any = "minmax",
                  align: str = "exact", grid: int = 200, min_runs: int = 1) -> pl.DataFrame:
        """:func:`xpcli.analysis.aggregate.aggregate` of ``data`` on Spark: per group of
        ``by`` (columns of ``runs``), column and x, the statistics of the values there,
        computed on Spark; the band from them on the client. The same columns, order
        and values (exact alignment only)."""
        from pyspark.sql import functions as F

        from .analysis.aggregate import check_options, t_quantile

        band = check_options(center, band, align, min_runs)
        by = list(by)
        value = F.col("value")
        frame = data.frame.filter(value.isNotNull() & ~F.isnan(value)
                                  & (F.abs(value) != float("inf")))
        if align == "interp":
            frame = self._interpolate(frame, grid)
        if by:
            if runs is None:
                raise UsageError("--by needs the runs table")
            # Each group of runs is a number on Spark, its values stay on the client.
            table = runs.select("run", *by)
            # A run missing from the runs table has null params: the group of nulls.
            empty = pl.DataFrame([pl.Series(b, [None], dtype=table.schema[b]) for b in by])
            labels = (pl.concat([table.select(by), empty]).unique(maintain_order=True)
                      .with_row_index("__g").with_columns(pl.col("__g").cast(pl.Int64)))
            number = table.join(labels, on=by, how="left", nulls_equal=True)
            pairs = list(zip(number["run"].cast(pl.String).to_list(),
                             number["__g"].to_list()))
            mapping = self.spark.createDataFrame(pairs, "run string, __g long")
            missing = labels.join(empty, on=by, how="semi", nulls_equal=True)["__g"].item()
            frame = frame.join(F.broadcast(mapping), on="run", how="left").withColumn(
                "__g", F.coalesce(F.col("__g"), F.lit(missing)))
        else:
            labels = pl.DataFrame({"__g": [0]}, schema={"__g": pl.Int64})
            frame = frame.withColumn("__g", F.lit(0))
        stats = [F.count(F.lit(1)).alias("n"), F.avg(value).alias("__mean"),
                 F.percentile(value, 0.5).alias("__median"), F.min(value).alias("__min"),
                 F.max(value).alias("__max"), F.stddev_samp(value).alias("__std")]
        if band.kind == "quantile":
            stats += [F.percentile(value, band.lo).alias("__qlo"),
                      F.percentile(value, band.hi).alias("__qhi")]
        result = _collect(frame.groupBy("__g", "__col", "__x").agg(*stats)
                          .filter(F.col("n") >= min_runs))
        data.frame.unpersist()  # computed again if asked again
        result = result.with_columns(pl.col("__g").cast(pl.Int64), pl.col("__col").cast(pl.Int64),
                                     pl.col("n").cast(pl.Int64))
        n = pl.col("n").cast(pl.Float64)
        std = pl.when(pl.col("n") > 1).then(pl.col("__std"))
        if band.kind == "minmax":
            low, high = pl.col("__min"), pl.col("__max")
        elif band.kind == "quantile":
            low, high = pl.col("__qlo"), pl.col("__qhi")
        else:
            spread = std if band.kind == "std" else std / n.sqrt()
            if band.kind == "ci95":
                dfs = sorted({int(v) - 1 for v in result["n"].unique().to_list() if v > 1})
                t = (pl.col("n") - 1).replace_strict(
                    pl.Series(dfs, dtype=pl.Int64),
                    pl.Series([t_quantile(0.975, d) for d in dfs], dtype=pl.Float64),
                    default=None)
                spread = t * std / n.sqrt()
            low, high = pl.col("__mean") - spread, pl.col("__mean") + spread
        # The client puts the group values, column keys and x back.
        keys = data.keys_with_axis()
        key_rows = {i: data.key_values(i) for i in range(len(data.ranked))}
        cols = pl.DataFrame(
            {"__col": list(key_rows), **{k: [key_rows[i][j] for i in key_rows]
                                         for j, k in enumerate(keys)}},
            schema={"__col": pl.Int64, **{k: pl.String for k in keys}})
        out = result.join(labels, on="__g", how="left").join(cols, on="__col", how="left")
        group = [*by, *keys, data.x]
        x_type = pl.Float64 if align == "interp" else data.x_type()
        return out.select(
            *by, *keys, pl.col("__x").cast(x_type).alias(data.x),
            pl.col(f"__{center}").cast(pl.Float64).alias("center"),
            low.cast(pl.Float64).alias("low"), high.cast(pl.Float64).alias("high"),
            pl.col("n"),
        ).sort(group, nulls_last=True)

    def _interpolate(self, frame: Any, grid: int) -> Any:
        """:func:`xpcli.analysis.aggregate.interpolate` on Spark: each run's finite values
        (``frame``: ``__col``, ``run``, ``__x``, ``value``) linearly interpolated onto the
        grid of its column, only between its own first and last point. The grids are made
        on the client as the Polars engine makes them (the x values logged when at most
        ``grid``, else ``grid`` evenly spaced); numpy's formula, in the same order."""
        import numpy as np
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        spread = _collect(frame.groupBy("__col").agg(
            F.count_distinct("__x").alias("k"), F.min("__x").alias("lo"),
            F.max("__x").alias("hi")))
        few = [int(c) for c, k, _, _ in spread.rows() if k <= grid]
        logged = (_collect(frame.filter(F.col("__col").isin(few)).select("__col", "__x")
                           .distinct()) if few else None)
        rows: list[tuple[int, float]] = []
        for col, k, lo, hi in spread.rows():  # common_grid's two cases
            if k <= grid:
                assert logged is not None
                points = np.unique(logged.filter(pl.col("__col") == col)["__x"].to_numpy())
            else:
                points = np.linspace(lo, hi, grid)
            rows += [(int(col), float(p)) for p in points]
        grids = self.spark.createDataFrame(rows, "__col long, __g double")
        spans = frame.groupBy("__col", "run").agg(F.min("__x").alias("__lo"),
                                                  F.max("__x").alias("__hi"))
        wanted = (spans.join(F.broadcast(grids), on="__col")
                  .filter((F.col("__g") >= F.col("__lo")) & (F.col("__g") <= F.col("__hi")))
                  .select("__col", "run", F.col("__g").alias("__x"),
                          F.lit(None).cast("double").alias("value"), F.lit(1).alias("__grid")))
        both = frame.select("__col", "run", "__x", "value", F.lit(0).alias("__grid")) \
            .unionByName(wanted)
        # Each grid point between the last point at or before it and the first after it.
        ordered = Window.partitionBy("__col", "run").orderBy("__x", "__grid")
        point = F.when(F.col("__grid") == 0, F.struct(F.col("__x").alias("x"),
                                                      F.col("value").alias("y")))
        below = F.last(point, ignorenulls=True).over(
            ordered.rowsBetween(Window.unboundedPreceding, 0))
        above = F.first(point, ignorenulls=True).over(
            ordered.rowsBetween(0, Window.unboundedFollowing))
        both = both.withColumn("__below", below).withColumn("__above", above)
        x0, y0 = F.col("__below.x"), F.col("__below.y")
        x1, y1 = F.col("__above.x"), F.col("__above.y")
        g = F.col("__x")
        value = F.when(g == x0, y0).otherwise((y1 - y0) / (x1 - x0) * (g - x0) + y0)
        return both.filter(F.col("__grid") == 1).select("__col", "run", "__x",
                                                        value.alias("value"))


@dataclass
class SparkSeries:
    """The aligned series of some columns on Spark: what ``xp aggregate`` needs of a
    :class:`~xpcli.analysis.series.SeriesSet` (``frame`` stays on Spark: ``__col``, the
    column's rank in ``ranked``, ``run``, ``__x`` and ``value``; ``present`` holds the
    runs with a point)."""

    frame: Any
    columns: list[Column]
    ranked: list[Column]
    keys: list[str]
    runs: pl.DataFrame
    x: str
    axis_of: dict[int, str]
    present: pl.DataFrame
    smoothing: None = None

    @property
    def n_runs(self) -> int:
        """How many runs have at least one point in the series."""
        return self.present.height

    def keys_with_axis(self) -> list[str]:
        """The series keys, and ``x_axis`` when the columns' axes differ."""
        return [*self.keys, "x_axis"] if self.x == "x" else list(self.keys)

    def key_values(self, col: int) -> tuple[str | None, ...]:
        """The values of :meth:`keys_with_axis` of the column ranked ``col``."""
        column = self.ranked[col]
        given = dict(column.context)
        values = (column.name, *[given.get(k) for k in self.keys[1:]])
        return (*values, self.axis_of.get(col)) if self.x == "x" else values

    def x_type(self) -> type[pl.DataType]:
        """The type the Polars engine gives this x (aligned exactly)."""
        return pl.Int64 if self.x in ("step", "order") else pl.Float64

    def describe_x(self) -> str:
        """As :meth:`xpcli.analysis.series.SeriesSet.describe_x`."""
        if self.x != "x":
            return self.x
        by_axis: dict[str, list[str]] = {}
        for col in sorted(self.axis_of):
            name, *values = self.key_values(col)[:len(self.keys)]
            context = ",".join(f"{k}={v}" for k, v in zip(self.keys[1:], values) if v)
            label = f"{name}[{context}]" if context else str(name)
            by_axis.setdefault(self.axis_of[col], []).append(label)
        return "; ".join(f"{axis} for {', '.join(labels)}" for axis, labels in by_axis.items())


class _WhereCompiler:
    """A parsed ``--where`` (already checked by the Polars compiler against ``schema``)
    as a Spark ``Column``, with the same meaning: NaN is null, a comparison with null is
    null and drops the run, ``and``/``or`` are three-valued."""

    def __init__(self, schema: dict[str, pl.DataType]) -> None:
        self.schema = schema

    def node(self, node: Node) -> Any:
        if isinstance(node, BoolOp):
            parts = [self.node(n) for n in node.operands]
            return fold(lambda a, b: (a & b) if node.op == "and" else (a | b), parts)
        if isinstance(node, Not):
            return ~self.node(node.operand)
        if isinstance(node, IsNull):
            col = self.column(node.name)
            return col.isNotNull() if node.negated else col.isNull()
        if isinstance(node, Truth):
            return self.column(node.name).cast("boolean")
        if isinstance(node, InList):
            return self.in_list(node)
        if isinstance(node, Member):
            word = "not in" if node.negated else "in"
            raise SpecError(f"--where: --engine spark cannot test list membership "
                            f"('{node.value.value}' {word} {node.name.name}); use --engine "
                            "polars")
        return self.compare(node)

    def category(self, name: Name) -> str:
        return _category(self.schema[name.name])

    def column(self, name: Name) -> Any:
        from pyspark.sql import functions as F

        dtype = self.schema[name.name]
        col = _col(name.name)
        if dtype.is_float():
            return F.when(F.isnan(col), F.lit(None)).otherwise(col)
        if _category(dtype) == "text":
            return col.cast("string")
        if _category(dtype) == "duration":  # stored as an integer count of time units
            unit = getattr(dtype, "time_unit", "us")
            return col.cast("double") / {"ns": 1e9, "us": 1e6, "ms": 1e3}[unit]
        return col

    def literal(self, name: Name, value: Value) -> Any:
        from pyspark.sql import functions as F

        category = self.category(name)
        raw = value.value
        if category == "date" and isinstance(raw, str):
            if self.schema[name.name] == pl.Date:
                return F.lit(dt.date.fromisoformat(raw))
            moment = dt.datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return F.lit(moment)
        if category == "null":
            return F.lit(None)
        return F.lit(raw)

    def compare(self, node: Compare) -> Any:
        left, right, op = node.left, node.right, node.op
        if isinstance(left, Value):
            assert isinstance(right, Name)
            left, right, op = right, left, _FLIP[op]
        assert isinstance(left, Name)
        other = self.column(right) if isinstance(right, Name) else self.literal(left, right)
        return getattr(self.column(left), _OPS[op])(other)

    def in_list(self, node: InList) -> Any:

        dtype = self.schema[node.name.name]
        category = _category(dtype)
        values = [v.value for v in node.values]
        col = self.column(node.name)
        if category == "number":
            if dtype.is_integer() and all(isinstance(v, int) for v in values):
                expr = col.cast("long").isin(values)
            else:
                expr = col.cast("double").isin([float(v) for v in values])  # type: ignore[arg-type]
        elif category in ("text", "boolean"):
            expr = col.isin(values)
        else:  # an all-null column: nothing is in any list
            expr = col.isNotNull()
        return ~expr if node.negated else expr


def engine_for(engine: str, folder: str, master: str | None) -> SparkEngine | None:
    """The engine a command was asked for: None for Polars, else a :class:`SparkEngine`
    on the dataset ``folder``. ``--spark-master`` without ``--engine spark`` is an error."""
    if engine != "spark":
        if master is not None:
            raise UsageError("--spark-master goes with --engine spark")
        return None
    return SparkEngine(folder, master or DEFAULT_MASTER)

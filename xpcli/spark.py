"""The Spark engine (``--engine spark``): xp's tables computed on a Spark session.

It reads the shared dataset that ``xp compact --to DIR`` writes (:mod:`xpcli.export`,
docs/format.md) and computes on Spark what grows with the data:

- the reduction of every metric column to one number per run: ``first``, ``last``,
  ``min``, ``max`` and ``mean`` from the series summary (one row per run and series,
  written in logging order by xp), ``median`` from the points;
- ``--where``, compiled from its parsed AST (:mod:`xpcli.spec.where`) to Spark
  ``Column`` expressions over the runs table joined to those numbers;
- the statistics of ``xp group`` per group of runs.

The client keeps what is one row per run or less: expanding metric specs against the
distinct (metric, context) pairs, ``--sort``/``--top``/``--best``, the rank statistics
of ``xp selection``, and every figure. Nothing is ever turned into SQL text: user input
reaches Spark only as literal values of DataFrame expressions.

What the Spark engine cannot do is refused with one line naming it: the reducers that
need a series aligned on x (``at=N``, ``at-max(SPEC)``, ``at-min(SPEC)``) and binned
``--by`` params (``lr:log=5``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import warnings
from collections.abc import Sequence
from functools import reduce as fold
from typing import Any

import polars as pl

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
        if "://" not in folder and not os.path.isfile(os.path.join(folder, MANIFEST)) \
                and not os.path.isdir(folder):
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

"""The dataset: a runs directory's records built into the runs and points tables.

``load(runs_dir)`` returns a :class:`Dataset` whose ``runs`` and ``points`` are Polars
LazyFrames:

- runs: ``run``, one column per flattened param (``optimizer.lr``), meta columns
  (``status``, ``created``, ``ended``, ``host``, ...), counts (``points``, ``metrics``,
  ``first_time``, ``last_time``), and what is decided when reading (:data:`LIVE_COLUMNS`):
  ``status`` as it is now (a ``running`` run whose writer is gone is ``crashed`` or
  ``stale``, see :mod:`xpcli.liveness`), ``reason`` (why it ended, or why it is taken for
  dead), ``started``, ``last_activity`` and ``elapsed``. Meta ``error`` (why a run
  failed) is a struct of ``type``, ``message``, ``traceback`` and ``signal``.
- points: ``run``, ``name``, one String column per context key (null where a point has
  no such key), ``step`` (Int64), ``epoch`` (Float64), ``time`` (Float64, unix seconds),
  ``value`` (Float64).

The records come from :mod:`xpcli.cache` (which parses with :mod:`xpcli.records`); bad
input never stops a load: what was skipped is in ``Dataset.diagnostics``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from . import format as fmt
from . import liveness
from .cache import (
    CTX,
    RawData,
    cache_home,
    context_columns,
    decode_contexts,
    read,
    superseded,
)
from .errors import DataError
from .format import POINT_COLUMNS
from .progress import Progress
from .records import Diagnostics, find_files, json_text
from .summary import SUMMARY_SCHEMA

COUNT_COLUMNS = ("points", "metrics", "first_time", "last_time")
#: Columns decided when reading (never cached): see :func:`live_columns`.
LIVE_COLUMNS = ("reason", "started", "last_activity", "elapsed")
DATETIME_META = ("created", "ended", "resumed")
#: The layout of the runs table kept by :class:`xpcli.cache.Built`; a table kept by a
#: version with another layout is built again.
_BUILT_LAYOUT = 3
ERROR_DTYPE = pl.Struct({"type": pl.String, "message": pl.String,
                         "traceback": pl.List(pl.String), "signal": pl.String})


@dataclass
class Dataset:
    """A loaded runs directory. Unpacks as ``runs, points = xpcli.load("runs")``."""

    runs: pl.LazyFrame
    points: pl.LazyFrame
    params: list[str]
    meta: list[str]
    context_keys: list[str]
    files: list[str]
    diagnostics: Diagnostics
    #: One row per series: ``run``, ``name``, the context key columns, ``points``,
    #: ``first_time``, ``last_time`` (unix seconds), ``step_min``/``step_max``,
    #: ``epoch_min``/``epoch_max``, and the rest of the series summary
    #: (:mod:`xpcli.summary`). Small: which metrics and contexts exist, their ranges and
    #: their first/last/min/max/mean, without a pass over the points.
    series: pl.DataFrame | None = None

    @classmethod
    def from_frames(cls, runs: pl.DataFrame | pl.LazyFrame,
                    points: pl.DataFrame | pl.LazyFrame,
                    params: list[str] | None = None) -> Dataset:
        """A dataset of frames built in memory (a notebook's, a test's), not read from disk.

        ``params``: the param columns of ``runs`` (default: every column but ``run``, the
        counts and the live columns); context keys are the columns of ``points`` beyond
        the point columns.
        """
        runs, points = runs.lazy(), points.lazy()
        names = runs.collect_schema().names()
        if params is None:
            params = [c for c in names if c != "run" and c not in COUNT_COLUMNS
                      and c not in LIVE_COLUMNS]
        keys = [c for c in points.collect_schema().names() if c not in POINT_COLUMNS]
        return cls(runs=runs, points=points, params=params, meta=[], context_keys=keys,
                   files=[], diagnostics=Diagnostics())

    def series_keys(self) -> pl.DataFrame:
        """``run``, ``name`` and the context key columns, one row per series.

        What :func:`xpcli.spec.metric.expand` needs to resolve ``f1:lang=*``, from the small
        series index instead of a pass over every point."""
        if self.series is None:
            return self.points.select("run", "name", *self.context_keys).unique().collect()
        return self.series.select("run", "name", *self.context_keys)

    def __iter__(self) -> Iterator[pl.LazyFrame]:
        yield self.runs
        yield self.points


def infer_column(name: str, values: list[Any], diags: Diagnostics | None = None,
                 what: str = "param") -> pl.Series:
    """One typed column from per-run Python values (None = absent).

    bool -> Boolean; int -> Int64; int and float -> Float64 (non-finite floats written as
    ``"NaN"``/``"Infinity"`` count as floats); str -> String; lists and dicts -> their JSON
    text. Any other mix becomes text, with a diagnostic, rather than a guess.
    """
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int" if -(2**63) <= v < 2**63 else "float")
        elif isinstance(v, float):
            kinds.add("float")
        elif isinstance(v, str):
            kinds.add("nonfinite" if v in fmt.NONFINITE else "str")
        else:
            kinds.add("json")
    if not kinds:
        return pl.Series(name, values, dtype=pl.Null)
    if kinds == {"bool"}:
        return pl.Series(name, values, dtype=pl.Boolean)
    if kinds == {"int"}:
        return pl.Series(name, values, dtype=pl.Int64)
    if kinds <= {"int", "float", "nonfinite"} and kinds & {"int", "float"}:
        return pl.Series(
            name,
            [None if v is None else fmt.NONFINITE[v] if isinstance(v, str) else float(v)
             for v in values],
            dtype=pl.Float64,
        )
    if len(kinds - {"nonfinite"} - {"str"}) and (kinds & {"str", "bool", "int", "float"}) and \
            len(kinds) > 1 and diags is not None:
        diags.add("", 0, f"{what} {name!r} has mixed types across runs "
                  f"({', '.join(sorted(kinds))}); shown as text", "mixed-types")
    return pl.Series(
        name,
        [None if v is None else v if isinstance(v, str) else json_text(v) for v in values],
        dtype=pl.String,
    )


def _merge_run_records(records: pl.LazyFrame) -> tuple[list[str], dict[str, dict],
                                                        dict[str, dict]]:
    """Params and meta per run: run records merged in read order, later keys winning."""
    recs = (records.filter(pl.col("kind") == "run").sort("__order")
            .select("run", "params", "meta").collect())
    params: dict[str, dict[str, Any]] = {}
    meta: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for run, p, m in recs.iter_rows():
        if run not in params:
            order.append(run)
            params[run], meta[run] = {}, {}
        if p:
            params[run].update(fmt.flatten(json.loads(p)))
        if m:
            meta[run].update(json.loads(m))
    return order, params, meta


def _decode_contexts(raw_points: pl.LazyFrame, texts: list[str], diags: Diagnostics,
                     decoded_columns: bool = False) -> tuple[pl.LazyFrame, list[str]]:
    """Replace the JSON ``context`` column by one String column per key (lazily).

    ``texts`` are the distinct context texts present; each is decoded once. With
    ``decoded_columns`` the records already hold a ``ctx.KEY`` column per key (the cache
    decodes them when it writes a segment) and they are simply renamed; otherwise the
    per-key columns are a lookup from text to value, so no point row is parsed again.
    """
    decoded, keys, bad = decode_contexts(texts)
    frame = raw_points
    if bad:
        diags.add("", 0, f"points with a context that is not an object of strings "
                  f"(e.g. {bad[0][:60]}); skipped", "malformed")
        frame = frame.filter(~pl.col("context").is_in(bad).fill_null(False))
    names = [k if k not in fmt.RESERVED_CONTEXT_KEYS else f"context.{k}" for k in keys]
    have = frame.collect_schema().names() if decoded_columns and keys else []
    if all(CTX + key in have for key in keys):
        columns = [pl.col(CTX + key).alias(name) for key, name in zip(keys, names)]
    else:
        columns = [expr.alias(name) for expr, name in
                   zip(context_columns(decoded, keys), names)]
    frame = frame.select("run", "name", *columns, "step", "epoch", "time", "value")
    return frame, names


def _to_datetime(expr: pl.Expr) -> pl.Expr:
    # Out-of-range times become null rather than failing the whole read.
    return (expr.cast(pl.Float64) * 1e6).cast(pl.Int64, strict=False).cast(
        pl.Datetime("us", "UTC"))


def build(data: RawData, files: list[str],
          observer: liveness.Observer | None = None) -> Dataset:
    """The runs and points tables from records read with or without the cache.

    With the cache, the runs table and series index of an unchanged state are read back
    instead of built again (:class:`xpcli.cache.Built`). The live columns (status as it is
    now, reason, durations) are decided afterwards, on every read, as seen by
    ``observer`` (this host, now, by default)."""
    observer = observer or liveness.Observer.here()
    diags = data.diagnostics
    raw_points = data.records.filter(pl.col("kind") == "point")
    kept = data.built.load() if data.built is not None else None
    if kept is not None and kept[2].get("layout") == _BUILT_LAYOUT:
        runs, index, info = kept
        for path, line, message, kind in info["diagnostics"]:
            diags.add(path, line, message, kind)
        points, context_keys = _decode_contexts(raw_points, data.contexts, Diagnostics(),
                                                data.decoded)
        return Dataset(runs=live_columns(runs, info["meta"], files, observer).lazy(),
                       points=points, params=info["params"], meta=info["meta"],
                       context_keys=context_keys, files=files, diagnostics=diags,
                       series=index)
    before = len(diags.items)
    points, context_keys = _decode_contexts(raw_points, data.contexts, diags, data.decoded)
    index = _series_index(data.stats, data.contexts)

    order, params, meta = _merge_run_records(data.records)
    counts = data.stats.group_by("run").agg(
        pl.col("points").sum().alias("points"),
        pl.col("name").n_unique().alias("metrics"),
        pl.col("first_time").min().alias("first_time"),
        pl.col("last_time").max().alias("last_time"),
    )
    known = set(order)
    order += [r for r in counts.get_column("run").sort().to_list() if r not in known]

    param_names: list[str] = []
    for run in order:
        for key in params.get(run, {}):
            if key not in param_names:
                param_names.append(key)
    meta_names: list[str] = []
    for run in order:
        for key in meta.get(run, {}):
            if key not in meta_names:
                meta_names.append(key)

    taken = {"run", *COUNT_COLUMNS, *LIVE_COLUMNS}
    columns: list[pl.Series] = [pl.Series("run", order, dtype=pl.String)]
    param_cols: list[str] = []
    for key in param_names:
        col = key if key not in taken else f"params.{key}"
        taken.add(col)
        param_cols.append(col)
        columns.append(infer_column(col, [params.get(r, {}).get(key) for r in order], diags))
    meta_cols: list[str] = []
    for key in meta_names:
        col = key if key not in taken else f"meta.{key}"
        taken.add(col)
        meta_cols.append(col)
        series = infer_column(col, [meta.get(r, {}).get(key) for r in order], diags, "meta")
        if key in DATETIME_META and series.dtype in (pl.Float64, pl.Int64):
            series = pl.select(_to_datetime(pl.lit(series))).to_series().alias(col)
        columns.append(series)
    runs = pl.DataFrame(columns)
    runs = runs.join(
        counts.with_columns(_to_datetime(pl.col(c)).alias(c) for c in ("first_time", "last_time")),
        on="run", how="left",
    ).with_columns(
        pl.col("points").fill_null(0).cast(pl.Int64), pl.col("metrics").fill_null(0).cast(pl.Int64)
    )
    if data.built is not None:
        notes = [[d.path, d.line, d.message, d.kind] for d in diags.items[before:]]
        data.built.save(runs, index, {"params": param_cols, "meta": meta_cols,
                                      "diagnostics": notes, "layout": _BUILT_LAYOUT})
    return Dataset(
        runs=live_columns(runs, meta_cols, files, observer).lazy(),
        points=points,
        params=param_cols,
        meta=meta_cols,
        context_keys=context_keys,
        files=files,
        diagnostics=diags,
        series=index,
    )


def _series_index(stats: pl.DataFrame, contexts: list[str]) -> pl.DataFrame:
    """The per-series stats with the context decoded into key columns, like ``points``."""
    # ``step`` carries the row number through the decoding, which drops the series whose
    # context is not an object of strings; their counts are then left out too.
    frame, _ = _decode_contexts(
        stats.lazy().with_columns(step=pl.int_range(pl.len(), dtype=pl.Int64),
                                  epoch=pl.lit(None, pl.Float64),
                                  time=pl.lit(None, pl.Float64), value=pl.lit(None, pl.Float64)),
        contexts, Diagnostics())
    keys = [c for c in frame.collect_schema().names() if c not in POINT_COLUMNS]
    rows = frame.select("run", "name", *keys, "step").collect()
    counts = stats.select(*SUMMARY_SCHEMA, "parts")[rows.get_column("step")]
    return rows.drop("step").hstack(counts)


def load(runs_dir: str | os.PathLike[str] = "runs", *, now: float | None = None,
         host: str | None = None, progress: Progress | None = None) -> Dataset:
    """Load a runs directory (or one file) into a :class:`Dataset`.

    JSONL is parsed once and kept in a columnar cache (:mod:`xpcli.cache`; ``XP_NO_CACHE=1``
    bypasses it), so ``points`` is a lazy scan: a query reads only the columns and
    metrics it needs. Raises :class:`DataError` when the directory is missing or holds no
    records at all; anything less (torn or malformed lines, empty files) is skipped and
    reported in ``Dataset.diagnostics``.

    ``now`` (unix seconds) and ``host`` set the moment and host from which live runs are
    judged (default: ``$XP_NOW``/``$XP_HOST``, else the clock and this host's name).
    ``progress`` follows a cache update file by file (:mod:`xpcli.progress`).
    ``s3://``, ``gs://`` and ``az://`` URLs are read through :mod:`xpcli.remote`.
    """
    from . import remote

    if remote.is_url(runs_dir):  # read a local mirror of the objects, named by their URLs
        synced = remote.sync(str(runs_dir), cache_home(), progress)
        return synced.name_objects(load(synced.folder, now=now, host=host, progress=progress))
    root = os.fspath(runs_dir)
    files = find_files(root)
    if not files:
        raise DataError(
            f"no run files (*.jsonl, *.jsonl.gz, *.parquet) under {root}; "
            "pass --runs DIR or set XP_RUNS"
        )
    held = superseded(root, files)  # JSONL already held by a compacted Parquet file
    files = [f for f in files if f not in held.skip]
    data = read(root, files, held.offsets, progress)
    # A state built before had records (else it was not built): its stats are not needed.
    kept = data.built.load() if data.built is not None else None
    if kept is None and data.stats.height == 0 and \
            data.records.filter(pl.col("kind") == "run").head(1).collect().height == 0:
        raise DataError(
            f"no records in the {len(files)} run file(s) under {root}"
            + (f" ({data.diagnostics.summary()})" if len(data.diagnostics) else "")
        )
    return build(data, files, liveness.Observer.here(now, host))


# -- what is decided when reading ---------------------------------------------------------


def _meta_column(key: str, meta_cols: list[str]) -> str | None:
    """The runs-table column of meta ``key`` (``meta.<key>`` when a param took the name)."""
    if f"meta.{key}" in meta_cols:
        return f"meta.{key}"
    return key if key in meta_cols else None


def _seconds(runs: pl.DataFrame, column: str | None) -> pl.Expr:
    """A Datetime column as unix seconds (null when absent or not a datetime)."""
    if column is None or column not in runs.columns or \
            not isinstance(runs.schema[column], pl.Datetime):
        return pl.lit(None, pl.Float64)
    return pl.col(column).dt.epoch("us").cast(pl.Float64) / 1e6


def _datetime(runs: pl.DataFrame, column: str | None) -> pl.Expr:
    """A Datetime meta column (null when absent or of another type)."""
    if column is None or column not in runs.columns or \
            not isinstance(runs.schema[column], pl.Datetime):
        return pl.lit(None, pl.Datetime("us", "UTC"))
    return pl.col(column).cast(pl.Datetime("us", "UTC"))


def _file_times(files: list[str], runs: set[str]) -> dict[str, float]:
    """The newest modification time of each run's ``<run>.jsonl`` files, or of the files
    in its ``<run>/`` folder (what ``Run`` writes, one file per writer or one object per
    flush, and touches as its heartbeat), for the runs in ``runs``."""
    times: dict[str, float] = {}
    for path in files:
        name = os.path.basename(path)
        if not name.endswith(".jsonl"):
            continue
        run = name[:-6] if name[:-6] in runs else os.path.basename(os.path.dirname(path))
        if run not in runs:
            continue
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        times[run] = max(mtime, times.get(run, mtime))
    return times


def _error_value(value: Any) -> dict[str, Any] | None:
    """Meta ``error`` as the runs table holds it (JSON text) -> the struct's fields."""
    if value is None:
        return None
    try:
        error = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        error = None
    if not isinstance(error, dict):
        return {"type": None, "message": str(value), "traceback": None, "signal": None}
    lines = error.get("traceback")
    return {
        "type": error.get("type") if isinstance(error.get("type"), str) else None,
        "message": error.get("message") if isinstance(error.get("message"), str) else None,
        "traceback": [str(x) for x in lines] if isinstance(lines, list) else None,
        "signal": error.get("signal") if isinstance(error.get("signal"), str) else None,
    }


def live_columns(runs: pl.DataFrame, meta_cols: list[str], files: list[str],
                 observer: liveness.Observer) -> pl.DataFrame:
    """Add what is decided at read time to a runs table (:data:`LIVE_COLUMNS`).

    ``status``: a written ``running`` becomes ``crashed`` or ``stale`` when its writer is
    gone (:func:`xpcli.liveness.decide`; the run file's modification time is its
    heartbeat). ``reason``: for ``failed``/``interrupted`` the short form of meta
    ``error``, for ``crashed``/``stale`` why. ``started``: ``created``, else the first
    point's time. ``last_activity``: the latest of the last point, ``ended``, ``resumed``
    and, for a run written as running, its file's modification time. ``elapsed``: to now
    for a running run, to ``ended`` for a closed one, else to ``last_activity``.
    """
    status_col = _meta_column("status", meta_cols)
    created = _seconds(runs, _meta_column("created", meta_cols))
    ended = _seconds(runs, _meta_column("ended", meta_cols))
    resumed = _seconds(runs, _meta_column("resumed", meta_cols))
    error_col = _meta_column("error", meta_cols)
    written = runs.get_column(status_col) if status_col and \
        runs.schema[status_col] == pl.String else pl.Series([None] * runs.height, dtype=pl.String)
    times = runs.select(
        created=created, ended=ended, resumed=resumed,
        first=_seconds(runs, "first_time"), last=_seconds(runs, "last_time"),
    )
    live = set(runs.filter(written == liveness.RUNNING).get_column("run").to_list())
    mtimes = _file_times(files, live) if live else {}
    facts_cols = {key: _meta_column(key, meta_cols)
                  for key in ("host", "pid", "pid_start", "heartbeat")}
    errors = [_error_value(v) for v in runs.get_column(error_col).to_list()] \
        if error_col is not None else [None] * runs.height
    statuses: list[Any] = []
    reasons: list[str | None] = []
    signs: list[float | None] = []
    for i, (run, status) in enumerate(zip(runs.get_column("run").to_list(), written.to_list())):
        sign = mtimes.get(run)
        signs.append(sign)
        if status == liveness.RUNNING:
            row = times.row(i, named=True)
            known = [t for t in (sign, row["last"], row["created"], row["resumed"])
                     if t is not None]
            facts = liveness.Facts(
                status, last_sign=max(known) if known else None,
                **{k: runs.item(i, c) if c is not None else None for k, c in facts_cols.items()})
            status, reason = liveness.decide(facts, observer)
        elif status in (liveness.FAILED, liveness.INTERRUPTED):
            reason = liveness.short_reason(errors[i])
        else:
            reason = None
        statuses.append(status)
        reasons.append(reason)
    decided = pl.Series("status", statuses, dtype=pl.String)
    created_at, ended_at, resumed_at = (
        _datetime(runs, _meta_column(k, meta_cols)) for k in ("created", "ended", "resumed"))
    frame = runs.with_columns(
        pl.Series("reason", reasons, dtype=pl.String),
        pl.coalesce(created_at, pl.col("first_time")).alias("started"),
        pl.max_horizontal(pl.col("last_time"), ended_at, resumed_at, created_at,
                          _to_datetime(pl.lit(pl.Series(signs, dtype=pl.Float64))))
        .alias("last_activity"),
    )
    # Differences of microsecond datetimes: exact, unlike float seconds.
    end = (pl.when(pl.lit(decided) == liveness.RUNNING).then(_to_datetime(pl.lit(observer.now)))
           .when(ended_at.is_not_null()).then(ended_at)
           .otherwise(pl.col("last_activity")))
    frame = frame.with_columns((end - pl.col("started")).alias("elapsed"))
    if status_col is not None and runs.schema[status_col] == pl.String:
        frame = frame.with_columns(decided.alias(status_col))
    if error_col is not None and runs.schema[error_col] == pl.String:
        frame = frame.with_columns(pl.Series(error_col, errors, dtype=ERROR_DTYPE))
    return frame



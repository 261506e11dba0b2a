"""The shared dataset: a runs directory written as Hive-partitioned Parquet for other engines.

``export(dataset, folder)`` (``xp compact --to DIR``) writes three tables that Spark,
DuckDB, Trino and Polars read without xp, and a manifest; ``docs/format.md`` ("The shared
dataset") is the specification, :data:`DATASET_VERSION` its version:

- ``points/bucket=K/part-0.parquet``: every point, with ``order``, its index in the
  logging order of its series (:mod:`xpcli.analysis.series_model`);
- ``series/bucket=K/part-0.parquet``: one row per series (run, metric, context): count,
  NaN count, first and last (in logging order), min, max, sum and the x ranges;
- ``runs/part-0.parquet``: the runs table (params, meta, counts), as xp reads it now;
- ``_xp_dataset.json``: the version, the bucket count, and which columns are params,
  meta and context keys.

Rows are split into buckets by run (``crc32(run) % buckets``), so a run's rows sit in
one file and a cluster reads the files in parallel. Metric names are not partition values:
they are free text, which every engine would escape and type-guess its own way.

The folder is written beside its final place and renamed into it, so a reader sees the
old dataset or the new one, never half of one.

On object storage (``--to s3://bucket/prefix``, ``gs://``, ``az://``: :mod:`xpcli.remote`)
there is no rename: the dataset is written to a local temporary folder as above, then
uploaded under the prefix with the same names. The manifest is what makes a prefix a
dataset, so it is deleted first and uploaded last: a reader that starts meanwhile is told
there is no dataset there instead of reading half of one. Objects of the old dataset that
the new one does not have (a bucket fewer) are deleted before the manifest comes back.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from .analysis.series_model import POSITION, ROW, in_logging_order
from .dataset import Dataset
from .errors import DataError, UsageError
from .remote import first_line, is_url, normalize, open_store

__all__ = ["DATASET_VERSION", "MANIFEST", "ExportResult", "bucket_of", "context_column",
           "export", "read_manifest"]

#: The version of the layout written (docs/format.md, "The shared dataset").
DATASET_VERSION = 1
MANIFEST = "_xp_dataset.json"
#: The folders of the tables, the objects a dataset on object storage is made of.
TABLES = ("points", "series", "runs")
#: Uploads at once when the dataset goes to object storage.
UPLOADS = 8
#: Runs per bucket aimed at: a few files for a small study, many for a large one.
RUNS_PER_BUCKET = 256
MAX_BUCKETS = 64
CONTEXT_PREFIX = "ctx_"

_SERIES_STATS = ("count", "nan_count", "first", "last", "min", "max", "sum",
                 "epoch_min", "epoch_max", "step_min", "step_max", "time_min", "time_max")


@dataclass
class ExportResult:
    """What :func:`export` wrote."""

    folder: str
    runs: int
    points: int
    series: int
    buckets: int


def context_column(key: str) -> str:
    """The dataset column of a context key: ``lang`` -> ``ctx_lang``."""
    return CONTEXT_PREFIX + key


def bucket_of(run: str, buckets: int) -> int:
    """The bucket of a run: CRC-32 of its UTF-8 id, modulo the bucket count."""
    return zlib.crc32(run.encode("utf-8")) % buckets


def read_manifest(folder: str) -> dict[str, object]:
    """The manifest of a dataset folder; a :class:`DataError` when it is not one (or of a
    version this xp cannot read)."""
    path = os.path.join(folder, MANIFEST)
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{folder} is not an xp dataset (no {MANIFEST}); write one with "
                        f"`xp compact --runs RUNS --to {folder}`") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the dataset manifest ({exc})") from None
    version = manifest.get("version") if isinstance(manifest, dict) else None
    if version != DATASET_VERSION:
        raise DataError(f"{path}: dataset version {version!r}; this xp reads version "
                        f"{DATASET_VERSION} (write it again with `xp compact --to`)")
    return manifest


def _points_and_series(dataset: Dataset) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The points with ``order`` (logging order), and the summary of every series."""
    keys = list(dataset.context_keys)
    points = dataset.points.collect().with_columns(
        # An empty context value means no value (as in metric specs).
        [pl.col(k).cast(pl.String).replace("", None) for k in keys])
    by = ["run", "name", *keys]
    ordered = in_logging_order(points.with_row_index(ROW), by)
    valid = pl.col("value").is_not_null() & pl.col("value").is_not_nan()
    kept = pl.col("value").filter(valid)
    any_valid = valid.any()
    series = ordered.group_by(by, maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("count"),
        (~valid).sum().cast(pl.Int64).alias("nan_count"),
        kept.first().alias("first"),
        kept.last().alias("last"),
        kept.min().alias("min"),
        kept.max().alias("max"),
        pl.when(any_valid).then(kept.sum()).alias("sum"),
        *[getattr(pl.col(axis).cast(dtype), agg)().alias(f"{axis}_{agg}")
          for axis, dtype in (("epoch", pl.Float64), ("step", pl.Int64), ("time", pl.Float64))
          for agg in ("min", "max")],
    )
    renamed = {k: context_column(k) for k in keys}
    points_out = ordered.select(
        "run", "name", *keys,
        pl.col("step").cast(pl.Int64), pl.col("epoch").cast(pl.Float64),
        pl.col("time").cast(pl.Float64), pl.col("value").cast(pl.Float64),
        pl.col(POSITION).cast(pl.Int64).alias("order"),
    ).rename(renamed)
    series = series.select("run", "name", *keys, *_SERIES_STATS).rename(renamed)
    return points_out, series


def _write_buckets(frame: pl.DataFrame, folder: str, buckets: int,
                   sort: list[str]) -> None:
    """One file per non-empty bucket, ``folder/bucket=K/part-0.parquet``, sorted by
    ``sort`` (so each file's row-group statistics on ``name`` let readers skip)."""
    marked = frame.with_columns(
        pl.col("run").map_elements(lambda run: bucket_of(run, buckets), return_dtype=pl.Int64)
        .alias("__bucket"))
    for (number,), part in marked.partition_by("__bucket", as_dict=True).items():
        target = os.path.join(folder, f"bucket={number}")
        os.makedirs(target, exist_ok=True)
        table = part.drop("__bucket").sort(sort, nulls_last=True, maintain_order=True)
        pq.write_table(table.to_arrow(), os.path.join(target, "part-0.parquet"),
                       compression="zstd")


def export(dataset: Dataset, folder: str, *, source: str = "",
           buckets: int | None = None) -> ExportResult:
    """Write ``dataset`` to ``folder`` as the shared dataset (see the module docs).

    ``folder`` must not exist, or hold a dataset written before (it is replaced whole);
    it may be an object-storage URL (see the module docs). ``buckets`` defaults to one
    per 256 runs, at most 64.
    """
    if is_url(folder):
        return _export_to_store(dataset, folder, source=source, buckets=buckets)
    if "://" in folder:
        raise UsageError(f"--to {folder}: not a folder or an s3://, gs:// or az:// URL")
    folder = os.path.normpath(folder)
    if os.path.exists(folder) and not os.path.isfile(os.path.join(folder, MANIFEST)):
        if not os.path.isdir(folder) or os.listdir(folder):
            raise UsageError(f"--to {folder}: exists and is not an xp dataset; choose a new "
                             "folder (an xp dataset there is replaced)")
    runs = dataset.runs.collect()
    if buckets is None:
        buckets = max(1, min(MAX_BUCKETS, -(-runs.height // RUNS_PER_BUCKET)))
    points, series = _points_and_series(dataset)
    parent = os.path.dirname(os.path.abspath(folder))
    stamp = f"{os.getpid()}-{time.time_ns()}"
    tmp = os.path.join(parent, f".{os.path.basename(folder)}.tmp-{stamp}")
    old = os.path.join(parent, f".{os.path.basename(folder)}.old-{stamp}")
    keys = list(dataset.context_keys)
    manifest = {
        "format": "xp-dataset",
        "version": DATASET_VERSION,
        "buckets": buckets,
        "bucket_rule": "crc32(utf8(run)) % buckets",
        "context_keys": {context_column(k): k for k in keys},
        "params": list(dataset.params),
        "meta": list(dataset.meta),
        "runs": runs.height,
        "points": points.height,
        "series": series.height,
        "source": source,
        "written": time.time(),
    }
    try:
        os.makedirs(os.path.join(tmp, "runs"))
        pq.write_table(runs.to_arrow(), os.path.join(tmp, "runs", "part-0.parquet"),
                       compression="zstd")
        ctx = [context_column(k) for k in keys]
        _write_buckets(points, os.path.join(tmp, "points"), buckets,
                       ["name", *ctx, "run", "order"])
        _write_buckets(series, os.path.join(tmp, "series"), buckets, ["name", *ctx, "run"])
        for table in ("points", "series"):
            os.makedirs(os.path.join(tmp, table), exist_ok=True)
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2)
            fh.write("\n")
        if os.path.exists(folder):
            os.replace(folder, old)
        try:
            os.replace(tmp, folder)
        except OSError:
            if os.path.exists(old):
                os.replace(old, folder)  # the previous dataset stays
            raise
    except OSError as exc:
        raise DataError(f"cannot write {folder}: {exc.strerror or exc}; "
                        "the dataset there (if any) is unchanged") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return ExportResult(folder, runs.height, points.height, series.height, buckets)


def _export_to_store(dataset: Dataset, url: str, *, source: str,
                     buckets: int | None) -> ExportResult:
    """:func:`export` to object storage: written locally, then uploaded, the manifest
    deleted first and put back last (module docs)."""
    import obstore

    url = normalize(url)
    store = open_store(url)
    try:
        present = {meta["path"] for batch in obstore.list(store) for meta in batch}
    except Exception as exc:  # noqa: BLE001 - obstore's errors share no base we import
        raise DataError(f"cannot list {url}: {first_line(exc)}") from None
    # An xp dataset, or what an interrupted upload of one left (its tables without the
    # manifest, which goes up last): either is replaced. Anything else is not ours.
    ours = MANIFEST in present or all(key.split("/", 1)[0] in TABLES for key in present)
    if present and not ours:
        raise UsageError(f"--to {url}: holds objects and is not an xp dataset; choose a new "
                         "prefix (an xp dataset there is replaced)")

    def call(action: str, key: str, func: Any, *args: Any) -> None:
        try:
            func(store, key, *args)
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"cannot {action} {url}/{key}: {first_line(exc)}; the dataset "
                            f"there is incomplete until `xp compact --to {url}` runs "
                            "again") from None

    with tempfile.TemporaryDirectory(prefix="xp-dataset-") as tmp:
        local = os.path.join(tmp, "dataset")
        result = export(dataset, local, source=source, buckets=buckets)
        files = sorted(os.path.relpath(os.path.join(root, name), local).replace(os.sep, "/")
                       for root, _, names in os.walk(local) for name in names)
        if MANIFEST in present:
            call("delete", MANIFEST, obstore.delete)

        def upload(key: str) -> None:
            with open(os.path.join(local, key), "rb") as fh:
                call("upload", key, obstore.put, fh.read())

        tables = [key for key in files if key != MANIFEST]
        with ThreadPoolExecutor(max_workers=UPLOADS) as pool:
            list(pool.map(upload, tables))
        stale = sorted(key for key in present - set(files)
                       if key.split("/", 1)[0] in TABLES)
        for key in stale:
            call("delete", key, obstore.delete)
        upload(MANIFEST)
    result.folder = url
    return result

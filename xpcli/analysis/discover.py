"""Discovery tables: which runs exist, and which metrics with which contexts."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ..dataset import ERROR_DTYPE, LIVE_COLUMNS, Dataset
from ..errors import unknown_name
from ..spec.where import compile_where


def runs_table(dataset: Dataset, columns: Sequence[str] | None = None,
               where: str | None = None, errors: bool = False) -> pl.DataFrame:
    """One row per run: id, params, status and reason, point counts, start, last activity
    and elapsed time.

    ``columns`` (``--params``) chooses the params and meta columns shown, in order, in
    place of all params (default); one named twice is shown once. An unknown name is a
    :class:`UsageError` listing the params, then the meta columns. ``where`` keeps the runs
    matching a ``--where`` expression over the runs table (``status == "crashed"``).
    ``errors`` adds ``error``, the whole of why each failed run ended (type, message,
    traceback). Runs are ordered by creation time when known, else by id.
    """
    live = [c for c in LIVE_COLUMNS if c != "reason"]
    if columns is None:
        params = list(dataset.params)
    else:
        params = list(dict.fromkeys(columns))
        known = [*dataset.params, *(m for m in dataset.meta if m not in dataset.params),
                 "reason", *live]
        unknown = [c for c in params if c not in known]
        if unknown:
            raise unknown_name("--params", "param", unknown[0], known)
    runs = dataset.runs
    if where:
        runs = runs.filter(compile_where(where, runs.collect_schema()))
    frame = runs.collect()
    meta = [c for c in ("status", "reason") if c in frame.columns and c not in params]
    extra = []
    if errors and "error" not in params:
        extra = [pl.col("error") if "error" in frame.columns
                 else pl.lit(None, ERROR_DTYPE).alias("error")]
    order = ["created", "run"] if "created" in frame.columns else ["run"]
    return frame.sort(order, nulls_last=True).select(
        "run", *params, *meta, "points", "metrics", *(c for c in live if c not in params),
        *extra,
    )


def metrics_table(dataset: Dataset) -> pl.DataFrame:
    """One row per metric: its context keys and values, runs, points, step and epoch ranges.

    ``context`` reads ``lang=de|en|es; split=eval``: each key the metric is logged with and
    the values seen (sorted). When some of the metric's points lack a key, ``(none)`` is
    one of its values and the count follows: ``split=train|(none) (15643 of 15652
    points have no split)``, so a spec such as ``loss:split=train`` is not taken for the
    whole metric (``loss:split=`` names the points without a split).
    """
    keys = dataset.context_keys
    if dataset.series is not None:  # the per-series index: no pass over the points
        source = dataset.series.lazy()
        count = pl.col("points")
        aggs = [
            pl.col("run").n_unique().alias("runs"),
            pl.col("points").sum().alias("points"),
            pl.col("step_min").min(), pl.col("step_max").max(),
            pl.col("epoch_min").min(), pl.col("epoch_max").max(),
        ]
    else:
        source = dataset.points
        count = pl.lit(1, dtype=pl.Int64)
        aggs = [
            pl.col("run").n_unique().alias("runs"),
            pl.len().alias("points"),
            pl.col("step").min().alias("step_min"),
            pl.col("step").max().alias("step_max"),
            pl.col("epoch").min().alias("epoch_min"),
            pl.col("epoch").max().alias("epoch_max"),
        ]
    for k in keys:
        value = pl.col(k).cast(pl.String)
        lacking = value.is_null() | (value == "")
        aggs += [value.filter(~lacking).unique().sort().alias(f"__ctx_{k}"),
                 count.filter(lacking).sum().alias(f"__none_{k}")]
    grouped = source.group_by("name").agg(aggs).sort("name").collect()
    contexts = [""] * grouped.height  # a frame without columns has no rows to iterate
    if keys:
        contexts = []
        columns = [c for k in keys for c in (f"__ctx_{k}", f"__none_{k}")]
        for total, *row in grouped.select("points", *columns).iter_rows():
            parts = []
            for k, values, none in zip(keys, row[0::2], row[1::2]):
                if not values:
                    continue
                if none:
                    parts.append(f"{k}={'|'.join(values)}|(none) ({none} of {total} points "
                                 f"have no {k})")
                else:
                    parts.append(f"{k}={'|'.join(values)}")
            contexts.append("; ".join(parts))
    return grouped.select(
        pl.col("name").alias("metric"),
        pl.Series("context", contexts, dtype=pl.String),
        "runs", "points", "step_min", "step_max", "epoch_min", "epoch_max",
    )

"""Shell completion of names from the runs directory: params, metric specs, run ids.

click completes commands, options and choices itself (``_XP_COMPLETE=bash_source xp``;
README, "Shell completion"). The functions here are the ``shell_complete`` callbacks of
the options and arguments that name things in the runs: they read what the last ``xp``
command left in the cache (:class:`xpcli.cache.Built`: the runs table, the series index
and the param names) and never read a run file, so a completion costs the same on ten
runs as on ten thousand. Without a cache (a directory xp has not read yet, or
``XP_NO_CACHE``) they offer nothing; they never fail.

Only the standard library and click at module level: a completion that names params reads
one JSON file; polars loads only for metric names, context values and run ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

#: Columns of the series index that are not context keys.
_SERIES_STATS = {"run", "name", "points", "first_time", "last_time", "step_min",
                 "step_max", "epoch_min", "epoch_max"}


def _runs_dir(ctx: click.Context) -> str:
    """The runs directory the command line names: the command's --runs, the group's,
    $XP_RUNS, ./runs (what :func:`xpcli.commands._common.runs_dir` decides when it runs)."""
    current: click.Context | None = ctx
    while current is not None:
        given = current.params.get("runs")
        if given:
            return str(given)
        current = current.parent
    return os.environ.get("XP_RUNS") or "runs"


def _built(ctx: click.Context) -> Path | None:
    """The newest ``built-<token>.json`` of the runs directory's cache, if any."""
    from .cache import cache_dir_for

    folder = cache_dir_for(_runs_dir(ctx))
    if folder is None or not folder.is_dir():
        return None
    found = [p for p in folder.glob("built-*.json") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _names(ctx: click.Context, meta: bool) -> list[str]:
    built = _built(ctx)
    if built is None:
        return []
    info = json.loads(built.read_text(encoding="utf-8"))
    return [*info.get("params", []), *(info.get("meta", []) if meta else [])]


def _table(ctx: click.Context, which: str) -> Any:
    built = _built(ctx)
    if built is None:
        return None
    import polars as pl

    return pl.read_parquet(built.with_name(built.name.removesuffix(".json") + f".{which}.parquet"))


def _last_item(incomplete: str) -> tuple[str, str]:
    """``lr,se`` -> (``lr,``, ``se``): a comma-separated list completes its last item."""
    head, comma, last = incomplete.rpartition(",")
    return (head + comma, last)


def _items(prefix: str, last: str, names: list[str]) -> list[CompletionItem]:
    return [CompletionItem(prefix + name) for name in dict.fromkeys(names)
            if name.startswith(last)]


def _safe(func: Any) -> Any:
    """A completion never fails the shell: a damaged or missing cache offers nothing."""
    def complete(ctx: click.Context, param: click.Parameter,
                 incomplete: str) -> list[CompletionItem]:
        try:
            return func(ctx, param, incomplete)
        except Exception:  # noqa: BLE001 - anything at all: no completions
            return []

    complete.__doc__ = func.__doc__
    return complete


@_safe
def complete_params(ctx: click.Context, param: click.Parameter,
                    incomplete: str) -> list[CompletionItem]:
    """Param names (``lr``, ``optimizer.name``), the last item of a comma list."""
    prefix, last = _last_item(incomplete)
    return _items(prefix, last, _names(ctx, meta=False))


@_safe
def complete_columns(ctx: click.Context, param: click.Parameter,
                     incomplete: str) -> list[CompletionItem]:
    """Param and meta names (``lr``, ``status``), the last item of a comma list."""
    prefix, last = _last_item(incomplete)
    return _items(prefix, last, _names(ctx, meta=True))


@_safe
def complete_specs(ctx: click.Context, param: click.Parameter,
                   incomplete: str) -> list[CompletionItem]:
    """Metric specs: a metric name (``f1``), then its context (``f1:lang=de``,
    ``f1:lang=*``) once a ``:`` is typed; the last item of a comma list."""
    prefix, last = _last_item(incomplete)
    series = _table(ctx, "series")
    if series is None:
        return []
    metrics = sorted(series.get_column("name").unique().drop_nulls().to_list())
    if ":" not in last:
        return _items(prefix, last, metrics)
    name, _, context = last.partition(":")
    rows = series.filter(series.get_column("name") == name)
    done, _, typing = context.rpartition(":")
    head = f"{name}:{done + ':' if done else ''}"
    offered: list[str] = []
    import polars as pl  # loaded already, by _table

    # Context keys are the index's String columns (the series summary's are numbers).
    for key in sorted(c for c in rows.columns
                      if c not in _SERIES_STATS and rows.schema[c] == pl.String):
        values = sorted(rows.get_column(key).drop_nulls().unique().to_list())
        if values:
            offered += [f"{head}{key}={v}" for v in [*values, "*"]]
    return _items(prefix, head + typing, offered)


@_safe
def complete_runs(ctx: click.Context, param: click.Parameter,
                  incomplete: str) -> list[CompletionItem]:
    """Run ids, from the runs table."""
    runs = _table(ctx, "runs")
    if runs is None:
        return []
    ids = sorted(runs.get_column("run").to_list())
    return [CompletionItem(run) for run in ids if run.startswith(incomplete)]

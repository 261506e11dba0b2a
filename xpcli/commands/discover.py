"""Discovery: ``xp runs`` and ``xp metrics``."""

from __future__ import annotations

from ._common import (
    Table,
    command,
    format_option,
    load_dataset,
    param_list,
    params_option,
    quiet_option,
    runs_option,
    show,
    watch_option,
    where_option,
)


@command("runs")
@runs_option
@params_option("Params or meta columns to show, comma-separated or repeated (default: all "
               "params), e.g. lr,seed,host.")
@where_option
@format_option
@watch_option
@quiet_option
def runs_cmd(runs: str | None, params: tuple[str, ...], where: str | None, format_: str,
             watch: float | None, quiet: bool) -> None:
    """List runs: params, status and why it ended, point counts, start, last activity, elapsed.

    One row per run, ordered by creation time. The status is decided when reading:
    running, finished, failed, interrupted, crashed (the writer's process is gone, or
    it stopped writing) or stale (not heard from for long, on a host this one cannot
    check); reason says why a run failed or is taken for dead (--format json adds
    error: the exception's type, message and traceback). elapsed is in human units on a
    terminal, in seconds in CSV and JSON.

    \b
    Examples:
      xp runs --runs sample_runs --params lr,seed
      xp runs --runs sample_runs --where 'status != "finished"'
      xp runs --runs sample_runs --format csv | head -3
    """
    from ..analysis.discover import runs_table
    from ..output import resolve_format

    chosen = resolve_format(format_)
    columns = param_list(params) or None

    def refresh() -> Table:
        dataset = load_dataset(runs, quiet)
        table = runs_table(dataset, columns, where=where,
                           errors=chosen in ("json", "jsonl", "parquet"))
        return Table(table, chosen, title=f"{table.height} runs")

    show(refresh, watch)


@command("metrics")
@runs_option
@format_option
@watch_option
@quiet_option
def metrics_cmd(runs: str | None, format_: str, watch: float | None, quiet: bool) -> None:
    """List metrics: context keys and values, runs, points, step and epoch ranges.

    Shows what a metric spec can name, e.g. f1 logged with lang=de|en|... means
    f1:lang=de or f1:lang=* work.

    \b
    Examples:
      xp metrics --runs sample_runs
      xp metrics --runs sample_runs --format json
    """
    from ..analysis.discover import metrics_table

    def refresh() -> Table:
        return Table(metrics_table(load_dataset(runs, quiet)), format_, title="metrics",
                     keys=("metric", "context"))

    show(refresh, watch)

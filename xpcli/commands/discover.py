"""Discovery: ``xp runs`` and ``xp metrics``."""

from __future__ import annotations

from ._common import (
    command,
    emit,
    format_option,
    load_dataset,
    param_list,
    params_option,
    quiet_option,
    runs_option,
)


@command("runs")
@runs_option
@params_option("Params or meta columns to show, comma-separated or repeated (default: all "
               "params), e.g. lr,seed,host.")
@format_option
@quiet_option
def runs_cmd(runs: str | None, params: tuple[str, ...], format_: str, quiet: bool) -> None:
    """List runs: params, status, point counts, first and last time.

    One row per run, ordered by creation time.

    \b
    Examples:
      xp runs --runs sample_runs --params lr,seed
      xp runs --runs sample_runs --format csv | head -3
    """
    from ..analysis.discover import runs_table
    dataset = load_dataset(runs, quiet)
    columns = param_list(params) or None
    table = runs_table(dataset, columns)
    emit(table, format_, title=f"{table.height} runs")


@command("metrics")
@runs_option
@format_option
@quiet_option
def metrics_cmd(runs: str | None, format_: str, quiet: bool) -> None:
    """List metrics: context keys and values, runs, points, step and epoch ranges.

    Shows what a metric spec can name, e.g. f1 logged with lang=de|en|... means
    f1:lang=de or f1:lang=* work.

    \b
    Examples:
      xp metrics --runs sample_runs
      xp metrics --runs sample_runs --format json
    """
    from ..analysis.discover import metrics_table

    dataset = load_dataset(runs, quiet)
    emit(metrics_table(dataset), format_, title="metrics")

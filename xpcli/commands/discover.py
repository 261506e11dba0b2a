"""Discovery: ``xp runs`` and ``xp metrics``."""

from __future__ import annotations

import click

from ._common import emit, format_option, load_dataset, quiet_option, runs_option


@click.command("runs")
@runs_option
@click.option("--params", "params", metavar="LIST", default=None,
              help="Comma-separated params to show (default: all), e.g. lr,seed.")
@format_option
@quiet_option
def runs_cmd(runs: str | None, params: str | None, format_: str, quiet: bool) -> None:
    """List runs: params, status, point counts, first and last time.

    One row per run, ordered by creation time.

    \b
    Examples:
      xp runs --runs sample_runs --params lr,seed
      xp runs --runs sample_runs --format csv | head -3
    """
    from ..analysis.discover import runs_table
    from ..errors import UsageError

    dataset = load_dataset(runs, quiet)
    columns = None
    if params:
        # dict.fromkeys: a param named twice is shown once (a frame has unique columns).
        columns = list(dict.fromkeys(p.strip() for p in params.split(",") if p.strip()))
        unknown = [p for p in columns if p not in dataset.params]
        if unknown:
            raise UsageError(
                f"--params: unknown param {unknown[0]!r}; known: {', '.join(dataset.params)}"
            )
    table = runs_table(dataset, columns)
    emit(table, format_, title=f"{table.height} runs")


@click.command("metrics")
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

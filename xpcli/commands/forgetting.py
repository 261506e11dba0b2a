"""``xp forgetting``: per-context peak, drop and decline of a run, or of many runs."""

from __future__ import annotations

import click

from ..completion import complete_specs
from ..html import is_html
from ._common import (
    Choice,
    Figure,
    Table,
    by_option,
    command,
    format_option,
    html_output_option,
    load_dataset,
    max_columns_option,
    quiet_option,
    report_notes,
    runs_option,
    show,
    wants_table,
    watch_option,
    where_option,
    x_option,
)


@command("forgetting")
@click.argument("spec", metavar="SPEC", shell_complete=complete_specs)
@runs_option
@click.option("--run", "run", metavar="RUN_OR_PICKER", default=None,
              help="One run: an id (lr3e-5-s05) or a picker (best:f1:lang=en, "
                   "worst:loss:split=train). Default: every run kept by --where.")
@where_option
@by_option("Params to group runs by, comma-separated or repeated, e.g. lr: per group and "
           "context the median of each statistic and the IQR of rel_drop and slope.")
@x_option
@click.option("--best", "best", type=Choice(["max", "min"]), default="max",
              show_default=True,
              help="The peak is the curve's maximum (max, e.g. F1) or minimum (min, e.g. loss).")
@format_option
@html_output_option
@max_columns_option
@watch_option
@quiet_option
def forgetting_cmd(spec: str, runs: str | None, run: str | None, where: str | None,
                   by: tuple[str, ...], x: str, best: str, format_: str, output: str | None,
                   watch: float | None, quiet: bool) -> None:
    """Forgetting per context: peak, its epoch, final value, drop and decline after the peak.

    SPEC names a metric and its contexts, e.g. f1:lang=* (one curve per language). Per
    run and context: peak (best value; ties go to the first) and peak_epoch, final,
    drop = peak - final, rel_drop = drop / |peak|, since_peak (epochs from the peak to the
    end), slope (least squares over the points after the peak, per epoch; empty with
    fewer than 2 such points), auc (trapezoid area divided by the x span: the mean height)
    and status: past_peak, still_learning (peak at the last point: drop 0, no slope),
    plateau (flat end), single_point, or missing (the run lacks the context). rank orders
    each run's contexts by rel_drop, 1 = forgets most. NaN and infinite values are ignored.
    With --by, one row per group and context: medians over the runs, IQR spreads and the
    number of runs still learning. On a terminal the table is compact, with a sparkline
    of each curve (scaled to its own range); --format csv/json give every column. -o
    draws the curves with their peaks: one run, or one panel per context for many runs,
    coloured by --by group with bold group medians (-o FILE.html: an interactive page);
    with -o and an explicit --format the table is printed too.

    \b
    Examples:
      xp forgetting f1:lang=* --runs sample_runs --run best:f1:lang=en
      xp forgetting f1:lang=* --runs sample_runs --by lr
      xp forgetting f1:lang=* --runs sample_runs --run best:f1:lang=en -o forgetting.png
      xp forgetting loss:split=train --runs sample_runs --run lr1e-4-s00 --best min
      xp forgetting f1:lang=* --runs sample_runs --run best:f1:lang=en -o f.png --watch 10
    """
    from ..analysis.forgetting import analyse
    from ..analysis.series_model import Notes
    from ..output import resolve_format
    from ..spec import split_list

    if output:
        # matplotlib loads only when a figure is asked for (half a second).
        from ..plots import check_output_path

        check_output_path(output, html=True)
    groups = split_list(by)
    chosen = resolve_format(format_)
    table = wants_table(output, format_)
    sparkline = table and chosen in ("table", "markdown")

    def refresh() -> Table | Figure:
        notes = Notes()
        result = analyse(load_dataset(runs, quiet), spec, run=run, where=where, by=groups,
                         x=x, best=best, sparkline=sparkline,  # type: ignore[arg-type]
                         notes=notes)
        report_notes(notes, quiet)
        shown = Table(result.display(compact=chosen == "table"), chosen,
                      title=result.title, keys=("context", *groups)) if table else None
        if output:
            if is_html(output):
                from ..html.series import forgetting_view

                return Figure(forgetting_view(result), output, shown)
            from ..plots.forgetting import forgetting_figure

            return Figure(forgetting_figure(result), output, shown)
        assert shown is not None  # without -o the table is always shown
        return shown

    show(refresh, watch)

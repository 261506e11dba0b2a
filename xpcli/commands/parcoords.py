"""``xp parcoords``: parallel coordinates of runs over params and reduced metrics."""

from __future__ import annotations

import click

from ..html import is_html
from ._common import (
    Choice,
    command,
    emit,
    format_option,
    html_output_option,
    info,
    load_dataset,
    max_columns_option,
    metrics_option,
    param_list,
    params_option,
    quiet_option,
    report_notes,
    runs_option,
    save,
    wants_table,
    where_option,
    x_option,
)


@command("parcoords")
@runs_option
@params_option("Params as axes, in order, comma-separated or repeated, e.g. lr,seed "
               "(default: every param that varies).")
@metrics_option("Metric specs as axes, in order, comma-separated or repeated; * gives one "
                "axis per value, e.g. 'f1:lang=*,lms_score' or 'f1:lang=en@max' (default "
                "reduce: last).")
@click.option("--run-axis", "run_axis", type=Choice(["number", "id"]), is_flag=False,
              flag_value="number", default=None,
              help="Add a first axis with the run number (1..N by creation time) or, with "
                   "'--run-axis id', the run id.")
@where_option
@click.option("--color", "color", metavar="AXIS|PARAM|SPEC|none", default=None,
              help="Colour lines by an axis, a param or a metric spec, e.g. lr or "
                   "lms_score (default: the last metric axis; 'none': one colour).")
@click.option("--highlight", "highlight", metavar="PICKER", multiple=True,
              help="Draw a run bold on top, by run id or best:SPEC / worst:SPEC, e.g. "
                   "best:f1:lang=en; repeat for several (red first, then other colours).")
@click.option("--log", "log", metavar="AXIS", multiple=True,
              help="Log scale for these axes (repeat or comma-separate); numeric params "
                   "spanning two decades (lr) get one anyway.")
@click.option("--linear", "linear", metavar="AXIS", multiple=True,
              help="Linear scale for these axes, overriding the automatic log scale.")
@click.option("--invert", "invert", metavar="AXIS", multiple=True,
              help="Draw these axes top-down, e.g. --invert loss (f1 names every f1 axis).")
@x_option
@html_output_option
@format_option
@max_columns_option
@quiet_option
def parcoords_cmd(
    runs: str | None,
    params: tuple[str, ...],
    metrics: tuple[str, ...],
    run_axis: str | None,
    where: str | None,
    color: str | None,
    highlight: tuple[str, ...],
    log: tuple[str, ...],
    linear: tuple[str, ...],
    invert: tuple[str, ...],
    x: str,
    output: str | None,
    format_: str,
    quiet: bool,
) -> None:
    """Parallel coordinates: every run as a line across params and metrics.

    One axis per param and per metric column, in the order given; lines coloured by
    --color, highlighted runs bold on top, runs missing a value drawn through a
    "missing" band (and counted on stderr). With -o FILE (.png, .svg, .pdf) the figure
    is written; with -o FILE.html an interactive page (hover a line for its run, drag on
    axes to filter, a sortable table of the runs kept); without -o the table behind it
    is printed instead (one row per run, one column per axis; --format as for every
    table: a rich table on a terminal, CSV in a pipe). With -o and an explicit --format,
    both.

    \b
    Examples:
      xp parcoords --runs sample_runs --params lr,seed --metrics 'f1:lang=*' \\
         --highlight best:f1:lang=en -o parcoords.png
      xp parcoords --runs sample_runs --params lr --metrics 'f1:lang=en,lms_score' \\
         --run-axis --highlight best:f1:lang=en --highlight best:lms_score -o select.svg
      xp parcoords --runs sample_runs --params lr,seed --metrics 'f1:lang=*' --format csv
    """
    from ..analysis.parcoords import parcoords_table
    from ..analysis.series_model import Notes
    from ..plots import check_output_path
    from ..spec import split_list

    if output is not None:
        check_output_path(output, html=True)
    dataset = load_dataset(runs, quiet)
    notes = Notes()
    table = parcoords_table(
        dataset,
        params=param_list(params),
        metrics=[m for m in metrics if m.strip()],
        run_axis=run_axis,  # type: ignore[arg-type]
        where=where,
        color=color,
        highlights=list(highlight),
        log=split_list(log),
        linear=split_list(linear),
        invert=split_list(invert),
        x=x,  # type: ignore[arg-type]
        notes=notes,
    )
    report_notes(notes, quiet)
    if not quiet:
        labels = table.labels
        for column, count in table.missing.items():
            info(f"xp: {count} of {table.table.height} runs have no value for "
                 f"{labels.get(column, column)}" + (" (drawn in the missing band)"
                                                     if output else ""))
        for text, run in table.highlights:
            info(f"xp: highlight {text}: {run}")
    if wants_table(output, format_):
        emit(table.table, format_, title=table.title)
    if output is not None and is_html(output):
        from ..html.parcoords import parcoords_view

        run_params = dataset.runs.select("run", *dataset.params).collect()
        save(parcoords_view(**table.figure_kwargs(), params=run_params,
                            missing=table.missing), output)
    elif output is not None:
        from ..plots.parcoords import parcoords_figure

        save(parcoords_figure(**table.figure_kwargs()), output)

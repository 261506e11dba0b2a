"""Tables of runs: ``xp select``, ``xp group`` and ``xp selection``, each with a CI gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..completion import complete_runs, complete_specs
from ._common import (
    Table,
    by_option,
    command,
    emit,
    engine_option,
    format_option,
    load_dataset,
    load_with_engine,
    max_columns_option,
    metrics_option,
    param_list,
    params_option,
    quiet_option,
    report_notes,
    runs_option,
    show,
    view,
    watch_option,
    where_option,
    x_option,
)

F = TypeVar("F", bound=Callable[..., Any])


def _fail_if_option(func: F) -> F:
    return click.option(
        "--fail-if",
        "fail_if",
        metavar="EXPR",
        default=None,
        help="Exit 3 if EXPR (a --where expression over the output columns) holds for any "
        "row, cannot be decided for one (missing value), or there are no rows; e.g. "
        "\"`f1[lang=de]` < 0.7\". The table is printed first.",
    )(func)


_metrics_option = metrics_option(
    "Metric specs, comma-separated or repeated, e.g. f1:lang=*@max,lms_score (default: the "
    "last value of every metric in every context).")


def _finish(frame: Any, format_: str, title: str, fail_if: str | None,
            id_columns: list[str], display: Any = None) -> None:
    """Print the table (``display`` if given), then fail the gate if it fails."""
    from ..analysis.gate import gate_error
    from ..output import resolve_format

    error = gate_error(frame, fail_if, id_columns) if fail_if is not None else None
    shown = frame if display is None else display
    emit(shown, resolve_format(format_), title=title, keys=id_columns)
    if error is not None:
        raise error


def _no_gate_when_watching(watch: float | None, fail_if: str | None) -> None:
    if watch is not None and fail_if is not None:
        raise click.UsageError("--fail-if and --watch do not go together: a gate answers "
                               "once (drop --watch in CI)")


@command("select")
@runs_option
@_metrics_option
@params_option("Params or meta columns to show, comma-separated or repeated, e.g. "
               "lr,seed,status (default: the params that vary between runs).")
@where_option
@click.option("--sort", "-s", "sort", metavar="KEYS", multiple=True,
              help="Sort keys, comma-separated or repeated: a column or metric spec, '-' "
              "in front for descending, e.g. -f1[lang=de],lr. Nulls/NaN go last.")
@click.option("--top", "top", type=int, default=None, metavar="N",
              help="Keep the first N rows (after --sort).")
@click.option("--best", "best", metavar="SPEC", default=None,
              help="Keep only the run with the highest SPEC, e.g. f1:lang=en@max; "
              "min:SPEC for the lowest (min:loss:split=train).")
@x_option
@_fail_if_option
@engine_option
@format_option
@max_columns_option
@watch_option
@quiet_option
def select_cmd(runs: str | None, metrics: tuple[str, ...], params: tuple[str, ...],
               where: str | None, sort: tuple[str, ...], top: int | None, best: str | None,
               x: str, fail_if: str | None, format_: str, watch: float | None,
               quiet: bool) -> None:
    """Runs table: one row per run, chosen params and reduced metrics.

    Metric specs with * expand to one column per context value, labelled like
    f1[lang=de]. --where also takes metric specs in backticks.

    \b
    Examples:
      xp select --runs sample_runs -m 'f1:lang=*@max' --sort -f1[lang=en]@max --top 5
      xp select --runs sample_runs --where 'lr <= 3e-5 and `f1:lang=en@max` > 0.9'
      xp select --runs sample_runs --best f1:lang=en@max -m f1:lang=de --format markdown \\
          --fail-if '`f1[lang=de]` < 0.7'
    """
    from ..analysis.gate import gate_error
    from ..analysis.select import select_runs
    from ..analysis.series_model import Notes

    _no_gate_when_watching(watch, fail_if)

    def refresh() -> Table:
        notes = Notes()
        dataset, engine = load_with_engine(runs, quiet)
        table = select_runs(
            dataset,
            metrics=list(metrics) or None,
            params=param_list(params),
            where=where,
            sort=list(sort),
            top=top,
            best=best,
            x=x,  # type: ignore[arg-type]
            notes=notes,
            engine=engine,
        )
        report_notes(notes, quiet)
        title = f"best run by {best}" if best else f"{table.height} runs"
        gate = gate_error(table, fail_if, ["run"]) if fail_if is not None else None
        return Table(table, format_, title, gate=gate)

    show(refresh, watch)


@command("group")
@runs_option
@by_option("Params to group by, comma-separated or repeated (default: the params that "
           "vary, except seeds); lr:log=5, lr:bins=4 or lr:q=4 bin a continuous param.")
@click.option("--agg", "-a", "agg", metavar="LIST", multiple=True,
              help="Statistics: median, mean, std, sem, min, max, count, qNN (q10, q90); "
              "comma-separated or repeated (default: median,min,max).")
@_metrics_option
@where_option
@click.option("--wide", is_flag=True,
              help="On a terminal/markdown too, one column per statistic instead of "
              "'median [min, max]' cells.")
@x_option
@_fail_if_option
@engine_option
@format_option
@max_columns_option
@watch_option
@quiet_option
def group_cmd(runs: str | None, by: tuple[str, ...], agg: tuple[str, ...],
              metrics: tuple[str, ...], where: str | None, wide: bool, x: str,
              fail_if: str | None, format_: str, watch: float | None, quiet: bool) -> None:
    """Group runs by params and aggregate each reduced metric over the group.

    Every group shows its number of runs (n). Machine formats have one column per
    statistic, named like median(f1[lang=de]); the terminal and markdown show
    'median [min, max]' cells. std/sem of a single run are empty (undefined), not 0.

    \b
    Examples:
      xp group --runs sample_runs --by lr -m 'f1:lang=*'
      xp group --runs sample_runs --by lr --agg mean,std,q10,q90 -m lms_score --format csv
      xp group --runs sample_runs --by lr -m f1:lang=de --fail-if '`median(f1[lang=de])` < 0.5'
    """
    from ..analysis.gate import gate_error
    from ..analysis.group import group_table
    from ..analysis.series_model import Notes
    from ..output import resolve_format

    _no_gate_when_watching(watch, fail_if)
    chosen = resolve_format(format_)

    def refresh() -> Table:
        notes = Notes()
        dataset, engine = load_with_engine(runs, quiet)
        result = group_table(dataset, by=list(by), metrics=list(metrics) or None,
                             aggs=list(agg), where=where, x=x,  # type: ignore[arg-type]
                             notes=notes, engine=engine)
        report_notes(notes, quiet)
        runs_total = int(result.wide["n"].sum()) if result.wide.height else 0
        by_text = ", ".join(result.by) if result.by else "nothing (all runs)"
        display = None
        title = f"{runs_total} runs in {result.wide.height} groups by {by_text}"
        if chosen in ("table", "markdown") and not wide:
            display, legend = result.compact(view().precision)
            title = f"{title}: {legend}"
        gate = gate_error(result.wide, fail_if, result.by) if fail_if is not None else None
        return Table(result.wide, chosen, title, display=display, gate=gate,
                     keys=tuple(result.by))

    show(refresh, watch)


@command("selection")
@runs_option
@click.option("--selector", "-s", "selector", metavar="LIST", multiple=True, required=True,
              shell_complete=complete_specs,
              help="Selection rules: metric specs whose best run would be picked, e.g. "
              "f1:lang=en@max,lms_score; min:SPEC when lower is better.")
@click.option("--target", "-t", "target", metavar="LIST", multiple=True, required=True,
              shell_complete=complete_specs,
              help="What the picked run should be good at, e.g. 'f1:lang=*'; min:SPEC when "
              "lower is better.")
@click.option("--exclude", "exclude", metavar="KEY=GLOB", multiple=True,
              help="Drop target columns whose context matches, e.g. lang=en (repeatable).")
@by_option("Analyse each group of these params separately, comma-separated or repeated, "
           "e.g. lr (lr:log=5: by bins of lr).")
@where_option
@x_option
@_fail_if_option
@engine_option
@format_option
@max_columns_option
@quiet_option
def selection_cmd(runs: str | None, selector: tuple[str, ...], target: tuple[str, ...],
                  exclude: tuple[str, ...], by: tuple[str, ...], where: str | None, x: str,
                  fail_if: str | None, format_: str, quiet: bool) -> None:
    """Model selection: what each selector picks and what it costs on the targets.

    Per selector and target: the picked run, its target value, the best possible
    (oracle) value, the regret (oracle - value), and Kendall tau-b / Spearman rho
    between selector and target over all runs. With several targets a
    mean(targets) row follows.

    \b
    Examples:
      xp selection --runs sample_runs -s f1:lang=en@max,lms_score -t 'f1:lang=*' --exclude lang=en
      xp selection --runs sample_runs -s f1:lang=en@max -t 'f1:lang=*' --exclude lang=en --by lr
      xp selection --runs sample_runs -s lms_score -t 'f1:lang=*' --exclude lang=en \\
          --fail-if 'regret > 0.05' --format markdown
    """
    from ..analysis.selection import selection
    from ..analysis.series_model import Notes
    from ..spec import split_list

    dataset, engine = load_with_engine(runs, quiet)
    by_list = list(dict.fromkeys(split_list(by)))
    notes = Notes()
    table = selection(dataset, list(selector), list(target), exclude=list(exclude),
                      by=by_list, where=where, x=x,  # type: ignore[arg-type]
                      notes=notes, engine=engine)
    report_notes(notes, quiet)
    title = "selection: regret = oracle - value on each target"
    _finish(table, format_, title, fail_if, [*by_list, "selector", "target"])


@command("diff")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN RUN [RUN...]",
                shell_complete=complete_runs)
@runs_option
@_metrics_option
@x_option
@format_option
@max_columns_option
@quiet_option
def diff_cmd(run_ids: tuple[str, ...], runs: str | None, metrics: tuple[str, ...], x: str,
             format_: str, quiet: bool) -> None:
    """Runs side by side: params and reduced metrics, the rows that differ first.

    One row per param and metric column (the values xp select shows: by default the
    last value of every metric in every context), one column per run; 'differs' says
    whether the runs disagree. In CSV/JSON the run columns are text (a row mixes numbers
    and names), floats written in full.

    \b
    Examples:
      xp diff lr1e-5-s00 lr3e-5-s00 --runs sample_runs
      xp diff lr1e-5-s00 lr3e-5-s00 lr1e-4-s00 --runs sample_runs -m 'f1:lang=*@max' --format csv
    """
    from ..analysis.diff import diff_runs
    from ..analysis.series_model import Notes
    from ..output import MACHINE_DIGITS, resolve_format

    chosen = resolve_format(format_)
    notes = Notes()
    result = diff_runs(load_dataset(runs, quiet), list(run_ids), list(metrics) or None,
                       x=x, notes=notes)  # type: ignore[arg-type]
    report_notes(notes, quiet)
    digits = view().precision
    # The runs' values are text in one column each, so every machine format (Parquet too)
    # gets the machine formats' 15 digits unless --precision says otherwise.
    frame = (result.display(digits) if chosen in ("table", "markdown")
             else result.exact(MACHINE_DIGITS if digits is None else digits))
    differing = sum(1 for row in result.rows if row[2])
    title = f"{len(result.runs)} runs: {differing} of {len(result.rows)} rows differ"
    emit(frame, chosen, title=title, keys=["field"])

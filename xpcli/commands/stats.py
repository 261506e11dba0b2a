"""Statistics over runs: ``xp compare``, ``xp importance`` and ``xp scatter``."""

from __future__ import annotations

import click

from ._common import (
    Choice,
    by_option,
    command,
    emit,
    format_option,
    info,
    load_dataset,
    max_columns_option,
    metrics_option,
    output_option,
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
from .tables import _fail_if_option, _finish

_metrics_option = metrics_option(
    "Metric specs, comma-separated or repeated, e.g. f1:lang=de@max; f1:lang=* gives one set "
    "of rows per language.", required=True)


@command("compare")
@runs_option
@_metrics_option
@by_option("Params whose groups to compare, comma-separated or repeated, e.g. lr, or "
           "lr:log=5 / lr:bins=4 / lr:q=4 for bins of a continuous param (default: the "
           "params that vary, except seeds).")
@click.option("--baseline", "baseline", metavar="VALUE", default=None,
              help="Compare every group with this one, e.g. 3e-5 (default: every pair).")
@click.option("--paired-by", "paired_by", metavar="PARAM", default=None,
              help="Match runs of two groups on this param, e.g. seed: paired differences "
              "and the Wilcoxon signed-rank test.")
@click.option("--ci", "ci", type=float, default=0.95, show_default=True,
              help="Confidence level of the bootstrap interval; 1 - CI is the test level.")
@click.option("--resamples", "resamples", type=int, default=10_000, show_default=True,
              help="Bootstrap resamples.")
@click.option("--seed", "seed", type=int, default=0, show_default=True,
              help="Seed of the bootstrap: the same seed gives the same interval.")
@where_option
@click.option("--wide", is_flag=True,
              help="On a terminal/markdown too, every column (medians, mean_diff, ci_low, "
              "ci_high, note) instead of the compact view.")
@x_option
@_fail_if_option
@format_option
@max_columns_option
@quiet_option
def compare_cmd(runs: str | None, metrics: tuple[str, ...], by: tuple[str, ...],
                baseline: str | None, paired_by: str | None, ci: float, resamples: int,
                seed: int, where: str | None, wide: bool, x: str, fail_if: str | None,
                format_: str, quiet: bool) -> None:
    """Is a difference between groups real? Pairwise tests, bootstrap CIs, effect sizes.

    For every pair of groups of --by (or every group against --baseline) and every
    metric column: n per group, the medians and their difference a - b with a seeded
    percentile bootstrap CI, the two-sided Mann–Whitney U p-value (Wilcoxon signed-rank
    with --paired-by), p_holm (Holm-corrected over every test in the table), Cliff's
    delta and a verdict in words. A group with one run gets no CI or test, and says so.

    \b
    Examples:
      xp compare --runs sample_runs -m f1:lang=de --by lr --where 'lr in (1e-5, 3e-5)'
      xp compare --runs sample_runs -m 'f1:lang=de@max' --by lr --baseline 3e-5 --paired-by seed
      xp compare --runs sample_runs -m f1:lang=de --by lr --baseline 3e-5 --format markdown \\
          --fail-if 'ci_high < 0'
    """
    from ..analysis.compare import compare
    from ..analysis.series_model import Notes
    from ..output import resolve_format

    dataset = load_dataset(runs, quiet)
    notes = Notes()
    result = compare(dataset, list(metrics), list(by), baseline=baseline, paired_by=paired_by,
                     where=where, level=ci, resamples=resamples, seed=seed,
                     x=x, notes=notes)  # type: ignore[arg-type]
    report_notes(notes, quiet)
    chosen = resolve_format(format_)
    display = result.compact() if chosen in ("table", "markdown") and not wide else None
    _finish(result.table, chosen, result.title, fail_if, ["metric", "a", "b"], display)


@command("importance")
@runs_option
@_metrics_option
@params_option("Params to weigh, comma-separated or repeated, e.g. lr,seed or lr:log=5,seed "
               "(bins of lr) (default: every param that varies, seeds included).")
@click.option("--method", "method", type=Choice(("auto", "anova", "forest")),
              default="auto", show_default=True,
              help="anova: variance decomposition of a grid (main effects and pair "
              "interactions, F tests); forest: permutation importance of a random forest "
              "(needs scikit-learn: pip install 'xpcli[importance]'); auto: forest when a "
              "param takes a different value in more than half of the runs, else anova.")
@click.option("--no-interactions", "no_interactions", is_flag=True,
              help="anova: main effects only, no pair interactions.")
@click.option("--seed", "seed", type=int, default=0, show_default=True,
              help="forest: seed of the folds, the forest and the shuffles.")
@where_option
@x_option
@output_option
@_fail_if_option
@format_option
@max_columns_option
@quiet_option
def importance_cmd(runs: str | None, metrics: tuple[str, ...], params: tuple[str, ...],
                   method: str, no_interactions: bool, seed: int, where: str | None, x: str,
                   output: str | None, fail_if: str | None, format_: str,
                   quiet: bool) -> None:
    """Which params matter: the share of a metric's variance each param explains.

    anova (grids): per param the type II sum of squares of the main effect, its share of
    the total, an F test against the residual (a seed explains a little by chance; p says
    whether it is more); pair interactions where runs repeat a cell. forest (random
    search): cross-validated permutation importance. The title says which was used. With
    -o FILE (.png, .svg, .pdf) a bar chart is written; without -o, or with an explicit
    --format, the table is printed.

    \b
    Examples:
      xp importance --runs sample_runs -m f1:lang=de --params lr,seed
      xp importance --runs sample_runs -m 'f1:lang=*' -o importance.png
      xp importance --runs sample_runs -m f1:lang=de --fail-if "term == 'seed' and p < 0.01"
    """
    from ..analysis.importance import importance
    from ..analysis.series_model import Notes
    from ..plots import check_output_path

    if output is not None:
        check_output_path(output)
    dataset = load_dataset(runs, quiet)
    notes = Notes()
    result = importance(dataset, list(metrics), param_list(params), where=where,
                        method=method, interactions=not no_interactions,  # type: ignore[arg-type]
                        seed=seed, x=x, notes=notes)  # type: ignore[arg-type]
    report_notes(notes, quiet)
    if not quiet:
        for note in result.notes:
            info(f"xp: {note}")
    if wants_table(output, format_):
        _finish(result.table, format_, result.title, fail_if, ["metric", "term"])
    elif fail_if is not None:
        from ..analysis.gate import check_gate

        check_gate(result.table, fail_if, ["metric", "term"])
    if output is not None:
        from ..plots.scatter import importance_figure

        save(importance_figure(result.table, result.value_column, title=result.title), output)


@command("scatter")
@runs_option
@click.argument("x_spec", metavar="X")
@click.argument("y_spec", metavar="Y")
@where_option
@click.option("--color", "color", metavar="PARAM|SPEC", default=None,
              help="Colour points by a param or metric spec, e.g. lr (default: one colour).")
@click.option("--highlight", "highlight", metavar="PICKER", multiple=True,
              help="Ring a run, by run id or best:SPEC / worst:SPEC, e.g. best:f1:lang=en; "
              "repeat for several (red first, then other colours).")
@click.option("--log", "log", metavar="AXES", multiple=True,
              help="Log scale for x and/or y, e.g. x or x,y (repeat or comma-separate; "
              "default: an axis spanning two decades, like lr, gets one anyway).")
@click.option("--linear", "linear", metavar="AXES", multiple=True,
              help="Linear scale for x and/or y, overriding the automatic log scale.")
@x_option
@output_option
@format_option
@quiet_option
def scatter_cmd(runs: str | None, x_spec: str, y_spec: str, where: str | None,
                color: str | None, highlight: tuple[str, ...], log: tuple[str, ...],
                linear: tuple[str, ...], x: str, output: str | None, format_: str,
                quiet: bool) -> None:
    """Scatter: one point per run, X and Y each a param or a reduced metric spec.

    Shows how two things go together across runs: does the English score rank runs the
    way German does, where do the learning rates land. The rank correlation (Spearman,
    Kendall) goes to stderr and into the figure's corner; runs missing X or Y are counted
    and left out. With -o FILE (.png, .svg, .pdf) the figure is written; without -o the
    table behind it is printed (one row per run).

    \b
    Examples:
      xp scatter --runs sample_runs f1:lang=en f1:lang=de --color lr \\
         --highlight best:f1:lang=en -o en-vs-de.png
      xp scatter --runs sample_runs lr f1:lang=zh@max --format csv
    """
    from ..analysis.scatter import scatter_table
    from ..analysis.series_model import Notes
    from ..plots import check_output_path

    if output is not None:
        check_output_path(output)
    dataset = load_dataset(runs, quiet)
    notes = Notes()
    table = scatter_table(dataset, x_spec, y_spec, color=color,
                          highlights=list(highlight), where=where, log=log,
                          linear=linear, xaxis=x,  # type: ignore[arg-type]
                          notes=notes)
    report_notes(notes, quiet)
    if not quiet:
        if table.missing:
            info(f"xp: {table.missing} of {table.table.height} runs have no value for x or y "
                 "(left out)")
        for text, run in table.highlights:
            info(f"xp: highlight {text}: {run}")
        info(f"xp: {table.correlation_text}")
    if wants_table(output, format_):
        emit(table.table, format_, title=table.title)
    if output is not None:
        from ..plots.scatter import scatter_figure

        save(scatter_figure(**table.figure_kwargs()), output)

"""Metric series across runs: ``xp aggregate`` (view 4) and ``xp curves`` (view 3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..completion import complete_specs
from ..html import is_html
from ._common import (
    Choice,
    by_option,
    command,
    emit,
    engine_option,
    format_option,
    html_output_option,
    info,
    load_dataset,
    load_with_engine,
    max_columns_option,
    quiet_option,
    report_notes,
    runs_option,
    wants_table,
    where_option,
    x_option,
)

F = TypeVar("F", bound=Callable[..., Any])


def _series_options(func: F) -> F:
    """Options both commands share: specs, x axis, smoothing, facets, log axes."""
    options = [
        click.argument("specs", nargs=-1, required=True, metavar="SPEC...",
                       shell_complete=complete_specs),
        runs_option,
        where_option,
        x_option,
        click.option("--smooth", "smooth", metavar="ema:W|ma:K", default=None,
                     help="Smooth each run first: debiased EMA with weight W (ema:0.6) or a "
                          "centred moving average of K points (ma:5). Default: none."),
        click.option("--facet", "facet", metavar="KEYS", default=None,
                     help="Figure: one panel per value of these keys (context keys or "
                          "params, e.g. lang), or 'none'. Default: one per metric column."),
        click.option("--logx", is_flag=True, help="Figure: log-scaled x axis."),
        click.option("--logy", is_flag=True, help="Figure: log-scaled y axis."),
        html_output_option,
        format_option,
        max_columns_option,
        quiet_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _list(text: str | tuple[str, ...] | None) -> list[str]:
    from ..spec import split_list  # polars: loaded when a command runs, not for --help

    return split_list(text)


def _facet(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = _list(text)
    return [] if items in ([], ["none"]) else items


@command("aggregate")
@_series_options
@by_option("Group runs by these params, comma-separated or repeated, e.g. lr, or lr:log=5 "
           "for bins of a continuous param. Default: one group.")
@click.option("--center", "center", type=Choice(["mean", "median", "min", "max"]),
              default=None,
              help="Centre line of each group (default: mean with a std/sem/ci95 band, "
                   "else median).")
@click.option("--band", "band", metavar="BAND", default="minmax", show_default=True,
              help="Band: minmax, std, sem, ci95 (t-based CI of the mean) or a quantile "
                   "range like q25-q75. std/sem/ci95 are around the mean, null for 1 run.")
@click.option("--align", "align", type=Choice(["exact", "interp"]), default="exact",
              show_default=True,
              help="exact: a point aggregates the runs that logged that x; interp: runs "
                   "interpolated onto a common grid, never past their last point.")
@click.option("--grid", "grid", type=click.IntRange(min=2), default=200, show_default=True,
              help="--align interp: at most this many grid points per column.")
@click.option("--min-runs", "min_runs", type=click.IntRange(min=1), default=1,
              show_default=True, help="Drop points aggregating fewer runs than this.")
@engine_option
def aggregate_cmd(specs: tuple[str, ...], runs: str | None, where: str | None, x: str,
                  smooth: str | None, facet: str | None, logx: bool, logy: bool,
                  output: str | None, format_: str, quiet: bool, by: tuple[str, ...],
                  center: str | None,
                  band: str, align: str, grid: int, min_runs: int) -> None:
    """Aggregate metric series across runs: centre line and band per group, at each x.

    Per group of --by and per metric column, at each epoch (step, time): the centre
    (median by default), a band (min-max by default) and n, the runs behind the point;
    NaN and inf values are left out (n counts finite values).
    Prints a long table (the alignment policy goes to stderr), or draws one panel per
    column with -o (and prints the table too when --format is given explicitly); -o
    FILE.html writes an interactive page (hover, legend toggles, zoom).

    \b
    Examples:
      xp aggregate f1:lang=* --runs sample_runs --by lr -o agg.png
      xp aggregate f1:lang=zh --runs sample_runs --by lr --band ci95 --format csv
      xp aggregate loss:split=train --runs sample_runs --by lr --x time --align interp
    """
    from ..analysis.aggregate import (
        aggregate,
        default_center,
        describe_policy,
        parse_band,
        runs_per_group,
    )
    from ..analysis.series import check_run_columns, load_series, parse_smoothing
    from ..analysis.series_model import Notes
    from ..plots import check_output_path

    if output:
        check_output_path(output, html=True)
    band_spec = parse_band(band)
    center = center or default_center(band_spec)
    smoothing = parse_smoothing(smooth)
    dataset, engine = load_with_engine(runs, quiet)
    notes = Notes()
    action = "aggregate used the last logged value at each {axis}"
    if engine is not None:  # --engine spark: the series stay on Spark
        if smoothing is not None:
            raise click.UsageError("--smooth: --engine spark does not smooth series; use "
                                   "--engine polars")
        data = engine.series(dataset, list(specs), x=x, where=where, notes=notes,
                             action=action)
    else:
        data = load_series(dataset, list(specs), x=x, where=where,  # type: ignore[arg-type]
                           smoothing=smoothing, notes=notes, action=action)
    from ..analysis.binning import bin_params

    run_frame, by_keys = bin_params(data.runs, _list(by))  # lr:log=5 -> lr, binned
    check_run_columns(run_frame, by_keys, "--by")
    options: dict[str, Any] = dict(runs=run_frame, by=by_keys, center=center,
                                   band=band_spec, align=align, grid=grid, min_runs=min_runs)
    if engine is None:
        source, labels = data.source()
        table = aggregate(source, data.keys, data.x, labels=labels, **options)
        counts = runs_per_group(data.present_runs(), run_frame, by_keys)
    else:
        table = engine.aggregate(data, **options)
        counts = runs_per_group(data.present, run_frame, by_keys)
    policy = describe_policy(data.describe_x(), align, min_runs, grid)
    what = _what(data, center, band_spec.describe(), by_keys, len(counts))
    report_notes(notes, quiet)
    if not quiet:
        info(f"xp aggregate: {what}; {policy}")
        _hint_alignment(table, align, counts, data.x)
    if wants_table(output, format_):
        emit(table, format_, title=what, keys=[*by_keys, "metric", *data.keys])
    if output is None:
        return
    from ..plots.series import aggregate_figure

    draw = aggregate_figure
    if is_html(output):
        from ..html.series import aggregate_view as draw  # type: ignore[assignment]
    fig = draw(
        table, data.x, data.keys, by=by_keys, facet=_facet(facet),
        runs_per_group=counts,
        logx=logx, logy=logy, band_label=f"band: {band_spec.describe()}",
        title=what, subtitle=policy,
    )
    from ._common import save

    save(fig, output)


def _what(data: Any, center: str, band: str, by: list[str], groups: int) -> str:
    metrics = ", ".join(dict.fromkeys(c.name for c in data.columns))
    smooth = f", each run smoothed ({data.smoothing.describe()})" if data.smoothing else ""
    if not by:
        return f"{metrics}: {center} line and {band} band over {data.n_runs} runs{smooth}"
    return (f"{metrics}: {center} line and {band} band per {', '.join(by)} "
            f"({data.n_runs} runs in {groups} groups){smooth}")


def _hint_alignment(table: Any, align: str, counts: dict, x: str) -> None:
    """Exact alignment on x values runs rarely share (wall time) leaves n == 1 nearly
    everywhere although the groups hold several runs: say so."""
    if align != "exact" or table.is_empty() or not counts:
        return
    typical_group = sorted(counts.values())[len(counts) // 2]
    alone = float((table["n"] == 1).mean())
    if typical_group >= 3 and alone >= 0.8:
        info(f"xp aggregate: hint: {alone:.0%} of the points aggregate a single run; the runs "
             f"rarely share {x} values, try --align interp")


@command("curves")
@_series_options
@click.option("--color", "color", metavar="PARAM", default=None,
              help="Colour each run by this param (colormap and colourbar for numbers, "
                   "log-scaled over >= 2 decades; palette and legend otherwise), e.g. lr.")
@click.option("--overlay", "overlay", type=Choice(["median", "mean"]), default=None,
              help="Figure: draw the median (mean) of each --color group on top.")
@click.option("--highlight", "highlight", metavar="PICKER", default=None,
              help="Figure: draw one run bold on top: a run id, best:SPEC or worst:SPEC, "
                   "e.g. best:f1:lang=en.")
def curves_cmd(specs: tuple[str, ...], runs: str | None, where: str | None, x: str,
               smooth: str | None, facet: str | None, logx: bool, logy: bool,
               output: str | None, format_: str, quiet: bool, color: str | None,
               overlay: str | None, highlight: str | None) -> None:
    """Draw every run's metric series as its own line, one panel per metric column.

    Colour by a param to see what it does; highlight a picked run; -o FILE.html gives
    an interactive page (hover a line for its run, legend toggles, zoom). Without -o, prints
    the points it would draw (one row per run and x); with -o and an explicit --format,
    both.

    \b
    Examples:
      xp curves f1:lang=* --runs sample_runs --color lr -o curves.png
      xp curves f1:lang=zh --runs sample_runs --color lr --overlay median \
        --highlight best:f1:lang=en -o zh.png
      xp curves loss --runs sample_runs --where "lr >= 1e-4" --x step --logy --format csv
    """
    from ..analysis.series import load_series, parse_smoothing, with_params
    from ..analysis.series_model import Notes
    from ..plots import check_output_path

    if output:
        check_output_path(output, html=True)
    smoothing = parse_smoothing(smooth)
    dataset = load_dataset(runs, quiet)
    notes = Notes()
    data = load_series(dataset, list(specs), x=x, where=where,  # type: ignore[arg-type]
                       smoothing=smoothing, notes=notes,
                       action="curves drew the last logged value at each {axis}")
    facet_keys = _facet(facet)
    params = [color] if color else []
    params += [k for k in facet_keys or [] if k not in data.keys]
    table = with_params(data.series, data.runs, params)
    if output is None:
        report_notes(notes, quiet)
    if wants_table(output, format_):
        smooth_note = f"; each run smoothed ({smoothing.describe()})" if smoothing else ""
        emit(table, format_, title=f"{data.n_runs} runs{smooth_note}",
             keys=["metric", *data.keys, *params])
    if output is None:
        return

    from ..analysis.aggregate import aggregate
    from ..analysis.reduce import resolve_picker
    from ..plots.series import curves_figure, curves_title

    picked = label = None
    if highlight:
        picked = resolve_picker(highlight, data.runs, dataset.points, x=x,  # type: ignore[arg-type]
                                notes=notes)
        label = picked if picked == highlight.strip() else f"{picked} ({highlight.strip()})"
        if picked not in set(data.series["run"].unique().to_list()):
            info(f"xp curves: warning: {label} has no points in these columns")
    agg = None
    if overlay:
        groups = [k for k in [color, *(facet_keys or [])] if k and k not in data.keys]
        agg = aggregate(data.series, data.keys, data.x, runs=data.runs,
                        by=list(dict.fromkeys(groups)), center=overlay)
    report_notes(notes, quiet)
    title, subtitle = curves_title([c.name for c in data.columns], data.n_runs, data.x, color,
                                   overlay, smoothing.describe() if smoothing else None)
    draw = curves_figure
    if is_html(output):
        from ..html.series import curves_view as draw  # type: ignore[assignment]
    fig = draw(
        table, data.x, data.keys, color=color, facet=facet_keys, logx=logx, logy=logy,
        highlight=picked, highlight_label=label, overlay=agg,
        overlay_label=f"{overlay} of each {color}" if overlay and color else overlay,
        title=title, subtitle=subtitle,
    )
    from ._common import save

    save(fig, output)

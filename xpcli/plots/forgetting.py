"""Forgetting figures (view 2): curves per context with their peaks marked.

Frames in, Figure out (the frames of :func:`xpcli.analysis.forgetting.analyse`).

- One run (:func:`run_figure`): one line per context over x, the peak of each marked
  with a dot, the run id and its params in the title. The legend lists the contexts in
  rank order (forgets most first) with their relative drop, so the answer to "which
  context forgets fastest" is the legend's first line.
- Several runs (:func:`runs_figure`): one panel per context, so each language's curves
  sit together on a shared y axis and panels compare at a glance. In a panel every run
  is a thin line coloured by its group (``--by``; one colour without it) and each group's
  median curve is drawn bold with its peak marked. Numeric groups (learning rates) take
  ordered viridis colours; other groups the categorical palette. Panels per context
  rather than per group: the question is how forgetting differs *between* groups, and
  the groups overlaid in one panel show it directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .common import PALETTE, new_figure, style
from .series import MARKED_BELOW, X_LABELS, draw_lines

if TYPE_CHECKING:
    from ..analysis.forgetting import Forgetting

MAX_COLUMNS = 3
#: Categorical colours in the order used: the palette without its two lightest (sky
#: blue, yellow) first, so five contexts never get two blues.
ORDER = (0, 1, 2, 5, 4, 7, 3, 6)
COLOURS = tuple(PALETTE[i] for i in ORDER)


def short_labels(labels: Sequence[str]) -> tuple[dict[str, str], str]:
    """Context labels for a legend, and the key they share.

    ``lang=de``, ``lang=zh`` -> (``de``, ``zh``; ``lang``) when every label is one
    ``key=value`` of the same key; other labels are kept as they are (key ``""``).
    """
    pairs = [label.split("=", 1) if "=" in label and "," not in label and "[" not in label
             else None for label in labels]
    keys = {pair[0] for pair in pairs if pair is not None}
    if labels and all(pair is not None for pair in pairs) and len(keys) == 1:
        return {label: pair[1] for label, pair in zip(labels, pairs) if pair}, keys.pop()
    return {label: label for label in labels}, ""


def _percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.0%}"


def _status_note(row: dict[str, Any], x: str, best: str = "max") -> str:
    status = row["status"]
    where = f"{x} {row[f'peak_{x}']:g}" if row.get(f"peak_{x}") is not None else ""
    word, sign = ("peak", "-") if best == "max" else ("lowest", "+")
    if status == "past_peak":
        return f"{word} at {where}, {sign}{_percent(row['rel_drop'])} by the end"
    if status == "plateau":
        return f"{word} at {where}, no change since"
    return status.replace("_", " ")


def run_figure(curves: pl.DataFrame, stats: pl.DataFrame, x: str = "epoch",
               title: str = "", metric: str = "value", best: str = "max") -> Figure:
    """One run: a line per context over ``x``, its peak dotted, legend in rank order.

    ``curves``: ``context``, ``x``, ``value`` (one run); ``stats``: ``context``, ``rank``,
    ``peak``, ``peak_<x>``, ``rel_drop``, ``status``. With ``best="min"`` (a loss) the
    dots mark the lowest points and the legend reads "+34% by the end".
    """
    ranked = stats.sort("rank")
    labels = ranked["context"].to_list()
    names, key = short_labels(labels)
    colours = {label: COLOURS[i % len(COLOURS)] for i, label in enumerate(sorted(labels))}
    fig = new_figure(8.0, 4.8)
    with style():
        ax = fig.add_subplot()
        for row in ranked.iter_rows(named=True):
            label = row["context"]
            # In logging order: a curve whose x goes back is drawn as it was logged.
            part = curves.filter((pl.col("context") == label) & pl.col("value").is_finite()
                                 & pl.col(x).is_not_null())
            legend = f"{names[label]}: {_status_note(row, x, best)}"
            if part.is_empty():
                ax.plot([], [], color=colours[label], label=f"{names[label]}: no data")
                continue
            ax.plot(part[x].to_numpy(), part["value"].to_numpy(), color=colours[label],
                    linewidth=1.6, label=legend,
                    marker="o" if part.height < MARKED_BELOW else None, markersize=4)
            if row["peak"] is not None:
                ax.plot([row[f"peak_{x}"]], [row["peak"]], marker="o", markersize=7,
                        color=colours[label], markeredgecolor="white", markeredgewidth=1.2,
                        linestyle="none", zorder=5)
        ax.set_xlabel(X_LABELS.get(x, x))
        if x == "order":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        handles, texts = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], marker="o", color="#555555", linestyle="none",
                              markeredgecolor="white"))
        texts.append("peak" if best == "max" else "lowest point")
        ax.legend(handles, texts, title=f"{key or 'context'}, most forgotten first",
                  loc="center left", bbox_to_anchor=(1.01, 0.5), alignment="left")
        fig.suptitle(title)
    return fig


def group_colours(groups: Sequence[Any]) -> dict[Any, Any]:
    """Ordered viridis colours for numeric groups, the palette for the others."""
    if not groups:
        return {}
    numeric = all(isinstance(g, (int, float)) and not isinstance(g, bool) for g in groups)
    if numeric and len(groups) > 1:
        cmap = colormaps["viridis"]
        ordered = sorted(groups)
        return {g: cmap(0.9 * i / (len(ordered) - 1)) for i, g in enumerate(ordered)}
    return {g: COLOURS[i % len(COLOURS)] for i, g in enumerate(groups)}


def _group_key(row: dict[str, Any], by: Sequence[str]) -> Any:
    return tuple(row[b] for b in by) if len(by) > 1 else (row[by[0]] if by else "all runs")


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}".replace("e-0", "e-").replace("e+0", "e+")  # 3e-5, like run ids
    return str(value)


def _group_name(key: Any, by: Sequence[str]) -> str:
    if not by:
        return "all runs (median)"
    values = key if len(by) > 1 else (key,)
    return ", ".join(f"{b}={_show(v)}" for b, v in zip(by, values))


def runs_layout(curves: pl.DataFrame, group_curves: pl.DataFrame, by: list[str]
                ) -> tuple[list[str], dict[str, str], str, list[Any], dict[Any, Any], int]:
    """What a many-runs figure is laid out by: the contexts (one panel each), their short
    names and shared key, the group keys, their colours and the number of runs."""
    labels = list(dict.fromkeys(group_curves["context"].to_list())) or \
        list(dict.fromkeys(curves["context"].to_list()))
    names, context_key = short_labels(labels)
    keys = ([_group_key(r, by) for r in
             group_curves.select(by).unique(maintain_order=True).sort(by, nulls_last=True)
             .iter_rows(named=True)] if by else ["all runs"])
    return labels, names, context_key, keys, group_colours(keys), curves["run"].n_unique()


def in_group(frame: pl.DataFrame, by: Sequence[str], key: Any) -> pl.DataFrame:
    """The rows of ``frame`` in group ``key`` (a value, or a tuple for several ``by``)."""
    values = key if len(by) > 1 else (key,)
    for b, v in zip(by, values):
        frame = frame.filter(pl.col(b) == v if v is not None else pl.col(b).is_null())
    return frame


def runs_figure(curves: pl.DataFrame, group_curves: pl.DataFrame, group_stats: pl.DataFrame,
                by: Sequence[str] = (), x: str = "epoch", title: str = "",
                metric: str = "value", peak: str = "peak") -> Figure:
    """Several runs: a panel per context; thin run lines and bold group medians.

    ``curves``: ``run``, ``context``, ``x``, ``value`` and the ``by`` columns;
    ``group_curves``: the ``by`` columns, ``context``, ``x``, ``value`` (median);
    ``group_stats``: their peaks (``peak``, ``peak_<x>``).
    """
    by = list(by)
    labels, names, context_key, keys, colours, runs_count = runs_layout(curves, group_curves,
                                                                         by)
    ncols = min(MAX_COLUMNS, max(len(labels), 1))
    nrows = max(math.ceil(len(labels) / ncols), 1)
    fig = new_figure(3.6 * ncols + 1.6, 2.9 * nrows + 0.6)
    width = 0.9 if runs_count <= 20 else 0.5
    alpha = max(0.08, min(0.5, 6.0 / max(runs_count / max(len(keys), 1), 1)))
    with style():
        axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
        finite = curves.filter(pl.col("value").is_finite() & pl.col(x).is_not_null())
        for index, label in enumerate(labels):
            ax: Axes = axes[index // ncols][index % ncols]
            part = finite.filter(pl.col("context") == label)
            for key in keys:
                mine = in_group(part, by, key) if by else part
                segments = [np.column_stack((run[x].to_numpy(), run["value"].to_numpy()))
                            for run in mine.partition_by("run", maintain_order=True)]
                if segments:
                    rgba = np.tile(to_rgba(colours[key], alpha), (len(segments), 1))
                    draw_lines(ax, segments, rgba, width)
            medians = group_curves.filter(pl.col("context") == label)
            peaks = group_stats.filter(pl.col("context") == label)
            for key in keys:
                line, peak_row = medians, peaks
                if by:
                    values = key if len(by) > 1 else (key,)
                    for b, v in zip(by, values):
                        line = line.filter(pl.col(b) == v)
                        peak_row = peak_row.filter(pl.col(b) == v)
                line = line.sort(x)
                if line.is_empty():
                    continue
                ax.plot(line[x].to_numpy(), line["value"].to_numpy(), color=colours[key],
                        linewidth=2.0, label=_group_name(key, by),
                        marker="o" if line.height < MARKED_BELOW else None, markersize=4)
                if peak_row.height and peak_row["peak"][0] is not None:
                    ax.plot([peak_row[f"peak_{x}"][0]], [peak_row["peak"][0]], marker="o",
                            markersize=6, color=colours[key], markeredgecolor="white",
                            markeredgewidth=1.0, linestyle="none", zorder=5)
            ax.set_title(f"{context_key}={names[label]}" if context_key else names[label])
            ax.autoscale_view()
            if index % ncols == 0:
                ax.set_ylabel(metric)
            if index // ncols == nrows - 1 or index + ncols >= len(labels):
                ax.set_xlabel(X_LABELS.get(x, x))
                if x == "order":
                    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.xaxis.set_tick_params(labelbottom=True)
        for index in range(len(labels), nrows * ncols):
            axes[index // ncols][index % ncols].set_visible(False)
        handles = [Line2D([], [], color=colours[k], linewidth=2.0) for k in keys]
        texts = [_group_name(k, by) for k in keys]
        handles.append(Line2D([], [], marker="o", color="#555555", linestyle="none",
                              markeredgecolor="white"))
        texts.append(f"{peak} of the median")
        fig.legend(handles, texts, loc="outside right center",
                   title=f"median over runs\n(thin: each of {runs_count} runs)")
        fig.suptitle(title)
    return fig


def _over(x: str) -> str:
    """``epochs``, ``steps``, ``time``, ``the logging order``: what a title says x is."""
    return {"time": "time", "order": "the logging order"}.get(x, f"{x}s")


def forgetting_figure(result: Forgetting) -> Figure:
    """The figure of an :func:`~xpcli.analysis.forgetting.analyse` result (see module doc)."""
    metric = result.metric
    peak = "peak" if result.best == "max" else "lowest point"
    _, key = short_labels(result.stats["context"].unique(maintain_order=True).to_list())
    per = f"per {key}" if key else "per context"
    if result.run is not None:
        params = ", ".join(f"{k}={_show(v)}" for k, v in result.run_params.items())
        picked = f", {result.picked_by}" if result.picked_by else ""
        title = (f"Run {result.run} ({params}{picked})" if params
                 else f"Run {result.run}{picked}") + \
            f"\n{metric} {per} over {_over(result.x)}; dot = {peak}"
        return run_figure(result.curves, result.stats, x=result.x, title=title,
                          metric=metric, best=result.best)
    assert result.group_curves is not None and result.group_stats is not None
    grouped = f", coloured by {', '.join(result.by)}" if result.by else ""
    title = (f"{metric} {per} over {_over(result.x)}, {result.curves['run'].n_unique()} runs"
             f"{grouped}")
    return runs_figure(result.curves, result.group_curves, result.group_stats, by=result.by,
                       x=result.x, title=title, metric=metric, peak=peak)

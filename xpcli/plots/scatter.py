"""Scatter of runs (one point each) and the bar chart of ``xp importance``.

Frames in, Figure out.

- :func:`scatter_figure`: x against y, one point per run. An axis whose positive values
  span two decades gets a log scale (a grid of learning rates gets a tick at each value,
  as in parallel coordinates). Points are coloured like parallel-coordinates lines
  (colormap and colourbar for numbers, palette and legend for text or a few integers);
  highlighted runs are drawn large, ringed in the highlight colours (the first red), on
  top, named in a legend. The rank correlation is written in the top-left corner.
- :func:`importance_figure`: one panel per metric, a horizontal bar per term (params,
  interactions), largest on top; the residual in grey; each bar labelled with its value
  (and ``p`` for an ANOVA, ± sd as an error bar for a forest).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import polars as pl
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ..errors import UsageError
from ..output import format_number
from .common import HIGHLIGHT, PALETTE, new_figure, spans_decades, style
from .parcoords import MAX_VALUE_TICKS, _colors, compact_labels

RESIDUAL_COLOR = "#b0b0b0"


def _floats(series: pl.Series) -> np.ndarray:
    values = series.cast(pl.Float64).fill_null(np.nan).to_numpy().astype(np.float64)
    values[~np.isfinite(values)] = np.nan
    return values


def _marker_style(n: int) -> tuple[float, float]:
    """(alpha, marker area) for n points: 240 and 10,000 runs both stay readable."""
    alpha = min(0.9, max(0.15, 6.0 / math.sqrt(max(n, 1))))
    size = min(36.0, max(4.0, 600.0 / math.sqrt(max(n, 1))))
    return alpha, size


def _scale(ax: object, which: str, values: np.ndarray, log: bool | None, column: str) -> None:
    finite = values[np.isfinite(values)]
    set_scale = getattr(ax, f"set_{which}scale")
    axis = getattr(ax, f"{which}axis")
    if finite.size == 0:
        return
    lo, hi = float(finite.min()), float(finite.max())
    if log is True and lo <= 0:
        raise UsageError(f"--log {which}: {column} has values <= 0 (min {lo:g}); a log "
                         "scale needs positive values")
    use_log = log if log is not None else spans_decades([lo, hi])
    if not use_log:
        return
    set_scale("log")
    distinct = np.unique(finite)
    if 1 < distinct.size <= MAX_VALUE_TICKS:
        # A grid of a few values (learning rates): a labelled tick at each value.
        ticks = [float(v) for v in distinct]
        axis.set_major_locator(FixedLocator(ticks))
        labels = dict(zip(ticks, compact_labels(ticks)))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: labels.get(v, "")))
        axis.set_minor_locator(NullLocator())


def scatter_figure(
    table: pl.DataFrame,
    x: str,
    y: str,
    *,
    labels: Mapping[str, str] | None = None,
    color: str | None = None,
    highlights: Sequence[tuple[str, str]] = (),
    log: Collection[str] = (),
    linear: Collection[str] = (),
    title: str | None = None,
    note: str | None = None,
    run_column: str = "run",
) -> Figure:
    """Draw ``table`` (one row per run) as ``y`` against ``x`` (see the module docs).

    ``labels``: column -> axis label. ``color``: the column colouring the points (None:
    one colour). ``highlights``: (run id, legend text) pairs drawn on top, the first red.
    ``log``/``linear``: the columns (``x``/``y``) forced to a scale; otherwise decided by
    the data. ``note``: text in the top-left corner (the rank correlation).
    """
    labels = dict(labels or {})
    for column in (x, y, *([color] if color else [])):
        if column not in table.columns:
            raise UsageError(f"no column {column!r} in the table to draw")
    xs, ys = _floats(table[x]), _floats(table[y])
    drawn = np.isfinite(xs) & np.isfinite(ys)
    alpha, size = _marker_style(int(drawn.sum()))
    fig = new_figure(6.4, 4.8)
    with style():
        ax = fig.add_subplot()
        colors = _colors(table, color, alpha)
        order = [i for i in colors.order if drawn[i]]
        ax.scatter(xs[order], ys[order], s=size, c=colors.rgba[order], linewidths=0,
                   zorder=2, gid="runs")
        for which, column, values in (("x", x, xs), ("y", y, ys)):
            forced = True if column in log else False if column in linear else None
            _scale(ax, which, values[drawn], forced, column)
        ax.set_xlabel(labels.get(x, x))
        ax.set_ylabel(labels.get(y, y))
        ax.set_title(title or f"{int(drawn.sum()):,} runs", loc="left")
        if note:
            ax.text(0.02, 0.98, note, transform=ax.transAxes, va="top", ha="left",
                    fontsize=8, bbox={"boxstyle": "round,pad=0.3", "fc": "white",
                                      "ec": "#cccccc", "alpha": 0.85}, zorder=5)
        handles: list[Line2D] = []
        if colors.mappable is not None:
            bar = fig.colorbar(colors.mappable, ax=ax, pad=0.01)
            bar.set_label(labels.get(color or "", color or ""))
        elif colors.legend:
            handles += [Line2D([], [], ls="", marker="o", color=c, label=text)
                        for text, c in colors.legend]
        runs = table[run_column].to_list()
        for k, (run, text) in enumerate(highlights):
            if run not in runs:
                raise UsageError(f"highlight {text}: run {run!r} is not among the runs drawn")
            i = runs.index(run)
            ring = HIGHLIGHT[k % len(HIGHLIGHT)]
            if not drawn[i]:
                axis = x if not np.isfinite(xs[i]) else y
                raise UsageError(f"highlight {text}: run {run} has no value on "
                                 f"{labels.get(axis, axis)}")
            ax.scatter([xs[i]], [ys[i]], s=size * 4 + 40, facecolors="none", edgecolors=ring,
                       linewidths=2.0, zorder=10 + len(highlights) - k, gid=f"highlight-{k}")
            handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none",
                                  markeredgecolor=ring, markeredgewidth=2.0,
                                  label=f"{text}: {run}"))
        if handles:
            ax.legend(handles=handles, loc="lower right")
    return fig


def importance_figure(table: pl.DataFrame, value: str = "share", *,
                      title: str | None = None, residual: str = "residual") -> Figure:
    """One panel per metric, a bar per term (largest on top), the residual grey.

    ``table``: ``metric``, ``term``, ``value`` (``share`` or ``r2_drop``), and ``p`` or
    ``sd`` when present (a label ``p=...`` or an error bar).
    """
    for column in ("metric", "term", value):
        if column not in table.columns:
            raise UsageError(f"no column {column!r} in the table to draw")
    metrics = list(dict.fromkeys(table["metric"].to_list()))
    if not metrics:
        raise UsageError("nothing to draw: the importance table is empty")
    terms = max(table.filter(pl.col("metric") == m).height for m in metrics)
    fig = new_figure(6.4, min(1.0 + 0.35 * terms * len(metrics) + 0.5 * len(metrics), 14.0))
    with style():
        axes = fig.subplots(len(metrics), 1, squeeze=False, sharex=True)[:, 0]
        for ax, metric in zip(axes, metrics):
            part = table.filter(pl.col("metric") == metric)
            names = part["term"].to_list()[::-1]  # largest on top
            values = [v if v is not None else 0.0 for v in part[value].to_list()][::-1]
            colours = [RESIDUAL_COLOR if n == residual else PALETTE[0] for n in names]
            errors = part["sd"].to_list()[::-1] if "sd" in part.columns else None
            positions = np.arange(len(names))
            ax.barh(positions, values, color=colours, xerr=errors, height=0.6,
                    error_kw={"ecolor": "#444444", "capsize": 2, "lw": 0.8}, gid="bars")
            ax.set_yticks(positions, names)
            ax.grid(axis="y", visible=False)
            ps = part["p"].to_list()[::-1] if "p" in part.columns else [None] * len(names)
            for pos, v, p, sd in zip(positions, values, ps, errors or [None] * len(names)):
                text = f"{v:.1%}" if value == "share" else format_number(v)
                if p is not None:
                    text += f"  p={format_number(p)}"
                ax.annotate(text, (max(v, 0.0) + (sd or 0.0), pos), xytext=(3, 0),
                            textcoords="offset points", va="center", fontsize=7)
            fit = part["cv_r2"][0] if "cv_r2" in part.columns else None
            ax.set_title(metric if fit is None else f"{metric} (held-out R² of the forest: "
                         f"{format_number(fit)})", loc="left")
        # Room on the right for the labels of the longest bars (error bars included).
        sds = table["sd"].to_list() if "sd" in table.columns else [None] * table.height
        ends = [v + (sd or 0.0) for v, sd in zip(table[value].to_list(), sds)
                if v is not None and math.isfinite(v)]
        top, low = max([*ends, 0.0]), min([*ends, 0.0])
        axes[-1].set_xlim(low * 1.1, top * 1.45 if top > 0 else 1.0)
        axes[-1].set_xlabel("share of variance" if value == "share"
                            else "drop in held-out R² when shuffled")
        if value == "share":
            # Shares are at most 100%; the room beyond holds labels, not ticks.
            axes[-1].xaxis.set_major_formatter(
                FuncFormatter(lambda v, _p: f"{v:.0%}" if v <= 1.0 + 1e-9 else ""))
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontsize=9)
    return fig

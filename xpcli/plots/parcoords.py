"""Parallel coordinates: one vertical axis per column, one polyline per run.

Frame in, Figure out. Every axis is a thin child Axes of one host Axes, so each carries a
real matplotlib scale (``linear``, ``log``, or evenly spaced categories), its own ticks
(at both ends at least, written compactly: ``1e-5``), its label as its title, and
inversion as an inverted y-axis. The runs are drawn in the host, in unit coordinates:
0 at the bottom of every axis, 1 at the top.

- All background runs are one :class:`~matplotlib.collections.LineCollection`, so 10,000
  runs cost about as much as one artist. Transparency and line width shrink with the
  number of runs; runs are drawn in colour order, the highest value last.
- A run without a value on an axis dips into a grey "missing" band under the axes, where
  a cross and a count mark the gap: the run is seen, not dropped.
- Highlighted runs are drawn last, thick, with a white halo and a higher z-order, in
  :data:`~xpcli.plots.common.HIGHLIGHT` colours (the first is red), named in a legend.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
from matplotlib import colormaps
from matplotlib import patheffects as pe
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from ..errors import UsageError
from .common import HIGHLIGHT, PALETTE, new_figure, spans_decades, style

#: Height of the "missing" band under the axes, in axis units (the axes span 0..1).
MISSING_BAND = 0.14
MISSING_COLOR = "#9a9a9a"
NO_COLOR = "#b0b0b0"
CMAP = "viridis"
MAX_CATEGORY_TICKS = 24
MAX_VALUE_TICKS = 10  # a log axis with at most this many distinct values ticks each
NEUTRAL = "#5f5f5f"
#: Background runs at 1, highlights at 10 and up, axes with their tick labels above all.
AXIS_ZORDER = 40
ScaleKind = Literal["linear", "log", "category"]


@dataclass
class AxisScale:
    """How one column maps to 0..1: scale, limits, ticks and their labels."""

    column: str
    kind: ScaleKind
    lo: float = 0.0
    hi: float = 1.0
    ticks: list[float] = field(default_factory=list)
    tick_labels: list[str] = field(default_factory=list)
    categories: list[Any] = field(default_factory=list)
    inverted: bool = False

    def unit(self, values: np.ndarray) -> np.ndarray:
        """Values (float, NaN = missing; category codes for categories) -> 0..1 or NaN."""
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.kind == "category":
                t = (values + 0.5) / max(len(self.categories), 1)
            elif self.kind == "log":
                t = (np.log10(values) - math.log10(self.lo)) / (
                    math.log10(self.hi) - math.log10(self.lo))
            else:
                t = (values - self.lo) / (self.hi - self.lo)
        return 1.0 - t if self.inverted else t


def compact_labels(values: Sequence[float]) -> list[str]:
    """Tick labels: ``1e-5`` not ``0.00001``, ``0.25`` not ``0.25000``, one style per axis.

    Scientific notation is used for the whole axis as soon as one non-zero value is below
    1e-3 or at least 1e5 in magnitude.
    """
    nonzero = [abs(v) for v in values if v != 0 and math.isfinite(v)]
    sci = any(v < 1e-3 or v >= 1e5 for v in nonzero)
    out = []
    for v in values:
        if v == 0:
            out.append("0")
        elif not math.isfinite(v):
            out.append(str(v))
        elif sci:
            mantissa, exponent = f"{v:.2e}".split("e")
            mantissa = mantissa.rstrip("0").rstrip(".")
            out.append(f"{mantissa}e{int(exponent)}")
        else:
            out.append(f"{v:.6g}")
    return out


def _category_label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return compact_labels([value])[0]
    return str(value)


def _is_categorical(dtype: pl.DataType) -> bool:
    return not dtype.is_numeric() or isinstance(dtype, pl.Boolean)


def _floats(series: pl.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for null, NaN and infinities (all 'missing')."""
    values = series.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64)
    values[~np.isfinite(values)] = np.nan
    return values


def _codes(series: pl.Series) -> tuple[np.ndarray, list[Any]]:
    """Category codes (float, NaN = missing) and the categories in sorted order."""
    present = series.drop_nulls()
    if isinstance(series.dtype, pl.Boolean) or present.dtype.is_numeric():
        categories = sorted(set(present.to_list()))
    else:
        categories = sorted(set(present.cast(pl.String).to_list()))
        series = series.cast(pl.String)
    index = {value: i for i, value in enumerate(categories)}
    codes = np.array([np.nan if v is None else index[v] for v in series.to_list()],
                     dtype=np.float64)
    return codes, categories


def _linear_scale(column: str, lo: float, hi: float, integer: bool) -> AxisScale:
    if lo == hi:
        pad = 1.0 if integer or lo == 0 else abs(lo) * 0.1
        lo, hi = lo - pad, hi + pad
    ticks = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], integer=integer).tick_values(lo, hi)
    # The locator's ticks cover [lo, hi] with round values; the outer ones become the
    # limits, so each axis ends on a labelled round value.
    ticks = [float(t) for t in ticks]
    lo_lim, hi_lim = min(ticks[0], lo), max(ticks[-1], hi)
    return AxisScale(column, "linear", lo_lim, hi_lim, ticks, compact_labels(ticks))


def _log_scale(column: str, lo: float, hi: float) -> AxisScale:
    lo_e = math.floor(math.log10(lo) + 1e-9)
    hi_e = math.ceil(math.log10(hi) - 1e-9)
    if hi_e <= lo_e:
        hi_e = lo_e + 1
    exponents = list(range(lo_e, hi_e + 1))
    step = max(1, math.ceil((len(exponents) - 1) / 6))
    shown = exponents[::step]
    if shown[-1] != exponents[-1]:
        shown.append(exponents[-1])
    ticks = [10.0 ** e for e in shown]
    return AxisScale(column, "log", 10.0 ** lo_e, 10.0 ** hi_e, ticks, compact_labels(ticks))


def axis_scale(
    column: str, series: pl.Series, log: bool | None = None, inverted: bool = False
) -> tuple[AxisScale, np.ndarray]:
    """The scale of one axis and the column's values in that scale's units (NaN = missing).

    ``log``: True forces a log scale, False a linear one, None decides (log when the
    positive values span two decades or more). Text and Boolean columns are categories.
    """
    if _is_categorical(series.dtype):
        if log:
            raise UsageError(f"--log {column}: the axis holds categories, not numbers")
        codes, categories = _codes(series)
        positions = list(range(len(categories)))
        every = max(1, math.ceil(len(categories) / MAX_CATEGORY_TICKS))
        labels = [_category_label(c) if i % every == 0 or i == len(categories) - 1 else ""
                  for i, c in enumerate(categories)]
        scale = AxisScale(column, "category", -0.5, len(categories) - 0.5,
                          [float(t) for t in positions], labels, categories)
        scale.inverted = inverted
        return scale, codes
    values = _floats(series)
    finite = values[~np.isnan(values)]
    if finite.size == 0:
        scale = AxisScale(column, "linear", 0.0, 1.0, [0.0, 1.0], ["", ""])
    else:
        lo, hi = float(finite.min()), float(finite.max())
        if log is True and lo <= 0:
            raise UsageError(f"--log {column}: the axis has values <= 0 (min {lo:g}); "
                             "a log scale needs positive values")
        use_log = log if log is not None else spans_decades([lo, hi])
        distinct = np.unique(finite)
        if use_log and 1 < distinct.size <= MAX_VALUE_TICKS:
            # A grid of a few values (learning rates): a tick at each, the axis from the
            # smallest to the largest, so every line lands on a labelled value.
            ticks = [float(v) for v in distinct]
            scale = AxisScale(column, "log", lo, hi, ticks, compact_labels(ticks))
        elif use_log:
            scale = _log_scale(column, lo, hi)
        else:
            integer = series.dtype.is_integer()
            scale = _linear_scale(column, lo, hi, integer)
    scale.inverted = inverted
    return scale, values


def _line_style(n: int) -> tuple[float, float]:
    """(alpha, line width) for n background runs: 240 and 10,000 runs both stay readable."""
    alpha = min(0.9, max(0.04, 4.0 / math.sqrt(max(n, 1))))
    width = min(1.5, max(0.3, 2.2 / max(n, 1) ** 0.25))
    return alpha, width


def _wrap(label: str, width_chars: int) -> str:
    if len(label) <= width_chars:
        return label
    return "\n".join(textwrap.wrap(label, max(width_chars, 6), break_long_words=False))


@dataclass
class _Colors:
    rgba: np.ndarray
    order: np.ndarray
    mappable: ScalarMappable | None = None
    legend: list[tuple[str, str]] = field(default_factory=list)


def _colors(table: pl.DataFrame, color: str | None, alpha: float) -> _Colors:
    """Per-run RGBA, a drawing order (highest value last), and a colourbar or legend."""
    n = table.height
    if color is None:  # neutral grey: no colour of its own to mistake for a highlight
        rgba = np.tile(to_rgba(NEUTRAL, alpha), (n, 1))
        return _Colors(rgba, np.arange(n))
    series = table.get_column(color)
    if _is_categorical(series.dtype) or (
        series.dtype.is_integer() and series.n_unique() <= len(PALETTE)
    ):
        codes, categories = _codes(series)
        palette = [to_rgba(PALETTE[i % len(PALETTE)], alpha) for i in range(len(categories))]
        rgba = np.array([to_rgba(NO_COLOR, alpha) if np.isnan(c) else palette[int(c)]
                         for c in codes]).reshape(n, 4)
        legend = [(_category_label(c), PALETTE[i % len(PALETTE)])
                  for i, c in enumerate(categories)]
        order = np.argsort(np.nan_to_num(codes, nan=-1.0), kind="stable")
        return _Colors(rgba, order, legend=legend)
    values = _floats(series)
    finite = values[~np.isnan(values)]
    cmap = colormaps[CMAP]
    if finite.size and spans_decades([float(finite.min()), float(finite.max())]):
        norm: Normalize = LogNorm(float(finite.min()), float(finite.max()))
    elif finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        norm = Normalize(lo, hi if hi > lo else lo + 1.0)
    else:
        norm = Normalize(0.0, 1.0)
    rgba = np.tile(to_rgba(NO_COLOR, alpha), (n, 1))
    ok = ~np.isnan(values)
    if ok.any():
        rgba[ok] = cmap(norm(values[ok]), alpha=alpha)
    order = np.argsort(np.nan_to_num(values, nan=-np.inf), kind="stable")
    return _Colors(rgba, order, ScalarMappable(norm=norm, cmap=cmap))


def axis_scales(
    table: pl.DataFrame,
    axes: Sequence[str],
    *,
    log: Collection[str] = (),
    linear: Collection[str] = (),
    auto_log: Collection[str] | None = None,
    invert: Collection[str] = (),
    color: str | None = None,
) -> list[tuple[AxisScale, np.ndarray]]:
    """Per axis its scale and its values in that scale's units (see :func:`axis_scale`),
    after checking that every column named exists and there are two axes at least.
    The arguments are those of :func:`parcoords_figure` (the PNG and the HTML view)."""
    missing_columns = [c for c in (*axes, *(log or ()), *(invert or ())) if c not in table.columns]
    if color is not None and color not in table.columns:
        missing_columns.append(color)
    if missing_columns:
        raise UsageError(f"no column {missing_columns[0]!r} in the table to draw")
    if len(axes) < 2:
        raise UsageError("parallel coordinates need at least 2 axes")
    out = []
    for column in axes:
        wanted: bool | None = None
        if column in log:
            wanted = True
        elif column in linear or (auto_log is not None and column not in auto_log):
            wanted = False
        out.append(axis_scale(column, table.get_column(column), wanted, column in invert))
    return out


def parcoords_figure(
    table: pl.DataFrame,
    axes: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    log: Collection[str] = (),
    linear: Collection[str] = (),
    auto_log: Collection[str] | None = None,
    invert: Collection[str] = (),
    color: str | None = None,
    color_label: str | None = None,
    highlights: Sequence[tuple[str, str]] = (),
    title: str | None = None,
    run_column: str = "run",
) -> Figure:
    """Draw ``table`` (one row per run) as parallel coordinates over ``axes`` (columns).

    ``labels``: column -> readable axis label. ``log``/``linear``: columns forced to a
    scale; other numeric columns in ``auto_log`` (default: all) get a log scale when their
    positive values span two decades. ``invert``: columns drawn top-down. ``color``: the
    column colouring the lines (continuous -> colormap + colourbar, log-normed across
    decades; text, Boolean or a few integers -> palette + legend; None: one colour).
    ``highlights``: (run id, legend text) pairs drawn on top, the first in red.
    ``title``: default "N runs".
    """
    labels = dict(labels or {})
    n_runs, n_axes = table.height, len(axes)
    scales: list[AxisScale] = []
    units = np.empty((n_runs, n_axes), dtype=np.float64)
    for j, (scale, values) in enumerate(axis_scales(table, axes, log=log, linear=linear,
                                                    auto_log=auto_log, invert=invert,
                                                    color=color)):
        scales.append(scale)
        units[:, j] = scale.unit(values)
    missing = np.isnan(units)
    band = MISSING_BAND if missing.any() else 0.0
    ys = np.where(missing, -band / 2, units)
    xs = np.broadcast_to(np.arange(n_axes, dtype=np.float64), (n_runs, n_axes))

    width = min(18.0, max(6.5, 1.2 * n_axes + 2.5))
    fig = new_figure(width, 5.0)
    alpha, line_width = _line_style(n_runs)
    with style():
        host = fig.add_subplot()
        colors = _colors(table, color, alpha)
        segments = np.stack([xs, ys], axis=-1)[colors.order]
        background = LineCollection(list(segments), colors=colors.rgba[colors.order],
                                    linewidths=line_width, zorder=1, capstyle="round",
                                    joinstyle="round")
        background.set_gid("runs")
        host.add_collection(background)
        _host_frame(host, n_axes, band)
        spacing_chars = int(width / n_axes * 72 / (0.62 * 8))
        for j, scale in enumerate(scales):
            _draw_axis(host, j, scale, _wrap(labels.get(scale.column, scale.column),
                                             spacing_chars))
        if band:
            _draw_missing(host, axes, missing, band)
        handles = _draw_highlights(host, table, run_column, highlights, xs[0] if n_runs
                                   else np.arange(n_axes), ys)
        if colors.mappable is not None:
            bar = fig.colorbar(colors.mappable, ax=host, pad=0.02, fraction=0.04, aspect=30)
            bar.set_label(color_label or color or "")
            bar.ax.yaxis.set_major_formatter(
                FuncFormatter(lambda v, _pos: compact_labels([v])[0]))
            bar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
        elif colors.legend:
            proxies = [Line2D([], [], color=c, lw=2) for _, c in colors.legend]
            fig.legend(proxies, [name for name, _ in colors.legend], loc="outside right upper",
                       title=color_label or color)
        if handles:
            fig.legend(handles, [str(h.get_label()) for h in handles], loc="outside lower center",
                       ncols=min(len(handles), 3))
        fig.suptitle(title if title is not None else f"{n_runs} runs")
    return fig


def _host_frame(host: Axes, n_axes: int, band: float) -> None:
    host.set_xlim(-0.06, n_axes - 1 + 0.06)
    host.set_ylim(-band - 0.01 if band else -0.02, 1.02)
    host.set_xticks([])
    host.set_yticks([])
    host.grid(False)
    for spine in host.spines.values():
        spine.set_visible(False)
    host.patch.set_visible(False)


def _draw_axis(host: Axes, j: int, scale: AxisScale, label: str) -> Axes:
    """One parallel axis: a zero-width child Axes at x = j carrying the real scale."""
    # Above the runs and the highlights: a tick label is never hidden by a line.
    ax = host.inset_axes((j - 0.001, 0.0, 0.002, 1.0), transform=host.transData,
                         zorder=AXIS_ZORDER)
    ax.patch.set_visible(False)
    ax.xaxis.set_visible(False)
    ax.grid(False)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.spines["left"].set_color("#333333")
    ax.spines["left"].set_linewidth(0.9)
    if scale.kind == "log":
        ax.set_yscale("log")
    lo, hi = scale.lo, scale.hi
    ax.set_ylim((hi, lo) if scale.inverted else (lo, hi))
    ax.set_yticks(scale.ticks, scale.tick_labels)
    ax.yaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis="y", labelsize=7, length=3, pad=4)
    for tick_label in ax.get_yticklabels():
        tick_label.set_bbox({"boxstyle": "square,pad=0.08", "facecolor": "white",
                             "edgecolor": "none", "alpha": 0.7})
    ax.set_title(label, fontsize=8, pad=5)
    ax.set_gid(f"axis-{scale.column}")
    ax.set_label(scale.column)
    return ax


def _draw_missing(host: Axes, columns: Sequence[str], missing: np.ndarray, band: float) -> None:
    """A grey band under the axes; per axis with gaps, a cross and how many runs lack it."""
    host.axhspan(-band, -0.015, color="#eeeeee", zorder=0, lw=0)
    host.text(-0.05, -band / 2, "missing", ha="right", va="center", fontsize=7,
              color=MISSING_COLOR, style="italic")
    for j, count in enumerate(missing.sum(axis=0)):
        if count:
            (marker,) = host.plot([j], [-band / 2], marker="x", color="#555555", ms=6,
                                  mew=1.5, zorder=AXIS_ZORDER, linestyle="none")
            marker.set_gid(f"missing-{columns[j]}")
            host.text(j + 0.05, -band / 2, f"{int(count)}", ha="left", va="center",
                      fontsize=7, color="#555555", zorder=AXIS_ZORDER)


def _draw_highlights(
    host: Axes,
    table: pl.DataFrame,
    run_column: str,
    highlights: Sequence[tuple[str, str]],
    xs: np.ndarray,
    ys: np.ndarray,
) -> list[Line2D]:
    """Highlighted runs, the first on top: thick, haloed, red then the other HIGHLIGHTs."""
    if not highlights:
        return []
    ids = table.get_column(run_column).cast(pl.String).to_list()
    position = {run: i for i, run in enumerate(ids)}
    handles = []
    count = len(highlights)
    # Drawn in reverse so the first highlight is drawn last (and has the top z-order).
    for k in reversed(range(count)):
        run, text = highlights[k]
        if run not in position:
            raise UsageError(f"highlight {text}: run {run!r} is not among the runs drawn")
        row = ys[position[run]]
        colour = HIGHLIGHT[k % len(HIGHLIGHT)]
        name = run if text == run else f"{run}  ({text})"
        (line,) = host.plot(xs, row, color=colour, lw=2.6, marker="o", ms=4.5,
                            zorder=10 + count - k, label=name, solid_capstyle="round",
                            path_effects=[pe.withStroke(linewidth=4.6, foreground="white")])
        line.set_gid(f"highlight-{k}")
        handles.append(line)
    return list(reversed(handles))

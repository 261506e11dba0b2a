"""Series figures: every run as a line (``xp curves``, view 3) and the aggregate across
runs as a centre line plus a shaded band (``xp aggregate``, view 4).

Frames in, Figure out. Both figures share the layout rules:

- One panel per value of the facet keys: by default every series key that varies (one
  panel per metric column, ``f1[lang=de]``), or the keys asked for (``--facet lang``).
  Panels of one metric share their y axis, so they compare at a glance; all share x.
- Colour: a numeric column gets a colormap (viridis without its palest yellow),
  log-scaled when its values span a decade or more (learning rates); anything else
  a colour-blind-safe palette. Curves explain colours with a colourbar (numeric) or a
  legend (categories); the aggregate always with a legend titled with the group key,
  one entry per group with its number of runs.
- A title says what is drawn over how many runs, and a second line how points align.
- What is drawn sets the axes: a series with only one or two finite points gets markers
  (a line of one point would be invisible yet still stretch the axes), and a series
  without a finite value is not drawn and sets nothing.
- Columns on different x axes (``--x auto`` chose per column: the frame's x column is
  ``x``, with ``x_axis``) get their own x label and do not share the x range.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from matplotlib import colormaps
from matplotlib import patheffects as pe
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Colormap, ListedColormap, LogNorm, Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from ..errors import UsageError
from .common import HIGHLIGHT, PALETTE, new_figure, spans_decades, style
from .parcoords import compact_labels

DEFAULT_COLOR = "#0072B2"
NO_VALUE_COLOR = "#9a9a9a"
MAX_COLS = 3
X_LABELS = {"time": "time since the run's first point (s)",
            "order": "order (index in logging order)"}
#: A series with fewer finite points than this is drawn with markers, not just a line.
MARKED_BELOW = 3
#: Colours go log-scaled from one decade on (not two, as log axes do): a learning-rate grid
#: 1e-5, 3e-5, 1e-4, 3e-4 coloured linearly puts 1e-5 and 3e-5 in nearly the same colour.
LOG_COLOR_DECADES = 1.0


def _cmap() -> Colormap:
    base = colormaps["viridis"]
    return ListedColormap(base(np.linspace(0.0, 0.88, 256)), name="viridis_dark")


def value_label(value: Any, sci: bool | None = None) -> str:
    """A value for legends and titles: ``1e-5``, ``0.25``, ``adamw``, ``(none)``."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return compact_labels([value])[0]
    return str(value)


@dataclass
class ColorScale:
    """Maps the values of one column to colours: a colormap or a palette."""

    column: str | None
    norm: Normalize | None = None
    cmap: Colormap | None = None
    categories: list[Any] = field(default_factory=list)
    labels: dict[Any, str] = field(default_factory=dict)

    @property
    def continuous(self) -> bool:
        return self.norm is not None

    def color(self, value: Any) -> tuple[float, float, float, float]:
        """The RGBA colour of one value (grey for a missing one)."""
        if self.column is None:
            return to_rgba(DEFAULT_COLOR)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return to_rgba(NO_VALUE_COLOR)
        if self.norm is not None and self.cmap is not None:
            return tuple(self.cmap(self.norm(float(value))))  # type: ignore[return-value]
        index = self.categories.index(value) if value in self.categories else 0
        return to_rgba(PALETTE[index % len(PALETTE)])

    def colors(self, values: Sequence[Any]) -> np.ndarray:
        """RGBA rows for many values."""
        cache: dict[Any, tuple[float, ...]] = {}
        out = np.empty((len(values), 4))
        for i, value in enumerate(values):
            if value not in cache:
                cache[value] = self.color(value)
            out[i] = cache[value]
        return out

    def label(self, value: Any) -> str:
        return self.labels.get(value, value_label(value))


def color_scale(values: pl.Series | None, continuous: bool | None = None) -> ColorScale:
    """A colormap (numeric values; log when they span >= 1 decade) or a palette."""
    if values is None:
        return ColorScale(None)
    name = values.name
    present = values.drop_nulls()
    numeric = present.dtype.is_numeric() and not isinstance(present.dtype, pl.Boolean)
    if continuous is None:
        continuous = numeric
    distinct = sorted(set(present.to_list()), key=lambda v: (str(type(v)), v))
    if continuous and numeric:
        finite = [float(v) for v in distinct if math.isfinite(float(v))]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        if spans_decades([lo, hi], LOG_COLOR_DECADES):
            norm: Normalize = LogNorm(lo, hi)
        else:
            norm = Normalize(lo, hi if hi > lo else lo + 1.0)
        labels = dict(zip(distinct, compact_labels([float(v) for v in distinct])))
        return ColorScale(name, norm=norm, cmap=_cmap(), categories=distinct, labels=labels)
    labels = {}
    if distinct and all(isinstance(v, float) for v in distinct):
        labels = dict(zip(distinct, compact_labels(distinct)))
    return ColorScale(name, categories=distinct, labels=labels)


# -- layout ---------------------------------------------------------------------------------


@dataclass
class Panel:
    """One facet: its key values, title and rows."""

    key: tuple[Any, ...]
    title: str
    frame: pl.DataFrame
    metric: str | None
    facet: tuple[str, ...] = ()


def _varying(frame: pl.DataFrame, keys: Sequence[str]) -> list[str]:
    return [k for k in keys if k in frame.columns and frame[k].n_unique() > 1]


def facet_panels(frame: pl.DataFrame, facet: Sequence[str]) -> list[Panel]:
    """Split ``frame`` into panels by the ``facet`` columns (sorted, nulls last)."""
    if not facet:
        metric = frame["metric"][0] if "metric" in frame.columns and frame.height else None
        return [Panel((), "", frame, metric if frame["metric"].n_unique() == 1 else None)]
    # One label style per key (1e-5 and 1e-3, not 1e-5 and 0.001).
    shown = {k: color_scale(frame[k], continuous=False) for k in facet}
    panels = []
    for key, part in frame.group_by(list(facet), maintain_order=False):
        title = ", ".join(
            shown[k].label(v) if k == "metric" else f"{k}={shown[k].label(v)}"
            for k, v in zip(facet, key)
        )
        metrics = part["metric"].unique().to_list() if "metric" in part.columns else []
        panels.append(Panel(tuple(key), title, part, metrics[0] if len(metrics) == 1 else None,
                            tuple(facet)))
    panels.sort(key=lambda p: tuple((v is None, str(type(v)), v) for v in p.key))
    return panels


def panel_grid(n: int, width: float = 4.0, height: float = 3.0,
               extra_width: float = 0.8,
               sharex: bool = True) -> tuple[Figure, list[Axes], Axes | None]:
    """A Figure with ``n`` panels in up to 3 columns (2 x 2 for four), sharing x unless
    ``sharex`` is False.

    Returns the panels and a spare cell (the first unused one, else None) where the
    legend and colourbar go; without a spare cell the figure is a bit wider for them.
    """
    cols = max(1, 2 if n == 4 else min(n, MAX_COLS))
    rows = max(1, math.ceil(n / cols))
    if n == 1:  # a lone panel gets room to read
        width, height = 6.0, 4.0
    spare_cells = rows * cols - n
    fig = new_figure(width * cols + (0.0 if spare_cells else extra_width), height * rows + 0.6)
    grid = fig.subplots(rows, cols, squeeze=False, sharex=sharex)
    axes = [ax for row in grid for ax in row]
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n], (axes[n] if spare_cells else None)


def place_guides(fig: Figure, axes: list[Axes], spare: Axes | None, handles: list[Any],
                 labels: list[str], title: str | None, scale: ColorScale | None) -> None:
    """The legend and (for a continuous colour) a colourbar: in the spare cell if there is
    one, else the legend below the panels and the colourbar on the right."""
    colorbar = scale is not None and scale.continuous
    if spare is not None:
        if handles:
            spare.legend(handles, labels, title=title, alignment="left",
                         loc="upper left" if colorbar else "center left",
                         bbox_to_anchor=(0.05, 1.0) if colorbar else (0.05, 0.5))
        if colorbar:
            assert scale is not None
            top = 0.35 if handles else 0.55
            cax = spare.inset_axes((0.08, top, 0.84, 0.07))
            _colorbar(fig, cax, scale, horizontal=True)
        return
    if handles:
        # Below the panels, in rows: on the right it would collide with a long title.
        longest = max(len(text) for text in labels)
        per_row = max(1, min(len(labels), int(fig.get_figwidth() / (0.35 + 0.075 * longest))))
        fig.legend(handles, labels, loc="outside lower center", title=title, ncols=per_row)
    if colorbar:
        assert scale is not None
        _colorbar(fig, axes, scale)


def _share_y(axes: list[Axes], panels: list[Panel]) -> None:
    """Panels of one metric share their y range (so zh's drop compares with de's)."""
    metrics = {p.metric for p in panels}
    if len(axes) > 1 and len(metrics) == 1 and None not in metrics:
        for ax in axes[1:]:
            ax.sharey(axes[0])


def _x_label(panel: Panel, x: str) -> str:
    """The x label of a panel: its axis, or each axis it mixes (``--x auto`` per column)."""
    axes = [x]
    if "x_axis" in panel.frame.columns:
        axes = panel.frame["x_axis"].unique(maintain_order=True).to_list() or [x]
    return " / ".join(X_LABELS.get(a, a) for a in axes)


def _label_axes(axes: list[Axes], panels: list[Panel], x: str, logx: bool,
                logy: bool, n_cols: int) -> None:
    shared = len({p.metric for p in panels}) == 1
    xs = pl.concat([p.frame.select(pl.col(x).cast(pl.Float64)) for p in panels])[x]
    whole = xs.is_empty() or bool((xs.drop_nulls() % 1 == 0).all())
    last_row_start = len(axes) - (len(axes) - 1) % n_cols - 1
    mixed = x == "x"  # panels on different axes: each labels its own
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        if panel.title:
            ax.set_title(panel.title)
        if not shared or i % n_cols == 0:
            ax.set_ylabel(panel.metric or "value")
        # x labels on the bottom panel of every column.
        if mixed or i >= last_row_start or i + n_cols >= len(axes):
            ax.set_xlabel(_x_label(panel, x))
            ax.tick_params(labelbottom=True)
        if logx:
            ax.set_xscale("log")
        elif whole:  # epochs 1..4 tick as 1, 2, 3, 4, not 1.25, 1.5
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
        if logy:
            ax.set_yscale("log")


def _n_cols(n: int) -> int:
    return max(1, 2 if n == 4 else min(n, MAX_COLS))


def _line_style(n: int) -> tuple[float, float]:
    """(alpha, width) for n lines in a panel: a few lines solid, thousands faint and thin."""
    alpha = min(0.9, max(0.05, 2.5 / math.sqrt(max(n, 1))))
    width = min(1.6, max(0.4, 2.6 / max(n, 1) ** 0.25))
    return alpha, width


def _segments(frame: pl.DataFrame, x: str, by: Sequence[str]) -> tuple[list[np.ndarray],
                                                                       pl.DataFrame]:
    """One (len, 2) array per line (``by`` groups), in the frame's order, and their keys."""
    frame = frame.sort([*by, x], maintain_order=True)
    xs = frame[x].cast(pl.Float64).to_numpy()
    ys = frame["value"].cast(pl.Float64).to_numpy()
    ids = frame.select(by).with_columns(pl.struct(by).rank("dense").alias("__id"))["__id"]
    ids_np = ids.to_numpy()
    starts = np.flatnonzero(np.r_[True, ids_np[1:] != ids_np[:-1]])
    ends = np.r_[starts[1:], len(ids_np)]
    segments = [np.column_stack([xs[s:e], ys[s:e]]) for s, e in zip(starts, ends)]
    keys = frame.select(by)[starts.tolist()] if len(starts) else frame.select(by).clear()
    return segments, keys


def draw_lines(ax: Axes, segments: Sequence[np.ndarray], colors: np.ndarray,
               width: float, zorder: float = 2) -> None:
    """One line per segment ((n, 2) arrays of x, value), in one collection; a segment
    with fewer than :data:`MARKED_BELOW` finite points also gets markers, so it shows.

    Non-finite points leave gaps and set no limits; a segment without a finite point is
    left out, so it cannot stretch the axes.
    """
    finite = [np.isfinite(seg).all(axis=1) if len(seg) else np.zeros(0, bool)
              for seg in segments]
    keep = [i for i, ok in enumerate(finite) if ok.any()]
    if not keep:
        return
    colors = np.asarray(colors)
    ax.add_collection(LineCollection([segments[i] for i in keep], colors=colors[keep],
                                     linewidths=width, zorder=zorder))
    short = [i for i in keep if finite[i].sum() < MARKED_BELOW]
    if short:
        xy = np.vstack([segments[i][finite[i]] for i in short])
        rgba = np.vstack([np.tile(colors[i], (int(finite[i].sum()), 1)) for i in short])
        rgba[:, 3] = np.maximum(rgba[:, 3], 0.6)
        ax.scatter(xy[:, 0], xy[:, 1], c=rgba, s=max(9.0, 12.0 * width), linewidths=0,
                   zorder=zorder + 0.5)


def _colorbar(fig: Figure, where: Axes | list[Axes], scale: ColorScale,
              horizontal: bool = False) -> None:
    """A colourbar for ``scale``: into ``where`` (an Axes) or beside ``where`` (panels)."""
    assert scale.norm is not None
    mappable = ScalarMappable(norm=scale.norm, cmap=scale.cmap)
    axis: Any
    if horizontal:
        assert isinstance(where, Axes)
        bar = fig.colorbar(mappable, cax=where, orientation="horizontal")
        axis = bar.ax.xaxis
    else:
        bar = fig.colorbar(mappable, ax=where, shrink=0.8, aspect=30, pad=0.02)
        axis = bar.ax.yaxis
    log = isinstance(scale.norm, LogNorm)
    bar.set_label(f"{scale.column} (log scale)" if log else (scale.column or ""))
    values = [float(v) for v in scale.categories]
    if 0 < len(values) <= 12:
        axis.set_major_locator(FixedLocator(values))
        axis.set_minor_locator(NullLocator())
        labels = dict(zip(values, compact_labels(values)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: labels.get(v, f"{v:g}")))


# -- curves -----------------------------------------------------------------------------


def _facet_keys(frame: pl.DataFrame, keys: Sequence[str], facet: Sequence[str] | None,
                other: str) -> list[str]:
    """The facet keys asked for (each must be a column), else the series keys that vary."""
    facet = list(facet) if facet is not None else _varying(frame, keys)
    for key in facet:
        if key not in frame.columns:
            raise UsageError(f"--facet {key}: not a context key or {other} here")
    return facet


def curves_layout(series: pl.DataFrame, keys: Sequence[str], facet: Sequence[str] | None,
                  color: str | None) -> tuple[list[str], list[str], str | None]:
    """Facet keys, the keys varying inside a panel (each line is a run and those), and
    the colour column (such a key when it is the only one and no --color was given)."""
    if series.is_empty():
        raise UsageError("nothing to draw: no run has points in these columns")
    facet = _facet_keys(series, keys, facet, "param")
    # Series keys that vary inside a panel would mix on one line colour: colour by them.
    inner = [k for k in _varying(series, keys) if k not in facet]
    if color is None and len(inner) == 1:
        color = inner[0]
    return facet, inner, color


def overlay_groups(overlay: pl.DataFrame, panel: Panel,
                   color: str | None) -> list[tuple[Any, pl.DataFrame]]:
    """The rows of an overlay (aggregate) table in ``panel``: per value of ``color`` (None
    without one) its finite centre points in x order."""
    part = overlay
    for key, value in zip(panel.facet, panel.key):
        if key not in part.columns:
            continue
        part = part.filter(pl.col(key).is_null() if value is None else pl.col(key) == value)
    if color and color in part.columns:
        return [(values[0], rows) for values, rows in part.group_by([color],
                                                                    maintain_order=True)]
    return [(None, part)]


def curves_figure(
    series: pl.DataFrame,
    x: str,
    keys: Sequence[str],
    *,
    color: str | None = None,
    facet: Sequence[str] | None = None,
    logx: bool = False,
    logy: bool = False,
    highlight: str | None = None,
    highlight_label: str | None = None,
    overlay: pl.DataFrame | None = None,
    overlay_label: str | None = None,
    title: str | None = None,
    subtitle: str | None = None,
) -> Figure:
    """Every run of ``series`` (``run``, ``keys``, ``x``, ``value`` [, ``color``]) as a line.

    ``overlay`` is an aggregate table (``center`` per ``color`` value, series keys and
    x) drawn as thick lines on top; ``highlight`` a run id drawn bold, red and labelled.
    """
    facet, inner, color = curves_layout(series, keys, facet, color)
    line_keys = ["run", *inner]
    scale = color_scale(series[color] if color else None)
    panels = facet_panels(series, facet)
    with style():
        fig, axes, spare = panel_grid(len(panels), sharex=x != "x")
        _share_y(axes, panels)
        handles: list[Any] = []
        labels: list[str] = []
        for ax, panel in zip(axes, panels):
            part = panel.frame
            extra = [color] if color and color not in line_keys else []
            segments, seg_keys = _segments(part, x, [*line_keys, *extra])
            if scale.continuous and color is not None:
                # Highest values last: extremes of the colormap are not buried.
                values = seg_keys[color].to_list()
                order = sorted(range(len(segments)), key=lambda i: (values[i] is None,
                                                                    values[i] or 0))
                segments = [segments[i] for i in order]
                seg_keys = seg_keys[order]
            alpha, width = _line_style(len(segments))
            rgba = scale.colors(seg_keys[color].to_list()) if color else np.tile(
                to_rgba(DEFAULT_COLOR), (len(segments), 1))
            rgba[:, 3] = alpha
            draw_lines(ax, segments, rgba, width)
            ax.autoscale_view()
            if overlay is not None:
                _draw_overlay(ax, panel, overlay, x, scale, color)
            if highlight is not None:
                mine = part.filter((pl.col("run") == highlight)
                                   & pl.col("value").is_finite()).sort(x)
                if mine.height:
                    (line,) = ax.plot(
                        mine[x].to_numpy(), mine["value"].to_numpy(), color=HIGHLIGHT[0],
                        lw=2.2, zorder=6, marker="o" if mine.height < MARKED_BELOW else None,
                        path_effects=[pe.withStroke(linewidth=4.0, foreground="white")],
                    )
                    ax.annotate(highlight, (float(mine[x][-1]), float(mine["value"][-1])),
                                xytext=(2, 4), textcoords="offset points", ha="right",
                                va="bottom", fontsize=7, color=HIGHLIGHT[0], zorder=7)
                    if not handles:
                        handles.append(line)
                        labels.append(highlight_label or highlight)
        n_cols = _n_cols(len(panels))
        _label_axes(axes, panels, x, logx, logy, n_cols)
        if overlay is not None:
            handles.append(Line2D([], [], color="#333333", lw=2.2,
                                  path_effects=[pe.withStroke(linewidth=3.6,
                                                              foreground="white")]))
            labels.append(overlay_label or "aggregate")
        if scale.column is not None and not scale.continuous:
            for value in scale.categories:
                handles.append(Line2D([], [], color=scale.color(value), lw=2))
                labels.append(scale.label(value))
        place_guides(fig, axes, spare, handles, labels,
                     scale.column if scale.column and not scale.continuous else None, scale)
        _titles(fig, title, subtitle)
    return fig


def _draw_overlay(ax: Axes, panel: Panel, overlay: pl.DataFrame, x: str, scale: ColorScale,
                  color: str | None) -> None:
    grouped = bool(color and color in overlay.columns)
    for value, rows in overlay_groups(overlay, panel, color):
        rows = rows.filter(pl.col("center").is_finite()).sort(x)
        c = scale.color(value) if grouped else to_rgba("#222222")
        ax.plot(rows[x].to_numpy(), rows["center"].to_numpy(), color=c, lw=2.2, zorder=4,
                marker="o" if rows.height < MARKED_BELOW else None,
                path_effects=[pe.withStroke(linewidth=3.6, foreground="white")])


def _titles(fig: Figure, title: str | None, subtitle: str | None) -> None:
    """The suptitle, wrapped to the figure's width (about 12 characters per inch)."""
    width = max(30, int(fig.get_figwidth() * 12))
    lines = [textwrap.fill(text, width) for text in (title, subtitle) if text]
    if lines:
        fig.suptitle("\n".join(lines), fontsize=10)


# -- aggregate ----------------------------------------------------------------------------


def aggregate_layout(table: pl.DataFrame, keys: Sequence[str], by: list[str],
                     facet: Sequence[str] | None
                     ) -> tuple[pl.DataFrame, list[str], list[str], ColorScale]:
    """The aggregate table (with a ``__hue`` column when several keys vary inside a
    panel), the facet keys, the colour keys (one line and band per value) and their
    colours."""
    if table.is_empty():
        raise UsageError("nothing to draw: no point has enough runs (lower --min-runs?)")
    facet = _facet_keys(table, keys, facet, "--by key")
    hue = [k for k in by if k not in facet] + [k for k in _varying(table, keys)
                                               if k not in facet]
    if len(hue) == 1:
        scale = color_scale(table[hue[0]])
    elif hue:
        # Several keys vary inside a panel: one colour per combination, each label naming
        # its keys ("f1, lang=en", "loss", "lr=1e-5, lang=zh").
        shown = {k: color_scale(table[k], continuous=False) for k in hue}
        combos = table.select(hue).unique().sort(hue, nulls_last=True)
        names = [
            ", ".join(
                shown[k].label(v) if k == "metric" else f"{k}={shown[k].label(v)}"
                for k, v in zip(hue, row) if v is not None
            ) or "(all)"
            for row in combos.iter_rows()
        ]
        combos = combos.with_columns(pl.Series("__hue", names, dtype=pl.String))
        table = table.join(combos, on=hue, how="left", nulls_equal=True, maintain_order="left")
        scale = ColorScale("__hue", categories=names)  # in the order of the key values
        hue = ["__hue"]
    else:
        scale = ColorScale(None)
    return table, facet, hue, scale


def aggregate_figure(
    table: pl.DataFrame,
    x: str,
    keys: Sequence[str],
    *,
    by: Sequence[str] = (),
    facet: Sequence[str] | None = None,
    runs_per_group: dict[tuple[Any, ...], int] | None = None,
    logx: bool = False,
    logy: bool = False,
    band_label: str = "band",
    title: str | None = None,
    subtitle: str | None = None,
) -> Figure:
    """The aggregate table (``by``, ``keys``, ``x``, ``center``, ``low``, ``high``, ``n``):
    per group a centre line and a shaded band, one colour per group, one panel per facet.

    ``runs_per_group`` (group key tuple -> runs) adds ``(40 runs)`` to legend entries.
    """
    table, facet, hue, scale = aggregate_layout(table, keys, list(by), facet)
    panels = facet_panels(table, facet)
    with style():
        fig, axes, spare = panel_grid(len(panels), sharex=x != "x")
        _share_y(axes, panels)
        for ax, panel in zip(axes, panels):
            groups: Any = (panel.frame.group_by(hue, maintain_order=True) if hue
                           else [((None,), panel.frame)])
            ordered = sorted(groups, key=lambda g: _sort_key(g[0][0]))
            for values, rows in ordered:
                rows = rows.filter(pl.col("center").is_finite()).sort(x)
                if rows.is_empty():
                    continue
                c = scale.color(values[0]) if hue else to_rgba(DEFAULT_COLOR)
                xs = rows[x].cast(pl.Float64).to_numpy()
                low = rows["low"].cast(pl.Float64).fill_null(np.nan).to_numpy()
                high = rows["high"].cast(pl.Float64).fill_null(np.nan).to_numpy()
                short = rows.height < MARKED_BELOW
                if short:  # a band over one or two x: a bar at each, as a shaded area is not
                    ax.vlines(xs, low, high, color=c, alpha=0.35, lw=4, zorder=2)
                else:
                    ax.fill_between(xs, low, high, color=c, alpha=0.18, lw=0, zorder=2)
                ax.plot(xs, rows["center"].to_numpy(), color=c, lw=1.8, zorder=3,
                        marker="o" if short else None, markersize=4)
        n_cols = _n_cols(len(panels))
        _label_axes(axes, panels, x, logx, logy, n_cols)
        handles: list[Any] = []
        labels: list[str] = []
        if hue:
            for value in scale.categories:
                handles.append(Line2D([], [], color=scale.color(value), lw=2))
                count = (runs_per_group or {}).get((value,))
                text = scale.label(value)
                labels.append(f"{text} ({count} runs)" if count is not None else text)
        handles.append(Patch(facecolor="#888888", alpha=0.3, lw=0))
        labels.append(band_label)
        legend_title = hue[0] if hue and hue[0] != "__hue" else None
        place_guides(fig, axes, spare, handles, labels, legend_title, None)
        _titles(fig, title, subtitle)
    return fig


def _sort_key(value: Any) -> tuple[bool, str, Any]:
    return (value is None, str(type(value)), value if value is not None else 0)


def curves_title(metrics: Sequence[str], n_runs: int, x: str, color: str | None = None,
                 overlay: str | None = None,
                 smoothing: str | None = None) -> tuple[str, str | None]:
    """Title and subtitle of a curves figure: what is drawn, over how many runs."""
    title = f"{', '.join(dict.fromkeys(metrics))}: {n_runs} runs, one line each"
    if color:
        title += f", coloured by {color}"
    notes = []
    if smoothing:
        notes.append(f"each run smoothed ({smoothing})")
    if overlay:
        notes.append(f"thick lines: {overlay} of each {color}" if color else
                     f"thick line: {overlay} of all runs")
    return title, "; ".join(notes) or None

"""Line views (``xp curves``, ``xp aggregate``, ``xp forgetting`` with ``-o FILE.html``).

Frames in, View out, with the layout rules of the PNG (:mod:`xpcli.plots.series`,
:mod:`xpcli.plots.forgetting`): the same panels (facets), colours (colormap log-scaled
over a decade, palette otherwise), bands, highlight and peak markers, and the same
titles. The page adds hover (run or group, x, value), legend entries that hide and show
their lines, and zoom. The numbers travel packed (:mod:`xpcli.html.pack`): values to 7
significant digits (hover shows 4), x values to 15, each distinct x vector once.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from matplotlib.colors import to_hex, to_rgba

from ..plots.common import HIGHLIGHT
from ..plots.forgetting import COLOURS, _group_name, _over, in_group, runs_layout, short_labels
from ..plots.series import (
    DEFAULT_COLOR,
    X_LABELS,
    ColorScale,
    Panel,
    _line_style,
    _segments,
    _sort_key,
    _x_label,
    aggregate_figure,
    aggregate_layout,
    color_scale,
    curves_figure,
    curves_layout,
    facet_panels,
    overlay_groups,
)
from .pack import DIGITS, pack
from .page import View, rounded

if TYPE_CHECKING:
    from ..analysis.forgetting import Forgetting

#: A continuous colour with at most this many distinct values also gets legend entries
#: (one per value: click to hide the runs of one learning rate).
LEGEND_VALUES = 12
COLORBAR_STOPS = 16


#: Significant digits of the x values (times since the epoch need more than 7).
X_DIGITS = 15


def _numbers(values: Any) -> np.ndarray:
    """Values as float64, NaN for None."""
    return np.asarray(values if isinstance(values, np.ndarray) else list(values),
                      dtype=np.float64)


def _hex(rgba: Any) -> str:
    return str(to_hex(rgba, keep_alpha=False))


def _whole(frames: Sequence[pl.DataFrame], x: str) -> bool:
    xs = pl.concat([f.select(pl.col(x).cast(pl.Float64)) for f in frames])[x].drop_nulls()
    return xs.is_empty() or bool((xs % 1 == 0).all())


def _one_metric(panels: Sequence[Panel]) -> bool:
    """Panels of one metric share their y range (as :func:`xpcli.plots.series._share_y`)."""
    metrics = {p.metric for p in panels}
    return len(panels) > 1 and len(metrics) == 1 and None not in metrics


def _bind(figure: Any, *args: Any, **options: Any) -> dict[str, Any]:
    """The figure function's arguments for this call, defaults filled in."""
    bound = inspect.signature(figure).bind(*args, **options)
    bound.apply_defaults()
    return dict(bound.arguments)


class _Builder:
    """Collects panels, lines, bands, markers and legend entries into a view spec; the
    numbers of lines and bands go to packed arrays, and the spec holds their indices."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.panels: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []
        self.bands: list[dict[str, Any]] = []
        self.markers: list[dict[str, Any]] = []
        self.legend: dict[str, str] = {}
        self.xs: dict[bytes, int] = {}  # an x vector's bytes -> its index in "xs"
        self.x_arrays: list[int] = []  # "xs": the packed array of each x vector
        self.arrays: list[np.ndarray] = []
        self.digits: list[int] = []

    def array(self, values: Any, digits: int = DIGITS) -> int:
        """Add an array of numbers (None for missing) to the packed ones; its index."""
        self.arrays.append(_numbers(values))
        self.digits.append(digits)
        return len(self.arrays) - 1

    def x_vector(self, values: Any) -> int:
        """The index in "xs" of this x vector: most runs share theirs (epochs 1..60),
        stored once."""
        xs = _numbers(values)
        key = xs.tobytes()
        if key not in self.xs:
            self.xs[key] = len(self.x_arrays)
            self.x_arrays.append(self.array(xs, X_DIGITS))
        return self.xs[key]

    def line(self, p: int, name: str | None, label: str, color: Any, xs: Any, ys: Any,
             width: float, opacity: float = 1.0, z: int = 2,
             extra: list[tuple[str, Any]] | None = None) -> None:
        entry: dict[str, Any] = {"p": p, "name": name, "label": label, "color": _hex(color),
                                 "width": round(width, 2), "opacity": round(opacity, 3),
                                 "z": z, "xi": self.x_vector(xs), "y": self.array(ys)}
        if extra:
            entry["extra"] = [[k, self.array(v)] for k, v in extra]
        self.lines.append(entry)

    def band(self, p: int, name: str, color: Any, xs: Any, low: Any, high: Any) -> None:
        self.bands.append({"p": p, "name": name, "color": _hex(color),
                           "x": self.array(xs, X_DIGITS), "lo": self.array(low),
                           "hi": self.array(high)})

    def key(self, name: str, color: Any) -> None:
        self.legend.setdefault(name, _hex(color))

    def _columns(self) -> dict[str, Any]:
        """The lines as columns: thousands of runs share a few styles (panel, legend
        entry, colour, width), each label is written once, and the per-line indices
        travel packed with the numbers."""
        styles: dict[tuple[Any, ...], int] = {}
        labels: dict[str, int] = {}
        columns: dict[str, list[int]] = {"style": [], "label": [], "xi": [], "y": []}
        extra = []
        fields = ("p", "name", "color", "width", "opacity", "z")
        for i, line in enumerate(self.lines):
            style = tuple(line[f] for f in fields)
            columns["style"].append(styles.setdefault(style, len(styles)))
            columns["label"].append(labels.setdefault(line["label"], len(labels)))
            columns["xi"].append(line["xi"])
            columns["y"].append(line["y"])
            if "extra" in line:
                extra.append([i, line["extra"]])
        return {"n": len(self.lines), "labels": list(labels),
                "styles": [dict(zip(fields, style)) for style in styles],
                "columns": {name: self.array(values, X_DIGITS)
                            for name, values in columns.items()},
                "extra": extra}

    def spec(self, title: str | None, subtitle: str | None, x: str, logx: bool = False,
             logy: bool = False, x_integer: bool = False,
             colorbar: dict[str, Any] | None = None) -> dict[str, Any]:
        lines = self._columns()
        return {"title": title or "", "subtitle": subtitle, "what": self.what,
                "xName": x, "logx": logx, "logy": logy, "xInteger": x_integer,
                "panels": self.panels, "lines": lines, "bands": self.bands,
                "markers": self.markers, "colorbar": colorbar, "xs": self.x_arrays,
                "packed": pack(self.arrays, self.digits),
                "legend": [{"name": k, "color": c} for k, c in self.legend.items()]}


def _colorbar(scale: ColorScale) -> dict[str, Any] | None:
    if not scale.continuous or scale.cmap is None or scale.norm is None:
        return None
    stops = [_hex(scale.cmap(t)) for t in np.linspace(0.0, 1.0, COLORBAR_STOPS)]
    log = type(scale.norm).__name__ == "LogNorm"
    return {"kind": "continuous", "label": scale.column or "", "stops": stops, "log": log,
            "lo": scale.label(scale.categories[0]) if scale.categories else "",
            "hi": scale.label(scale.categories[-1]) if scale.categories else ""}


def _panel(builder: _Builder, panel: Panel, x: str) -> int:
    builder.panels.append({"title": panel.title, "xLabel": _x_label(panel, x),
                           "yLabel": panel.metric or "value"})
    return len(builder.panels) - 1


def _group_text(column: str | None, scale: ColorScale, value: Any) -> str | None:
    if column is None:
        return None
    return f"{column}={scale.label(value)}"


def curves_view(series: pl.DataFrame, x: str, keys: Sequence[str], **options: Any) -> View:
    """The interactive counterpart of :func:`xpcli.plots.series.curves_figure`, with its
    arguments (``options`` are checked against its signature)."""
    arg = _bind(curves_figure, series, x, keys, **options)
    logx, logy, title, subtitle = arg["logx"], arg["logy"], arg["title"], arg["subtitle"]
    overlay, highlight = arg["overlay"], arg["highlight"]
    facet, inner, color = curves_layout(series, keys, arg["facet"], arg["color"])
    line_keys = ["run", *inner]
    scale = color_scale(series[color] if color else None)
    named = color is not None and (not scale.continuous
                                   or len(scale.categories) <= LEGEND_VALUES)
    panels = facet_panels(series, facet)
    builder = _Builder("run")
    for panel in panels:
        p = _panel(builder, panel, x)
        extra = [color] if color and color not in line_keys else []
        segments, seg_keys = _segments(panel.frame, x, [*line_keys, *extra])
        values = seg_keys[color].to_list() if color else [None] * len(segments)
        order = sorted(range(len(segments)), key=lambda i: _sort_key(values[i]))
        alpha, width = _line_style(len(segments))
        rgba = scale.colors(values) if color else np.tile(
            to_rgba(DEFAULT_COLOR), (len(segments), 1))
        rows = seg_keys.iter_rows(named=True)
        labels = [", ".join([str(r["run"]), *(f"{k}={r[k]}" for k in inner)]) for r in rows]
        for i in order:
            name = _group_text(color, scale, values[i]) if named else None
            if name is not None:
                builder.key(name, rgba[i])
            builder.line(p, name, labels[i], rgba[i], segments[i][:, 0], segments[i][:, 1],
                         width, max(alpha, 0.08))
        if overlay is not None:
            grouped = bool(color and color in overlay.columns)
            for value, rows_ in overlay_groups(overlay, panel, color):
                rows_ = rows_.filter(pl.col("center").is_finite()).sort(x)
                c = scale.color(value) if grouped else "#222222"
                name = _group_text(color, scale, value) if grouped and named else None
                text = arg["overlay_label"] or "aggregate"
                label = f"{text}: {name}" if name else text
                builder.line(p, name, label, c, rows_[x].to_numpy(), rows_["center"].to_numpy(),
                             2.4, 1.0, z=8)
        if highlight is not None:
            mine = panel.frame.filter((pl.col("run") == highlight)
                                      & pl.col("value").is_finite()).sort(x)
            if mine.height:
                name = arg["highlight_label"] or highlight
                builder.key(name, HIGHLIGHT[0])
                builder.line(p, name, highlight, HIGHLIGHT[0], mine[x].to_numpy(),
                             mine["value"].to_numpy(), 2.6, 1.0, z=10)
    spec = builder.spec(title, subtitle, X_LABELS.get(x, x), logx, logy,
                        _whole([p.frame for p in panels], x), _colorbar(scale))
    spec["shareY"] = _one_metric(panels)
    return View("lines", title or "curves", spec)


def aggregate_view(table: pl.DataFrame, x: str, keys: Sequence[str], **options: Any) -> View:
    """The interactive counterpart of :func:`xpcli.plots.series.aggregate_figure`, with
    its arguments (``options`` are checked against its signature)."""
    arg = _bind(aggregate_figure, table, x, keys, **options)
    logx, logy, title, subtitle = arg["logx"], arg["logy"], arg["title"], arg["subtitle"]
    runs_per_group, band_label = arg["runs_per_group"], arg["band_label"]
    table, facet, hue, scale = aggregate_layout(table, keys, list(arg["by"]), arg["facet"])
    panels = facet_panels(table, facet)
    builder = _Builder("group")
    for panel in panels:
        p = _panel(builder, panel, x)
        groups: Any = (panel.frame.group_by(hue, maintain_order=True) if hue
                       else [((None,), panel.frame)])
        for values, rows in sorted(groups, key=lambda g: _sort_key(g[0][0])):
            rows = rows.filter(pl.col("center").is_finite()).sort(x)
            if rows.is_empty():
                continue
            value = values[0]
            c = scale.color(value) if hue else DEFAULT_COLOR
            if hue:
                text = scale.label(value) if hue[0] == "__hue" else \
                    f"{hue[0]}={scale.label(value)}"
                count = (runs_per_group or {}).get((value,))
                name = f"{text} ({count} runs)" if count is not None else text
            else:
                name = "all runs"
            builder.key(name, c)
            xs = rows[x].cast(pl.Float64).to_list()
            low = rows["low"].cast(pl.Float64).to_list()
            high = rows["high"].cast(pl.Float64).to_list()
            builder.band(p, name, c, xs, low, high)
            extra = [("low", low), ("high", high)]
            if "n" in rows.columns:
                extra.append(("n", rows["n"].to_list()))
            builder.line(p, name, name, c, xs, rows["center"].to_list(), 1.8, 1.0, z=3,
                         extra=extra)
    spec = builder.spec(title, subtitle, X_LABELS.get(x, x), logx, logy,
                        _whole([p.frame for p in panels], x))
    spec["bandLabel"] = band_label
    spec["shareY"] = _one_metric(panels)
    if spec["subtitle"]:
        spec["subtitle"] += f"; {band_label}"
    else:
        spec["subtitle"] = band_label
    return View("lines", title or "aggregate", spec)


def forgetting_view(result: Forgetting) -> View:
    """The interactive counterpart of :func:`xpcli.plots.forgetting.forgetting_figure`."""
    from ..plots.forgetting import _show, _status_note

    metric, x = result.metric, result.x
    peak = "peak" if result.best == "max" else "lowest point"
    _, key = short_labels(result.stats["context"].unique(maintain_order=True).to_list())
    per = f"per {key}" if key else "per context"
    builder = _Builder("context" if result.run is not None else "run")
    if result.run is not None:
        params = ", ".join(f"{k}={_show(v)}" for k, v in result.run_params.items())
        picked = f", {result.picked_by}" if result.picked_by else ""
        title = (f"Run {result.run} ({params}{picked})" if params
                 else f"Run {result.run}{picked}")
        subtitle = f"{metric} {per} over {_over(x)}; dot = {peak}; legend: most forgotten first"
        builder.panels.append({"title": "", "xLabel": X_LABELS.get(x, x), "yLabel": metric})
        ranked = result.stats.sort("rank")
        labels = ranked["context"].to_list()
        names, _ = short_labels(labels)
        colours = {label: COLOURS[i % len(COLOURS)] for i, label in enumerate(sorted(labels))}
        for row in ranked.iter_rows(named=True):
            label = row["context"]
            part = result.curves.filter((pl.col("context") == label)
                                        & pl.col("value").is_finite() & pl.col(x).is_not_null())
            name = f"{names[label]}: {_status_note(row, x, result.best)}"
            builder.key(name, colours[label])
            builder.line(0, name, label, colours[label], part[x].to_list(),
                         part["value"].to_list(), 1.8)
            if row["peak"] is not None:
                builder.markers.append({"p": 0, "name": name, "color": colours[label],
                                        "label": f"{label}: {peak}",
                                        "x": rounded(float(row[f"peak_{x}"])),
                                        "y": rounded(float(row["peak"]))})
        spec = builder.spec(title, subtitle, X_LABELS.get(x, x),
                            x_integer=_whole([result.curves], x))
        return View("lines", title, spec)
    assert result.group_curves is not None and result.group_stats is not None
    by = list(result.by)
    curves, group_curves, group_stats = result.curves, result.group_curves, result.group_stats
    labels, names, context_key, keys, colours, runs_count = runs_layout(curves, group_curves,
                                                                         by)
    alpha = max(0.08, min(0.5, 6.0 / max(runs_count / max(len(keys), 1), 1)))
    width = 0.9 if runs_count <= 20 else 0.5
    finite = curves.filter(pl.col("value").is_finite() & pl.col(x).is_not_null())
    grouped = f", coloured by {', '.join(by)}" if by else ""
    title = f"{metric} {per} over {_over(x)}, {runs_count} runs{grouped}"
    for label in labels:
        builder.panels.append({"title": f"{context_key}={names[label]}" if context_key
                               else names[label], "xLabel": X_LABELS.get(x, x),
                               "yLabel": metric})
        p = len(builder.panels) - 1
        part = finite.filter(pl.col("context") == label)
        medians = group_curves.filter(pl.col("context") == label)
        peaks = group_stats.filter(pl.col("context") == label)
        for gk in keys:
            mine, line, peak_row = ((in_group(part, by, gk), in_group(medians, by, gk),
                                     in_group(peaks, by, gk)) if by else (part, medians, peaks))
            name = _group_name(gk, by)
            builder.key(name, colours[gk])
            for run in mine.partition_by("run", maintain_order=True):
                builder.line(p, name, str(run["run"][0]), colours[gk], run[x].to_list(),
                             run["value"].to_list(), width, alpha)
            line = line.sort(x)
            if line.is_empty():
                continue
            builder.line(p, name, f"median, {name}", colours[gk], line[x].to_list(),
                         line["value"].to_list(), 2.2, 1.0, z=6)
            if peak_row.height and peak_row["peak"][0] is not None:
                builder.markers.append({"p": p, "name": name, "color": _hex(colours[gk]),
                                        "label": f"{name}: {peak} of the median",
                                        "x": rounded(float(peak_row[f"peak_{x}"][0])),
                                        "y": rounded(float(peak_row["peak"][0]))})
    spec = builder.spec(title, f"thin: each of {runs_count} runs; bold: median over runs; "
                        f"dot = {peak} of the median", X_LABELS.get(x, x),
                        x_integer=_whole([curves], x))
    spec["shareY"] = True  # one metric in every panel, as in the PNG
    return View("lines", title, spec)

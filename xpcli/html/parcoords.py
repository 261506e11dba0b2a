"""The parallel-coordinates view (``xp parcoords -o FILE.html``): frame in, View out.

The same table, axes, scales, colours and highlights as the PNG
(:func:`xpcli.plots.parcoords.parcoords_figure`), handed to the page as JSON:

- axes: ``value``, ``log`` or ``category`` with the PNG's limits and inversion;
- per run its colour (the PNG's colormap or palette, log-normed the same way) and the
  drawing order (highest colour value last, highlights on top, the first one last);
- per run its id, every param it has and the raw axis values, for the hover card and
  the table of kept runs (full precision: the CSV copied from the page is exact).
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from matplotlib.colors import to_hex

from ..errors import UsageError
from ..plots.common import HIGHLIGHT
from ..plots.parcoords import (
    CMAP,
    MISSING_BAND,
    _colors,
    _line_style,
    axis_scales,
    compact_labels,
    parcoords_figure,
)
from .page import View, finite

#: Stops of the colour bar drawn under the chart (a CSS gradient of the colormap).
COLORBAR_STOPS = 16
MISSING = "(missing)"


def _json_cell(value: Any) -> Any:
    if isinstance(value, float):
        return finite(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def _cells(frame: pl.DataFrame) -> list[list[Any]]:
    return [[_json_cell(v) for v in row] for row in frame.iter_rows()]


def parcoords_view(table: pl.DataFrame, axes: Sequence[str], *,
                   params: pl.DataFrame | None = None,
                   missing: Mapping[str, int] | None = None, **options: Any) -> View:
    """The interactive counterpart of :func:`~xpcli.plots.parcoords.parcoords_figure`:
    the same arguments (``options`` are checked against its signature), plus ``params``
    (a frame of ``run`` and every param, shown when hovering a run) and ``missing``
    (axis column -> runs without a value there, said under the title)."""
    bound = inspect.signature(parcoords_figure).bind(table, axes, **options)
    bound.apply_defaults()
    arg = bound.arguments
    labels: dict[str, str] = dict(arg["labels"] or {})
    color, run_column = arg["color"], arg["run_column"]
    n = table.height
    specs: list[dict[str, Any]] = []
    columns: list[list[Any]] = []
    for column, (scale, values) in zip(axes, axis_scales(
            table, axes, log=arg["log"], linear=arg["linear"], auto_log=arg["auto_log"],
            invert=arg["invert"], color=color)):
        spec: dict[str, Any] = {"column": column, "label": labels.get(column, column),
                                "type": {"linear": "value"}.get(scale.kind, scale.kind),
                                "inverse": scale.inverted}
        gaps = bool(np.isnan(values).any())
        if scale.kind == "category":
            categories = [str(c) if not isinstance(c, float) else compact_labels([c])[0]
                          for c in scale.categories]
            # A run without a value sits on a "(missing)" category at the axis' foot.
            shift = 1 if gaps and not scale.inverted else 0
            spec["categories"] = (([MISSING] if shift else []) + categories
                                  + ([MISSING] if gaps and scale.inverted else []))
            at = 0 if shift else len(categories)
            columns.append([at if np.isnan(v) else int(v) + shift for v in values])
        else:
            spec["min"], spec["max"] = scale.lo, scale.hi
            foot: float | None = None
            if gaps:
                foot, spec["min"], spec["max"] = _missing_band(scale)
                spec["dataMin"], spec["dataMax"] = scale.lo, scale.hi
                spec["missingAt"] = foot
            columns.append([foot if np.isnan(v) else float(v) for v in values])
        specs.append(spec)
    highlights, title = arg["highlights"], arg["title"]
    alpha, width = _line_style(n)
    colors = _colors(table, color, alpha)
    hexes = [to_hex(rgba, keep_alpha=False) for rgba in colors.rgba]
    ids = table.get_column(run_column).cast(pl.String).to_list()
    position = {run: i for i, run in enumerate(ids)}
    marked: list[dict[str, Any]] = []
    for k, (run, text) in enumerate(highlights):
        if run not in position:
            raise UsageError(f"highlight {text}: run {run!r} is not among the runs drawn")
        marked.append({"index": position[run], "color": HIGHLIGHT[k % len(HIGHLIGHT)],
                       "label": run if text == run else f"{run}  ({text})"})
    on_top = {m["index"] for m in marked}
    order = [int(i) for i in colors.order if int(i) not in on_top]
    order += [m["index"] for m in reversed(marked)]  # the first highlight drawn last
    shown = [c for c in dict.fromkeys([run_column, *axes, *([color] if color else [])])]
    param_names: list[str] = []
    param_rows: list[list[Any]] = []
    if params is not None and params.width > 1:
        keyed = table.select(pl.col(run_column).cast(pl.String).alias("run")).join(
            params.with_columns(pl.col("run").cast(pl.String)), on="run", how="left",
            maintain_order="left")
        param_names = [c for c in keyed.columns if c != "run"]
        param_rows = _cells(keyed.select(param_names))
    notes = [f"{count:,} of {n:,} runs have no value for {labels.get(c, c)} "
             f"(drawn at the foot of that axis, in the {MISSING} band)"
             for c, count in (missing or {}).items()]
    return View("parcoords", title or f"{n:,} runs", {
        "title": title or f"{n:,} runs",
        "notes": notes,
        "axes": specs,
        "values": [list(row) for row in zip(*columns)] if n else [],
        "runs": ids,
        "colors": hexes,
        "opacity": round(alpha, 3),
        "width": round(width, 2),
        "order": order,
        "highlights": marked,
        "colorbar": _colorbar(colors, color, arg["color_label"]),
        "table": {"columns": [labels.get(c, c) for c in shown],
                  "rows": _cells(table.select(shown))},
        "params": {"names": param_names, "rows": param_rows},
    })


def _missing_band(scale: Any) -> tuple[float, float, float]:
    """Where a run without a value is drawn on a numeric axis, and the axis' new limits:
    the axis goes on past its lowest value (its top value when inverted, so this is its
    foot on screen) by the PNG's missing band, and such a run ends at the axis' very
    foot, where the page labels it "(missing)" (the end of an axis is always a tick);
    log axes in log space."""
    lo, hi = scale.lo, scale.hi
    if scale.kind == "log":
        a, b = math.log10(lo), math.log10(hi)
        depth = MISSING_BAND * (b - a)
        if scale.inverted:
            return 10 ** (b + depth), lo, 10 ** (b + depth)
        return 10 ** (a - depth), 10 ** (a - depth), hi
    depth = MISSING_BAND * (hi - lo)
    if scale.inverted:
        return hi + depth, lo, hi + depth
    return lo - depth, lo - depth, hi


def _colorbar(colors: Any, color: str | None, label: str | None) -> dict[str, Any] | None:
    """The colour key: a gradient with its ends (continuous) or swatches (categories)."""
    if color is None:
        return None
    title = label or color
    if colors.mappable is not None:
        norm, cmap = colors.mappable.norm, colors.mappable.cmap
        stops = [to_hex(cmap(t)) for t in np.linspace(0.0, 1.0, COLORBAR_STOPS)]
        lo, hi = float(norm.vmin), float(norm.vmax)
        log = type(norm).__name__ == "LogNorm"
        return {"kind": "continuous", "label": title, "stops": stops, "cmap": CMAP,
                "lo": compact_labels([lo])[0], "hi": compact_labels([hi])[0], "log": log}
    return {"kind": "category", "label": title,
            "items": [{"label": text, "color": hexcolor} for text, hexcolor in colors.legend]}

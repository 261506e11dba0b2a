"""Series figures: panels, colours, bands, highlight, overlay; two SVG goldens.

The goldens are regenerated with ``XP_UPDATE_GOLDEN=1 pytest tests/test_plots_series.py``;
look at the new SVGs before committing them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import check_golden
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import LogNorm, Normalize, to_rgba

from xpcli.errors import UsageError
from xpcli.plots.common import HIGHLIGHT, PALETTE
from xpcli.plots.series import (
    aggregate_figure,
    color_scale,
    curves_figure,
    curves_title,
    value_label,
)

GOLDEN = Path(__file__).parent / "golden"
KEYS = ["metric", "lang"]


def curves_frame() -> pl.DataFrame:
    """3 runs x 2 langs x 4 epochs; lr 1e-5, 1e-4, 1e-3 (spans two decades)."""
    rows = []
    for i, (run, lr) in enumerate([("a", 1e-5), ("b", 1e-4), ("c", 1e-3)]):
        for lang in ("de", "zh"):
            for epoch in range(1, 5):
                rows.append((run, lr, "f1", lang, float(epoch), 0.1 * i + 0.05 * epoch))
    return pl.DataFrame(rows, schema={"run": pl.String, "lr": pl.Float64, "metric": pl.String,
                                      "lang": pl.String, "epoch": pl.Float64,
                                      "value": pl.Float64}, orient="row")


def aggregate_frame() -> pl.DataFrame:
    rows = []
    for lr in (1e-5, 1e-3):
        for lang in ("de", "en", "zh"):
            for epoch in (1.0, 2.0, 3.0):
                c = epoch * (2 if lr > 1e-4 else 1)
                rows.append((lr, "f1", lang, epoch, c, c - 0.5, c + 0.5, 4))
    return pl.DataFrame(rows, schema={"lr": pl.Float64, "metric": pl.String, "lang": pl.String,
                                      "epoch": pl.Float64, "center": pl.Float64,
                                      "low": pl.Float64, "high": pl.Float64, "n": pl.Int64},
                        orient="row")


def panels(fig):
    return [ax for ax in fig.axes if ax.get_title()]


def test_curves_one_panel_per_context_one_collection_each() -> None:
    fig = curves_figure(curves_frame(), "epoch", KEYS, color="lr", title="f1: 3 runs")
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["lang=de", "lang=zh"]
    for ax in axes:
        (lc,) = [c for c in ax.collections if isinstance(c, LineCollection)]
        segments = lc.get_segments()
        assert len(segments) == 3
        np.testing.assert_allclose(segments[0][:, 0], [1, 2, 3, 4])
        assert ax.get_xlabel() == "epoch"
    assert axes[0].get_ylabel() == "f1"
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[1])
    assert fig._suptitle.get_text() == "f1: 3 runs"


def test_curves_colour_by_numeric_param_is_log_scaled_with_a_colourbar() -> None:
    fig = curves_figure(curves_frame(), "epoch", KEYS, color="lr")
    bars = [ax for ax in fig.axes if "lr" in (ax.get_xlabel() + ax.get_ylabel())]
    assert len(bars) == 1 and "log scale" in bars[0].get_xlabel() + bars[0].get_ylabel()
    lc = [c for c in panels(fig)[0].collections if isinstance(c, LineCollection)][0]
    colors = lc.get_colors()
    # Drawn in colour order; three distinct colours, all with the same transparency.
    assert len({tuple(np.round(c[:3], 4)) for c in colors}) == 3
    assert len({round(c[3], 4) for c in colors}) == 1 and colors[0][3] < 1.0
    scale = color_scale(curves_frame()["lr"])
    assert isinstance(scale.norm, LogNorm)
    # Lowest value first (drawn underneath), highest last.
    np.testing.assert_allclose(colors[0][:3], scale.color(1e-5)[:3])
    np.testing.assert_allclose(colors[-1][:3], scale.color(1e-3)[:3])


def test_color_scale_kinds() -> None:
    assert isinstance(color_scale(pl.Series("x", [1.0, 2.0, 3.0])).norm, Normalize)
    assert not isinstance(color_scale(pl.Series("x", [1.0, 2.0, 3.0])).norm, LogNorm)
    assert isinstance(color_scale(pl.Series("lr", [1e-5, 3e-5, 1e-4, 3e-4])).norm, LogNorm)
    cat = color_scale(pl.Series("opt", ["sgd", "adamw", None]))
    assert not cat.continuous and cat.categories == ["adamw", "sgd"]
    assert cat.color("adamw") == to_rgba(PALETTE[0])
    assert cat.color("sgd") == to_rgba(PALETTE[1])
    assert value_label(3e-05) == "3e-5" and value_label(None) == "(none)"


def test_curves_categorical_colour_gets_a_legend_titled_with_the_param() -> None:
    frame = curves_frame().with_columns(
        pl.col("run").replace_strict({"a": "sgd", "b": "adamw", "c": "sgd"}).alias("opt")
    )
    fig = curves_figure(frame, "epoch", KEYS, color="opt")
    (legend,) = [ax.get_legend() for ax in fig.axes if ax.get_legend()] or fig.legends
    assert legend.get_title().get_text() == "opt"
    assert [t.get_text() for t in legend.get_texts()] == ["adamw", "sgd"]


def test_curves_highlight_on_top_labelled_and_overlay() -> None:
    frame = curves_frame()
    overlay = pl.DataFrame({"lr": [1e-5, 1e-5], "metric": ["f1"] * 2, "lang": ["de", "de"],
                            "epoch": [1.0, 2.0], "center": [0.3, 0.4], "low": [0.0] * 2,
                            "high": [1.0] * 2, "n": [2, 2]})
    fig = curves_figure(frame, "epoch", KEYS, color="lr", highlight="b",
                        highlight_label="b (best:f1:lang=en)", overlay=overlay,
                        overlay_label="median of each lr")
    de, zh = panels(fig)
    red = [ln for ln in de.lines if ln.get_color() == HIGHLIGHT[0]]
    assert len(red) == 1 and red[0].get_linewidth() > 2
    np.testing.assert_allclose(red[0].get_ydata(), [0.15, 0.2, 0.25, 0.3])
    lc = [c for c in de.collections if isinstance(c, LineCollection)][0]
    assert red[0].get_zorder() > lc.get_zorder()
    assert any(t.get_text() == "b" for t in de.texts)
    # The overlay is drawn in the de panel only (its frame has de rows only).
    thick = [ln for ln in de.lines if ln not in red]
    assert len(thick) == 1 and list(thick[0].get_ydata()) == [0.3, 0.4]
    assert [ln for ln in zh.lines if ln.get_color() != HIGHLIGHT[0]] == []
    legend = next(ax.get_legend() for ax in fig.axes if ax.get_legend()) if any(
        ax.get_legend() for ax in fig.axes) else fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["b (best:f1:lang=en)",
                                                          "median of each lr"]


def test_curves_line_style_adapts_to_the_number_of_runs() -> None:
    many = pl.concat([
        curves_frame().with_columns((pl.col("run") + str(i)).alias("run")) for i in range(100)
    ])
    few = curves_frame()
    lc_many = [c for c in panels(curves_figure(many, "epoch", KEYS))[0].collections
               if isinstance(c, LineCollection)][0]
    lc_few = [c for c in panels(curves_figure(few, "epoch", KEYS))[0].collections
              if isinstance(c, LineCollection)][0]
    assert lc_many.get_colors()[0][3] < lc_few.get_colors()[0][3]
    assert lc_many.get_linewidths()[0] < lc_few.get_linewidths()[0]


def test_curves_facet_and_log_axes_and_errors() -> None:
    fig = curves_figure(curves_frame(), "epoch", KEYS, facet=["lr"], logx=True, logy=True)
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["lr=1e-5", "lr=1e-4", "lr=1e-3"]
    assert axes[0].get_xscale() == "log" and axes[0].get_yscale() == "log"
    # lang varies inside each panel, so it colours the lines (legend lang: de, zh).
    legend = next((ax.get_legend() for ax in fig.axes if ax.get_legend()), None)
    legend = legend or fig.legends[0]
    assert legend.get_title().get_text() == "lang"
    with pytest.raises(UsageError, match="--facet seed"):
        curves_figure(curves_frame(), "epoch", KEYS, facet=["seed"])
    with pytest.raises(UsageError, match="nothing to draw"):
        curves_figure(curves_frame().clear(), "epoch", KEYS)


def test_aggregate_bands_lines_legend_and_title() -> None:
    table = aggregate_frame()
    fig = aggregate_figure(table, "epoch", KEYS, by=["lr"],
                           runs_per_group={(1e-5,): 40, (1e-3,): 38}, band_label="min–max",
                           title="f1: median line and min–max band per lr",
                           subtitle="x=epoch, exact alignment")
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["lang=de", "lang=en", "lang=zh"]
    for ax in axes:
        assert len(ax.lines) == 2
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 2
        # Line of the 1e-3 group: the centre values.
        np.testing.assert_allclose(ax.lines[1].get_ydata(), [2, 4, 6])
        verts = bands[1].get_paths()[0].vertices
        assert verts[:, 1].min() == pytest.approx(1.5) and verts[:, 1].max() == pytest.approx(6.5)
    assert ax.lines[0].get_color() != ax.lines[1].get_color()
    legend = fig.legends[0] if fig.legends else next(
        ax.get_legend() for ax in fig.axes if ax.get_legend())
    assert legend.get_title().get_text() == "lr"
    assert [t.get_text() for t in legend.get_texts()] == [
        "1e-5 (40 runs)", "1e-3 (38 runs)", "min–max"]
    assert fig._suptitle.get_text().startswith("f1: median line")
    assert "exact alignment" in fig._suptitle.get_text()


def test_aggregate_undefined_band_is_a_gap_not_an_error() -> None:
    table = aggregate_frame().with_columns(
        pl.when(pl.col("epoch") == 2.0).then(None).otherwise(pl.col("low")).alias("low"))
    fig = aggregate_figure(table, "epoch", KEYS, by=["lr"], facet=[])
    (ax,) = [ax for ax in fig.axes if ax.lines]
    # One panel, hue = lr x lang: 6 lines, 6 colours, labels naming their keys.
    assert len(ax.lines) == 6
    assert len({ln.get_color() if isinstance(ln.get_color(), str) else tuple(ln.get_color())
                for ln in ax.lines}) == 6
    legend = fig.legends[0]
    assert legend.get_title().get_text() == ""
    assert [t.get_text() for t in legend.get_texts()][:2] == ["lr=1e-5, lang=de",
                                                              "lr=1e-5, lang=en"]
    with pytest.raises(UsageError, match="--min-runs"):
        aggregate_figure(table.clear(), "epoch", KEYS)


def test_curves_title() -> None:
    assert curves_title(["f1", "f1"], 240, "epoch", "lr", "median") == (
        "f1: 240 runs, one line each, coloured by lr", "thick lines: median of each lr")
    assert curves_title(["loss"], 3, "time")[1] is None


def test_svg_golden_curves(tmp_path: Path) -> None:
    fig = curves_figure(curves_frame(), "epoch", KEYS, color="lr", highlight="c",
                        highlight_label="c (best:f1:lang=de)", title="f1: 3 runs")
    check_golden(fig, "curves.svg", tmp_path)


def test_svg_golden_aggregate(tmp_path: Path) -> None:
    fig = aggregate_figure(aggregate_frame(), "epoch", KEYS, by=["lr"],
                           runs_per_group={(1e-5,): 4, (1e-3,): 4}, band_label="min–max",
                           title="f1: median line and min–max band per lr",
                           subtitle="x=epoch, exact alignment")
    check_golden(fig, "aggregate.svg", tmp_path)

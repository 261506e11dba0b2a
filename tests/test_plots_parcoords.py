"""The parallel-coordinates Figure, inspected: axes, scales, labels, lines, highlights.

The SVG golden is regenerated with ``XP_UPDATE_GOLDEN=1 pytest tests/test_plots_parcoords.py``
and reviewed like code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import check_golden
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex

from xpcli.errors import UsageError
from xpcli.plots.common import HIGHLIGHT
from xpcli.plots.parcoords import (
    MISSING_BAND,
    _line_style,
    axis_scale,
    compact_labels,
    parcoords_figure,
)

GOLDEN = Path(__file__).parent / "golden"


def small_table() -> pl.DataFrame:
    """Six runs: lr over 3 decades, a text param, two metrics, one run missing f1 de."""
    return pl.DataFrame(
        {
            "run": ["r1", "r2", "r3", "r4", "r5", "r6"],
            "lr": [1e-6, 1e-5, 1e-4, 1e-3, 1e-5, 1e-4],
            "opt": ["adam", "sgd", "adam", "sgd", "adam", "sgd"],
            "f1[lang=en]": [0.5, 0.7, 0.9, 0.6, 0.75, 0.8],
            "f1[lang=de]": [0.3, 0.5, None, 0.4, 0.55, 0.45],
        }
    )


AXES = ["lr", "opt", "f1[lang=en]", "f1[lang=de]"]
LABELS = {"f1[lang=en]": "f1 lang=en", "f1[lang=de]": "f1 lang=de"}


def host_of(fig):
    return fig.axes[0]


def axis_axes(fig):
    return list(host_of(fig).child_axes)


def highlight_lines(fig):
    return [line for line in host_of(fig).lines if (line.get_gid() or "").startswith("highlight")]


def test_one_axis_per_column_in_order_with_readable_labels():
    fig = parcoords_figure(small_table(), AXES, labels=LABELS)
    axes = axis_axes(fig)
    assert len(axes) == 4
    assert [ax.get_title() for ax in axes] == ["lr", "opt", "f1 lang=en", "f1 lang=de"]
    assert [ax.get_label() for ax in axes] == AXES


def test_scales_log_where_a_param_spans_decades_and_categories_evenly():
    fig = parcoords_figure(small_table(), AXES, labels=LABELS, auto_log=["lr"])
    lr, opt, en, de = axis_axes(fig)
    assert lr.get_yscale() == "log"
    assert en.get_yscale() == "linear" and de.get_yscale() == "linear"
    assert [t.get_text() for t in lr.get_yticklabels()] == ["1e-6", "1e-5", "1e-4", "1e-3"]
    assert lr.get_ylim() == pytest.approx((1e-6, 1e-3))
    assert [t.get_text() for t in opt.get_yticklabels()] == ["adam", "sgd"]
    assert list(opt.get_yticks()) == [0.0, 1.0]
    # Ticks at both ends of every numeric axis: the limits are labelled tick values.
    for ax in (lr, en, de):
        ticks = ax.get_yticks()
        assert ax.get_ylim() == pytest.approx((ticks[0], ticks[-1]))


def test_forced_log_linear_and_invert():
    table = small_table()
    fig = parcoords_figure(table, AXES, linear=["lr"], log=["f1[lang=en]"],
                           invert=["f1[lang=de]"])
    lr, _opt, en, de = axis_axes(fig)
    assert lr.get_yscale() == "linear"
    assert en.get_yscale() == "log"
    assert de.yaxis_inverted() and not en.yaxis_inverted()
    # The run with the highest German F1 (r5, 0.55) is drawn lowest on the inverted axis.
    (background,) = [c for c in host_of(fig).collections if isinstance(c, LineCollection)]
    de_y = [seg[3][1] for seg in background.get_segments()]
    finite = [y for y in de_y if y >= 0]
    lo, hi = de.get_ylim()[1], de.get_ylim()[0]
    assert min(finite) == pytest.approx(1 - (0.55 - lo) / (hi - lo))


def test_log_of_non_positive_values_is_a_usage_error():
    table = small_table().with_columns(pl.lit(0.0).alias("zero"), pl.lit(1.0).alias("one"))
    with pytest.raises(UsageError, match="positive"):
        parcoords_figure(table, ["zero", "one"], log=["zero"])
    with pytest.raises(UsageError, match="categories"):
        parcoords_figure(table, ["opt", "one"], log=["opt"])


def test_background_runs_are_one_collection_in_unit_coordinates():
    table = small_table()
    fig = parcoords_figure(table, AXES, auto_log=["lr"], color=None)
    collections = [c for c in host_of(fig).collections if isinstance(c, LineCollection)]
    assert len(collections) == 1
    segments = collections[0].get_segments()
    assert len(segments) == table.height
    # Without colour the runs keep table order; r1: lr 1e-6 at the bottom of 1e-6..1e-3.
    r1 = segments[0]
    assert list(r1[:, 0]) == [0, 1, 2, 3]
    assert r1[0, 1] == pytest.approx(0.0)
    assert r1[1, 1] == pytest.approx(0.25)  # adam: first of two categories
    # en axis: nice limits around 0.5..0.9; r1's 0.5 placed by hand-computed fraction.
    lo, hi = axis_axes(fig)[2].get_ylim()
    assert r1[2, 1] == pytest.approx((0.5 - lo) / (hi - lo))


def test_missing_values_dip_into_a_band_and_are_counted():
    fig = parcoords_figure(small_table(), AXES, color=None)
    (background,) = [c for c in host_of(fig).collections if isinstance(c, LineCollection)]
    r3 = background.get_segments()[2]
    assert r3[3, 1] == pytest.approx(-MISSING_BAND / 2)
    texts = {t.get_text() for t in host_of(fig).texts}
    assert "missing" in texts and "1" in texts
    markers = [line for line in host_of(fig).lines if line.get_gid() == "missing-f1[lang=de]"]
    assert len(markers) == 1 and markers[0].get_marker() == "x"


def test_no_missing_band_without_gaps():
    table = small_table().drop("f1[lang=de]")
    fig = parcoords_figure(table, AXES[:3])
    assert "missing" not in {t.get_text() for t in host_of(fig).texts}
    assert host_of(fig).get_ylim()[0] > -MISSING_BAND / 2


def test_highlight_is_red_drawn_last_on_top():
    table = small_table()
    fig = parcoords_figure(table, AXES, highlights=[("r3", "best:f1:lang=en")])
    host = host_of(fig)
    (line,) = highlight_lines(fig)
    assert to_hex(line.get_color()) == HIGHLIGHT[0] == "#d62728"
    # Above every run line; only the axes (spines, tick labels) come later.
    runs = [c for c in host.collections if isinstance(c, LineCollection)]
    assert line.get_zorder() > max(c.get_zorder() for c in runs)
    assert line.get_zorder() < min(ax.get_zorder() for ax in host.child_axes)
    assert line.get_linewidth() > 2
    assert line.get_label() == "r3  (best:f1:lang=en)"
    assert list(line.get_xdata()) == [0, 1, 2, 3]
    legend_texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "r3  (best:f1:lang=en)" in legend_texts


def test_several_highlights_distinct_colours_first_on_top():
    fig = parcoords_figure(small_table(), AXES,
                           highlights=[("r3", "best:f1:lang=en"), ("r5", "best:lms_score")])
    lines = {line.get_label(): line for line in highlight_lines(fig)}
    first, second = lines["r3  (best:f1:lang=en)"], lines["r5  (best:lms_score)"]
    assert to_hex(first.get_color()) == HIGHLIGHT[0]
    assert to_hex(second.get_color()) == HIGHLIGHT[1]
    assert first.get_zorder() > second.get_zorder()
    legend_texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert legend_texts == ["r3  (best:f1:lang=en)", "r5  (best:lms_score)"]


def test_highlight_of_an_unknown_run_is_an_error():
    with pytest.raises(UsageError, match="not among the runs"):
        parcoords_figure(small_table(), AXES, highlights=[("zz", "zz")])


def test_continuous_colour_has_a_colourbar_with_log_norm_across_decades():
    fig = parcoords_figure(small_table(), AXES, color="lr", color_label="learning rate")
    assert len(fig.axes) == 2  # the host and the colourbar
    bar = fig.axes[1]
    assert bar.get_ylabel() == "learning rate"
    assert bar.get_yscale() == "log"
    fig = parcoords_figure(small_table(), AXES, color="f1[lang=en]")
    assert fig.axes[1].get_yscale() == "linear"
    (background,) = [c for c in host_of(fig).collections if isinstance(c, LineCollection)]
    # Drawn in colour order: the best English F1 (r3, 0.9) last.
    assert background.get_segments()[-1][2, 1] == pytest.approx(
        max(seg[2, 1] for seg in background.get_segments()))


def test_categorical_colour_has_a_legend():
    fig = parcoords_figure(small_table(), AXES, color="opt", color_label="optimizer")
    assert len(fig.axes) == 1
    (legend,) = fig.legends
    assert legend.get_title().get_text() == "optimizer"
    assert [t.get_text() for t in legend.get_texts()] == ["adam", "sgd"]


def test_title_defaults_to_the_run_count():
    assert parcoords_figure(small_table(), AXES).get_suptitle() == "6 runs"
    assert parcoords_figure(small_table(), AXES, title="x").get_suptitle() == "x"


def test_alpha_and_width_shrink_with_more_runs():
    few, many, most = _line_style(10), _line_style(2400), _line_style(10_000)
    assert few[0] > many[0] >= most[0] > 0
    assert few[1] > many[1] >= most[1] > 0
    table = pl.DataFrame({"run": [f"r{i}" for i in range(500)],
                          "a": np.arange(500.0), "b": np.arange(500.0) ** 2})
    fig = parcoords_figure(table, ["a", "b"])
    (background,) = [c for c in host_of(fig).collections if isinstance(c, LineCollection)]
    assert background.get_colors()[0][3] == pytest.approx(_line_style(500)[0])


def test_compact_labels():
    assert compact_labels([1e-6, 1e-5, 1e-4, 1e-3]) == ["1e-6", "1e-5", "1e-4", "1e-3"]
    assert compact_labels([0.0, 0.25, 0.5]) == ["0", "0.25", "0.5"]
    assert compact_labels([3e-5]) == ["3e-5"]
    assert compact_labels([0.00001]) == ["1e-5"]
    assert compact_labels([100000.0, 200000.0]) == ["1e5", "2e5"]
    assert compact_labels([0.3, 0.30000000000000004]) == ["0.3", "0.3"]
    assert compact_labels([1.25e-4]) == ["1.25e-4"]


def test_axis_scale_single_value_and_all_missing():
    scale, values = axis_scale("x", pl.Series([2.0, 2.0]))
    assert scale.lo < 2.0 < scale.hi
    assert scale.unit(values) == pytest.approx([0.5, 0.5])
    scale, values = axis_scale("x", pl.Series([None, None], dtype=pl.Float64))
    assert all(math.isnan(v) for v in scale.unit(values))
    scale, values = axis_scale("flag", pl.Series([True, False, None]))
    assert scale.tick_labels == ["false", "true"]
    assert list(scale.unit(values)[:2]) == [0.75, 0.25] and math.isnan(scale.unit(values)[2])


def test_many_categories_thin_their_labels():
    scale, _ = axis_scale("run", pl.Series([f"r{i:03d}" for i in range(100)]))
    shown = [t for t in scale.tick_labels if t]
    assert 2 <= len(shown) <= 26 and shown[0] == "r000" and shown[-1] == "r099"


def test_svg_golden(tmp_path):
    table = small_table()
    fig = parcoords_figure(table, AXES, labels=LABELS, auto_log=["lr"], invert=["f1[lang=de]"],
                           color="f1[lang=en]", color_label="f1 lang=en",
                           highlights=[("r3", "best:f1:lang=en"), ("r5", "r5")])
    check_golden(fig, "parcoords.svg", tmp_path)


def test_log_axis_of_a_few_values_ticks_each_value():
    """A learning-rate grid: a tick at every value, the axis from the smallest to the largest."""
    series = pl.Series("lr", [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 3e-4])
    scale, _ = axis_scale("lr", series)
    assert scale.kind == "log"
    assert scale.ticks == [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4]
    assert scale.tick_labels == ["1e-6", "3e-6", "1e-5", "3e-5", "1e-4", "3e-4"]
    assert (scale.lo, scale.hi) == (1e-6, 3e-4)
    many = pl.Series("x", [10.0 ** (k / 4) for k in range(20)])  # 20 values: decade ticks
    scale, _ = axis_scale("x", many)
    assert scale.kind == "log" and all(math.log10(t).is_integer() for t in scale.ticks)

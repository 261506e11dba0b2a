"""Forgetting figures: inspect the matplotlib Figure (lines, peak markers, titles, panels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.collections import LineCollection

from xpcli.analysis.forgetting import analyse, curve_stats, forgetting_stats
from xpcli.dataset import load
from xpcli.plots.forgetting import forgetting_figure, run_figure, runs_figure, short_labels

SAMPLE_RUNS = Path(__file__).resolve().parent.parent / "sample_runs"


def tiny_curves() -> pl.DataFrame:
    rows = []
    for x in range(1, 7):
        rows.append(("r", "lang=de", float(x), [0.2, 0.6, 0.5, 0.4, 0.3, 0.2][x - 1]))
        rows.append(("r", "lang=en", float(x), 0.1 * x))
    return pl.DataFrame(rows, schema=["run", "context", "epoch", "value"], orient="row")


def peak_markers(ax) -> list[float]:
    """x, y of every peak dot, sorted by (x, y) and flattened (for pytest.approx)."""
    points = sorted((float(line.get_xdata()[0]), float(line.get_ydata()[0]))
                    for line in ax.get_lines() if line.get_marker() == "o")
    return [v for point in points for v in point]


def test_short_labels() -> None:
    assert short_labels(["lang=de", "lang=zh"]) == ({"lang=de": "de", "lang=zh": "zh"}, "lang")
    mixed = ["f1[lang=de]", "acc[lang=de]"]
    assert short_labels(mixed) == ({m: m for m in mixed}, "")


def test_one_run_lines_peaks_and_legend_order() -> None:
    curves = tiny_curves()
    stats = forgetting_stats(curves)
    fig = run_figure(curves, stats, x="epoch", title="Run r (lr=0.1)", metric="f1")
    (ax,) = fig.axes
    lines = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    assert len(lines) == 2
    by_label = {line.get_label().split(":")[0]: line for line in lines}
    np.testing.assert_allclose(by_label["en"].get_ydata(), 0.1 * np.arange(1, 7))
    # Peaks: de 0.6 at epoch 2, en 0.6 at its last epoch (still learning).
    assert peak_markers(ax) == pytest.approx([2.0, 0.6, 6.0, 0.6])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0].startswith("de: peak at epoch 2, -67% by the end")
    assert texts[1] == "en: still learning"
    assert ax.get_legend().get_title().get_text() == "lang, most forgotten first"
    assert fig._suptitle.get_text() == "Run r (lr=0.1)"
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "f1"


def test_one_run_with_a_missing_context() -> None:
    curves = tiny_curves().filter(pl.col("context") == "lang=en")
    stats = forgetting_stats(curves, contexts=["lang=de", "lang=en"])
    fig = run_figure(curves, stats, metric="f1")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "de: no data" in texts


@pytest.fixture(scope="module")
def sample():
    return load(SAMPLE_RUNS)


def test_best_english_run_figure(sample) -> None:
    result = analyse(sample, "f1:lang=*", run="best:f1:lang=en")
    fig = forgetting_figure(result)
    (ax,) = fig.axes
    title = fig._suptitle.get_text()
    assert "lr3e-5-s05" in title and "lr=3e-5" in title and "seed=5" in title
    assert "best on f1:lang=en" in title
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0].startswith("zh:")
    markers = peak_markers(ax)
    expected = sorted(zip(result.stats["peak_epoch"].to_list(), result.stats["peak"].to_list()))
    assert markers == pytest.approx([v for point in expected for v in point])


def test_many_runs_one_panel_per_context_coloured_by_group(sample) -> None:
    result = analyse(sample, "f1:lang=*", by=["lr"], where="seed < 4")
    fig = forgetting_figure(result)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["lang=de", "lang=en", "lang=es", "lang=nl",
                                                 "lang=zh"]
    for ax in panels:
        collections = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(collections) == 6  # one per lr
        assert sum(len(c.get_segments()) for c in collections) == 24  # 4 seeds x 6 lr
        medians = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
        assert len(medians) == 6
        assert len(peak_markers(ax)) == 2 * 6
    # The lr=3e-5 median of zh, computed with numpy from the points: its peak is marked.
    zh = (sample.points.filter((pl.col("name") == "f1") & (pl.col("lang") == "zh")
                               & pl.col("run").is_in([f"lr3e-5-s0{i}" for i in range(4)]))
          .sort("run", "epoch").collect())
    values = zh["value"].to_numpy().reshape(4, 60)
    median = np.median(values, axis=0)
    peak = int(np.argmax(median))
    markers = peak_markers(panels[4])
    pairs = list(zip(markers[::2], markers[1::2]))
    assert (pytest.approx(float(peak + 1)), pytest.approx(float(median[peak]))) in pairs
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[:6] == ["lr=1e-6", "lr=3e-6", "lr=1e-5", "lr=3e-5", "lr=0.0001",
                         "lr=0.0003"]
    assert texts[-1] == "peak of the median"
    assert "24 runs" in fig._suptitle.get_text() and "coloured by lr" in fig._suptitle.get_text()


def test_many_runs_without_groups_draw_the_overall_median() -> None:
    curves = pl.concat([tiny_curves(), tiny_curves().with_columns(
        run=pl.lit("s"), value=pl.col("value") + 0.1)])

    medians = (curves.group_by("context", "epoch").agg(pl.col("value").median())
               .sort("context", "epoch"))
    fig = runs_figure(curves, medians, curve_stats(medians, keys=["context"]), metric="f1")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2
    de = panels[0]
    (median,) = [line for line in de.get_lines() if line.get_linestyle() == "-"]
    np.testing.assert_allclose(median.get_ydata(),
                               np.array([0.2, 0.6, 0.5, 0.4, 0.3, 0.2]) + 0.05)
    assert peak_markers(de) == pytest.approx([2.0, 0.65])


def test_loss_mode_legend_reads_lowest_point() -> None:
    curves = pl.DataFrame({"run": ["r"] * 4, "context": ["split=train"] * 4,
                           "epoch": [1.0, 2.0, 3.0, 4.0], "value": [2.0, 1.0, 0.5, 0.6]})
    stats = forgetting_stats(curves, best="min")
    fig = run_figure(curves, stats, metric="loss", best="min")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == ["train: lowest at epoch 3, +20% by the end", "lowest point"]
    assert peak_markers(fig.axes[0]) == pytest.approx([3.0, 0.5])

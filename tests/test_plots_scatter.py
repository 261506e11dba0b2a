"""The scatter and importance Figures, inspected: scales, points, highlights, bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import check_golden
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer

from xpcli.errors import UsageError
from xpcli.plots.common import HIGHLIGHT, save_figure
from xpcli.plots.scatter import RESIDUAL_COLOR, importance_figure, scatter_figure


def table() -> pl.DataFrame:
    return pl.DataFrame({
        "run": ["r1", "r2", "r3", "r4", "r5"],
        "lr": [1e-6, 1e-5, 1e-4, 1e-3, 1e-5],
        "opt": ["adam", "sgd", "adam", "sgd", "adam"],
        "f1": [0.5, 0.7, 0.9, None, 0.75],
    })


def points_of(ax, gid: str) -> np.ndarray:
    (collection,) = [c for c in ax.collections if c.get_gid() == gid]
    return np.asarray(collection.get_offsets())


def test_scatter_draws_runs_with_values_log_scale_and_highlight() -> None:
    fig = scatter_figure(table(), "lr", "f1", labels={"f1": "f1 lang=en"}, color="lr",
                         highlights=[("r3", "best:f1")], note="Spearman ρ = 1")
    ax = fig.axes[0]
    drawn = points_of(ax, "runs")
    assert len(drawn) == 4  # r4 has no f1
    assert sorted(map(tuple, drawn.tolist())) == sorted(
        [(1e-6, 0.5), (1e-5, 0.7), (1e-4, 0.9), (1e-5, 0.75)])
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1e-6", "1e-5", "1e-4"]
    ring = points_of(ax, "highlight-0")
    assert ring.tolist() == [[1e-4, 0.9]]
    (edge,) = [c for c in ax.collections if c.get_gid() == "highlight-0"][0].get_edgecolor()
    assert to_hex(edge) == HIGHLIGHT[0]
    assert ax.get_ylabel() == "f1 lang=en"
    assert any(t.get_text() == "Spearman ρ = 1" for t in ax.texts)
    assert len(fig.axes) == 2  # the colourbar of lr


def test_scatter_categorical_colour_gets_a_legend_and_forced_linear_scale() -> None:
    fig = scatter_figure(table(), "lr", "f1", color="opt", linear=["lr"])
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["adam", "sgd"]


def test_scatter_refuses_a_highlight_without_a_point() -> None:
    with pytest.raises(UsageError, match="run r4 has no value on f1"):
        scatter_figure(table(), "lr", "f1", highlights=[("r4", "r4")])


def test_scatter_bytes_are_reproducible(tmp_path: Path) -> None:
    for name in ("a.svg", "b.svg"):
        save_figure(scatter_figure(table(), "lr", "f1", color="lr"), str(tmp_path / name))
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def test_importance_bars_one_panel_per_metric_residual_grey() -> None:
    frame = pl.DataFrame({
        "metric": ["m1", "m1", "m1", "m2", "m2", "m2"],
        "term": ["lr", "seed", "residual", "lr", "seed", "residual"],
        "share": [0.9, 0.02, 0.08, 0.5, 0.1, 0.4],
        "p": [1e-9, 0.4, None, 1e-3, 0.01, None],
    })
    fig = importance_figure(frame, "share", title="t")
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    bars = ax.patches
    assert [round(b.get_width(), 6) for b in bars] == [0.08, 0.02, 0.9]  # largest on top
    assert to_hex(bars[0].get_facecolor()) == RESIDUAL_COLOR
    assert [t.get_text() for t in ax.get_yticklabels()] == ["residual", "seed", "lr"]
    assert "90.0%  p=1e-9" in [t.get_text() for t in ax.texts]
    assert ax.get_title(loc="left") == "m1"


def test_importance_forest_bars_carry_error_bars_and_the_fit() -> None:
    frame = pl.DataFrame({"metric": ["m", "m"], "term": ["lr", "seed"],
                          "r2_drop": [1.2, 0.01], "sd": [0.2, 0.01], "cv_r2": [0.9, 0.9]})
    fig = importance_figure(frame, "r2_drop")
    ax = fig.axes[0]
    assert [round(b.get_width(), 6) for b in ax.patches] == [0.01, 1.2]
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    lines = bars.errorbar.lines[2][0].get_segments()  # the horizontal error bars
    assert [tuple(np.round(seg[:, 0], 6)) for seg in lines] == [(0.0, 0.02), (1.0, 1.4)]
    assert "0.9" in ax.get_title(loc="left")


def test_scatter_svg_golden(tmp_path: Path) -> None:
    fig = scatter_figure(table(), "lr", "f1", labels={"f1": "f1 lang=en"}, color="opt",
                         highlights=[("r3", "best:f1")], note="Spearman ρ = 0.8")
    check_golden(fig, "scatter.svg", tmp_path)


def test_importance_svg_golden(tmp_path: Path) -> None:
    frame = pl.DataFrame({"metric": ["m", "m", "m"], "term": ["lr", "seed", "residual"],
                          "share": [0.9, 0.02, 0.08], "p": [1e-9, 0.4, None]})
    check_golden(importance_figure(frame, "share", title="m: share of variance"),
                 "importance.svg", tmp_path)

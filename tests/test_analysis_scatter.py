"""xp scatter's table: the columns X and Y name, the runs left out, the rank correlation
(against SciPy's Spearman and Kendall)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from scipy import stats as sps

import xpcli
from xpcli.analysis.scatter import scatter_table
from xpcli.dataset import Dataset
from xpcli.errors import UsageError


def small() -> Dataset:
    runs = pl.DataFrame({"run": ["r1", "r2", "r3", "r4", "r5"],
                         "lr": [1e-5, 1e-4, 1e-3, 1e-5, 1e-4],
                         "opt": ["adam", "sgd", "adam", "sgd", "adam"]})
    rows = []
    for run, en, de in [("r1", 0.5, 0.4), ("r2", 0.7, 0.45), ("r3", 0.6, 0.6),
                        ("r4", 0.8, None), ("r5", 0.7, 0.3)]:
        rows.append({"run": run, "name": "f1", "lang": "en", "step": 1, "epoch": 1.0,
                     "time": 0.0, "value": en})
        if de is not None:
            rows.append({"run": run, "name": "f1", "lang": "de", "step": 1, "epoch": 1.0,
                         "time": 0.0, "value": de})
    return Dataset.from_frames(runs, pl.DataFrame(rows))


def test_param_against_metric_with_correlation_and_missing_runs() -> None:
    sc = scatter_table(small(), "f1:lang=en", "f1:lang=de", color="lr",
                       highlights=["best:f1:lang=en"])
    assert sc.table.columns == ["run", "f1[lang=en]", "f1[lang=de]", "lr"]
    assert (sc.x, sc.y, sc.color) == ("f1[lang=en]", "f1[lang=de]", "lr")
    assert sc.missing == 1 and sc.n == 4  # r4 has no German value
    en, de = [0.5, 0.7, 0.6, 0.7], [0.4, 0.45, 0.6, 0.3]
    assert sc.spearman == pytest.approx(sps.spearmanr(en, de).statistic)
    assert sc.kendall == pytest.approx(sps.kendalltau(en, de).statistic)  # tau-b, ties
    assert sc.highlights == [("best:f1:lang=en", "r4")]
    assert sc.labels["f1[lang=en]"] == "f1 lang=en"


def test_param_axis_and_forced_scales() -> None:
    sc = scatter_table(small(), "lr", "f1:lang=en", log="x", linear="y")
    assert sc.table.columns == ["run", "lr", "f1[lang=en]"]
    assert (sc.log, sc.linear, sc.color) == (["lr"], ["f1[lang=en]"], None)


@pytest.mark.parametrize("x,y,message", [
    ("lr", "lr", "X and Y are both lr"),
    ("opt", "f1:lang=en", "X opt: holds String values, not numbers"),
    ("lr", "f1:lang=*", "a scatter axis is one column"),
    ("run", "lr", "the run id is not a number"),
    ("lr", "nope", "Y nope"),
])
def test_bad_axes_are_usage_errors(x: str, y: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        scatter_table(small(), x, y)


def test_scale_words_are_x_or_y() -> None:
    with pytest.raises(UsageError, match="--log lr: name the axis x or y"):
        scatter_table(small(), "lr", "f1:lang=en", log="lr")


def test_sample_runs_english_against_german(sample_runs: Path) -> None:
    ds = xpcli.load(sample_runs)
    sc = scatter_table(ds, "f1:lang=en", "f1:lang=de", where="lr >= 1e-5")
    assert sc.n == 160 and sc.missing == 0
    table = sc.table
    rho = sps.spearmanr(table["f1[lang=en]"], table["f1[lang=de]"]).statistic
    assert sc.spearman == pytest.approx(rho)

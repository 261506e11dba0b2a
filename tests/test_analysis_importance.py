"""xp importance: the ANOVA decomposition against the classical formulas (cell and level
means), SciPy's one-way ANOVA and an independent projection computation; the forest
against a design whose answer is known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from xpcli.analysis.importance import (
    anova,
    choose_method,
    importance,
    importance_runs,
    is_balanced,
)
from xpcli.errors import UsageError


def grid(levels_a: int, levels_b: int, replicates: int, seed: int = 0,
         effect_a: float = 1.0, effect_b: float = 0.2, interaction: float = 0.3
         ) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(levels_a):
        for b in range(levels_b):
            for r in range(replicates):
                y = (effect_a * a + effect_b * np.sin(b) + interaction * (a == 1) * (b == 0)
                     + rng.normal(0, 0.3))
                rows.append({"run": f"{a}-{b}-{r}", "a": f"a{a}", "b": b, "y": float(y)})
    return pl.DataFrame(rows)


def rows_by_term(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["term"]: row for row in frame.iter_rows(named=True)}


def test_balanced_two_way_with_replication_is_the_classical_anova() -> None:
    frame = grid(3, 4, 3)
    result = importance_runs(frame, ["y"], ["a", "b"])
    got = rows_by_term(result.table)
    y = frame["y"].to_numpy()
    grand = y.mean()
    mean_a = frame.group_by("a").agg(pl.col("y").mean(), pl.len())
    mean_b = frame.group_by("b").agg(pl.col("y").mean(), pl.len())
    cells = frame.group_by("a", "b").agg(pl.col("y").mean().alias("cell"), pl.len())
    ss_a = float((mean_a["len"] * (mean_a["y"] - grand) ** 2).sum())
    ss_b = float((mean_b["len"] * (mean_b["y"] - grand) ** 2).sum())
    ma = dict(mean_a.select("a", "y").iter_rows())
    mb = dict(mean_b.select("b", "y").iter_rows())
    ss_ab = float(sum(n * (cell - ma[a] - mb[b] + grand) ** 2
                      for a, b, cell, n in cells.iter_rows()))
    with_cells = frame.join(cells, on=["a", "b"])
    ss_e = float(((with_cells["y"] - with_cells["cell"]) ** 2).sum())
    total = float(((y - grand) ** 2).sum())
    assert got["a"]["ss"] == pytest.approx(ss_a)
    assert got["b"]["ss"] == pytest.approx(ss_b)
    assert got["a × b"]["ss"] == pytest.approx(ss_ab)
    assert got["residual"]["ss"] == pytest.approx(ss_e)
    assert (got["a"]["df"], got["b"]["df"], got["a × b"]["df"], got["residual"]["df"]) == (
        2, 3, 6, 24)
    ms_e = ss_e / 24
    assert got["a"]["f"] == pytest.approx(ss_a / 2 / ms_e)
    assert got["a × b"]["p"] == pytest.approx(sps.f.sf(ss_ab / 6 / ms_e, 6, 24))
    assert sum(r["share"] for r in got.values()) == pytest.approx(1.0)
    assert got["a"]["share"] == pytest.approx(ss_a / total)
    assert result.balanced and result.method == "anova"
    assert result.table["term"].to_list()[0] == "a"  # largest share first
    assert result.table["term"].to_list()[-1] == "residual"


def test_one_factor_matches_scipy_f_oneway() -> None:
    rng = np.random.default_rng(1)
    groups = [rng.normal(mu, 1.0, n) for mu, n in ((0.0, 5), (0.6, 7), (1.1, 4))]
    frame = pl.DataFrame({"g": [i for i, g in enumerate(groups) for _ in g],
                          "y": np.concatenate(groups)})
    got = rows_by_term(importance_runs(frame, ["y"], ["g"]).table)
    expected = sps.f_oneway(*groups)
    assert got["g"]["f"] == pytest.approx(expected.statistic)
    assert got["g"]["p"] == pytest.approx(expected.pvalue)


def test_unbalanced_design_gives_type_ii_sums_of_squares() -> None:
    frame = grid(3, 3, 2, seed=4).filter(~pl.col("run").is_in(["0-0-0", "1-2-1", "2-1-0"]))
    got = rows_by_term(importance_runs(frame, ["y"], ["a", "b"], interactions=False).table)
    y = frame["y"].to_numpy()

    def dummies(column: str) -> np.ndarray:
        values = frame[column].cast(pl.String).to_list()
        levels = sorted(set(values))[1:]
        return np.array([[v == level for level in levels] for v in values], dtype=float)

    def rss(*blocks: np.ndarray) -> float:
        x = np.column_stack([np.ones(len(y)), *blocks])
        hat = x @ np.linalg.pinv(x)  # projection onto the model's columns
        r = y - hat @ y
        return float(r @ r)

    da, db = dummies("a"), dummies("b")
    assert got["a"]["ss"] == pytest.approx(rss(db) - rss(da, db))
    assert got["b"]["ss"] == pytest.approx(rss(da) - rss(da, db))
    assert got["residual"]["ss"] == pytest.approx(rss(da, db))
    cells = frame.select(pl.concat_str("a", "b")).to_series().to_list()
    dab = np.array([[c == level for level in sorted(set(cells))[1:]] for c in cells], float)
    with_pairs = rows_by_term(importance_runs(frame, ["y"], ["a", "b"]).table)
    assert with_pairs["a × b"]["ss"] == pytest.approx(rss(da, db) - rss(da, db, dab))
    assert with_pairs["a × b"]["df"] == np.linalg.matrix_rank(
        np.column_stack([np.ones(len(y)), da, db, dab])) - np.linalg.matrix_rank(
        np.column_stack([np.ones(len(y)), da, db]))
    assert not is_balanced([(np.array([0, 0, 1]), 2)])


def test_a_param_confounded_with_another_has_no_degrees_of_freedom() -> None:
    # a=0 only ran with b in (0, 1), a=1 only with b in (2, 3): b tells a apart.
    frame = pl.DataFrame({"a": [0, 0, 0, 0, 1, 1, 1, 1], "b": [0, 0, 1, 1, 2, 2, 3, 3],
                          "y": [1.0, 1.2, 2.0, 2.1, 3.0, 3.3, 4.0, 4.1]})
    got = rows_by_term(importance_runs(frame, ["y"], ["a", "b"]).table)
    assert got["a"]["df"] == 0 and got["a"]["ss"] == pytest.approx(0.0, abs=1e-9)
    assert got["a"]["note"] == "confounded: the other params already tell its values apart"
    assert got["b"]["df"] == 2  # 3 of b's contrasts, one of them is a's
    assert got["residual"]["df"] == 4


def test_one_run_per_cell_leaves_the_interaction_in_the_residual() -> None:
    frame = grid(4, 5, 1)
    result = importance_runs(frame, ["y"], ["a", "b"])
    got = rows_by_term(result.table)
    assert "a × b" not in got
    assert got["residual"]["note"] == "includes a × b (one run per cell)"
    assert got["residual"]["df"] == 3 * 4
    assert got["a"]["p"] is not None


def test_constant_metric_and_single_level_say_why() -> None:
    frame = pl.DataFrame({"a": ["x", "y", "x", "y"], "k": [1, 1, 1, 1],
                          "y": [0.5, 0.5, 0.5, 0.5]})
    rows, _ = anova(frame["y"].to_numpy(), {"a": frame["a"], "k": frame["k"]})
    by = {r["term"]: r for r in rows}
    assert by["a"]["share"] is None
    assert by["a"]["note"] == "the metric is constant: nothing to explain"
    assert by["k"]["df"] == 0


def test_missing_values_are_left_out_and_noted() -> None:
    frame = grid(2, 2, 3).with_columns(
        pl.when(pl.col("run") == "0-0-0").then(None).otherwise(pl.col("y")).alias("y"))
    result = importance_runs(frame, ["y"], ["a", "b"])
    assert result.notes == ["y: 1 of 12 runs have no value and are left out"]
    assert result.runs == 11


def test_auto_method_anova_for_grids_forest_for_random_search() -> None:
    assert choose_method(grid(3, 3, 1), ["a", "b"]) == "anova"
    assert choose_method(grid(3, 4, 2).head(23), ["a", "b"]) == "anova"  # a run missing
    rng = np.random.default_rng(0)
    random_search = pl.DataFrame({"lr": 10 ** rng.uniform(-6, -3, 50), "y": rng.normal(size=50)})
    assert choose_method(random_search, ["lr"]) == "forest"


@pytest.mark.slow  # five forests, fitted and shuffled
def test_forest_ranks_the_param_that_matters_first() -> None:
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(2)
    n = 120
    lr = 10 ** rng.uniform(-6, -3, n)
    noise_param = rng.uniform(0, 1, n)
    y = -((np.log10(lr) + 4.5) ** 2) + rng.normal(0, 0.1, n)
    frame = pl.DataFrame({"lr": lr, "dropout": noise_param, "y": y})
    result = importance_runs(frame, ["y"], ["lr", "dropout"], seed=0)
    assert result.method == "forest"
    got = rows_by_term(result.table)
    assert result.table["term"].to_list() == ["lr", "dropout"]
    assert got["lr"]["r2_drop"] > 0.5
    assert abs(got["dropout"]["r2_drop"]) < 0.05
    assert got["lr"]["cv_r2"] > 0.8
    again = importance_runs(frame, ["y"], ["lr", "dropout"], seed=0)
    assert again.table.equals(result.table)  # seeded


def test_forest_without_scikit_learn_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    frame = pl.DataFrame({"lr": np.linspace(1e-5, 1e-4, 20), "y": np.arange(20.0)})
    with pytest.raises(UsageError, match=r"--method auto chose forest \(lr takes a different "
                                         r"value in most runs\): .*pip install "
                                         r"'xpcli\[importance\]'"):
        importance_runs(frame, ["y"], ["lr"])


def test_importance_on_sample_runs(sample_runs: Path) -> None:
    import xpcli

    result = importance(xpcli.load(sample_runs), "f1:lang=de", "lr,seed")
    got = rows_by_term(result.table)
    assert result.method == "anova" and result.balanced and result.runs == 240
    assert got["lr"]["df"] == 5 and got["seed"]["df"] == 39 and got["residual"]["df"] == 195
    assert got["lr"]["share"] > 0.9 > 0.05 > got["seed"]["share"]
    with pytest.raises(UsageError, match="--params: unknown param 'wd'"):
        importance(xpcli.load(sample_runs), "f1:lang=de", "lr,wd")

"""Model selection: rank correlations against numpy, picks and regret against hand-worked values."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tables_helpers import f1, write_runs

from xpcli.analysis.selection import (
    MEAN_TARGET,
    Role,
    exclude_columns,
    kendall_tau_b,
    selection,
    selection_frame,
    spearman_rho,
)
from xpcli.dataset import load
from xpcli.errors import UsageError
from xpcli.spec import expand, parse_metric_specs

NAN = float("nan")


def brute_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """tau-b by its definition, over every pair (O(n^2))."""
    concordant = discordant = tied_x = tied_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tied_x += 1
        elif dy == 0:
            tied_y += 1
        elif dx == dy:
            concordant += 1
        else:
            discordant += 1
    return (concordant - discordant) / math.sqrt(
        (concordant + discordant + tied_x) * (concordant + discordant + tied_y))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their positions (numpy only)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        mask = values == value
        ranks[mask] = ranks[mask].mean()
    return ranks


def numpy_rho(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(average_ranks(x), average_ranks(y))[0, 1])


def test_hand_worked_correlations() -> None:
    # x = 1, 2, 3 and y = 1, 3, 2: pairs (1,2) C, (1,3) C, (2,3) D -> tau = 1/3;
    # rho = 1 - 6 * (0 + 1 + 1) / (3 * 8) = 0.5.
    assert kendall_tau_b([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert spearman_rho([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert kendall_tau_b([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
    assert spearman_rho([1, 2, 3, 4], [10, 20, 30, 400]) == pytest.approx(1)


def test_hand_worked_tau_b_with_ties() -> None:
    # x = 1, 1, 2, 3; y = 1, 2, 2, 3. Pairs: (0,1) tied x; (0,2) C; (0,3) C; (1,2) tied y;
    # (1,3) C; (2,3) C -> C = 4, D = 0, tau-b = 4 / sqrt((6 - 1) (6 - 1)) = 0.8.
    assert kendall_tau_b([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8)


@pytest.mark.parametrize("seed", range(6))
def test_correlations_match_numpy_with_ties(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(5, 60)
    # Few distinct values, so ties are common on both sides.
    x = np.array([float(rng.randint(0, 6)) for _ in range(n)])
    y = np.array([float(rng.randint(0, 4)) + 0.5 * xi for xi in x])
    if len(set(x)) < 2 or len(set(y)) < 2:
        pytest.skip("constant draw")
    assert kendall_tau_b(x.tolist(), y.tolist()) == pytest.approx(brute_tau_b(x, y))
    assert spearman_rho(x.tolist(), y.tolist()) == pytest.approx(numpy_rho(x, y))


def test_correlations_drop_missing_pairs() -> None:
    x = [1.0, 2.0, None, 4.0, NAN, 6.0]
    y = [1.0, 3.0, 5.0, None, 2.0, 2.5]
    # Kept pairs: (1, 1), (2, 3), (6, 2.5).
    kept_x, kept_y = np.array([1.0, 2.0, 6.0]), np.array([1.0, 3.0, 2.5])
    assert kendall_tau_b(x, y) == pytest.approx(brute_tau_b(kept_x, kept_y))
    assert spearman_rho(x, y) == pytest.approx(numpy_rho(kept_x, kept_y))


def test_correlations_undefined() -> None:
    assert kendall_tau_b([1.0], [2.0]) is None
    assert spearman_rho([], []) is None
    assert kendall_tau_b([1, 1, 1], [1, 2, 3]) is None
    assert spearman_rho([1, 2, 3], [5, 5, 5]) is None


# -- selection_frame ---------------------------------------------------------------------


def frame() -> pl.DataFrame:
    """b and c tie on sel (0.9), d has no sel value.

    run  sel   t1    t2
    a    0.5   0.9   0.7
    b    0.9   0.6   0.8
    c    0.9   0.8   None
    d    None  1.0   0.1
    """
    return pl.DataFrame({
        "run": ["a", "b", "c", "d"],
        "sel": [0.5, 0.9, 0.9, None],
        "t1": [0.9, 0.6, 0.8, 1.0],
        "t2": [0.7, 0.8, None, 0.1],
    })


def row(table: pl.DataFrame, selector: str, target: str) -> dict:
    rows = table.filter((pl.col("selector") == selector) & (pl.col("target") == target))
    assert rows.height == 1
    return rows.row(0, named=True)


def test_pick_value_oracle_regret() -> None:
    table = selection_frame(frame(), [Role("sel")], [Role("t1"), Role("t2")])
    assert table.columns == ["selector", "target", "run", "selector_value", "value", "oracle",
                             "oracle_run", "regret", "kendall_tau", "spearman_rho", "n"]
    r = row(table, "sel", "t1")
    # b and c tie on sel (0.9): b, the smaller id, is picked; d has no sel but is the oracle.
    assert (r["run"], r["selector_value"], r["value"]) == ("b", 0.9, 0.6)
    assert (r["oracle_run"], r["oracle"]) == ("d", 1.0)
    assert r["regret"] == pytest.approx(0.4)
    assert r["n"] == 3
    x, y = np.array([0.5, 0.9, 0.9]), np.array([0.9, 0.6, 0.8])
    assert r["kendall_tau"] == pytest.approx(brute_tau_b(x, y))
    assert r["spearman_rho"] == pytest.approx(numpy_rho(x, y))
    r = row(table, "sel", "t2")
    assert (r["value"], r["oracle"], r["oracle_run"], r["regret"]) == (0.8, 0.8, "b", 0.0)
    assert r["n"] == 2


def test_mean_of_targets_row() -> None:
    table = selection_frame(frame(), [Role("sel")], [Role("t1"), Role("t2")])
    r = row(table, "sel", MEAN_TARGET)
    # Per-run means: a 0.8, b 0.7, c null (t2 missing), d 0.55.
    assert r["value"] == pytest.approx(0.7)
    assert (r["oracle_run"], r["oracle"]) == ("a", pytest.approx(0.8))
    assert r["regret"] == pytest.approx(0.1)
    assert r["n"] == 2


def test_picked_run_without_target_value() -> None:
    data = frame().with_columns(pl.Series("t3", [0.1, None, 0.3, 0.2]))
    r = row(selection_frame(data, [Role("sel")], [Role("t3")]), "sel", "t3")
    assert r["run"] == "b" and r["value"] is None and r["regret"] is None
    assert r["oracle"] == 0.3


def test_lower_is_better_sides() -> None:
    table = selection_frame(frame(), [Role("sel", "worst")], [Role("t1", "worst")])
    r = row(table, "sel", "t1")
    assert (r["run"], r["value"], r["oracle_run"], r["oracle"]) == ("a", 0.9, "b", 0.6)
    assert r["regret"] == pytest.approx(0.3)
    # Both sides flipped: the same agreement as both ascending.
    same = row(selection_frame(frame(), [Role("sel")], [Role("t1")]), "sel", "t1")
    assert r["kendall_tau"] == pytest.approx(same["kendall_tau"])
    mixed = row(selection_frame(frame(), [Role("sel")], [Role("t1", "worst")]), "sel", "t1")
    assert mixed["kendall_tau"] == pytest.approx(-same["kendall_tau"])


def test_by_groups() -> None:
    data = frame().with_columns(pl.Series("lr", [2, 1, 2, 1]))
    table = selection_frame(data, [Role("sel")], [Role("t1")], by=["lr"])
    assert table.columns[0] == "lr"
    assert table.select("lr", "run", "value", "oracle_run", "n").rows() == [
        (1, "b", 0.6, "d", 1), (2, "c", 0.8, "a", 2)]
    # One run with both values: no rank correlation.
    assert table["kendall_tau"].to_list()[0] is None


def test_needs_selectors_and_targets() -> None:
    with pytest.raises(UsageError, match="at least one selector"):
        selection_frame(frame(), [], [Role("t1")])


# -- from a runs directory -----------------------------------------------------------------


@pytest.fixture
def langs(tmp_path: Path):
    """English peaks do not predict German; 'score' does."""
    return load(write_runs(tmp_path / "runs", [
        ("a", {"lr": 0.1}, f1(1, en=0.9, de=0.5, zh=0.2) + [("score", {}, 1, 0.1)]),
        ("b", {"lr": 0.1}, f1(1, en=0.7, de=0.8, zh=0.4) + [("score", {}, 1, 0.9)]),
        ("c", {"lr": 0.2}, f1(1, en=0.8, de=0.7, zh=0.3) + [("score", {}, 1, 0.5)]),
    ]))


def test_selection_with_exclude(langs) -> None:
    table = selection(langs, "f1:lang=en,score", "f1:lang=*", exclude="lang=en")
    assert table["target"].unique(maintain_order=True).to_list() == [
        "f1[lang=de]", "f1[lang=zh]", MEAN_TARGET]
    r = row(table, "f1[lang=en]", MEAN_TARGET)
    assert (r["run"], r["value"]) == ("a", pytest.approx(0.35))
    assert r["regret"] == pytest.approx(0.6 - 0.35)
    assert r["kendall_tau"] == pytest.approx(-1.0)
    r = row(table, "score", MEAN_TARGET)
    assert (r["run"], r["regret"], r["kendall_tau"]) == ("b", 0.0, pytest.approx(1.0))


def test_selection_where_and_errors(langs) -> None:
    table = selection(langs, "score", "f1:lang=de", where="lr < 0.15")
    assert row(table, "score", "f1[lang=de]")["n"] == 2
    with pytest.raises(UsageError, match="--exclude leaves no column"):
        selection(langs, "score", "f1:lang=en", exclude="lang=e*")
    with pytest.raises(UsageError, match="unknown param 'lrr'"):
        selection(langs, "score", "f1:lang=de", by="lrr")
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        selection(langs, "score", "f1:lang=de", exclude="en")


def test_exclude_columns_globs(langs) -> None:
    columns = expand(parse_metric_specs("f1:lang=*"), langs.points)
    kept = exclude_columns(columns, ["lang=?e", "lang=z*"])
    assert [c.label for c in kept] == ["f1[lang=en]"]

"""Bins for continuous params (lr:log=5, dropout:bins=4, lr:q=4): edges and labels worked
out by hand, and the commands that group by a param grouping by bins."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from tables_helpers import f1, write_runs

from xpcli.analysis.binning import BinSpec, bin_column, bin_params, parse_bin
from xpcli.cli import cli
from xpcli.errors import UsageError


def test_parse() -> None:
    assert parse_bin("lr") is None
    assert parse_bin("lr:log=5") == BinSpec("lr", "log", 5)
    assert parse_bin(" optimizer.lr : bins = 4 ") == BinSpec("optimizer.lr", "bins", 4)
    assert parse_bin("lr:Q=3") == BinSpec("lr", "q", 3)
    for bad, message in [("lr:lg=3", "unknown binning 'lg'"),
                         ("lr:log=0", "a whole number from 1 to 1000"),
                         ("lr:log=2.5", "a whole number"),
                         ("lr:log", "expected PARAM or PARAM:KIND=K")]:
        with pytest.raises(UsageError, match=message):
            parse_bin(bad)


def test_log_bins_have_equal_width_in_log10_and_decade_values_stay_on_their_edge() -> None:
    series = pl.Series("lr", [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 9.9e-5, None])
    out = bin_column(series, BinSpec("lr", "log", 2))  # edges 1e-6, 1e-5, 1e-4
    assert out.dtype == pl.Enum(["[1e-6, 1e-5)", "[1e-5, 1e-4]"])
    assert out.to_list() == ["[1e-6, 1e-5)", "[1e-6, 1e-5)", "[1e-5, 1e-4]", "[1e-5, 1e-4]",
                             "[1e-5, 1e-4]", "[1e-5, 1e-4]", None]
    # 1e-5 is log10 -5 exactly, the middle edge: it belongs to the upper bin even where
    # floating point puts it a hair below.
    three = bin_column(pl.Series("lr", [1e-6, 1e-5, 1e-4, 1e-3]), BinSpec("lr", "log", 3))
    assert three.to_list() == ["[1e-6, 1e-5)", "[1e-5, 1e-4)", "[1e-4, 1e-3]", "[1e-4, 1e-3]"]


def test_equal_width_bins_by_hand() -> None:
    series = pl.Series("p", [0.0, 0.1, 0.25, 0.5, 0.74, 0.75, 1.0])
    out = bin_column(series, BinSpec("p", "bins", 4))  # edges 0, .25, .5, .75, 1
    assert out.to_list() == ["[0, 0.25)", "[0, 0.25)", "[0.25, 0.5)", "[0.5, 0.75)",
                             "[0.5, 0.75)", "[0.75, 1]", "[0.75, 1]"]


def test_quantile_bins_hold_about_as_many_runs() -> None:
    values = np.random.default_rng(0).uniform(0, 1, 100)
    out = bin_column(pl.Series("p", values), BinSpec("p", "q", 4))
    counts = pl.Series(out).value_counts()["count"].to_list()
    assert sorted(counts) == [25, 25, 25, 25]
    edges = np.quantile(values, [0, 0.25, 0.5, 0.75, 1])
    first = out.to_list()[int(np.argmin(values))]
    assert first.startswith("[") and float(first[1:].split(",")[0]) == pytest.approx(
        edges[0], rel=1e-3)
    # Ties merge bins instead of making empty ones.
    # Quartiles of six 1s and two 2s: 1, 1, 1, 1.25, 2 -> edges 1, 1.25, 2.
    tied = bin_column(pl.Series("p", [1.0] * 6 + [2.0] * 2), BinSpec("p", "q", 4))
    assert tied.to_list() == ["[1, 1.25)"] * 6 + ["[1.25, 2]"] * 2


def test_labels_get_digits_until_they_differ() -> None:
    out = bin_column(pl.Series("x", [1.00001, 1.00002, 1.00003]), BinSpec("x", "bins", 2))
    labels = list(out.dtype.categories)
    assert len(set(labels)) == 2 and labels[0] != labels[1]
    assert all(math.isfinite(float(t.strip("[)]"))) for label in labels
               for t in label.split(", "))


def test_bins_sort_low_to_high_and_params_pass_through() -> None:
    frame = pl.DataFrame({"run": list("abcd"), "lr": [1e-3, 1e-6, 1e-4, 1e-5],
                          "seed": [1, 2, 3, 4]})
    binned, names = bin_params(frame, ["lr:log=3", "seed"])
    assert names == ["lr", "seed"]
    assert binned.sort("lr", maintain_order=True)["run"].to_list() == ["b", "d", "a", "c"]
    assert binned["lr"].to_list() == ["[1e-4, 1e-3]", "[1e-6, 1e-5)", "[1e-4, 1e-3]",
                                      "[1e-5, 1e-4)"]
    assert binned["seed"].to_list() == [1, 2, 3, 4]
    same, names = bin_params(frame, ["wd:log=3", "f1:lang=de"])  # the caller says so
    assert names == ["wd:log=3", "f1:lang=de"] and same.equals(frame)
    with pytest.raises(UsageError, match="--by lr:lg=3: unknown binning 'lg'"):
        bin_params(frame, ["lr:lg=3"])


@pytest.mark.parametrize("values,spec,message", [
    (["a", "b"], BinSpec("opt", "log", 2), "opt holds String values; only numbers"),
    ([0.0, 1.0], BinSpec("opt", "log", 2), "log bins need positive values"),
    ([None, None], BinSpec("opt", "bins", 2), "no run has a value of opt"),
])
def test_bad_columns_are_usage_errors(values: list, spec: BinSpec, message: str) -> None:
    series = pl.Series("opt", values, dtype=pl.String if isinstance(values[0], str)
                       else pl.Float64)
    with pytest.raises(UsageError, match=message):
        bin_column(series, spec)


@pytest.fixture
def random_search(tmp_path: Path) -> Path:
    """20 runs with a learning rate drawn log-uniformly in [1e-6, 1e-3): a random search.
    F1 falls with the decade (0.9 for 1e-6.., 0.6 for 1e-4..)."""
    rng = np.random.default_rng(1)
    runs = []
    for i, exponent in enumerate(rng.uniform(-6, -3, 20)):
        lr = float(10 ** exponent)
        de = 0.9 - 0.15 * math.floor(exponent + 6)
        runs.append((f"r{i:02d}", {"lr": lr, "seed": i}, f1(1, de=de, en=0.9)))
    return write_runs(tmp_path / "runs", runs)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), env={"XP_FORCE_TTY": "0", "COLUMNS": "200"},
                              catch_exceptions=False)


def test_group_by_log_bins_of_a_random_search(random_search: Path) -> None:
    result = invoke("group", "--runs", str(random_search), "--by", "lr:bins=1", "-m",
                    "f1:lang=de", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2  # one bin: every run
    result = invoke("group", "--runs", str(random_search), "--by", "lr:log=3", "-m",
                    "f1:lang=de", "--agg", "min,max", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    # The data span a bit less than 3 decades, so the 3 bins are not decades; every run
    # is in exactly one bin and the bins are in order.
    assert sum(int(r["n"]) for r in rows) == 20
    lows = [float(r["lr"][1:].split(",")[0]) for r in rows]
    assert lows == sorted(lows)


def test_compare_aggregate_selection_importance_take_bins(random_search: Path) -> None:
    result = invoke("compare", "--runs", str(random_search), "-m", "f1:lang=de", "--by",
                    "lr:q=2", "--resamples", "200", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["n_a"], row["n_b"]) == ("10", "10")
    assert float(row["median_diff"]) > 0  # smaller learning rates score higher
    result = invoke("aggregate", "f1:lang=de", "--runs", str(random_search), "--by",
                    "lr:q=2", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert [r["n"] for r in csv.DictReader(io.StringIO(result.stdout))] == ["10", "10"]
    result = invoke("selection", "--runs", str(random_search), "-s", "f1:lang=en", "-t",
                    "f1:lang=de", "--by", "lr:q=2", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert [r["n"] for r in csv.DictReader(io.StringIO(result.stdout))] == ["10", "10"]
    result = invoke("importance", "--runs", str(random_search), "-m", "f1:lang=de",
                    "--params", "lr:q=4", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["term"] == "lr" and rows[0]["df"] == "3"

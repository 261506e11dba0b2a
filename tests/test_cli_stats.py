"""xp compare, xp importance and xp scatter through the CLI: formats, the gate, figures."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tables_helpers import f1, write_runs

from xpcli.cli import cli


def invoke(*args: str, catch: bool = False):
    return CliRunner().invoke(cli, list(args), env={"XP_FORCE_TTY": "0", "COLUMNS": "200"},
                              catch_exceptions=catch)


@pytest.fixture
def grid_runs(tmp_path: Path) -> Path:
    """lr 0.1 (3 seeds) and lr 0.01 (3 seeds, one without German), lr 0.001 (one run)."""
    de = {(0.1, 1): 0.70, (0.1, 2): 0.72, (0.1, 3): 0.74,
          (0.01, 1): 0.60, (0.01, 2): 0.61, (0.01, 3): None, (0.001, 1): 0.5}
    runs = []
    for (lr, seed), value in de.items():
        points = f1(1, en=0.9) if value is None else f1(1, en=0.9, de=value)
        runs.append((f"lr{lr}-s{seed}", {"lr": lr, "seed": seed}, points))
    return write_runs(tmp_path / "runs", runs)


@pytest.mark.parametrize("command", ["compare", "importance", "scatter"])
def test_help_has_examples(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert f"xp {command} --runs sample_runs" in result.output


def test_compare_csv_has_every_column_and_notes(grid_runs: Path) -> None:
    result = invoke("compare", "--runs", str(grid_runs), "-m", "f1:lang=de", "--by", "lr",
                    "--resamples", "500", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["metric", "a", "b", "n_a", "n_b", "median_a", "median_b",
                             "median_diff", "mean_diff", "ci_low", "ci_high", "p", "p_holm",
                             "delta", "verdict", "note"]
    assert [(r["a"], r["b"]) for r in rows] == [("0.001", "0.01"), ("0.001", "0.1"),
                                                ("0.01", "0.1")]
    single = rows[0]
    assert single["verdict"] == "n=1 in 0.001: no CI or test"
    assert single["ci_low"] == "" and single["p"] == ""
    assert single["note"] == "1 of 3 runs in 0.01 have no value"
    last = rows[2]
    assert (last["n_a"], last["n_b"]) == ("2", "3")
    assert float(last["median_diff"]) == pytest.approx(0.605 - 0.72)
    assert float(last["delta"]) == -1.0


def test_compare_markdown_is_the_compact_view(grid_runs: Path) -> None:
    result = invoke("compare", "--runs", str(grid_runs), "-m", "f1:lang=de", "--by", "lr",
                    "--baseline", "0.1", "--resamples", "500", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("**f1[lang=de] by lr: median a - b, 95% CI (bootstrap, 500, seed 0), "
                        "Mann–Whitney U, Holm (1 test)**")
    assert lines[2] == ("| a | b | n | median_diff [95% CI] | p_holm | delta | verdict |")
    assert lines[4] == "| 0.001 | 0.1 | 1/3 | -0.22 |  | -1 | n=1 in 0.001: no CI or test |"
    assert "(1 of 3 runs in 0.01 have no value)" in lines[5]


def test_compare_gate_fails_with_exit_3_after_the_table(grid_runs: Path) -> None:
    result = invoke("compare", "--runs", str(grid_runs), "-m", "f1:lang=de", "--by", "lr",
                    "--baseline", "0.1", "--where", "lr >= 0.01", "--resamples", "500",
                    "--format", "json", "--fail-if", "ci_high < 0")
    assert result.exit_code == 3
    assert json.loads(result.stdout)[0]["a"] == "0.01"
    assert "gate failed: --fail-if 'ci_high < 0' holds for 1 of 1 rows" in result.stderr


def test_compare_bad_baseline_is_a_usage_error(grid_runs: Path) -> None:
    result = invoke("compare", "--runs", str(grid_runs), "-m", "f1:lang=de", "--by", "lr",
                    "--baseline", "5", catch=True)
    assert result.exit_code == 2
    assert "--baseline 5: no such group of lr; groups: 0.001, 0.01, 0.1" in result.stderr


def test_importance_table_and_figure(grid_runs: Path, tmp_path: Path) -> None:
    result = invoke("importance", "--runs", str(grid_runs), "-m", "f1:lang=en",
                    "--params", "lr", "--method", "anova", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["term"] for r in rows] == ["lr", "residual"]
    assert rows[0]["note"] == "the metric is constant: nothing to explain"
    out = tmp_path / "imp.svg"
    result = invoke("importance", "--runs", str(grid_runs), "-m", "f1:lang=de",
                    "--params", "lr", "--method", "anova", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert out.read_bytes().startswith(b"<?xml")
    assert "1 of 7 runs have no value" in result.stderr


def test_importance_gate(grid_runs: Path) -> None:
    result = invoke("importance", "--runs", str(grid_runs), "-m", "f1:lang=de",
                    "--params", "lr", "--method", "anova", "--fail-if",
                    "term == 'lr' and share < 0.99")
    assert result.exit_code == 3
    assert "gate failed" in result.stderr
    result = invoke("importance", "--runs", str(grid_runs), "-m", "f1:lang=de",
                    "--params", "seed,lr", "--format", "csv")  # 3 lrs, 3 seeds, 6 runs: anova
    assert result.exit_code == 0, result.stderr
    assert "share" in result.stdout.splitlines()[0]
    result = invoke("importance", "--runs", str(grid_runs), "-m", "f1:lang=de",
                    "--params", "lr", "--where", "lr > 0.005", "--method", "forest", catch=True)
    assert result.exit_code == 2
    assert "--method forest: 5 runs with a value; it needs at least 10" in result.stderr


def test_scatter_table_and_figure(grid_runs: Path, tmp_path: Path) -> None:
    result = invoke("scatter", "--runs", str(grid_runs), "lr", "f1:lang=de", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "run,lr,f1[lang=de]"
    assert "1 of 7 runs have no value for x or y" in result.stderr
    assert "Spearman ρ = " in result.stderr and "(6 runs)" in result.stderr
    out = tmp_path / "s.png"
    result = invoke("scatter", "--runs", str(grid_runs), "f1:lang=en", "f1:lang=de",
                    "--color", "lr", "--highlight", "best:f1:lang=de", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert "highlight best:f1:lang=de: lr0.1-s3" in result.stderr


def test_scatter_bad_suffix_fails_before_reading(tmp_path: Path) -> None:
    result = invoke("scatter", "--runs", str(tmp_path / "none"), "lr", "f1", "-o",
                    str(tmp_path / "x.jpg"), catch=True)
    assert result.exit_code == 2
    assert "the figure format comes from the suffix" in result.stderr


def test_compare_gate_is_undecided_for_single_run_groups(tiny_runs: Path) -> None:
    result = invoke("compare", "--runs", str(tiny_runs), "-m", "f1:lang=en", "--by", "lr",
                    "--format", "csv", "--fail-if", "ci_high < 0")
    assert result.exit_code == 3
    assert "n=1 in 0.01 and 0.1: no CI or test" in result.stdout
    assert "(ci_high=null; undecided, a value is missing)" in result.stderr

"""xp selection through the CLI: the reference story's view 5, groups and the gate."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from xpcli.cli import cli

TARGETS = ["f1[lang=de]", "f1[lang=es]", "f1[lang=nl]", "f1[lang=zh]", "mean(targets)"]


def invoke(*args: str, catch: bool = False):
    return CliRunner().invoke(cli, ["selection", *args],
                              env={"XP_FORCE_TTY": "0", "COLUMNS": "200"},
                              catch_exceptions=catch)


def rows_of(stdout: str) -> dict[tuple[str, str], dict[str, str]]:
    return {(r["selector"], r["target"]): r for r in csv.DictReader(io.StringIO(stdout))}


def test_help_has_examples() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "xp selection --runs sample_runs -s f1:lang=en@max,lms_score" in result.output


def test_english_selection_is_worse_on_targets_than_lms(sample_runs: Path) -> None:
    result = invoke("--runs", str(sample_runs), "-s", "f1:lang=en@max", "-s", "lms_score",
                    "-t", "f1:lang=*", "--exclude", "lang=en", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = rows_of(result.stdout)
    assert sorted({t for _, t in rows}) == sorted(TARGETS)
    for target in TARGETS:
        english, lms = rows[("f1[lang=en]@max", target)], rows[("lms_score", target)]
        assert float(english["value"]) < float(lms["value"]), target
        assert float(english["regret"]) > float(lms["regret"]) >= 0, target
        assert float(english["kendall_tau"]) < float(lms["kendall_tau"]), target
        assert float(english["spearman_rho"]) < float(lms["spearman_rho"]), target
        assert english["oracle"] == lms["oracle"] and english["n"] == lms["n"] == "240"
    mean_en = float(rows[("f1[lang=en]@max", "mean(targets)")]["value"])
    mean_lms = float(rows[("lms_score", "mean(targets)")]["value"])
    assert mean_lms - mean_en > 0.05


def test_story_values_against_the_runs_table(sample_runs: Path) -> None:
    """The picked runs and the mean target, recomputed from xp select's per-run values."""
    table = CliRunner().invoke(cli, ["select", "--runs", str(sample_runs), "-m",
                                     "f1:lang=*,lms_score,f1:lang=en@max", "--format", "csv"],
                               env={"XP_FORCE_TTY": "0"}, catch_exceptions=False)
    runs = list(csv.DictReader(io.StringIO(table.stdout)))
    targets = ["f1[lang=de]", "f1[lang=es]", "f1[lang=nl]", "f1[lang=zh]"]
    mean = np.array([np.mean([float(r[t]) for t in targets]) for r in runs])
    lms = np.array([float(r["lms_score"]) for r in runs])
    english = np.array([float(r["f1[lang=en]@max"]) for r in runs])
    result = invoke("--runs", str(sample_runs), "-s", "f1:lang=en@max,lms_score",
                    "-t", "f1:lang=*", "--exclude", "lang=en", "--format", "csv")
    rows = rows_of(result.stdout)
    for selector, scores in (("f1[lang=en]@max", english), ("lms_score", lms)):
        row = rows[(selector, "mean(targets)")]
        picked = int(np.argmax(scores))
        assert row["run"] == runs[picked]["run"]
        assert float(row["value"]) == pytest.approx(mean[picked])
        assert float(row["oracle"]) == pytest.approx(mean.max())
        assert float(row["regret"]) == pytest.approx(mean.max() - mean[picked])
        ranks = [np.argsort(np.argsort(v)) for v in (scores, mean)]
        assert float(row["spearman_rho"]) == pytest.approx(
            np.corrcoef(ranks[0], ranks[1])[0, 1], abs=1e-3)


def test_by_lr_markdown(sample_runs: Path) -> None:
    result = invoke("--runs", str(sample_runs), "-s", "lms_score", "-t", "f1:lang=de",
                    "--by", "lr", "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "**selection: regret = oracle - value on each target**"
    assert lines[2].startswith("| lr | selector | target | run | selector_value | value |")
    assert len(lines) == 4 + 6  # title, blank, header, rule, one row per lr


def test_gate_on_regret(sample_runs: Path) -> None:
    args = ("--runs", str(sample_runs), "-t", "f1:lang=*", "--exclude", "lang=en",
            "--format", "csv")
    assert invoke(*args, "-s", "lms_score", "--fail-if", "regret > 0.01").exit_code == 0
    result = invoke(*args, "-s", "f1:lang=en@max", "--fail-if", "regret > 0.1")
    assert result.exit_code == 3
    assert result.stderr == (
        "Error: gate failed: --fail-if 'regret > 0.1' holds for 2 of 5 rows: "
        "f1[lang=en]@max -> f1[lang=zh] (regret=0.1692); "
        "f1[lang=en]@max -> mean(targets) (regret=0.1085)\n"
    )


def test_required_options_and_bad_exclude(sample_runs: Path) -> None:
    result = invoke("--runs", str(sample_runs), "-t", "f1:lang=de", catch=True)
    assert result.exit_code == 2 and "--selector" in result.stderr
    result = invoke("--runs", str(sample_runs), "-s", "lms_score", "-t", "f1:lang=en",
                    "--exclude", "lang=en", catch=True)
    assert result.exit_code == 2 and "--exclude leaves no column" in result.stderr

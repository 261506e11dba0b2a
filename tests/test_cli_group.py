"""xp group through the CLI: wide machine formats, the compact terminal view, the gate."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from xpcli.cli import cli


def invoke(*args: str, env: dict[str, str] | None = None, catch: bool = False):
    return CliRunner().invoke(cli, ["group", *args],
                              env={"XP_FORCE_TTY": "0", "COLUMNS": "200", **(env or {})},
                              catch_exceptions=catch)


def test_help_has_examples() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "xp group --runs sample_runs --by lr" in result.output


def test_single_run_groups_csv_in_full(tiny_runs: Path) -> None:
    # One run per lr: std is undefined (empty), not 0.
    result = invoke("--runs", str(tiny_runs), "--by", "lr", "-m", "f1:lang=en",
                    "--agg", "mean,std", "--agg", "count", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "lr,n,mean(f1[lang=en]),std(f1[lang=en]),count(f1[lang=en])\n"
        "0.01,1,0.5,,1\n"
        "0.1,1,0.75,,1\n"
    )


def test_json_keeps_null_for_undefined(tiny_runs: Path) -> None:
    result = invoke("--runs", str(tiny_runs), "--by", "lr", "-m", "f1:lang=de",
                    "--agg", "sem,q90", "--format", "json")
    assert json.loads(result.stdout) == [
        {"lr": 0.01, "n": 1, "sem(f1[lang=de])": None, "q90(f1[lang=de])": None},
        {"lr": 0.1, "n": 1, "sem(f1[lang=de])": None, "q90(f1[lang=de])": 0.25},
    ]


def test_compact_view_on_terminal_and_markdown(tiny_runs: Path) -> None:
    result = invoke("--runs", str(tiny_runs), "-m", "f1:lang=*", "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert "median [min, max]" in result.stdout
    assert "0.75 [0.75, 0.75]" in result.stdout and "f1[lang=de]" in result.stdout
    assert "n/a (0 of 1)" in result.stdout
    result = invoke("--runs", str(tiny_runs), "-m", "f1:lang=en", "--format", "markdown")
    assert result.stdout == (
        "**2 runs in 2 groups by lr: median [min, max]**\n\n"
        "| lr | n | f1[lang=en] |\n"
        "|---:|---:|---:|\n"
        "| 0.01 | 1 | 0.50 [0.50, 0.50] |\n"
        "| 0.10 | 1 | 0.75 [0.75, 0.75] |\n"
    )
    result = invoke("--runs", str(tiny_runs), "-m", "f1:lang=en", "--format", "markdown",
                    "--wide")
    assert "| lr | n | median(f1[lang=en]) | min(f1[lang=en]) | max(f1[lang=en]) |" \
        in result.stdout


def test_sample_runs_median_per_lr(sample_runs: Path) -> None:
    result = invoke("--runs", str(sample_runs), "--by", "lr", "-m", "lms_score",
                    "--agg", "median,q10,std", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [float(r["lr"]) for r in rows] == [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4]
    assert {r["n"] for r in rows} == {"40"}
    select = CliRunner().invoke(cli, ["select", "--runs", str(sample_runs), "-m", "lms_score",
                                      "--params", "lr", "--format", "csv"],
                                env={"XP_FORCE_TTY": "0"}, catch_exceptions=False)
    values: dict[float, list[float]] = {}
    for r in csv.DictReader(io.StringIO(select.stdout)):
        values.setdefault(float(r["lr"]), []).append(float(r["lms_score"]))
    for r in rows:
        group = values[float(r["lr"])]
        assert float(r["median(lms_score)"]) == pytest.approx(statistics.median(group))
        assert float(r["std(lms_score)"]) == pytest.approx(statistics.stdev(group))


def test_gate_names_failing_groups(sample_runs: Path) -> None:
    args = ("--runs", str(sample_runs), "--by", "lr", "-m", "f1:lang=de", "--format", "csv")
    assert invoke(*args, "--fail-if", "`median(f1[lang=de])` < 0.5").exit_code == 0
    result = invoke(*args, "--fail-if", "`median(f1[lang=de])` < 0.55")
    assert result.exit_code == 3
    assert result.stderr.startswith(
        "Error: gate failed: --fail-if '`median(f1[lang=de])` < 0.55' holds for 2 of 6 rows: "
        "lr=1e-6 (median(f1[lang=de])=0.5012); lr=3e-4")


def test_bad_agg_and_by(tiny_runs: Path) -> None:
    result = invoke("--runs", str(tiny_runs), "--agg", "avg", catch=True)
    assert result.exit_code == 2 and "unknown statistic" in result.stderr
    result = invoke("--runs", str(tiny_runs), "--by", "lrr", catch=True)
    assert result.exit_code == 2 and "unknown param 'lrr'" in result.stderr

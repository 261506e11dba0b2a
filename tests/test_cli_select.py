"""xp select through the CLI: formats, sorting, --best and the --fail-if gate."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from xpcli.cli import cli


def invoke(*args: str, env: dict[str, str] | None = None, catch: bool = False):
    return CliRunner().invoke(cli, ["select", *args],
                              env={"XP_FORCE_TTY": "0", "COLUMNS": "200", **(env or {})},
                              catch_exceptions=catch)


def test_help_has_examples() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "xp select --runs sample_runs" in result.output
    assert "--fail-if" in result.output and "--best" in result.output


def test_default_columns_csv_in_full(tiny_runs: Path) -> None:
    # a: de 0.5 -> 0.25, en 0.7 -> 0.75, loss 2.0 -> 1.5 (by step); b: en 0.5 only.
    result = invoke("--runs", str(tiny_runs), "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "run,lr,seed,f1[lang=de],f1[lang=en],loss\n"
        "a,0.1,1,0.25,0.75,1.5\n"
        "b,0.01,2,,0.5,\n"
    )
    assert result.stderr == ""


def test_sort_descending_with_a_dash_value(tiny_runs: Path) -> None:
    result = invoke("--runs", str(tiny_runs), "-m", "f1:lang=en@max", "--sort",
                    "-f1[lang=en]@max", "--params", "lr", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "run,lr,f1[lang=en]@max\na,0.1,0.75\nb,0.01,0.5\n"
    result = invoke("--runs", str(tiny_runs), "-m", "f1:lang=en", "--sort", "f1:lang=en",
                    "--top", "1", "--format", "json")
    assert json.loads(result.stdout) == [
        {"run": "b", "lr": 0.01, "seed": 2, "f1[lang=en]": 0.5}]


def test_best_markdown_and_passing_gate(tiny_runs: Path) -> None:
    result = invoke("--runs", str(tiny_runs), "--best", "f1:lang=en", "-m", "f1:lang=de",
                    "--format", "markdown", "--fail-if", "`f1[lang=de]` < 0.2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "**best run by f1:lang=en**\n\n"
        "| run | lr | seed | f1[lang=de] | f1[lang=en] |\n"
        "|:---|---:|---:|---:|---:|\n"
        "| a | 0.1 | 1 | 0.25 | 0.75 |\n"
    )


def test_failing_gate_prints_table_then_exits_3(tiny_runs: Path) -> None:
    result = invoke("--runs", str(tiny_runs), "-m", "f1:lang=*", "--format", "csv",
                    "--fail-if", "`f1[lang=en]` < 0.6")
    assert result.exit_code == 3
    assert result.stdout.startswith("run,lr,seed,f1[lang=de],f1[lang=en]\n")
    assert result.stderr == (
        "Error: gate failed: --fail-if '`f1[lang=en]` < 0.6' holds for 1 of 2 rows: "
        "b (f1[lang=en]=0.5)\n"
    )


def test_gate_on_missing_value_and_no_rows(tiny_runs: Path) -> None:
    result = invoke("--runs", str(tiny_runs), "-m", "f1:lang=de", "--format", "csv",
                    "--fail-if", "`f1[lang=de]` < 0.1")
    assert result.exit_code == 3
    assert "b (f1[lang=de]=null; undecided, a value is missing)" in result.stderr
    result = invoke("--runs", str(tiny_runs), "--where", "lr > 1", "--format", "csv",
                    "--fail-if", "lr > 1")
    assert result.exit_code == 3
    assert "no rows to check" in result.stderr


def test_bad_input_is_a_usage_error(tiny_runs: Path) -> None:
    result = invoke("--runs", str(tiny_runs), "-m", "f1:lang=de@maxx", catch=True)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: f1:lang=de@maxx: unknown reduce 'maxx'")
    assert len(result.stderr.splitlines()) == 1
    result = invoke("--runs", str(tiny_runs), "--fail-if", "__import__('os')", catch=True)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    result = invoke("--runs", str(tiny_runs), "--where", "lr.__class__ > 1", catch=True)
    assert result.exit_code == 2


def test_fail_if_errors_name_fail_if(tiny_runs: Path) -> None:
    result = invoke("--runs", str(tiny_runs), "--fail-if", "nosuch > 1", catch=True)
    assert result.exit_code == 2
    assert result.stderr.startswith('Error: --fail-if "nosuch > 1": unknown name \'nosuch\'')
    assert "--where" not in result.stderr
    result = invoke("--runs", str(tiny_runs), "--where", "nosuch > 1", catch=True)
    assert result.stderr.startswith('Error: --where "nosuch > 1": unknown name \'nosuch\'')


def test_terminal_table_keeps_bracket_labels(tiny_runs: Path) -> None:
    result = invoke("--runs", str(tiny_runs), "-m", "f1:lang=*", "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert "f1[lang=de]" in result.stdout and "f1[lang=en]" in result.stdout
    assert "2 runs" in result.stdout


def test_sample_runs_best_on_english(sample_runs: Path) -> None:
    result = invoke("--runs", str(sample_runs), "--best", "f1:lang=en@max", "-m",
                    "f1:lang=de", "--format", "json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["run"] == "lr3e-5-s05" and row["lr"] == 3e-5
    assert set(row) == {"run", "lr", "seed", "f1[lang=de]", "f1[lang=en]@max"}


def test_docs_ci_example_is_current(sample_runs: Path) -> None:
    """docs/ci.md shows this command's output and message verbatim."""
    result = invoke("--runs", str(sample_runs), "--best", "f1:lang=en@max", "-m", "f1:lang=de",
                    "--fail-if", "`f1[lang=de]` < 0.7", "--format", "csv")
    assert result.exit_code == 3
    doc = (Path(__file__).resolve().parent.parent / "docs" / "ci.md").read_text()
    for line in result.stdout.splitlines() + result.stderr.splitlines():
        assert f"    {line}\n" in doc, line


def test_at_an_epoch_nobody_logged_is_an_error(sample_runs: Path) -> None:
    # sample_runs logs f1 at epochs 1..60 only.
    result = invoke("--runs", str(sample_runs), "-m", "f1:lang=de@at=100", catch=True)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "f1:lang=de@at=100: no run has a value at epoch 100 (f1[lang=de] has epochs " \
        "1..60)" in result.stderr
    result = CliRunner().invoke(cli, ["selection", "--runs", str(sample_runs), "-s",
                                      "f1:lang=en@at=100", "-t", "f1:lang=de"],
                                env={"XP_FORCE_TTY": "0"})
    assert result.exit_code == 2
    assert "f1:lang=en@at=100: no run has a value at epoch 100" in result.stderr

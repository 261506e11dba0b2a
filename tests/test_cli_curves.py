"""xp curves through the CLI: the point table in full, smoothing, figures and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from xpcli.cli import cli


def invoke(*args: str, catch: bool = False):
    return CliRunner().invoke(cli, ["curves", *args], env={"XP_FORCE_TTY": "0"},
                              catch_exceptions=catch)


def test_help_has_examples() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "xp curves f1:lang=* --runs sample_runs --color lr -o curves.png" in result.output
    assert "--highlight" in result.output and "--overlay" in result.output


def test_tiny_table_in_full(tiny_runs: Path) -> None:
    result = invoke("f1:lang=*", "--runs", str(tiny_runs), "--color", "lr", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "run,lr,metric,lang,epoch,value\n"
        "a,0.1,f1,de,1.0,0.5\n"
        "a,0.1,f1,de,2.0,0.25\n"
        "a,0.1,f1,en,1.0,0.7\n"
        "a,0.1,f1,en,2.0,0.75\n"
        "b,0.01,f1,en,1.0,0.5\n"
    )


def test_smoothing_and_step_axis(tiny_runs: Path) -> None:
    # Debiased EMA with weight 0.5 of (0.5, 0.25): 0.5, then (0.125 + 0.125) / 0.75.
    result = invoke("f1:lang=de", "--runs", str(tiny_runs), "--smooth", "ema:0.5",
                    "--format", "csv")
    assert result.exit_code == 0, result.stderr
    values = [float(line.split(",")[-1]) for line in result.stdout.splitlines()[1:]]
    assert values == pytest.approx([0.5, 0.25 / 0.75], rel=1e-12)
    result = invoke("loss", "--runs", str(tiny_runs), "--x", "step", "--format", "csv")
    assert result.stdout == "run,metric,step,value\na,loss,0,2.0\na,loss,1,1.5\n"


def test_where_filters_runs(tiny_runs: Path) -> None:
    result = invoke("f1:lang=en", "--runs", str(tiny_runs), "--where", "lr < 0.05",
                    "--format", "csv")
    assert result.stdout == "run,metric,lang,epoch,value\nb,f1,en,1.0,0.5\n"


def test_figure_with_highlight_and_overlay(sample_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "curves.png"
    result = invoke("f1:lang=*", "--runs", str(sample_runs), "--color", "lr", "--overlay",
                    "median", "--highlight", "best:f1:lang=en", "--logy", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in result.stderr


def test_figure_bytes_are_reproducible(tiny_runs: Path, tmp_path: Path) -> None:
    paths = [tmp_path / "a.svg", tmp_path / "b.svg"]
    for path in paths:
        result = invoke("f1:lang=*", "--runs", str(tiny_runs), "--color", "lr", "--highlight",
                        "a", "--facet", "lang", "-o", str(path))
        assert result.exit_code == 0, result.stderr
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert b">a<" in paths[0].read_bytes() or b"a</text>" in paths[0].read_bytes()


def test_errors(tiny_runs: Path, tmp_path: Path) -> None:
    result = invoke("f1:lang=*", "--runs", str(tiny_runs), "--color", "lrr", catch=True)
    assert result.exit_code == 2 and (
        "--color: unknown param or meta column 'lrr'; did you mean 'lr'?\n") in result.stderr
    result = invoke("f1:lang=*", "--runs", str(tiny_runs), "--highlight", "zz",
                    "-o", str(tmp_path / "x.png"), catch=True)
    assert result.exit_code == 2 and "unknown run 'zz'" in result.stderr
    result = invoke("f1:lang=*", "--runs", str(tiny_runs), "--facet", "seeed",
                    "-o", str(tmp_path / "x.png"), catch=True)
    assert result.exit_code == 2 and "seeed" in result.stderr
    result = invoke("f2", "--runs", str(tiny_runs), catch=True)
    assert result.exit_code == 2 and "f2" in result.stderr

"""xp aggregate through the CLI: tables in full, alignment header, figures and errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from xpcli.cli import cli


def invoke(*args: str, catch: bool = False):
    return CliRunner().invoke(cli, ["aggregate", *args], env={"XP_FORCE_TTY": "0"},
                              catch_exceptions=catch)


def test_help_has_examples() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "xp aggregate f1:lang=* --runs sample_runs --by lr -o agg.png" in result.output
    assert "ci95" in result.output and "--min-runs" in result.output


def test_tiny_csv_in_full_and_policy_on_stderr(tiny_runs: Path) -> None:
    # a: de 0.5, 0.25 and en 0.7, 0.75 at epochs 1, 2; b: en 0.5 at epoch 1.
    result = invoke("f1:lang=*", "--runs", str(tiny_runs), "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "metric,lang,epoch,center,low,high,n\n"
        "f1,de,1.0,0.5,0.5,0.5,1\n"
        "f1,de,2.0,0.25,0.25,0.25,1\n"
        "f1,en,1.0,0.6,0.5,0.7,2\n"
        "f1,en,2.0,0.75,0.75,0.75,1\n"
    )
    assert result.stderr == (
        "xp aggregate: f1: median line and min–max band over 2 runs; x=epoch, exact "
        "alignment: a point aggregates the runs that logged that epoch\n"
    )


def test_tiny_by_lr_std_is_null_for_single_runs(tiny_runs: Path) -> None:
    result = invoke("f1:lang=en", "--runs", str(tiny_runs), "--by", "lr", "--band", "std",
                    "--center", "mean", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"lr": 0.01, "metric": "f1", "lang": "en", "epoch": 1.0, "center": 0.5, "low": None,
         "high": None, "n": 1},
        {"lr": 0.1, "metric": "f1", "lang": "en", "epoch": 1.0, "center": 0.7, "low": None,
         "high": None, "n": 1},
        {"lr": 0.1, "metric": "f1", "lang": "en", "epoch": 2.0, "center": 0.75, "low": None,
         "high": None, "n": 1},
    ]
    assert "per lr (2 runs in 2 groups)" in result.stderr


def test_min_runs_and_interp_on_time(tiny_runs: Path) -> None:
    result = invoke("f1:lang=en", "--runs", str(tiny_runs), "--min-runs", "2", "--format", "csv")
    assert result.stdout.splitlines()[1:] == ["f1,en,1.0,0.6,0.5,0.7,2"]
    assert "fewer than 2 runs dropped" in result.stderr
    # Relative time: a's en at 1 s, 2 s (its first point at T0+0.5: loss) -> 0.5, 1.5;
    # b's en at 1 s after its first point -> 0.0. Grid {0, 0.5, 1.5}: no run extrapolated.
    result = invoke("f1:lang=en", "--runs", str(tiny_runs), "--x", "time", "--align", "interp",
                    "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "metric,lang,time,center,low,high,n",
        "f1,en,0.0,0.5,0.5,0.5,1",
        "f1,en,0.5,0.7,0.7,0.7,1",
        "f1,en,1.5,0.75,0.75,0.75,1",
    ]
    assert "interpolated onto a common grid" in result.stderr


def test_sample_runs_against_numpy(sample_runs: Path) -> None:
    result = invoke("f1:lang=zh", "--runs", str(sample_runs), "--by", "lr", "--band",
                    "q25-q75", "--where", "lr >= 1e-5", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 4 * 60
    assert {r["n"] for r in rows} == {"40"}
    # Independent: read the records with polars, compute with numpy.
    from xpcli.dataset import load

    points = load(sample_runs).points.filter(
        (pl.col("name") == "f1") & (pl.col("lang") == "zh") & (pl.col("epoch") == 30.0)
        & pl.col("run").str.starts_with("lr3e-5-")
    ).collect()["value"].to_numpy()
    row = next(r for r in rows if float(r["lr"]) == 3e-5 and float(r["epoch"]) == 30.0)
    assert float(row["center"]) == np.median(points)
    assert float(row["low"]) == np.quantile(points, 0.25)
    assert float(row["high"]) == np.quantile(points, 0.75)


def test_figure_written(sample_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "agg.png"
    result = invoke("f1:lang=*", "--runs", str(sample_runs), "--by", "lr", "--band", "ci95",
                    "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in result.stderr


def test_figure_bytes_are_reproducible(tiny_runs: Path, tmp_path: Path) -> None:
    paths = [tmp_path / "a.svg", tmp_path / "b.svg"]
    for path in paths:
        result = invoke("f1:lang=*", "--runs", str(tiny_runs), "--by", "lr", "--facet", "none",
                        "-o", str(path))
        assert result.exit_code == 0, result.stderr
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_errors_are_one_line_usage_errors(tiny_runs: Path, tmp_path: Path) -> None:
    cases = [
        (["--by", "seeed"], "--by: unknown param or meta column 'seeed'; did you mean 'seed'?"),
        (["--band", "iqr"], "--band iqr: expected minmax"),
        (["-o", str(tmp_path / "x.jpg")], "the figure format comes from the suffix"),
        (["--smooth", "ema:2"], "--smooth ema:2"),
        (["--where", "lr >>= 1"], "--where"),
    ]
    for extra, message in cases:
        result = invoke("f1:lang=*", "--runs", str(tiny_runs), *extra, catch=True)
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.stderr, (extra, result.stderr)
    result = invoke("f1:lang=en@max", "--runs", str(tiny_runs), catch=True)
    assert result.exit_code == 2 and "a series is not reduced" in result.stderr
    result = invoke("loss", "--runs", str(tiny_runs), "--x", "epoch", catch=True)
    assert result.exit_code == 1 and "loss has no epoch values; use --x step" in result.stderr
    # By default a column without epochs is read on its steps, and stderr says so.
    result = invoke("loss", "--runs", str(tiny_runs), "--format", "csv", catch=True)
    assert result.exit_code == 0 and result.stdout.startswith("metric,step,center")
    assert "xp: x: step for loss (no epochs)" in result.stderr


def test_ci95_band_centres_on_the_mean_by_default(tiny_runs: Path) -> None:
    # en at epoch 1: 0.7 (a) and 0.5 (b): mean 0.6, sem 0.1, t(0.975, 1) = 12.7062047.
    result = invoke("f1:lang=en", "--runs", str(tiny_runs), "--band", "ci95", "--format", "json")
    assert result.exit_code == 0, result.stderr
    first = json.loads(result.stdout)[0]
    assert first["center"] == 0.6 and first["n"] == 2
    assert first["low"] == pytest.approx(0.6 - 1.27062047, abs=1e-7)
    assert first["high"] == pytest.approx(0.6 + 1.27062047, abs=1e-7)
    assert "mean line and t-based 95% CI of the mean band" in result.stderr

"""xp forgetting through the CLI: tables, groups, figures and errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from xpcli.cli import cli


def invoke(*args: str, env: dict[str, str] | None = None):
    runner = CliRunner()
    return runner.invoke(cli, ["forgetting", *args], env={"XP_FORCE_TTY": "0", **(env or {})},
                         catch_exceptions=False)


def test_help_has_examples() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "xp forgetting f1:lang=* --runs sample_runs --run best:f1:lang=en" in result.output
    assert "still_learning" in result.output and "rel_drop" in result.output


def test_tiny_csv_in_full(tiny_runs: Path) -> None:
    # a: de 0.5 -> 0.25 (epochs 1, 2), en 0.7 -> 0.75; b: en 0.5 at epoch 1, no de.
    result = invoke("f1:lang=*", "--runs", str(tiny_runs), "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "run,rank,context,peak,peak_epoch,final,drop,rel_drop,since_peak,slope,auc,points,"
        "status\n"
        "a,1,lang=de,0.5,1.0,0.25,0.25,0.5,1.0,,0.375,2,past_peak\n"
        "a,2,lang=en,0.75,2.0,0.75,0.0,0.0,0.0,,0.725,2,still_learning\n"
        "b,1,lang=en,0.5,1.0,0.5,0.0,0.0,0.0,,0.5,1,single_point\n"
        "b,2,lang=de,,,,,,,,,0,missing\n"
    )


def test_tiny_groups_in_full(tiny_runs: Path) -> None:
    result = invoke("f1:lang=*", "--runs", str(tiny_runs), "--by", "lr", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "lr,rank,context,runs,peak,peak_epoch,final,drop,rel_drop,rel_drop_iqr,since_peak,"
        "slope,slope_iqr,auc,still_learning\n"
        "0.01,1,lang=en,1,0.5,1.0,0.5,0.0,0.0,0.0,0.0,,,0.5,0\n"
        "0.01,2,lang=de,0,,,,,,,,,,,0\n"
        "0.1,1,lang=de,1,0.5,1.0,0.25,0.25,0.5,0.0,1.0,,,0.375,0\n"
        "0.1,2,lang=en,1,0.75,2.0,0.75,0.0,0.0,0.0,0.0,,,0.725,1\n"
    )


def test_best_english_run_zh_first_on_a_terminal(sample_runs: Path) -> None:
    result = invoke("f1:lang=*", "--runs", str(sample_runs), "--run", "best:f1:lang=en",
                    env={"XP_FORCE_TTY": "1", "COLUMNS": "120", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "lr3e-5-s05 (lr=3e-5, seed=5)" in lines[0]
    rows = [line for line in lines if "lang=" in line]
    assert [r.split()[2] for r in rows] == ["lang=zh", "lang=de", "lang=nl", "lang=es",
                                            "lang=en"]
    assert all(any(ch in r for ch in "▁▂▃▄▅▆▇█") for r in rows)
    assert max(len(line) for line in lines) <= 120


def test_by_lr_json_over_all_runs(sample_runs: Path) -> None:
    result = invoke("f1:lang=*", "--runs", str(sample_runs), "--by", "lr", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 30
    assert {r["runs"] for r in rows} == {40}
    first = {r["lr"]: r["context"] for r in rows if r["rank"] == 1}
    assert first[3e-5] == first[1e-4] == first[3e-4] == "lang=zh"
    assert "curve" not in rows[0]


def test_where_and_step_axis(sample_runs: Path) -> None:
    result = invoke("loss:split=train", "--runs", str(sample_runs), "--where", "seed == 3",
                    "--x", "step", "--best", "min", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 6
    assert {r["context"] for r in rows} == {"split=train"}
    assert all(float(r["drop"]) >= 0 for r in rows)
    assert "peak_step" in rows[0]


def test_figure_one_run_and_by_group(sample_runs: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.png"
    result = invoke("f1:lang=*", "--runs", str(sample_runs), "--run", "best:f1:lang=en",
                    "-o", str(one))
    assert result.exit_code == 0, result.stderr
    assert one.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.stdout == "" and f"wrote {one}" in result.stderr
    many = tmp_path / "many.svg"
    result = invoke("f1:lang=*", "--runs", str(sample_runs), "--by", "lr", "--where",
                    "seed < 3", "-o", str(many))
    assert result.exit_code == 0, result.stderr
    assert many.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("args, message", [
    (["f1:lang=*@max"], "whole curves"),
    (["f1:lang=*", "--run", "lr1e-4-s00", "--by", "lr"], "exclude"),
    (["f1:lang=*", "--run", "nope"], "unknown run"),
    (["f1:lang=*", "--by", "nope"], "--by: unknown param 'nope'"),
    (["f1:lang=*", "-o", "x.gif"], "suffix"),
    (["f1:lang=xx"], "f1:lang=xx"),
])
def test_usage_errors_exit_2(sample_runs: Path, args: list[str], message: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["forgetting", *args, "--runs", str(sample_runs)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_where_keeping_nothing_exits_1(sample_runs: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["forgetting", "f1:lang=*", "--runs", str(sample_runs),
                                 "--where", "lr > 1"])
    assert result.exit_code == 1
    assert "keeps no run" in result.stderr


def test_table_output_does_not_load_matplotlib(sample_runs: Path) -> None:
    from tests.conftest import run_python

    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from xpcli.cli import cli\n"
        "r = CliRunner().invoke(cli, ['forgetting', 'f1:lang=*', '--runs', sys.argv[1],\n"
        "                             '--by', 'lr', '--format', 'csv'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('matplotlib' in sys.modules)\n"
    )
    done = run_python(code, str(sample_runs))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def write_resumed(runs_dir: Path) -> Path:
    """``r`` (lr 0.1) logs epochs 1, 2, 3 = 0.5, 0.9, 0.6, is resumed and logs 2, 3 again =
    0.55, 0.6; ``s`` (lr 0.01) logs 0.8, 0.95, 0.7 once."""
    from conftest import T0

    from xpcli import Run

    run = Run(runs_dir, "r", params={"lr": 0.1}, time=T0, flush_seconds=0)
    for i, (epoch, value) in enumerate([(1, 0.5), (2, 0.9), (3, 0.6), (2, 0.55), (3, 0.6)]):
        run.track(value, "f1", epoch=epoch, context={"lang": "en"}, time=T0 + 1 + i)
    run.close(time=T0 + 10)
    run = Run(runs_dir, "s", params={"lr": 0.01}, time=T0 + 60, flush_seconds=0)
    for epoch, value in enumerate([0.8, 0.95, 0.7], start=1):
        run.track(value, "f1", epoch=epoch, context={"lang": "en"}, time=T0 + 60 + epoch)
    run.close(time=T0 + 70)
    return runs_dir


def run_xp(*args: str):
    return CliRunner().invoke(cli, list(args), env={"XP_FORCE_TTY": "0"},
                              catch_exceptions=False)


def test_a_resumed_run_gets_one_answer_from_every_command(tmp_path: Path) -> None:
    runs = str(write_resumed(tmp_path / "runs"))
    # Logged, by hand: 0.5, 0.9, 0.6, 0.55, 0.6 at epochs 1, 2, 3, 2, 3 (no steps). The
    # epoch goes backwards, so by default x is the logging order 0..4 and nothing is
    # discarded; on --x epoch curves keep the last logged value per epoch: 0.5, 0.55, 0.6.
    result = run_xp("curves", "f1:lang=en", "--runs", runs, "--where", "lr == 0.1",
                    "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(int(r["order"]), float(r["value"])) for r in rows] == [
        (0, 0.5), (1, 0.9), (2, 0.6), (3, 0.55), (4, 0.6)]
    assert "xp: x: order for f1[lang=en] (epoch goes backwards in run r; no steps)" in \
        result.stderr
    result = run_xp("curves", "f1:lang=en", "--runs", runs, "--where", "lr == 0.1",
                    "--x", "epoch", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(float(r["epoch"]), float(r["value"])) for r in rows] == [
        (1.0, 0.5), (2.0, 0.55), (3.0, 0.6)]
    assert ("xp: warning: run r, f1[lang=en]: epoch goes backwards (3, then 2); curves drew "
            "the last logged value at each epoch (2 points discarded)") in result.stderr
    result = run_xp("select", "-m", "f1:lang=en@max,f1:lang=en,f1:lang=en@mean", "--runs",
                    runs, "--where", "lr == 0.1", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert float(row["f1[lang=en]@max"]) == 0.9
    assert float(row["f1[lang=en]"]) == 0.6
    assert float(row["f1[lang=en]@mean"]) == pytest.approx((0.5 + 0.9 + 0.6 + 0.55 + 0.6) / 5)
    result = invoke("f1:lang=en", "--runs", runs, "--run", "r", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert (row["peak"], row["peak_order"], row["final"], row["points"], row["status"]) == (
        "0.9", "1.0", "0.6", "5", "past_peak")


def test_where_takes_metric_specs_in_backticks(tmp_path: Path) -> None:
    runs = str(write_resumed(tmp_path / "runs"))
    # r's largest value is 0.9 (every point counts), s's 0.95: both are kept.
    result = invoke("f1:lang=en", "--runs", runs, "--where", "`f1:lang=en@max` > 0.7",
                    "--x", "epoch", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["run"], r["peak"], r["peak_epoch"]) for r in rows] == [
        ("r", "0.9", "2.0"), ("s", "0.95", "2.0")]
    result = invoke("f1:lang=en", "--runs", runs, "--where", "`f1:lang=en@max` > 0.91",
                    "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["run"], r["peak"]) for r in rows] == [("s", "0.95")]


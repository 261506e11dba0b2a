"""``xp runs`` and ``xp metrics``, the runs-directory options, errors and --help."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import PYTHON, ROOT, write_tiny

from xpcli.cli import cli

FORMATS = ["table", "csv", "tsv", "json", "jsonl", "markdown", "parquet"]

TINY_RUNS_CSV = (
    "run,lr,seed,status,reason,points,metrics,started,last_activity,elapsed\n"
    "a,0.1,1,finished,,6,2,2026-01-01T00:00:00Z,2026-01-01T00:00:10Z,10.0\n"
    "b,0.01,2,failed,,1,1,2026-01-01T00:01:00Z,2026-01-01T00:01:10Z,10.0\n"
)
TINY_METRICS_CSV = (
    "metric,context,runs,points,step_min,step_max,epoch_min,epoch_max\n"
    'f1,lang=de|en,2,5,,,1.0,2.0\n'
    'loss,"",1,2,0,1,,\n'
)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("XP_RUNS", raising=False)
    monkeypatch.delenv("XP_FORCE_TTY", raising=False)
    monkeypatch.setenv("COLUMNS", "160")  # tables fit without cut cells
    return CliRunner()


def invoke(runner: CliRunner, args: list[str], **kwargs: object):
    return runner.invoke(cli, args, catch_exceptions=False, **kwargs)


def test_runs_tiny(runner: CliRunner, tiny_runs: Path) -> None:
    result = invoke(runner, ["runs", "--runs", str(tiny_runs), "--format", "csv"])
    assert result.exit_code == 0
    assert result.stdout == TINY_RUNS_CSV
    assert result.stderr == ""


def test_runs_params(runner: CliRunner, tiny_runs: Path) -> None:
    result = invoke(runner, ["runs", "--runs", str(tiny_runs), "--params", "seed", "--format",
                             "csv"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[:2] == [
        "run,seed,status,reason,points,metrics,started,last_activity,elapsed",
        "a,1,finished,,6,2,2026-01-01T00:00:00Z,2026-01-01T00:00:10Z,10.0",
    ]


def test_metrics_tiny(runner: CliRunner, tiny_runs: Path) -> None:
    result = invoke(runner, ["metrics", "--runs", str(tiny_runs), "--format", "csv"])
    assert result.exit_code == 0
    assert result.stdout == TINY_METRICS_CSV


def test_metrics_without_any_context(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "r.jsonl").write_text('{"kind":"point","run":"r","name":"x","value":1,"step":2}\n')
    result = invoke(runner, ["metrics", "--runs", str(tmp_path), "--format", "csv"])
    assert result.exit_code == 0
    assert result.stdout == ("metric,context,runs,points,step_min,step_max,epoch_min,epoch_max\n"
                             'x,"",1,1,2,2,,\n')


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format(runner: CliRunner, tiny_runs: Path, fmt: str) -> None:
    for command in ("runs", "metrics"):
        result = invoke(runner, [command, "--runs", str(tiny_runs), "--format", fmt])
        assert result.exit_code == 0, result.output
        if fmt == "parquet":
            frame = pl.read_parquet(io.BytesIO(result.stdout_bytes))
            assert frame.height == 2
        elif fmt == "json":
            assert len(json.loads(result.stdout)) == 2
        elif fmt == "jsonl":
            assert len([json.loads(x) for x in result.stdout.splitlines()]) == 2
        elif fmt in ("csv", "tsv"):
            assert len(result.stdout.splitlines()) == 3
        else:
            assert ("f1" if command == "metrics" else "finished") in result.stdout


def test_runs_json_values(runner: CliRunner, tiny_runs: Path) -> None:
    result = invoke(runner, ["runs", "--runs", str(tiny_runs), "--format", "json"])
    rows = json.loads(result.stdout)
    assert rows[0] == {"run": "a", "lr": 0.1, "seed": 1, "status": "finished", "reason": None,
                       "points": 6, "metrics": 2, "started": "2026-01-01T00:00:00Z",
                       "last_activity": "2026-01-01T00:00:10Z", "elapsed": 10.0,
                       "error": None}


def test_sample_runs_counts(runner: CliRunner, sample_runs: Path) -> None:
    result = invoke(runner, ["runs", "--runs", str(sample_runs), "--format", "csv"])
    assert result.exit_code == 0
    runs = pl.read_csv(io.StringIO(result.stdout))
    assert runs.height == 240
    assert runs["points"].to_list() == [901] * 240
    assert sorted(set(runs["lr"].to_list())) == [1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4]
    result = invoke(runner, ["metrics", "--runs", str(sample_runs), "--format", "csv"])
    metrics = {row["metric"]: row for row in
               pl.read_csv(io.StringIO(result.stdout)).iter_rows(named=True)}
    assert metrics["f1"]["points"] == 72000 and metrics["f1"]["runs"] == 240
    assert metrics["f1"]["context"] == "lang=de|en|es|nl|zh"
    assert metrics["loss"]["points"] == 144000 and metrics["lms_score"]["points"] == 240


def test_missing_runs_dir(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["runs", "--runs", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (f"Error: runs directory {tmp_path / 'nope'} does not exist; "
                             "pass --runs DIR or set XP_RUNS\n")


def test_bad_params(runner: CliRunner, tiny_runs: Path) -> None:
    result = runner.invoke(cli, ["runs", "--runs", str(tiny_runs), "--params", "lr,nope"])
    assert result.exit_code == 2
    assert result.stderr == ("Error: --params: unknown param 'nope'; known: lr, seed, status, "
                             "created, host and 8 more\n")
    result = runner.invoke(cli, ["runs", "--runs", str(tiny_runs), "--params", "lrr"])
    assert result.exit_code == 2
    assert result.stderr == "Error: --params: unknown param 'lrr'; did you mean 'lr'?\n"


def test_params_takes_meta_columns(runner: CliRunner, tiny_runs: Path) -> None:
    """``--params status`` works as in ``xp select``: the column moves, never doubles."""
    result = invoke(runner, ["runs", "--runs", str(tiny_runs), "--params", "status",
                             "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        "run,status,reason,points,metrics,started,last_activity,elapsed",
        "a,finished,,6,2,2026-01-01T00:00:00Z,2026-01-01T00:00:10Z,10.0",
        "b,failed,,1,1,2026-01-01T00:01:00Z,2026-01-01T00:01:10Z,10.0",
    ]
    result = invoke(runner, ["runs", "--runs", str(tiny_runs), "--params", "host,lr, status",
                             "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "run,host,lr,status,reason,points,metrics,started,last_activity,elapsed"
    )


def test_repeated_param_shown_once(runner: CliRunner, tiny_runs: Path) -> None:
    result = invoke(runner, ["runs", "--runs", str(tiny_runs), "--params", "lr, lr,",
                             "--format", "csv"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == (
        "run,lr,status,reason,points,metrics,started,last_activity,elapsed")


def test_bad_format(runner: CliRunner, tiny_runs: Path) -> None:
    result = runner.invoke(cli, ["runs", "--runs", str(tiny_runs), "--format", "xml"])
    assert result.exit_code == 2


def test_xp_runs_env_and_group_option(runner: CliRunner, tiny_runs: Path,
                                      tmp_path: Path) -> None:
    result = invoke(runner, ["runs", "--format", "csv"], env={"XP_RUNS": str(tiny_runs)})
    assert result.exit_code == 0 and result.stdout == TINY_RUNS_CSV
    result = invoke(runner, ["--runs", str(tiny_runs), "runs", "--format", "csv"],
                    env={"XP_RUNS": str(tmp_path / "nope")})
    assert result.exit_code == 0 and result.stdout == TINY_RUNS_CSV
    # The command's own --runs wins over the group's.
    result = runner.invoke(cli, ["--runs", str(tiny_runs), "runs", "--runs",
                                 str(tmp_path / "nope")])
    assert result.exit_code == 1 and "nope does not exist" in result.stderr


def test_warnings_on_stderr(runner: CliRunner, tiny_runs: Path) -> None:
    with open(tiny_runs / "a.jsonl", "a") as fh:
        fh.write("{oops\n")
    result = invoke(runner, ["runs", "--runs", str(tiny_runs), "--format", "csv"])
    assert result.exit_code == 0 and result.stdout == TINY_RUNS_CSV
    assert result.stderr.startswith(f"xp: warning: {tiny_runs / 'a.jsonl'}:9: not JSON")
    quiet = invoke(runner, ["runs", "--runs", str(tiny_runs), "--format", "csv", "-q"])
    assert quiet.stderr == ""


def test_pipe_to_head_ends_quietly(sample_runs: Path) -> None:
    for fmt in ("csv", "jsonl"):
        proc = subprocess.run(
            f"'{PYTHON}' -m xpcli --runs '{sample_runs}' runs --format {fmt} | head -1",
            shell=True, capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert proc.stdout.startswith(("run,", '{"run"'))
        assert len(proc.stdout.splitlines()) == 1
        assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr


def _commands() -> list[str]:
    from xpcli.cli import COMMANDS

    return list(COMMANDS)


@pytest.mark.parametrize("command", _commands())
def test_every_command_help(runner: CliRunner, command: str) -> None:
    result = invoke(runner, [command, "--help"])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: cli {command}") or "Usage:" in result.stdout
    assert "Examples:" in result.stdout, f"xp {command} --help has no Examples block"


def test_group_help_lists_every_command(runner: CliRunner) -> None:
    from xpcli.cli import COMMANDS

    result = invoke(runner, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert f"  {command} " in result.stdout


def test_version(runner: CliRunner) -> None:
    result = invoke(runner, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("xp, version ")


def test_a_failed_write_is_one_line(sample_runs: Path) -> None:
    """A full device on stdout: exit 1 and one line, no traceback."""
    import os
    import subprocess

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    for fmt in ("csv", "parquet"):
        with open("/dev/full", "w") as full:
            proc = subprocess.run([PYTHON, "-m", "xpcli", "--runs", str(sample_runs), "runs",
                                   "--format", fmt], stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=300)
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [
            "Error: I/O error (writing the output): No space left on device"]


def test_interrupted_exits_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from click.testing import CliRunner

    import xpcli.analysis.discover as discover
    from xpcli.cli import cli

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    write_tiny(tmp_path)
    monkeypatch.setattr(discover, "metrics_table", interrupted)
    result = CliRunner().invoke(cli, ["--runs", str(tmp_path), "metrics"])
    assert result.exit_code == 130 and "xp: interrupted" in result.stderr


def test_a_polars_panic_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A Rust panic (BaseException, not Exception) while a query runs, e.g. on a damaged
    cache segment: exit 1 and one line naming the way out, no traceback."""
    import polars as pl
    from click.testing import CliRunner

    import xpcli.analysis.discover as discover
    from xpcli.cli import cli

    def panics(*args: object, **kwargs: object) -> None:
        raise pl.exceptions.PanicException("assertion failed: offset + length <= self.length")

    write_tiny(tmp_path)
    monkeypatch.setattr(discover, "metrics_table", panics)
    result = CliRunner().invoke(cli, ["--runs", str(tmp_path), "metrics"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: query failed: Polars panicked (assertion failed: offset + length <= "
        "self.length): a damaged file? `xp cache clear` rebuilds the cache"]

"""Shell completion: commands and options from click, names from the runs directory's
cache (xpcli.completion), never from reading the run files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner
from conftest import ROOT, write_tiny

from xpcli.cli import cli


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny runs, read once by xp so the cache holds their tables."""
    monkeypatch.setenv("XP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("XP_NO_CACHE", raising=False)
    monkeypatch.delenv("XP_RUNS", raising=False)
    runs = write_tiny(tmp_path / "runs")
    assert CliRunner().invoke(cli, ["--runs", str(runs), "runs"]).exit_code == 0
    return runs


def complete(args: list[str], incomplete: str) -> list[str]:
    return [item.value for item in
            ShellComplete(cli, {}, "xp", "_XP_COMPLETE").get_completions(args, incomplete)]


def test_commands_and_options_complete() -> None:
    assert complete([], "sel") == ["select", "selection"]
    assert complete([], "di") == ["diff"]
    assert "--columns" in complete(["select"], "--c")
    assert complete(["select", "--format"], "js") == ["json", "jsonl"]


def test_params_metrics_contexts_and_runs_from_the_cache(cached: Path) -> None:
    runs = ["--runs", str(cached)]
    offered = complete([*runs, "select", "-p"], "")
    assert offered[:2] == ["lr", "seed"] and {"status", "created", "host"} <= set(offered)
    assert complete([*runs, "select", "--params"], "lr,s") == ["lr,seed", "lr,status"]
    assert complete([*runs, "group", "--by"], "") == ["lr", "seed"]  # params only
    assert complete([*runs, "select", "-m"], "") == ["f1", "loss"]
    assert complete([*runs, "select", "-m"], "f1:") == ["f1:lang=de", "f1:lang=en",
                                                        "f1:lang=*"]
    assert complete([*runs, "select", "-m"], "loss,f1:lang=e") == ["loss,f1:lang=en"]
    assert complete([*runs, "select", "-m"], "loss:") == []  # loss has no context
    assert complete([*runs, "curves"], "f") == ["f1"]  # a SPEC argument
    assert complete([*runs, "selection", "-t"], "f1:lang=") == [
        "f1:lang=de", "f1:lang=en", "f1:lang=*"]
    assert complete([*runs, "diff"], "") == ["a", "b"]
    assert complete([*runs, "diff", "a"], "b") == ["b"]
    assert complete([*runs, "tail"], "a") == ["a"]


def test_the_runs_directory_comes_from_the_command_line_or_xp_runs(
        cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert complete(["select", "--runs", str(cached), "-m"], "l") == ["loss"]
    monkeypatch.setenv("XP_RUNS", str(cached))
    assert complete(["select", "-m"], "l") == ["loss"]


def test_no_cache_offers_nothing_and_never_fails(cached: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    unread = write_tiny(tmp_path / "other")
    assert complete(["--runs", str(unread), "select", "-p"], "") == []  # not read yet
    assert complete(["--runs", str(tmp_path / "missing"), "diff"], "") == []
    for built in (tmp_path / "cache").rglob("built-*"):
        built.write_bytes(b"\x00garbage")  # damaged: nothing, no traceback
    assert complete(["--runs", str(cached), "select", "-m"], "") == []
    assert complete(["--runs", str(cached), "select", "-p"], "") == []
    monkeypatch.setenv("XP_NO_CACHE", "1")
    assert complete(["--runs", str(cached), "diff"], "") == []


def test_completion_reads_no_run_file_and_imports_no_matplotlib(cached: Path,
                                                               tmp_path: Path) -> None:
    for path in cached.rglob("*.jsonl"):
        path.unlink()  # the names still come: from the cache, not from the run files
    code = (
        "import sys\n"
        "from click.shell_completion import ShellComplete\n"
        "from xpcli.cli import cli\n"
        "done = ShellComplete(cli, {}, 'xp', '_XP_COMPLETE').get_completions(\n"
        f"    ['--runs', {str(cached)!r}, 'select', '-m'], 'f1:')\n"
        "print(' '.join(item.value for item in done))\n"
        "assert 'matplotlib' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env={"XP_CACHE_DIR": str(tmp_path / "cache"),
                                           "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["f1:lang=de", "f1:lang=en", "f1:lang=*"]

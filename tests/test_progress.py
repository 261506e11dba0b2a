"""Progress of long work: what the cache and compaction report, and when a bar is drawn."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from xpcli import Run, progress
from xpcli.cli import cli
from xpcli.compact import compact
from xpcli.dataset import load


def write_runs(runs: Path, count: int = 3) -> list[Path]:
    for i in range(count):
        with Run(runs, f"r{i}", params={"seed": i}, flush_seconds=0, time=1767225600.0) as run:
            for step in range(20 * (i + 1)):
                run.track(step * 0.1, "loss", step=step, time=1767225600.0 + step)
    return sorted(runs.glob("*.jsonl"))


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int, int, str]] = []

    def __call__(self, files_done: int, files_total: int, bytes_done: int, bytes_total: int,
                 what: str) -> None:
        self.calls.append((files_done, files_total, bytes_done, bytes_total, what))


def test_a_cold_cache_build_reports_each_file_then_the_parse(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XP_CACHE_DIR", str(tmp_path / "cache"))
    files = write_runs(tmp_path / "runs")
    total = sum(os.path.getsize(p) for p in files)
    seen = Recorder()
    load(tmp_path / "runs", progress=seen)
    reading = [c for c in seen.calls if c[4] == "reading"]
    assert [c[0] for c in reading] == [1, 2, 3]
    assert {c[1] for c in reading} == {3} and {c[3] for c in seen.calls} == {total}
    assert reading[-1][2] == total
    assert seen.calls[-1] == (3, 3, total, total, "parsing")
    again = Recorder()
    # Warm: nothing is parsed again (files changed a moment ago are only checked).
    load(tmp_path / "runs", progress=again)
    assert "parsing" not in {c[4] for c in again.calls}


def test_compaction_reports_each_file_then_the_write(tmp_path: Path) -> None:
    files = write_runs(tmp_path)
    sizes = sorted(os.path.getsize(p) for p in files)
    total = sum(sizes)
    seen = Recorder()
    result = compact(str(tmp_path), min_age=0, progress=seen)
    assert len(result.sources) == 3
    assert [(c[0], c[1], c[4]) for c in seen.calls] == [
        (1, 3, "reading"), (2, 3, "reading"), (3, 3, "reading"), (3, 3, "writing")]
    assert seen.calls[0][2] in sizes and seen.calls[0][3] == total
    assert seen.calls[-1][2:4] == (total, total)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_only_on_a_terminal_and_not_when_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    with progress.progress_bar("reading", stream=io.StringIO()) as bar:
        assert bar is None  # not a terminal
    with progress.progress_bar("reading", enabled=False, stream=Tty()) as bar:
        assert bar is None  # -q
    quick = Tty()
    with progress.progress_bar("reading", stream=quick) as bar:
        assert bar is not None
        bar(1, 2, 10, 20, "reading")  # before DELAY: quick work draws nothing
    assert quick.getvalue() == ""
    monkeypatch.setattr(progress, "DELAY", 0.0)
    slow = Tty()
    with progress.progress_bar("reading", stream=slow) as bar:
        assert bar is not None
        bar(1, 2, 3_000_000, 5_000_000, "reading")
        bar(2, 2, 5_000_000, 5_000_000, "parsing")
    assert "2/2 files, 5/5 MB" in slow.getvalue()


def test_commands_ask_for_no_bar_with_quiet(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    write_runs(tmp_path)
    asked: list[bool] = []

    def wanted(enabled: bool = True, stream: object = None) -> bool:
        asked.append(enabled)
        return False

    monkeypatch.setattr(progress, "wanted", wanted)
    runner = CliRunner()
    for args in (["runs"], ["runs", "-q"], ["compact", "--dry-run", "--min-age", "0"],
                 ["compact", "--dry-run", "--min-age", "0", "-q"]):
        result = runner.invoke(cli, [*args, "--runs", str(tmp_path)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert asked == [True, False, True, False]

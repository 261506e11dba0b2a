"""``--watch``: tables and figures computed again while a writer appends, driven by a
number of refreshes and a hook after each, never by time."""

from __future__ import annotations

import hashlib
import io
import re
import threading
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from xpcli import Run, watch
from xpcli.cli import cli

T0 = 1767225600.0


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("XP_FORCE_TTY", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_the_loop_stops_by_count_by_event_and_by_ctrl_c() -> None:
    calls: list[int] = []
    assert watch.loop(lambda: calls.append(1), 0, watch.Control(refreshes=3)) == 3
    assert len(calls) == 3
    stop = threading.Event()
    control = watch.Control(stop=stop, after_refresh=lambda n: stop.set())
    assert watch.loop(lambda: None, 3600, control) == 1  # the event ends the wait at once

    def interrupted(count: int) -> None:
        raise KeyboardInterrupt

    assert watch.loop(lambda: None, 0, watch.Control(after_refresh=interrupted)) == 1


def snapshots(text: str, header: str) -> list[pl.DataFrame]:
    """The CSV tables a watched command wrote one after the other."""
    parts = [p for p in text.split(header + "\n") if p.strip()]
    return [pl.read_csv(io.StringIO(header + "\n" + p)) for p in parts]


def test_watched_runs_table_follows_a_writer(runner: CliRunner, tmp_path: Path) -> None:
    run = Run(tmp_path, "live", params={"lr": 0.1}, flush_seconds=0, flush_bytes=0)
    run.track(1.0, "loss", step=0)

    def append(count: int) -> None:  # what the job does between two refreshes
        if count == 1:
            run.track(0.5, "loss", step=1)
            run.track(0.25, "loss", step=2)
        elif count == 2:
            run.close()

    control = watch.Control(refreshes=3, after_refresh=append)
    result = runner.invoke(cli, ["runs", "--runs", str(tmp_path), "--watch", "0.01",
                                 "--format", "csv"], obj={"watch_control": control},
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    header = "run,lr,status,reason,points,metrics,started,last_activity,elapsed"
    tables = snapshots(result.stdout, header)
    assert [t["points"].to_list() for t in tables] == [[1], [3], [3]]
    assert [t["status"].to_list() for t in tables] == [["running"], ["running"], ["finished"]]


def test_watch_on_a_terminal_redraws_a_live_table(runner: CliRunner, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XP_FORCE_TTY", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    run = Run(tmp_path, "live", params={"lr": 0.1}, flush_seconds=0, flush_bytes=0)
    run.track(1.0, "loss", step=0)

    def append(count: int) -> None:
        for step in range(1, 41):
            run.track(1.0 / step, "loss", step=step)

    control = watch.Control(refreshes=2, after_refresh=append)
    result = runner.invoke(cli, ["metrics", "--runs", str(tmp_path), "--watch"],
                           obj={"watch_control": control}, catch_exceptions=False)
    run.close()
    assert result.exit_code == 0, result.output
    assert "\x1b[" in result.stdout  # cursor moves: the region is redrawn in place
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stdout).split("Ctrl-C ends")
    assert "every 2s, last at" in frames[0]
    points = [re.findall(r"^loss +│ +│ +1 │ +(\d+) │", f, flags=re.M) for f in frames]
    assert [p for p in points if p][:2] == [["1"], ["41"]]  # then 1 + 40 appended


def test_watched_figure_is_rewritten_atomically_when_it_changes(runner: CliRunner,
                                                                tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = Run(runs, "r", flush_seconds=0, flush_bytes=0, time=T0)
    for epoch, (de, en) in enumerate([(0.5, 0.6), (0.7, 0.8), (0.6, 0.85)], start=1):
        run.track(de, "f1", epoch=epoch, context={"lang": "de"}, time=T0 + epoch)
        run.track(en, "f1", epoch=epoch, context={"lang": "en"}, time=T0 + epoch)
    figure = tmp_path / "forgetting.png"
    digests: list[str] = []

    def append(count: int) -> None:
        digests.append(hashlib.sha256(figure.read_bytes()).hexdigest())
        if count == 1:
            run.track(0.4, "f1", epoch=4, context={"lang": "de"}, time=T0 + 4)
            run.track(0.9, "f1", epoch=4, context={"lang": "en"}, time=T0 + 4)

    control = watch.Control(refreshes=3, after_refresh=append)
    result = runner.invoke(cli, ["forgetting", "f1:lang=*", "--runs", str(runs), "--run", "r",
                                 "-o", str(figure), "--watch=0.01"],
                           obj={"watch_control": control}, catch_exceptions=False)
    run.close()
    assert result.exit_code == 0, result.output
    assert result.stderr == f"writing {figure} every 0.01s (Ctrl-C ends)\n"
    assert digests[0] != digests[1]  # the new epoch is drawn
    assert digests[1] == digests[2]  # nothing new: the file is left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forgetting.png", "runs"]


@pytest.mark.parametrize("args", [
    ["select", "-m", "loss"],
    ["group", "--by", "lr", "-m", "loss"],
    ["forgetting", "loss", "--best", "min"],
])
def test_every_table_command_watches(runner: CliRunner, tmp_path: Path,
                                     args: list[str]) -> None:
    with Run(tmp_path, "a", params={"lr": 0.1}, flush_seconds=0, flush_bytes=0) as run:
        for epoch in range(3):
            run.track(1.0 / (epoch + 1), "loss", epoch=epoch)
    control = watch.Control(refreshes=2)
    result = runner.invoke(cli, [*args, "--runs", str(tmp_path), "--watch", "0.01",
                                 "--format", "csv"], obj={"watch_control": control},
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") >= 2  # shown once: the second refresh changed nothing


def test_a_gate_cannot_be_watched(runner: CliRunner, tmp_path: Path) -> None:
    with Run(tmp_path, "a", params={"lr": 0.1}, flush_seconds=0, flush_bytes=0) as run:
        run.track(1.0, "loss", step=0)
    result = runner.invoke(cli, ["select", "--runs", str(tmp_path), "--watch",
                                 "--fail-if", "lr > 1"])
    assert result.exit_code == 2
    assert "--fail-if and --watch do not go together" in result.stderr


def test_parquet_cannot_be_watched(runner: CliRunner, tmp_path: Path) -> None:
    with Run(tmp_path, "a", flush_seconds=0) as run:
        run.track(1.0, "loss", step=0)
    result = runner.invoke(cli, ["runs", "--runs", str(tmp_path), "--watch", "--format",
                                 "parquet"], obj={"watch_control": watch.Control(refreshes=1)})
    assert result.exit_code == 2
    assert "--format parquet is one file, written once: drop --watch" in result.stderr
    assert result.stdout == ""


def test_ctrl_c_ends_a_watch_with_exit_0(runner: CliRunner, tmp_path: Path) -> None:
    with Run(tmp_path, "a", flush_seconds=0, flush_bytes=0) as run:
        run.track(1.0, "loss", step=0)

    def interrupt(count: int) -> None:
        raise KeyboardInterrupt

    result = runner.invoke(cli, ["runs", "--runs", str(tmp_path), "--watch", "5"],
                           obj={"watch_control": watch.Control(after_refresh=interrupt)})
    assert result.exit_code == 0
    assert result.stdout.startswith("run,status,reason,points")


def test_a_watched_table_taller_than_the_terminal_shows_what_fits(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XP_FORCE_TTY", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("LINES", "12")
    for i in range(30):
        with Run(tmp_path, f"r{i:02d}", params={"seed": i}, flush_seconds=0,
                 time=T0 + i) as run:
            run.track(float(i), "loss", step=0, time=T0 + i)
    result = runner.invoke(cli, ["runs", "--runs", str(tmp_path), "--watch"],
                           obj={"watch_control": watch.Control(refreshes=1)},
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stdout)
    rows = re.findall(r"^(r\d\d) ", text, flags=re.M)
    assert sorted(set(rows)) == [f"r{i:02d}" for i in range(7)]  # 12 lines - 5 = 7 rows
    assert "23 more rows below" in text


def test_a_watched_table_wider_than_the_terminal_says_what_it_leaves_out(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XP_FORCE_TTY", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "60")
    for seed in (1, 2):  # two rows: one would be shown transposed
        with Run(tmp_path, f"r{seed}", params={"seed": seed}, flush_seconds=0,
                 time=T0) as run:
            run.track(0.5, "loss", step=0, time=T0)
    result = runner.invoke(cli, ["runs", "--runs", str(tmp_path), "--watch"],
                           obj={"watch_control": watch.Control(refreshes=1)},
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stdout)
    assert re.search(r"\d+ columns left out to fit \(--columns chooses\); every 2s", text)
    assert max(len(line) for line in text.splitlines()[:-1]) <= 60
    assert "left out" not in result.stderr  # said in the live footer, not under it
    piped = runner.invoke(cli, ["runs", "--runs", str(tmp_path), "--watch", "--format",
                                "table"], obj={"watch_control": watch.Control(refreshes=1)},
                          env={"XP_FORCE_TTY": "0"}, catch_exceptions=False)
    assert "left out to fit the terminal" in piped.stderr

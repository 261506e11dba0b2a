"""``xp tail``: the points of one run as they are logged, read from its growing file."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PYTHON, ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from xpcli import Run
from xpcli.cli import cli
from xpcli.errors import UsageError
from xpcli.follow import Tail, tail_specs
from xpcli.spec.metric import glob_match, point_matches

T0 = 1767225600.0


def values(points: list[dict]) -> list[float]:
    return [p["value"] for p in points]


def test_tail_reads_what_follows_and_waits_for_whole_lines(tmp_path: Path) -> None:
    run = Run(tmp_path, "r", flush_seconds=0, flush_bytes=0, time=T0)
    for step in range(5):
        run.track(float(step), "loss", step=step, time=T0 + step)
    tail = Tail(str(tmp_path), "r")
    assert values(tail.start(2)) == [3.0, 4.0]
    assert tail.poll() == [] and tail.status == "running" and not tail.ended
    run.track(5.0, "loss", step=5, time=T0 + 5)
    run.track(math.nan, "f1", epoch=1, context={"lang": "de"}, time=T0 + 6)
    got = tail.poll()
    assert got[0] == {"run": "r", "name": "loss", "context": {}, "step": 5, "epoch": None,
                      "time": T0 + 5, "value": 5.0}
    assert got[1]["context"] == {"lang": "de"} and math.isnan(got[1]["value"])
    with open(tmp_path / "r.jsonl", "a") as fh:  # a line whose end has not arrived yet
        fh.write('{"kind":"point","run":"r","name":"loss","value":6.0,')
    assert tail.poll() == []
    with open(tmp_path / "r.jsonl", "a") as fh:
        fh.write('"step":6}\n')
    assert values(tail.poll()) == [6.0]
    run.close()
    assert tail.poll() == [] and tail.ended and tail.status == "finished"


def test_tail_keeps_the_points_its_specs_name(tmp_path: Path) -> None:
    with Run(tmp_path, "r", flush_seconds=0, time=T0) as run:
        for lang, value in (("de", 0.1), ("en", 0.2), ("es", 0.3)):
            run.track(value, "f1", epoch=1, context={"lang": lang}, time=T0)
        run.track(9.0, "loss", step=0, context={"split": "train"}, time=T0)
    tail = Tail(str(tmp_path), "r", tail_specs(["f1:lang=e*", "loss:split=train"]))
    assert values(tail.start(10)) == [0.2, 0.3, 9.0]
    assert tail.ended
    with pytest.raises(UsageError, match="a reduce"):
        tail_specs(["f1@max"])


def test_tail_of_a_run_without_a_file_says_why(tmp_path: Path) -> None:
    (tmp_path / "other.jsonl").write_text("")
    with pytest.raises(UsageError, match="no file r.jsonl under"):
        Tail(str(tmp_path), "r")
    with pytest.raises(UsageError, match="invalid run id"):
        Tail(str(tmp_path), "../r")


def test_tail_reads_a_replaced_file_from_its_start_and_drops_a_removed_one(
        tmp_path: Path) -> None:
    (tmp_path / "r.jsonl").write_text('{"kind":"point","run":"r","name":"x","value":1}\n')
    tail = Tail(str(tmp_path), "r")
    assert values(tail.start(5)) == [1.0]
    (tmp_path / "r.jsonl").unlink()
    (tmp_path / "r.jsonl").write_text('{"kind":"point","run":"r","name":"x","value":2}\n')
    assert values(tail.poll()) == [2.0]
    (tmp_path / "r.jsonl").unlink()
    assert tail.poll() == [] and tail.files == []


def test_xp_tail_prints_points_logged_after_it_started(tmp_path: Path) -> None:
    run = Run(tmp_path, "live", flush_seconds=0, flush_bytes=0)
    run.track(0.0, "loss", step=0)
    proc = subprocess.Popen([PYTHON, "-m", "xpcli", "tail", "live", "loss", "--runs",
                             str(tmp_path), "-n", "1", "--interval", "0.01"],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["step"] == 0  # the last point logged
        assert proc.stderr.readline() == "xp: following live (Ctrl-C ends)\n"
        for step in range(1, 4):  # logged after tail started; each line is waited for
            run.track(step / 10, "loss", step=step)
            run.track(1.0, "other", step=step)
            point = json.loads(proc.stdout.readline())
            assert (point["name"], point["step"], point["value"]) == ("loss", step, step / 10)
        run.close()
        assert proc.wait(timeout=300) == 0  # the run ended: so does tail
        assert proc.stdout.read() == ""
        assert proc.stderr.read() == "xp: run live is finished\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        run.close()


def test_xp_tail_lines_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XP_FORCE_TTY", "1")
    with Run(tmp_path, "r", flush_seconds=0, time=T0) as run:
        run.track(0.8125, "f1", epoch=3, step=120, context={"lang": "de\x1b[2J"}, time=T0 + 1)
    result = CliRunner().invoke(cli, ["tail", "r", "--runs", str(tmp_path)],
                                catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == "2026-01-01 00:00:01  f1[lang=de\\x1b[2J]  epoch 3  step 120  0.8125\n"
    assert result.stderr == "xp: run r is finished\n"


@settings(max_examples=300, deadline=None)
@given(value=st.text(alphabet="ab.+\n", max_size=12),
       pattern=st.text(alphabet="ab.+*?", min_size=1, max_size=8))
def test_point_globs_agree_with_fnmatch(value: str, pattern: str) -> None:
    """fnmatch, an independent implementation, on patterns without its [classes]."""
    import fnmatch

    assert glob_match(value, pattern) == fnmatch.fnmatchcase(value, pattern)


def test_point_globs_do_not_backtrack_without_end() -> None:
    # A regex engine that backtracks takes minutes here; this is a few thousand steps.
    assert not glob_match("a" * 400, "*a*a*a*a*a*a*a*b")
    assert glob_match("a" * 400 + "b", "*a*a*a*a*a*a*a*b")
    spec = tail_specs(["f1:lang=d*:split="])[0]
    assert point_matches(spec, "f1", {"lang": "de"})
    assert not point_matches(spec, "f1", {"lang": "de", "split": "dev"})
    assert point_matches(spec, "f1", {"lang": "de", "split": ""})  # empty is no value
    assert not point_matches(spec, "f2", {"lang": "de"})

"""Run: statuses, params and meta, ids, threads, flushing, failed writes, SIGKILL."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT, half_then_enospc, run_python

from xpcli import Run, new_run_id
from xpcli.dataset import load
from xpcli.errors import UsageError, WriteError
from xpcli.format import parse_line


def records(path: Path) -> list[dict]:
    return [parse_line(line) for line in path.read_text().splitlines()]


def wait_for(predicate, timeout: float = 120.0) -> bool:
    """Poll ``predicate`` every 10 ms until it holds or ``timeout`` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_context_manager_finished(tmp_path: Path) -> None:
    with Run(tmp_path, "r1", params={"lr": 0.1}) as run:
        run.track(1.0, "loss", step=0)
    assert run.closed
    runs = load(tmp_path).runs.collect()
    assert runs["status"].to_list() == ["finished"]
    assert runs["points"].to_list() == [1]
    assert runs["ended"].dtype == runs["created"].dtype


def test_context_manager_failed_when_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with Run(tmp_path, "r1") as run:
            run.track(1.0, "loss", step=0)
            raise RuntimeError("boom")
    recs = records(tmp_path / "r1.jsonl")
    assert recs[-1]["meta"]["status"] == "failed"
    assert load(tmp_path).runs.collect()["status"].to_list() == ["failed"]


def test_status_while_running_and_close_idempotent(tmp_path: Path) -> None:
    run = Run(tmp_path, "r1")
    assert load(tmp_path).runs.collect()["status"].to_list() == ["running"]
    run.close()
    run.close(status="failed")  # no effect once closed
    assert load(tmp_path).runs.collect()["status"].to_list() == ["finished"]
    with pytest.raises(UsageError, match="closed"):
        run.track(1.0, "x")
    with pytest.raises(UsageError, match="closed"):
        run.log_params({"a": 1})


def test_log_params_and_set_meta_later_values_win(tmp_path: Path) -> None:
    with Run(tmp_path, "r1", params={"lr": 0.1, "opt": {"name": "sgd"}}, meta={"note": "a"}) as run:
        run.log_params({"lr": 0.2, "opt": {"momentum": 0.9}, "seed": 3})
        run.set_meta(tags=["x", "y"], note="b")
    ds = load(tmp_path)
    row = ds.runs.collect().row(0, named=True)
    assert row["lr"] == 0.2 and row["seed"] == 3
    assert row["opt.name"] == "sgd" and row["opt.momentum"] == 0.9
    assert row["note"] == "b" and json.loads(row["tags"]) == ["x", "y"]
    assert ds.params == ["lr", "opt.name", "opt.momentum", "seed"]


def test_appending_to_an_existing_run(tmp_path: Path) -> None:
    with Run(tmp_path, "r1", params={"lr": 0.1}) as run:
        run.track(1.0, "loss", step=0)
    with Run(tmp_path, "r1") as run:
        run.track(2.0, "loss", step=1)
    ds = load(tmp_path)
    assert ds.points.collect()["step"].to_list() == [0, 1]
    assert ds.runs.collect()["lr"].to_list() == [0.1]


def test_generated_ids_sort_by_creation_and_are_unique() -> None:
    ids = [new_run_id() for _ in range(20000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 26 for i in ids)
    from xpcli.format import check_run_id

    check_run_id(ids[0])
    later = new_run_id()
    time.sleep(0.002)
    assert new_run_id()[:10] > later[:10]  # the time part grows


def test_generated_ids_unique_across_processes() -> None:
    code = "from xpcli import new_run_id\nprint('\\n'.join(new_run_id() for _ in range(5000)))"
    procs = [subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
             for _ in range(4)]
    ids = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        ids += out.split()
    assert len(ids) == 20000 and len(set(ids)) == 20000


def test_generated_id_is_used(tmp_path: Path) -> None:
    with Run(tmp_path) as run:
        pass
    assert (tmp_path / f"{run.id}.jsonl").exists()


def test_thread_safety(tmp_path: Path) -> None:
    run = Run(tmp_path, "r1", flush_bytes=4096, flush_seconds=0.01)

    def work(t: int) -> None:
        for i in range(5000):
            run.track(float(i), "x", step=i, context={"thread": str(t)})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.close()
    ds = load(tmp_path)
    assert not len(ds.diagnostics)
    points = ds.points.collect()
    assert points.height == 40000
    assert points.select("thread", "step").unique().height == 40000
    assert (points["value"] == points["step"].cast(float)).all()


def test_flush_by_size(tmp_path: Path) -> None:
    run = Run(tmp_path, "r1", flush_bytes=500, flush_seconds=0)
    path = tmp_path / "r1.jsonl"
    start = path.stat().st_size
    run.track(1.0, "x", step=0)
    assert path.stat().st_size == start  # buffered
    for i in range(1, 20):
        run.track(1.0, "x", step=i)
    size = path.stat().st_size
    assert size > start
    text = path.read_text()
    assert text.endswith("\n")
    flushed = [r for r in records(path) if r["kind"] == "point"]
    assert [r["step"] for r in flushed] == list(range(len(flushed)))
    assert 0 < len(flushed) < 20
    run.flush()
    assert len([r for r in records(path) if r["kind"] == "point"]) == 20
    run.close()


def test_flush_by_time(tmp_path: Path) -> None:
    run = Run(tmp_path, "r1", flush_bytes=10**9, flush_seconds=0.05)
    path = tmp_path / "r1.jsonl"
    run.track(1.0, "x", step=0)
    assert wait_for(lambda: '"name":"x"' in path.read_text())
    run.close()


def test_values_kept_and_bad_values_refused(tmp_path: Path) -> None:
    with Run(tmp_path, "r1") as run:
        for i, v in enumerate([math.nan, math.inf, -math.inf, 1e308, 5e-324, -0.0, 3]):
            run.track(v, "x", step=i, epoch=i / 2)
        with pytest.raises(UsageError):
            run.track("1.0", "x")  # type: ignore[arg-type]
        with pytest.raises(UsageError):
            run.track(True, "x")
        with pytest.raises(UsageError):
            run.track(1.0, "x", step=1.5)
        with pytest.raises(UsageError):
            run.track(1.0, "x", step=2**63)
        with pytest.raises(UsageError):
            run.track(1.0, "x", epoch=math.nan)
        with pytest.raises(UsageError):
            run.track(1.0, "x", epoch=math.inf)
        with pytest.raises(UsageError):
            run.track(1.0, "x", time=math.nan)
        with pytest.raises(UsageError):
            run.track(1.0, "x", context={"step": "1"})
        with pytest.raises(UsageError):
            run.track(1.0, "")
    ds = load(tmp_path)
    assert not len(ds.diagnostics)
    values = ds.points.collect()["value"].to_list()
    assert math.isnan(values[0]) and values[1:6] == [math.inf, -math.inf, 1e308, 5e-324, -0.0]
    assert values[6] == 3.0


def test_import_does_not_load_polars() -> None:
    code = ("import sys, xpcli, xpcli.writer\n"
            "r = xpcli.Run\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('polars', 'pyarrow', 'matplotlib', 'numpy')))")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_failed_write_truncates_to_whole_lines(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, "r1", flush_bytes=10**9, flush_seconds=0)
    run.track(1.0, "x", step=0)
    run.flush()
    path = tmp_path / "r1.jsonl"
    before = path.read_bytes()
    calls = half_then_enospc(monkeypatch, run._fd)
    for i in range(1, 50):
        run.track(1.0, "x", step=i)
    with pytest.raises(WriteError, match="No space left"):
        run.flush()
    assert calls, "the fake write was not used"
    assert path.read_bytes() == before
    monkeypatch.undo()
    run.track(2.0, "x", step=99)
    run.close()
    ds = load(tmp_path)
    assert not len(ds.diagnostics)
    assert ds.points.collect()["step"].to_list() == [0, 99]


def test_failed_write_raises_from_track(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, "r1", flush_bytes=200, flush_seconds=0)
    path = tmp_path / "r1.jsonl"
    before = path.read_bytes()
    half_then_enospc(monkeypatch, run._fd)
    with pytest.raises(WriteError):
        for i in range(100):
            run.track(1.0, "x", step=i)
    assert path.read_bytes() == before
    monkeypatch.undo()
    run.close()


def test_background_flush_failure_raised_by_next_call(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, "r1", flush_bytes=10**9, flush_seconds=0.02)
    path = tmp_path / "r1.jsonl"
    before = path.read_bytes()
    calls = half_then_enospc(monkeypatch, run._fd)
    run.track(1.0, "x", step=0)
    assert wait_for(lambda: len(calls) >= 2)  # the background flush tried and failed
    monkeypatch.undo()
    assert wait_for(lambda: path.read_bytes() == before)  # the flusher truncates after
    with pytest.raises(WriteError):
        run.track(2.0, "x", step=1)
    run.close()
    assert path.read_text().endswith("\n")


def test_reopening_a_torn_file_keeps_new_records_whole(tmp_path: Path) -> None:
    path = tmp_path / "r1.jsonl"
    path.write_text('{"kind":"run","run":"r1","params":{"lr":1}}\n{"kind":"point","run":"r1","na')
    with Run(tmp_path, "r1") as run:
        run.track(5.0, "x", step=1)
    ds = load(tmp_path)
    assert ds.points.collect()["value"].to_list() == [5.0]
    assert [d.line for d in ds.diagnostics.items] == [2]
    assert ds.runs.collect()["lr"].to_list() == [1]


KILL_CHILD = r"""
import sys
from xpcli import Run
run = Run(sys.argv[1], "killed", flush_bytes=4096, flush_seconds=0.05)
i = 0
while True:
    run.track(i * 0.5, "loss", step=i, context={"split": "train"})
    if i % 100 == 0:
        print(i, flush=True)
    i += 1
"""


def test_sigkill_loses_at_most_the_unflushed_tail(tmp_path: Path) -> None:
    proc = subprocess.Popen([PYTHON, "-c", KILL_CHILD, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout is not None
    reported = -1
    for line in proc.stdout:
        reported = int(line)
        if reported >= 3000:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    text = (tmp_path / "killed.jsonl").read_text()
    complete = text[: text.rfind("\n") + 1]
    recs = [parse_line(line) for line in complete.splitlines()]  # every whole line parses
    steps = [r["step"] for r in recs if r["kind"] == "point"]
    assert steps == list(range(len(steps)))  # nothing lost but the tail
    line_len = len(text.splitlines()[-2])
    # Step `reported` was tracked; only the buffer (< 4096 bytes) may be missing.
    assert len(steps) >= reported + 1 - (4096 // line_len + 1)
    ds = load(tmp_path)
    assert ds.points.collect().height == len(steps)
    assert all(d.kind == "torn" for d in ds.diagnostics.items)
    assert ds.runs.collect()["status"].to_list() == ["running"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_unclosed_run_is_closed_at_exit(tmp_path: Path) -> None:
    code = ("import sys\nfrom xpcli import Run\n"
            "run = Run(sys.argv[1], 'r1', flush_seconds=0)\nrun.track(1.0, 'x')\n")
    assert run_python(code, str(tmp_path)).returncode == 0
    code_fail = code.replace("'r1'", "'r2'") + "raise SystemExit('x') if False else 1/0\n"
    assert run_python(code_fail, str(tmp_path)).returncode == 1
    runs = load(tmp_path).runs.collect().sort("run")
    assert runs["status"].to_list() == ["finished", "failed"]
    assert runs["points"].to_list() == [1, 1]

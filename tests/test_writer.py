"""Run: statuses, params and meta, ids, threads, flushing, failed writes, SIGKILL."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT, half_then_enospc, run_python, wait_for

from xpcli import Run, new_run_id
from xpcli.dataset import load
from xpcli.errors import UsageError, WriteError
from xpcli.format import parse_line


def records(path: Path) -> list[dict]:
    return [parse_line(line) for line in path.read_text().splitlines()]


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
    # The records of the failed flush were kept and written by the next one.
    assert ds.points.collect()["step"].to_list() == [*range(50), 99]


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
    runs = ds.runs.collect()  # the writer is gone: taken for dead at once, with its pid
    assert runs["status"].to_list() == ["crashed"]
    assert runs["reason"].to_list() == [f"process {proc.pid} is gone"]


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


# -- text that cannot be written, bad input types --------------------------------------

SURROGATE = "bad\udcff"  # what os.fsdecode gives for the byte 0xff in a file name


def _points_of(path: Path) -> list[int]:
    return [r["step"] for r in records(path) if r["kind"] == "point"]


@pytest.mark.parametrize(("call", "field"), [
    (lambda run: run.track(1.0, SURROGATE), "metric name"),
    (lambda run: run.track(1.0, "m", context={"k": SURROGATE}), "context value 'k'"),
    (lambda run: run.log_params({"p": SURROGATE}), "param 'p'"),
    (lambda run: run.log_params({SURROGATE: 1}), "param name"),
    (lambda run: run.log_params({"opt": {SURROGATE: 1}}), "param 'opt'"),
    (lambda run: run.log_params({"opt": [1, SURROGATE]}), "param 'opt'"),
    (lambda run: run.set_meta(tags=["ok", SURROGATE]), "meta 'tags'"),
    (lambda run: run.set_meta(note=SURROGATE), "meta 'note'"),
])
def test_text_that_is_not_utf8_is_refused_and_nothing_buffered_is_lost(
        tmp_path: Path, call, field: str) -> None:  # noqa: ANN001
    run = Run(tmp_path, "r", flush_bytes=10**9, flush_seconds=0)
    for i in range(100):
        run.track(float(i), "m", step=i)
    with pytest.raises(UsageError, match=rf"{field}.*not valid Unicode"):
        call(run)
    run.close()
    path = tmp_path / "r.jsonl"
    assert _points_of(path) == list(range(100))
    assert records(path)[-1]["meta"]["status"] == "finished"


@pytest.mark.parametrize("where", ["run", "params", "meta"])
def test_run_with_text_that_is_not_utf8_is_refused(tmp_path: Path, where: str) -> None:
    kwargs = {"run": {"run": SURROGATE}, "params": {"params": {"p": SURROGATE}},
              "meta": {"meta": {"tags": [SURROGATE]}}}[where]
    with pytest.raises(UsageError, match="run id|not valid Unicode"):
        Run(tmp_path, **kwargs)


def test_background_flusher_survives_any_exception_and_reports_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error in the background flush neither kills the flusher nor drops
    the buffer: the next call raises it, and the points are written afterwards."""
    run = Run(tmp_path, "r", flush_bytes=10**9, flush_seconds=0.02)
    path = tmp_path / "r.jsonl"
    real = Run._write_now
    failed = threading.Event()

    def broken(self: Run, text: str) -> None:
        if threading.current_thread() is not threading.main_thread() and not failed.is_set():
            failed.set()
            raise RuntimeError("boom")
        real(self, text)

    monkeypatch.setattr(Run, "_write_now", broken)
    for i in range(100):
        run.track(float(i), "m", step=i)
    assert failed.wait(120)
    with pytest.raises(WriteError, match="background flush.*boom"):
        run.track(100.0, "m", step=100)
    # The flusher is still alive: a timed flush writes the next point without any call.
    run.track(101.0, "m", step=101)
    assert wait_for(lambda: _points_of(path) == list(range(102)))
    run.close()
    assert _points_of(path) == list(range(102))
    assert records(path)[-1]["meta"]["status"] == "finished"


def test_failed_flush_keeps_the_buffer_for_the_next_flush(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, "r", flush_bytes=10**9, flush_seconds=0)
    path = tmp_path / "r.jsonl"
    for i in range(50):
        run.track(float(i), "m", step=i)
    half_then_enospc(monkeypatch, run._fd)
    with pytest.raises(WriteError, match="kept"):
        run.flush()
    assert _points_of(path) == []
    monkeypatch.undo()
    run.flush()
    assert _points_of(path) == list(range(50))
    run.close()
    assert _points_of(path) == list(range(50))


def test_failed_write_that_cannot_be_cut_back_keeps_only_what_was_not_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the file cannot be truncated after a partial write, the whole lines that
    reached it are not written again (no duplicates); the rest is kept."""
    from xpcli import writer as writer_mod

    run = Run(tmp_path, "r", flush_bytes=10**9, flush_seconds=0)
    path = tmp_path / "r.jsonl"
    for i in range(50):
        run.track(float(i), "m", step=i)
    half_then_enospc(monkeypatch, run._fd)

    def no_truncate(fd: int, size: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(writer_mod.os, "ftruncate", no_truncate)
    with pytest.raises(WriteError):
        run.flush()
    monkeypatch.undo()
    run.close()
    text = path.read_text()
    good = []
    for line in text.splitlines():
        try:
            good.append(parse_line(line))
        except ValueError:
            continue  # the line cut by the failed write, ended by the next flush
    assert [r["step"] for r in good if r["kind"] == "point"] == list(range(50))
    assert good[-1]["meta"]["status"] == "finished"


def test_context_values_of_equal_hash_keep_their_type(tmp_path: Path) -> None:
    with Run(tmp_path, "r", flush_seconds=0) as run:
        for value in (1, True, 1.0, 0.0, -0.0, False, 0, "1"):
            run.track(1.0, "m", context={"fold": value})
    got = [r["context"]["fold"] for r in records(tmp_path / "r.jsonl") if r["kind"] == "point"]
    assert got == ["1", "true", "1.0", "0.0", "-0.0", "false", "0", "1"]


@pytest.mark.parametrize(("call", "field"), [
    (lambda run: run.track(10**400, "m"), "value"),
    (lambda run: run.track(1.0, "m", epoch=10**400), "epoch"),
    (lambda run: run.track(1.0, "m", time=10**400), "time"),
    (lambda run: run.track(1.0, "m", context={"k": [1, 2]}), "context value 'k'"),
    (lambda run: run.track(1.0, "m", context={"k": {"a": 1}}), "context value 'k'"),
    (lambda run: run.track(1.0, "m", context={"k": 10**5000}), "context value 'k'"),
    (lambda run: run.log_params({"p": 10**5000}), "param 'p'"),
    (lambda run: run.log_params({"p": [10**5000]}), "param 'p'"),
    (lambda run: run.log_params({1: "a", "1": "b"}), "param '1'"),
    (lambda run: run.log_params({"o": {1: "a", "1": "b"}}), "param 'o.1'"),
    (lambda run: run.set_meta(big=10**5000), "meta 'big'"),
])
def test_bad_writer_input_is_a_usage_error_naming_the_field(
        tmp_path: Path, call, field: str) -> None:  # noqa: ANN001
    run = Run(tmp_path, "r", flush_bytes=10**9, flush_seconds=0)
    run.track(1.0, "m", step=0)
    with pytest.raises(UsageError, match=re.escape(field)):
        call(run)
    run.close()
    assert _points_of(tmp_path / "r.jsonl") == [0]


# -- fork ------------------------------------------------------------------------------

FORK_CHILD = r"""
import json, os, sys
from xpcli import Run
from xpcli.errors import UsageError
runs = sys.argv[1]
run = Run(runs, "parent", flush_bytes=10**9, flush_seconds=float(sys.argv[2]))
for i in range(10):
    run.track(float(i), "m", step=i)
pid = os.fork()
if pid == 0:
    try:
        run.track(99.0, "m", step=99)
    except UsageError as exc:
        print("child refused:", exc, flush=True)
    mine = Run(runs, "child", flush_seconds=0)  # a run the child opens is its own
    mine.track(1.0, "c", step=0)
    sys.exit(0)  # a normal exit: atexit handlers run in the child
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0
with open(os.path.join(runs, "parent.jsonl")) as fh:
    print("after child:", json.dumps(fh.read()), flush=True)
for i in range(10, 20):
    run.track(float(i), "m", step=i)
run.close()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("flush_seconds", [0, 0.05])
def test_forked_child_drops_the_inherited_buffer_and_writes_no_status(
        tmp_path: Path, flush_seconds: float) -> None:
    proc = run_python(FORK_CHILD, str(tmp_path), str(flush_seconds))
    assert proc.returncode == 0, proc.stderr
    assert "child refused: run parent was opened by process" in proc.stdout
    between = json.loads(proc.stdout.split("after child: ", 1)[1].splitlines()[0])
    assert '"status":"finished"' not in between  # the parent still runs
    recs = records(tmp_path / "parent.jsonl")
    assert [r["step"] for r in recs if r["kind"] == "point"] == list(range(20))
    statuses = [r["meta"]["status"] for r in recs if r["kind"] == "run" and "status" in r["meta"]]
    assert statuses == ["running", "finished"]
    child = records(tmp_path / "child.jsonl")
    assert [r["step"] for r in child if r["kind"] == "point"] == [0]
    assert child[-1]["meta"]["status"] == "finished"


FORK_IDS = r"""
import os, sys
from xpcli import writer
writer._time.time_ns = lambda: 1_767_225_600_000_000_000  # every id in the same ms
first = writer.new_run_id()
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, writer.new_run_id().encode())
    os._exit(0)
os.waitpid(pid, 0)
print(first, os.read(read, 100).decode(), writer.new_run_id())
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_makes_run_ids_of_its_own() -> None:
    proc = run_python(FORK_IDS)
    assert proc.returncode == 0, proc.stderr
    first, child, parent = proc.stdout.split()
    assert len({first, child, parent}) == 3


def test_a_host_name_that_is_not_utf8_does_not_stop_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xpcli import writer as writer_mod

    monkeypatch.setattr(writer_mod.socket, "gethostname", lambda: "node\udcff7")
    with Run(tmp_path, "r", flush_seconds=0) as run:
        run.track(1.0, "m", step=0)
    recs = records(tmp_path / "r.jsonl")
    assert recs[0]["meta"]["host"] == "node\ufffd7"
    assert _points_of(tmp_path / "r.jsonl") == [0]

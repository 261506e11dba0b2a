"""Run statuses decided when reading: crashed, stale, interrupted, failed with a reason,
resumed; and what the writer records for them (host, pid, start time, heartbeat)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PYTHON, ROOT, wait_for

from xpcli import Run, liveness
from xpcli.cli import cli
from xpcli.dataset import load
from xpcli.format import parse_line

LINUX = os.path.exists("/proc/self/stat")


def records(path: Path) -> list[dict]:
    return [parse_line(line) for line in path.read_text().splitlines()]


def status_of(runs_dir: Path, run: str, **kwargs: object) -> tuple[str, str | None]:
    frame = load(runs_dir, **kwargs).runs.collect()  # type: ignore[arg-type]
    row = frame.filter(frame["run"] == run).row(0, named=True)
    return row["status"], row["reason"]


JOB = r"""
import os, signal, sys, time
from xpcli import Run
runs, name, mode = sys.argv[1:4]
if mode == "own-handler":
    def handler(signum, frame):
        print("job handler", flush=True)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)
run = Run(runs, name, params={"lr": 0.1}, flush_seconds=1000, flush_bytes=1 << 30)
if mode == "chained":  # a framework's handler installed later, chaining to the previous one
    previous = signal.getsignal(signal.SIGTERM)
    def handler(signum, frame):
        previous(signum, frame)
        print("job handler", flush=True)
        raise SystemExit(143)
    signal.signal(signal.SIGTERM, handler)
with run:
    for step in range(50):
        run.track(step * 0.5, "loss", step=step)  # buffered: flush_seconds is long
    if mode == "raise":
        raise ValueError("lr must be positive\nand this is the second line")
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
"""


def start_job(runs: Path, name: str, mode: str = "wait") -> subprocess.Popen[str]:
    proc = subprocess.Popen([PYTHON, "-c", JOB, str(runs), name, mode], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    if mode != "raise":
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def test_a_sigkilled_job_is_crashed_on_the_next_read(tmp_path: Path) -> None:
    proc = start_job(tmp_path, "killed")
    assert status_of(tmp_path, "killed") == ("running", None)
    proc.kill()
    proc.wait(timeout=300)
    assert status_of(tmp_path, "killed") == ("crashed", f"process {proc.pid} is gone")
    result = CliRunner().invoke(cli, ["runs", "--runs", str(tmp_path), "--where",
                                      "status == 'crashed'", "--format", "csv"],
                                catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1].startswith(
        f"killed,0.1,crashed,process {proc.pid} is gone,0,0,")  # the buffer was lost


def test_a_job_that_raised_is_failed_with_its_reason(tmp_path: Path) -> None:
    proc = start_job(tmp_path, "boom", "raise")
    assert proc.wait(timeout=300) == 1
    assert status_of(tmp_path, "boom") == ("failed", "ValueError: lr must be positive")
    result = CliRunner().invoke(cli, ["runs", "--runs", str(tmp_path), "--format", "json"],
                                catch_exceptions=False)
    error = json.loads(result.stdout)[0]["error"]
    assert error["type"] == "ValueError"
    assert error["message"] == "lr must be positive\nand this is the second line"
    assert error["signal"] is None
    trace = error["traceback"]
    assert trace[0] == "Traceback (most recent call last):"
    assert trace[-2:] == ["ValueError: lr must be positive", "and this is the second line"]
    raised_at = JOB.split("\n").index('        raise ValueError("lr must be positive\\nand this '
                                        'is the second line")') + 1
    assert f'  File "<string>", line {raised_at}, in <module>' in trace  # where it was raised


def test_a_job_stopped_by_sigterm_is_interrupted_and_keeps_its_buffer(tmp_path: Path) -> None:
    proc = start_job(tmp_path, "termed")
    proc.terminate()
    assert proc.wait(timeout=300) == -signal.SIGTERM  # died of SIGTERM, as without xp
    assert status_of(tmp_path, "termed") == ("interrupted", "SIGTERM")
    recs = records(tmp_path / "termed.jsonl")
    assert [r["step"] for r in recs if r["kind"] == "point"] == list(range(50))
    error = recs[-1]["meta"]["error"]
    assert error["type"] == "SIGTERM" and error["signal"] == "SIGTERM"
    assert error["traceback"][-1].endswith("in <module>")  # where the job was


def test_a_jobs_own_sigterm_handler_is_left_alone(tmp_path: Path) -> None:
    proc = start_job(tmp_path, "own", "own-handler")
    proc.terminate()
    out, _ = proc.communicate(timeout=300)
    assert "job handler" in out  # its handler ran: Run did not replace it
    assert proc.returncode == -signal.SIGINT  # the KeyboardInterrupt it raised ended the job
    assert status_of(tmp_path, "own") == ("interrupted", "KeyboardInterrupt")


def test_a_handler_installed_later_that_chains_decides(tmp_path: Path) -> None:
    proc = start_job(tmp_path, "chained", "chained")
    proc.terminate()
    out, _ = proc.communicate(timeout=300)
    assert "job handler" in out  # Run's handler only noted the signal; the job went on
    assert proc.returncode == 143
    assert status_of(tmp_path, "chained") == ("interrupted", "SIGTERM, then SystemExit: 143")
    assert [r["step"] for r in records(tmp_path / "chained.jsonl")
            if r["kind"] == "point"] == list(range(50))


def test_sigterm_handler_is_installed_only_while_runs_are_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xpcli import writer

    monkeypatch.setattr(writer, "_open_runs", set())  # runs other tests left open
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        first = Run(tmp_path, "a", flush_seconds=0)
        second = Run(tmp_path, "b", flush_seconds=0)
        assert signal.getsignal(signal.SIGTERM) is writer._on_sigterm
        first.close()
        assert signal.getsignal(signal.SIGTERM) is writer._on_sigterm  # b is still open
        second.close()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        with Run(tmp_path, "c", flush_seconds=0, catch_sigterm=False):
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

        def own(signum: int, frame: object) -> None:
            pass

        signal.signal(signal.SIGTERM, own)
        with Run(tmp_path, "d", flush_seconds=0):
            assert signal.getsignal(signal.SIGTERM) is own  # never replaced
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)


FORK_TERM = r"""
import os, signal, sys, time
from xpcli import Run
run = Run(sys.argv[1], "parent", flush_seconds=0)
read, write = os.pipe()
pid = os.fork()
if pid == 0:  # a worker (e.g. a data loader) holds no run: SIGTERM kills it as usual
    os.write(write, b"x")
    time.sleep(60)
    os._exit(0)
os.read(read, 1)
os.kill(pid, signal.SIGTERM)
_, status = os.waitpid(pid, 0)
print(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM)
run.track(1.0, "x", step=0)
run.close()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_dies_of_sigterm_without_touching_the_parents_run(
        tmp_path: Path) -> None:
    proc = subprocess.run([PYTHON, "-c", FORK_TERM, str(tmp_path)], cwd=ROOT, text=True,
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    statuses = [r["meta"]["status"] for r in records(tmp_path / "parent.jsonl")
                if r["kind"] == "run"]
    assert statuses == ["running", "finished"]


def test_keyboard_interrupt_and_exit_codes_in_a_with_block(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with Run(tmp_path, "ctrl-c", flush_seconds=0):
            raise KeyboardInterrupt
    with pytest.raises(SystemExit):
        with Run(tmp_path, "exit0", flush_seconds=0):
            sys.exit(0)
    with pytest.raises(SystemExit):
        with Run(tmp_path, "exit2", flush_seconds=0):
            sys.exit(2)
    assert status_of(tmp_path, "ctrl-c") == ("interrupted", "KeyboardInterrupt")
    assert status_of(tmp_path, "exit0") == ("finished", None)
    assert status_of(tmp_path, "exit2") == ("failed", "SystemExit: 2")


def test_an_uncaught_exception_at_exit_records_its_reason(tmp_path: Path) -> None:
    code = ("import sys\nfrom xpcli import Run\n"
            "run = Run(sys.argv[1], 'r', flush_seconds=0)\n"
            "raise RuntimeError('CUDA out of memory \\udcff')\n")
    proc = subprocess.run([PYTHON, "-c", code, str(tmp_path)], cwd=ROOT, text=True,
                          capture_output=True, timeout=300)
    assert proc.returncode == 1
    # Text that is not UTF-8 (a lone surrogate) is replaced: the status is never lost.
    assert status_of(tmp_path, "r") == ("failed", "RuntimeError: CUDA out of memory \ufffd")


def test_a_resumed_run_is_running_again(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        with Run(tmp_path, "r", params={"lr": 0.1}, time=1767225600.0, flush_seconds=0) as run:
            run.track(1.0, "loss", step=0)
            raise ValueError("diverged")
    assert status_of(tmp_path, "r") == ("failed", "ValueError: diverged")
    run = Run(tmp_path, "r", time=1767229200.0, flush_seconds=0)
    try:
        runs = load(tmp_path).runs.collect()
        row = runs.row(0, named=True)
        assert (row["status"], row["reason"], row["error"], row["ended"]) == (
            "running", None, None, None)
        assert row["created"].timestamp() == 1767225600.0  # the first start is kept
        assert row["resumed"].timestamp() == 1767229200.0
        assert row["started"].timestamp() == 1767225600.0
    finally:
        run.close()
    assert status_of(tmp_path, "r") == ("finished", None)


def _write_run(path: Path, meta: dict) -> None:
    rec = {"kind": "run", "run": path.stem, "time": 1767225600.0, "meta": meta}
    path.write_text(json.dumps(rec) + "\n")


@pytest.mark.skipif(not LINUX, reason="start times come from /proc")
def test_a_reused_pid_is_not_taken_for_the_job(tmp_path: Path) -> None:
    me = os.getpid()
    mine = liveness.start_token(me)
    assert mine is not None and mine.startswith(liveness.machine_id() + ":")
    machine, start = mine.rsplit(":", 1)
    host = liveness.host_name()
    # The pid exists (this very process) but started at another time: not the writer.
    _write_run(tmp_path / "reused.jsonl", {"status": "running", "host": host, "pid": me,
                                           "pid_start": f"{machine}:{int(start) - 1}",
                                           "heartbeat": 10.0})
    _write_run(tmp_path / "same.jsonl", {"status": "running", "host": host, "pid": me,
                                         "pid_start": mine, "heartbeat": 10.0})
    assert status_of(tmp_path, "reused") == (
        "crashed", f"process {me} is gone (its pid is another process's now)")
    assert status_of(tmp_path, "same") == ("running", None)


def test_a_writer_on_another_host_with_an_old_heartbeat_is_stale(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XP_HOST", "gpu-elsewhere")
    # A heartbeat no test outlasts: the file's time stays the one read below.
    run = Run(tmp_path, "far", flush_seconds=0.05, heartbeat_seconds=1000)
    monkeypatch.delenv("XP_HOST")
    try:
        meta = records(tmp_path / "far.jsonl")[0]["meta"]
        assert meta["host"] == "gpu-elsewhere" and meta["heartbeat"] == 1000
        beat = os.stat(tmp_path / "far.jsonl").st_mtime
        # Its pid exists here, but on another host a pid says nothing: only time counts,
        # six heartbeats (at least ten minutes).
        assert status_of(tmp_path, "far", now=beat + 5999) == ("running", None)
        assert status_of(tmp_path, "far", now=beat + 6001) == (
            "stale", "no sign of life from gpu-elsewhere for 1h 40m")
        # The same run seen from that host: its process is checked, and it is alive.
        assert status_of(tmp_path, "far", now=beat + 30, host="gpu-elsewhere") == (
            "running", None)
    finally:
        run.close()


def test_a_live_process_that_stopped_writing_is_crashed(tmp_path: Path) -> None:
    run = Run(tmp_path, "hung", flush_seconds=0.05, heartbeat_seconds=1000)
    try:
        beat = os.stat(tmp_path / "hung.jsonl").st_mtime
        assert status_of(tmp_path, "hung", now=beat + 5999) == ("running", None)
        status, reason = status_of(tmp_path, "hung", now=beat + 6001)
        assert status == "crashed"
        assert reason == f"process {os.getpid()} exists but has not written for 1h 40m " \
                         "(heartbeat 16m 40s)"
    finally:
        run.close()


def test_the_heartbeat_touches_the_file_and_writes_nothing(tmp_path: Path) -> None:
    run = Run(tmp_path, "idle", flush_seconds=0.01, heartbeat_seconds=0.02)
    try:
        path = tmp_path / "idle.jsonl"
        assert records(path)[0]["meta"]["heartbeat"] == 0.02
        before = os.stat(path)
        os.utime(path, (before.st_atime, before.st_mtime - 1000))  # an old mtime...
        assert wait_for(lambda: os.stat(path).st_mtime > before.st_mtime - 1)  # ...beaten
        assert os.stat(path).st_size == before.st_size
    finally:
        run.close()
    with Run(tmp_path, "no-thread", flush_seconds=0) as quiet:
        assert "heartbeat" not in records(tmp_path / "no-thread.jsonl")[0]["meta"]
    assert quiet.closed


def test_old_and_odd_records_still_read(tmp_path: Path) -> None:
    gone = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True).stdout.strip()
    host = liveness.host_name()
    # A writer from before start times and heartbeats: checked by its pid alone.
    _write_run(tmp_path / "old.jsonl", {"status": "running", "host": host, "pid": int(gone),
                                        "format": 1})
    # Fields of the wrong type: no heartbeat stated; the host (text, as the column is
    # typed from every run's values) is not this one, so the pid is not looked up.
    _write_run(tmp_path / "odd.jsonl", {"status": "running", "host": 7, "pid": "12",
                                        "pid_start": 3, "heartbeat": "often",
                                        "error": "not an object"})
    # Foreign records without any status stay without one.
    (tmp_path / "foreign.jsonl").write_text(
        '{"kind":"point","run":"foreign","name":"x","value":1,"time":1767225600.5,'
        '"unknown":{"field":1}}\n')
    for path in tmp_path.iterdir():
        os.utime(path, (1767225600.0, 1767225600.0))  # last modified at the records' time
    now = 1767225600.0 + 3600
    assert status_of(tmp_path, "old", now=now) == ("crashed", f"process {gone} is gone")
    assert status_of(tmp_path, "odd", now=now) == (
        "stale", "no sign of life from 7 for 1h 00m")
    assert status_of(tmp_path, "foreign", now=now) == (None, None)
    runs = load(tmp_path, now=now).runs.collect()
    odd = runs.filter(runs["run"] == "odd").row(0, named=True)
    assert odd["error"] == {"type": None, "message": "not an object", "traceback": None,
                            "signal": None}


# -- the rules, one by one -------------------------------------------------------------------


class FakeHost:
    """An observer whose processes are a dict: pid -> start token (None: hidden)."""

    def __init__(self, processes: dict[int, str | None], host: str = "here",
                 machine: str | None = "linux:boot:1") -> None:
        self.observer = liveness.Observer(now=1000.0, host=host, machine=machine,
                                          probe=self.probe)
        self.processes = processes

    def probe(self, pid: int) -> liveness.Process:
        if pid not in self.processes:
            return liveness.Process(False)
        return liveness.Process(True, self.processes[pid])


def decide(facts: liveness.Facts, processes: dict[int, str | None] | None = None,
           **kwargs: object) -> tuple[object, str | None]:
    return liveness.decide(facts, FakeHost(processes or {}, **kwargs).observer)  # type: ignore[arg-type]


def test_decide_only_looks_at_running() -> None:
    for status in ("finished", "failed", "interrupted", "killed", None):
        assert decide(liveness.Facts(status, host="here", pid=5)) == (status, None)


def test_decide_on_this_host() -> None:
    alive = {5: "linux:boot:1:100"}
    base = dict(host="here", pid=5, pid_start="linux:boot:1:100", heartbeat=10.0)
    assert decide(liveness.Facts("running", **base, last_sign=990.0), alive) == (
        "running", None)
    assert decide(liveness.Facts("running", **base, last_sign=990.0), {}) == (
        "crashed", "process 5 is gone")
    assert decide(liveness.Facts("running", **base, last_sign=990.0),
                  {5: "linux:boot:1:999"})[0] == "crashed"
    assert decide(liveness.Facts("running", **base, last_sign=939.0), alive)[0] == "crashed"
    assert decide(liveness.Facts("running", **base, last_sign=941.0), alive)[0] == "running"
    # A process whose start cannot be read (another user's, hidden): it exists.
    assert decide(liveness.Facts("running", **base, last_sign=990.0), {5: None})[0] == \
        "running"
    # No heartbeat stated: a live process is running however long it is silent.
    assert decide(liveness.Facts("running", host="here", pid=5, last_sign=0.0), alive)[0] == \
        "running"


def test_decide_when_the_process_cannot_be_checked() -> None:
    # Another boot of this host (or another machine with its name), another container:
    # its pid is not looked up here, only time counts.
    for start in ("linux:other-boot:1:100", "linux:boot:2:100"):
        facts = liveness.Facts("running", host="here", pid=5, pid_start=start, heartbeat=10.0,
                               last_sign=1000.0 - 601)
        assert decide(facts, {5: start})[0] == "stale"
        assert decide(liveness.Facts("running", host="here", pid=5, pid_start=start,
                                     heartbeat=10.0, last_sign=1000.0 - 599), {})[0] == "running"
    # A long heartbeat stretches the wait: six of them.
    slow = liveness.Facts("running", host="there", pid=5, heartbeat=200.0, last_sign=0.0)
    assert decide(slow)[0] == "running"
    assert decide(liveness.Facts("running", host="there", pid=5, heartbeat=100.0,
                                 last_sign=0.0)) == (
        "stale", "no sign of life from there for 16m 40s")
    # Nothing known of when it was last heard from: it cannot be called stale.
    assert decide(liveness.Facts("running", host="there", pid=5)) == ("running", None)
    # A reader on a system without /proc checks with kill(pid, 0) alone.
    assert decide(liveness.Facts("running", host="here", pid=5, last_sign=999.0), {},
                  machine=None) == ("crashed", "process 5 is gone")


def test_probe_without_proc_uses_kill() -> None:
    assert liveness.probe(os.getpid(), machine=None) == liveness.Process(True)
    gone = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True).stdout.strip()
    assert liveness.probe(int(gone), machine=None).exists is False


@pytest.mark.skipif(not LINUX, reason="zombies are seen in /proc")
def test_a_zombie_is_gone() -> None:
    proc = subprocess.Popen([PYTHON, "-c", "pass"])
    machine = liveness.machine_id()
    # Not reaped yet: a zombie until wait(); wait for its state to say so.
    assert wait_for(lambda: open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1]
                      .split()[0] == "Z")
    assert liveness.probe(proc.pid, machine).exists is False
    proc.wait()


def test_short_reasons_and_durations() -> None:
    assert liveness.short_reason({"type": "torch.OutOfMemoryError",
                                  "message": "CUDA out of memory. Tried " + "x" * 100}) == \
        "OutOfMemoryError: CUDA out of memory. Tried " + "x" * 35 + "\u2026"
    assert liveness.short_reason({"type": "KeyboardInterrupt", "message": ""}) == \
        "KeyboardInterrupt"
    assert liveness.short_reason({"type": "SIGTERM", "signal": "SIGTERM"}) == "SIGTERM"
    assert liveness.short_reason(None) is None
    assert [liveness.human_duration(s) for s in (0, 44.6, 65, 3600 * 3 + 240, 86400 * 2 + 7200,
                                                 -5)] == \
        ["0s", "45s", "1m 05s", "3h 04m", "2d 02h", "-5s"]


def test_xp_now_must_be_a_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Run(tmp_path, "r", flush_seconds=0):
        pass
    monkeypatch.setenv("XP_NOW", "yesterday")
    result = CliRunner().invoke(cli, ["runs", "--runs", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == "Error: XP_NOW='yesterday': expected unix seconds, e.g. 1767225600\n"

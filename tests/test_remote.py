"""Runs on object storage (xpcli.remote): writing segments, reading them incrementally,
killed writers, many hosts at once, and the same answers as a local folder. Against a
local S3-compatible server (moto's standalone server) started here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("obstore", reason="the s3 extra (obstore) is not installed")
pytest.importorskip("moto.server", reason="moto[server] (dev extra) is not installed")

from conftest import PYTHON, ROOT, T0, wait_for, write_tiny  # noqa: E402
from s3_helpers import (  # noqa: E402
    BUCKET,
    StallingProxy,
    download,
    files_under,
    moto_server,
    s3_env,
)

from xpcli import Run, load, remote  # noqa: E402
from xpcli.cache import cache_home  # noqa: E402
from xpcli.cli import cli  # noqa: E402
from xpcli.dataset import load as load_at  # noqa: E402


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A fresh runs URL on the local server; the environment points at it."""
    for key, value in s3_env(endpoint).items():
        monkeypatch.setenv(key, value)
    return f"s3://{BUCKET}/{request.node.name.replace('[', '-').replace(']', '')}"


def _objects(url: str) -> dict[str, dict]:
    import obstore

    store = remote.open_store(url)
    return {m["path"]: m for batch in obstore.list(store) for m in batch}


def _xp(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


# -- reading like a folder -----------------------------------------------------------------


def test_a_runs_url_answers_as_the_same_runs_in_a_local_folder(s3: str, tmp_path: Path) -> None:
    write_tiny(tmp_path / "runs")
    write_tiny(s3)  # type: ignore[arg-type]  # Run takes a URL as well as a folder
    for args in (["select", "-p", "lr,seed", "-m", "f1:lang=*,loss@min", "--format", "csv"],
                 ["group", "--by", "lr", "-m", "f1:lang=en@max", "--format", "csv"],
                 ["aggregate", "f1:lang=*", "--by", "lr", "--format", "csv"],
                 ["metrics", "--format", "csv"]):
        local = _xp("--runs", str(tmp_path / "runs"), *args)
        assert _xp("--runs", s3, *args) == local, args
    # The numbers themselves, worked out by hand from write_tiny: a's last f1 de/en are
    # 0.25/0.75 and its smallest loss 1.5; b logged only f1 en 0.5.
    rows = _xp("--runs", s3, "select", "-p", "lr", "-m", "f1:lang=*,loss@min", "--format",
               "json")
    table = {row["run"]: row for row in json.loads(rows)}
    assert table["a"]["f1[lang=de]"] == 0.25 and table["a"]["f1[lang=en]"] == 0.75
    assert table["a"]["loss@min"] == 1.5
    assert table["b"]["f1[lang=en]"] == 0.5 and table["b"]["f1[lang=de]"] is None
    runs = {row["run"]: row for row in load(s3).runs.collect().iter_rows(named=True)}
    assert runs["a"]["status"] == "finished" and runs["b"]["status"] == "failed"


def test_each_flush_is_one_new_object_named_by_writer_and_sequence(s3: str) -> None:
    run = Run(s3, "r1", params={"lr": 1}, time=T0, flush_seconds=0)
    run.track(1.0, "loss", step=0, time=T0)
    run.flush()
    run.track(2.0, "loss", step=1, time=T0 + 1)
    run.close(time=T0 + 2)
    names = sorted(_objects(s3))
    assert len(names) == 3 and all(n.startswith("r1/") for n in names)
    writers = {n.split("/")[1].rsplit("-", 1)[0] for n in names}
    assert len(writers) == 1
    assert [n.rsplit("-", 1)[1] for n in names] == ["00000000.jsonl", "00000001.jsonl",
                                                   "00000002.jsonl"]
    points = load(s3).points.sort("step").collect()
    assert points.get_column("value").to_list() == [1.0, 2.0]


def test_a_resumed_run_on_object_storage_is_running_again_with_its_first_start(s3: str) -> None:
    Run(s3, "r1", time=T0, flush_seconds=0).close(time=T0 + 1)
    again = Run(s3, "r1", time=T0 + 100, flush_seconds=0)
    again.track(1.0, "loss", time=T0 + 101)
    again.close(time=T0 + 102)
    row = load(s3).runs.collect().row(0, named=True)
    assert row["status"] == "finished"
    assert row["created"].timestamp() == T0 and row["resumed"].timestamp() == T0 + 100


def test_the_reader_downloads_only_new_or_changed_objects(s3: str) -> None:
    run = Run(s3, "r1", time=T0, flush_seconds=0)
    for step in range(3):
        run.track(float(step), "loss", step=step, time=T0 + step)
        run.flush()
    first = remote.sync(s3, cache_home())
    assert (first.listed, first.downloaded) == (4, 4)
    assert remote.sync(s3, cache_home()).downloaded == 0
    run.track(3.0, "loss", step=3, time=T0 + 3)
    run.flush()
    second = remote.sync(s3, cache_home())
    assert (second.listed, second.downloaded) == (5, 1)
    assert load(s3).points.collect().get_column("value").sort().to_list() == [0, 1, 2, 3]
    # An object replaced by hand (new ETag) is downloaded again; one deleted is dropped.
    import obstore

    store = remote.open_store(s3)
    names = sorted(_objects(s3))
    line = json.dumps({"kind": "point", "run": "r1", "name": "loss", "step": 1,
                       "value": 10.0, "time": T0 + 1}) + "\n"
    obstore.put(store, names[2], line.encode())
    obstore.delete(store, names[3])
    third = remote.sync(s3, cache_home())
    assert (third.downloaded, third.removed) == (1, 1)
    assert load(s3).points.collect().get_column("value").sort().to_list() == [0, 3, 10]
    run.close()


def test_a_load_after_new_segments_parses_only_those(s3: str) -> None:
    run = Run(s3, "r1", time=T0, flush_seconds=0)
    run.track(1.0, "loss", step=0, time=T0)
    run.flush()
    assert load(s3).points.collect().height == 1
    mirror = Path(remote.sync(s3, cache_home()).folder)
    before = {p: p.stat().st_ino for p in mirror.rglob("*.jsonl")}
    run.track(2.0, "loss", step=1, time=T0 + 1)
    run.close()
    assert load(s3).points.collect().height == 2
    after = {p: p.stat().st_ino for p in mirror.rglob("*.jsonl")}
    assert all(after[p] == ino for p, ino in before.items())  # not downloaded again
    assert len(after) == len(before) + 1


def test_the_heartbeat_object_is_the_runs_last_sign_of_life(s3: str) -> None:
    run = Run(s3, "r1", time=T0, flush_seconds=0.05, heartbeat_seconds=1)
    try:
        assert wait_for(lambda: "r1/" + run._segments.writer + ".alive" in _objects(s3))
        objects = _objects(s3)
        beat = objects["r1/" + run._segments.writer + ".alive"]["last_modified"].timestamp()
        # Judged one second after the beat, however long this machine takes to get here.
        row = load_at(s3, now=beat + 1).runs.collect().row(0, named=True)
        assert row["status"] == "running"
        assert row["last_activity"].timestamp() >= beat
    finally:
        run.close()


# -- bad input and missing pieces ---------------------------------------------------------


def test_without_obstore_a_url_is_a_one_line_error(s3: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "obstore.store", None)
    result = CliRunner().invoke(cli, ["--runs", s3, "runs"])
    assert result.exit_code == 2
    assert "pip install 'xpcli[s3]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(Exception, match=r"xpcli\[s3\]"):
        Run(s3, "r1")


def test_an_empty_prefix_and_a_missing_bucket_are_one_line_errors(s3: str) -> None:
    result = CliRunner().invoke(cli, ["--runs", s3, "runs"])
    assert result.exit_code == 1
    assert f"no run files (*.jsonl, *.jsonl.gz, *.parquet) under {s3}" in result.stderr
    result = CliRunner().invoke(cli, ["--runs", "s3://no-such-bucket-xp/p", "runs"])
    assert result.exit_code == 1 and "cannot list s3://no-such-bucket-xp/p" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = CliRunner().invoke(cli, ["--runs", "s3://", "runs"])
    assert result.exit_code == 2 and "not a runs URL" in result.stderr


def test_an_object_name_that_would_leave_the_mirror_is_a_one_line_error(
        s3: str, endpoint: str) -> None:
    import boto3

    write_tiny(s3)  # type: ignore[arg-type]
    prefix = s3.split("/", 3)[3]
    boto3.client("s3", endpoint_url=endpoint).put_object(
        Bucket=BUCKET, Key=f"{prefix}/x/../../escape.jsonl", Body=b"{}\n")
    result = CliRunner().invoke(cli, ["--runs", s3, "runs"])
    assert result.exit_code == 1
    assert f"cannot list {s3}" in result.stderr and "escape.jsonl" in result.stderr
    assert "rename or remove that object" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(Path(os.environ["XP_CACHE_DIR"]).rglob("escape.jsonl"))


def test_hidden_objects_are_skipped_as_hidden_files_are(s3: str) -> None:
    import obstore

    write_tiny(s3)  # type: ignore[arg-type]
    obstore.put(remote.open_store(s3), ".trash/a.jsonl", b"not json\n")
    dataset = load(s3)
    assert not dataset.diagnostics.items
    assert sorted(dataset.runs.collect().get_column("run").to_list()) == ["a", "b"]


def test_a_torn_line_in_an_object_is_reported_by_its_url(s3: str) -> None:
    import obstore

    write_tiny(s3)  # type: ignore[arg-type]
    obstore.put(remote.open_store(s3), "c/extra.jsonl",
                b'{"kind":"point","run":"c","name":"f1","value":1.0}\n{"kind":"poi')
    dataset = load(s3)
    assert [str(d) for d in dataset.diagnostics.items if d.kind == "torn"] == [
        f"{s3}/c/extra.jsonl:2: torn last line (file cut while being written); skipped"]


# -- killed writers and many hosts ----------------------------------------------------------

_WRITER = """
import sys
from xpcli import Run
url, run_id, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
run = Run(url, run_id, params={"lr": 0.1}, flush_seconds=0)
print("open", flush=True)
for batch in range(batches):
    for i in range(50):
        run.track(float(batch * 50 + i), "loss", step=batch * 50 + i)
    run.flush()
    print("flushed", batch, flush=True)
run.close()
print("closed", flush=True)
"""


@pytest.mark.slow
def test_a_writer_killed_mid_upload_loses_only_that_upload(s3: str, endpoint: str) -> None:
    proxy = StallingProxy(endpoint, b"-00000003.jsonl")  # the upload of the third batch
    try:
        env = {**os.environ, **s3_env(proxy.endpoint)}
        proc = subprocess.Popen([PYTHON, "-c", _WRITER, s3, "killed", "10"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        flushed = []
        for line in proc.stdout:
            if line.startswith("flushed"):
                flushed.append(int(line.split()[1]))
            if len(flushed) == 2:
                break
        assert wait_for(proxy.stalled.is_set)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        flushed += [int(line.split()[1]) for line in proc.stdout if line.startswith("flushed")]
    finally:
        proxy.close()
    assert flushed == [0, 1]  # batch 2 was being uploaded when the writer died
    names = sorted(_objects(s3))
    assert [n.rsplit("-", 1)[1] for n in names] == ["00000000.jsonl", "00000001.jsonl",
                                                   "00000002.jsonl"]
    dataset = load(s3)
    steps = dataset.points.collect().get_column("step").sort().to_list()
    assert steps == list(range(100))  # every flushed point, nothing of the lost upload
    assert not [d for d in dataset.diagnostics.items if d.kind in ("torn", "malformed")]
    assert dataset.runs.collect().get_column("status").to_list() == ["crashed"]


_HOST_WRITER = """
import sys
from xpcli import Run
url, me = sys.argv[1], int(sys.argv[2])
sys.stdin.readline()  # all writers start together
own = [Run(url, f"h{me}-r{k}", params={"rank": me, "k": k}, flush_seconds=0.01) for k in range(2)]
shared = Run(url, "shared", params={"lr": 0.1}, flush_seconds=0.01)
for step in range(300):
    for k, run in enumerate(own):
        run.track(float(me * 1000 + k * 100 + step % 100), "loss", step=step)
    shared.track(float(me), "part", step=step, context={"writer": str(me)})
    if step % 60 == 0:
        shared.flush()
for run in own + [shared]:
    run.close()
"""


@pytest.mark.slow
def test_eight_writers_on_eight_hosts_lose_and_duplicate_nothing(s3: str) -> None:
    procs = []
    for me in range(8):
        env = {**os.environ, "XP_HOST": f"host-{me}"}
        procs.append(subprocess.Popen([PYTHON, "-c", _HOST_WRITER, s3, str(me)], cwd=ROOT,
                                      env=env, stdin=subprocess.PIPE, text=True))
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    assert [proc.wait(timeout=600) for proc in procs] == [0] * 8
    dataset = load(s3)
    assert not dataset.diagnostics.items
    points = dataset.points.collect()
    own = points.filter(points["name"] == "loss")
    counts = Counter(zip(own["run"].to_list(), own["step"].to_list()))
    assert len(counts) == 16 * 300 and set(counts.values()) == {1}
    # Each value is the one its writer logged, recomputed here from the writer's rule.
    for run, step, value in own.select("run", "step", "value").iter_rows():
        me, k = int(run[1]), int(run.split("-r")[1])
        assert value == me * 1000 + k * 100 + step % 100
    shared = points.filter(points["name"] == "part")
    by_writer = Counter(shared["writer"].to_list())
    assert by_writer == {str(me): 300 for me in range(8)}
    assert all(float(w) == v for w, v in shared.select("writer", "value").iter_rows())
    runs = dataset.runs.collect()
    hosts = dict(zip(runs["run"].to_list(), runs["host"].to_list()))
    assert all(hosts[f"h{me}-r{k}"] == f"host-{me}" for me in range(8) for k in range(2))
    assert set(runs["status"].to_list()) == {"finished"}
    # The shared run: each of the 8 writers wrote objects of its own, none overwritten.
    writers = {name.split("/")[1].rsplit("-", 1)[0] for name in _objects(s3)
               if name.startswith("shared/")}
    assert len(writers) == 8


def test_xp_tail_follows_a_run_on_object_storage_segment_by_segment(s3: str) -> None:
    from xpcli.follow import Tail

    run = Run(s3, "r1", time=T0, flush_seconds=0)
    run.track(1.0, "loss", step=0, time=T0)
    run.flush()
    tail = Tail(s3, "r1")
    assert [p["value"] for p in tail.start(5)] == [1.0]
    assert tail.poll() == []
    run.track(2.0, "loss", step=1, time=T0 + 1)
    run.flush()
    run.track(3.0, "loss", step=2, time=T0 + 2)
    run.close()
    assert [p["value"] for p in tail.poll()] == [2.0, 3.0]
    assert tail.ended and tail.status == "finished"
    with pytest.raises(Exception, match="no file r2.jsonl under"):
        Tail(s3, "r2")


def test_xp_import_into_a_url_is_refused_instead_of_making_a_local_folder(
        s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "m.csv"
    source.write_text("run,step,loss\nr1,0,1.0\n")
    result = CliRunner().invoke(cli, ["import", "table", str(source), "--into", s3])
    assert result.exit_code == 2
    assert "xp import writes to a local folder" in result.stderr
    assert list(tmp_path.iterdir()) == [source]


@pytest.mark.parametrize("args", [["compact", "--runs", "s3://bucket/runs"],
                                  ["--runs", "s3://bucket/runs", "compact"]])
def test_xp_compact_of_a_runs_url_is_refused_by_name(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --runs s3://bucket/runs: xp compact rewrites the files of a local runs "
        "directory; on object storage each flush is already one immutable object "
        "(docs/guarantees.md)")


def test_xp_cache_shows_and_clears_the_mirror_of_a_runs_url(s3: str) -> None:
    write_tiny(s3)  # type: ignore[arg-type]
    load(s3)
    mirror = remote.mirror_home(s3, cache_home())
    shown = _xp("cache", "info", "--runs", s3)
    assert f"mirror of {s3}: {mirror} (" in shown and "not made yet" not in shown
    assert "not built yet" not in shown  # the mirror folder's own cache
    result = CliRunner().invoke(cli, ["cache", "clear", "--runs", s3])
    assert result.exit_code == 0 and f"removed {mirror}" in result.stderr
    assert not mirror.exists()
    assert remote.sync(s3, cache_home()).downloaded == 4  # everything again


# -- uploads outside the run's lock ---------------------------------------------------------


class _GatedStore:
    """An in-memory object store for :class:`xpcli.Run`: once :attr:`gated`, each
    segment upload announces itself (:attr:`uploading`) and waits for :attr:`release`;
    :attr:`fail` makes the next upload fail instead (after storing nothing)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.calls: list[tuple[str, bytes, str]] = []
        self.gated = False
        self.fail = False
        self.uploading = threading.Event()
        self.release = threading.Event()
        self.failed = threading.Event()

    def put(self, store: object, key: str, data: bytes, mode: str = "overwrite") -> None:
        from obstore.exceptions import AlreadyExistsError

        if key.endswith(remote.ALIVE):
            self.objects[key] = b""
            return
        self.calls.append((key, bytes(data), mode))
        if self.fail:
            self.fail = False
            self.failed.set()
            raise OSError("connection reset")
        if self.gated:
            self.uploading.set()
            assert self.release.wait(120), "the test never released the upload"
        if mode == "create" and key in self.objects:
            raise AlreadyExistsError(key)
        self.objects[key] = bytes(data)

    def list(self, store: object, prefix: str | None = None, chunk_size: int = 50
             ) -> Iterator[list[dict]]:
        yield [{"path": k} for k in sorted(self.objects) if k.startswith(prefix or "")]

    def lines(self) -> list[dict]:
        """The records of every segment, segments in name order."""
        text = b"".join(self.objects[k] for k in sorted(self.objects) if k.endswith(".jsonl"))
        return [json.loads(line) for line in text.decode().splitlines()]


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> _GatedStore:
    import obstore

    store = _GatedStore()
    monkeypatch.setattr(remote, "open_store", lambda url: object())
    monkeypatch.setattr(obstore, "put", store.put)
    monkeypatch.setattr(obstore, "list", store.list)
    return store


def test_track_goes_on_while_an_upload_stalls_and_segments_keep_their_order(
        gated: _GatedStore) -> None:
    run = Run("s3://bucket/runs", "r1", flush_bytes=300, flush_seconds=3600,
              heartbeat_seconds=0, catch_sigterm=False)
    gated.gated = True
    step = 0
    while not gated.uploading.is_set():  # a full buffer goes to the flush thread
        run.track(float(step), "loss", step=step)
        step += 1
        assert step < 10_000
    tracked = threading.Event()

    def more() -> None:
        for k in range(step, step + 2000):
            run.track(float(k), "loss", step=k)
        tracked.set()

    threading.Thread(target=more, daemon=True).start()
    # Were the upload under the run's lock, track would wait for the store: never here.
    assert tracked.wait(120), "track waited for a stalled upload"
    assert len(gated.calls) == 2  # the run record, then the stalled segment: one at a time
    gated.release.set()
    run.close()
    keys = [key for key, _, _ in gated.calls]
    writer = run._segments.writer
    assert keys == [f"r1/{writer}-{n:08d}.jsonl" for n in range(len(keys))]
    assert {mode for _, _, mode in gated.calls} == {"create"}  # put-if-absent, every one
    records = gated.lines()
    assert [r["step"] for r in records if r["kind"] == "point"] == list(range(step + 2000))
    assert records[-1]["kind"] == "run" and records[-1]["meta"]["status"] == "finished"


def test_track_waits_for_the_store_once_the_sealed_segments_pass_the_bound(
        gated: _GatedStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_SEALED_BYTES of segments waiting behind a stalled upload, ``track``
    uploads itself, so it waits for the store: memory stays bounded, nothing is lost."""
    import xpcli.writer as writer_module

    monkeypatch.setattr(writer_module, "MAX_SEALED_BYTES", 3000)
    run = Run("s3://bucket/runs", "r3", flush_bytes=300, flush_seconds=3600,
              heartbeat_seconds=0, catch_sigterm=False)
    gated.gated = True
    tracker = threading.current_thread()
    waiting = threading.Event()
    most = [0]
    real = run._upload

    def upload() -> None:
        if threading.current_thread() is tracker:  # back-pressure: track uploads itself
            most[0] = max(most[0], sum(map(len, run._sealed)))
            waiting.set()
        real()

    monkeypatch.setattr(run, "_upload", upload)
    done = threading.Event()

    def track() -> None:
        nonlocal tracker
        tracker = threading.current_thread()
        for k in range(2000):
            run.track(float(k), "loss", step=k)
        done.set()

    threading.Thread(target=track, daemon=True).start()
    assert waiting.wait(120), "track never waited though the store stalled"
    assert not done.is_set()  # held while the upload is
    assert 3000 < most[0] <= 3000 + 2 * 300 + 200  # the bound, passed by one segment
    gated.release.set()
    assert done.wait(120)
    run.close()
    records = gated.lines()
    assert [r["step"] for r in records if r["kind"] == "point"] == list(range(2000))


def test_a_failed_background_upload_is_sent_again_first_under_its_name(
        gated: _GatedStore) -> None:
    from xpcli.errors import WriteError

    run = Run("s3://bucket/runs", "r2", flush_bytes=300, flush_seconds=3600,
              heartbeat_seconds=0, catch_sigterm=False)
    gated.fail = True
    step = 0
    with pytest.raises(WriteError, match="connection reset"):
        while True:  # until the flush thread's upload failed, and the next call says so
            step += 1
            run.track(float(step - 1), "loss", step=step - 1)  # recorded, even if it raises
            if gated.failed.is_set():
                assert wait_for(lambda: run._error is not None)
            assert step < 1_000_000
    run.flush()
    run.close()
    failed = gated.calls[1]
    again = [call for call in gated.calls[2:] if call[0] == failed[0]]
    assert [call[1] for call in again] == [failed[1]]  # sent again once, the same bytes
    records = gated.lines()
    assert [r["step"] for r in records if r["kind"] == "point"] == list(range(step))
    assert sorted(gated.objects) == sorted({key for key, _, _ in gated.calls})


# -- xp compact --to URL --------------------------------------------------------------------


def test_xp_compact_to_a_url_writes_the_dataset_a_folder_gets(
        s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import obstore
    import polars as pl
    from conftest import SAMPLE_RUNS

    from xpcli.export import MANIFEST, export

    local = tmp_path / "local"
    export(load_at(str(SAMPLE_RUNS)), str(local), buckets=3)
    export(load_at(str(SAMPLE_RUNS)), s3, buckets=3)
    keys = download(s3, tmp_path / "down")
    assert keys == files_under(local) and len(keys) == 8  # 3 + 3 buckets, the runs, the manifest
    for key in keys - {MANIFEST}:
        assert pl.read_parquet(tmp_path / "down" / key).equals(pl.read_parquet(local / key))
    written = json.loads((tmp_path / "down" / MANIFEST).read_text())
    assert written["buckets"] == 3 and written["points"] == json.loads(
        (local / MANIFEST).read_text())["points"]

    ops: list[tuple[str, str]] = []
    put, delete = obstore.put, obstore.delete

    def spy_put(store: object, key: str, data: bytes, **kwargs: object) -> object:
        ops.append(("put", key))
        return put(store, key, data, **kwargs)  # type: ignore[arg-type]

    def spy_delete(store: object, key: str) -> object:
        ops.append(("delete", key))
        return delete(store, key)  # type: ignore[arg-type]

    monkeypatch.setattr(obstore, "put", spy_put)
    monkeypatch.setattr(obstore, "delete", spy_delete)
    # Written again in one bucket (240 runs): the manifest goes first and comes back last,
    # the buckets the new dataset lacks are deleted before it does.
    assert "wrote 240 runs" in CliRunner().invoke(
        cli, ["compact", "--runs", str(SAMPLE_RUNS), "--to", s3], catch_exceptions=False).stderr
    assert ops[0] == ("delete", MANIFEST) and ops[-1] == ("put", MANIFEST)
    assert sorted(key for op, key in ops if op == "delete")[1:] == [
        f"{table}/bucket={n}/part-0.parquet" for table in ("points", "series") for n in (1, 2)]
    monkeypatch.setattr(obstore, "put", put)
    monkeypatch.setattr(obstore, "delete", delete)
    single = tmp_path / "single"
    export(load_at(str(SAMPLE_RUNS)), str(single))
    assert download(s3, tmp_path / "again") == files_under(single)


def test_xp_compact_to_a_url_after_an_interrupted_upload_runs_again(
        s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upload that fails after some tables went up leaves them without the manifest;
    the error says to run the command again, and running it again completes the dataset."""
    import obstore
    from conftest import SAMPLE_RUNS

    from xpcli.export import MANIFEST, export

    put = obstore.put
    sent: list[str] = []

    def failing_put(store: object, key: str, data: bytes, **kwargs: object) -> object:
        if sent and key != MANIFEST:
            raise OSError("connection reset by peer")
        sent.append(key)
        return put(store, key, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(obstore, "put", failing_put)
    args = ["compact", "--runs", str(SAMPLE_RUNS), "--to", s3]
    failed = CliRunner().invoke(cli, args)
    assert failed.exit_code != 0
    assert f"the dataset there is incomplete until `xp compact --to {s3}` runs again" in (
        failed.stderr)
    left = set(_objects(s3))
    assert left == set(sent) and MANIFEST not in left and left  # tables, no manifest
    monkeypatch.setattr(obstore, "put", put)
    again = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert again.exit_code == 0, again.stderr
    single = tmp_path / "single"
    export(load_at(str(SAMPLE_RUNS)), str(single))
    assert download(s3, tmp_path / "down") == files_under(single)


def test_xp_compact_to_a_url_holding_other_objects_is_refused(s3: str) -> None:
    import obstore
    from conftest import SAMPLE_RUNS

    obstore.put(remote.open_store(s3), "notes/keep.txt", b"mine")
    result = CliRunner().invoke(cli, ["compact", "--runs", str(SAMPLE_RUNS), "--to", s3])
    assert result.exit_code == 2
    assert f"--to {s3}: holds objects and is not an xp dataset" in result.stderr
    assert set(_objects(s3)) == {"notes/keep.txt"}

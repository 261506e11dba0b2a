"""The incremental cache: parsed once, appends parsed alone, rewrites detected, safe to share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from xpcli import Run, cache, load

T0 = 1767225600.0


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("XP_CACHE_DIR", str(folder))
    monkeypatch.delenv("XP_NO_CACHE", raising=False)
    return folder


def write_run(runs: Path, run: str, values: list[float], start: int = 0) -> Run:
    writer = Run(runs, run, params={"lr": 0.1}, time=T0, flush_seconds=0)
    for i, v in enumerate(values, start=start):
        writer.track(v, "m", step=i, time=T0 + i)
    writer.flush()
    return writer


def values(runs: Path) -> list[float]:
    ds = load(runs)
    return ds.points.sort("run", "step").collect().get_column("value").to_list()


def manifest(folder: Path) -> dict:
    """The cache's state as dicts, read from its index."""
    (path,) = list(folder.rglob(cache.INDEX))
    index = cache._Index.read(path)
    assert index is not None
    return index.manifest()


def test_second_read_is_served_from_the_cache(tmp_path: Path, own_cache: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0, 2.0, 3.0]).close(time=T0 + 9)
    assert values(runs) == [1.0, 2.0, 3.0]
    first = manifest(own_cache)
    assert values(runs) == [1.0, 2.0, 3.0]
    assert manifest(own_cache) == first  # nothing re-parsed, nothing rewritten


def test_appended_lines_are_parsed_alone(tmp_path: Path, own_cache: Path) -> None:
    runs = tmp_path / "runs"
    writer = write_run(runs, "a", [1.0, 2.0])
    assert values(runs) == [1.0, 2.0]
    writer.track(3.0, "m", step=2, time=T0 + 2)
    writer.flush()
    assert values(runs) == [1.0, 2.0, 3.0]
    entry = manifest(own_cache)["files"]["a.jsonl"]
    assert len(entry["segments"]) == 2 or entry["offset"] == os.path.getsize(runs / "a.jsonl")
    writer.close(time=T0 + 9)
    ds = load(runs)
    assert ds.runs.collect().get_column("status").to_list() == ["finished"]


def test_rewritten_and_truncated_files_are_read_again(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0, 2.0, 3.0]).close(time=T0 + 9)
    assert values(runs) == [1.0, 2.0, 3.0]
    path = runs / "a.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]))  # run record + first point
    assert values(runs) == [1.0]
    path.write_bytes(b"".join(lines).replace(b'"value":2.0', b'"value":5.0'))
    assert values(runs) == [1.0, 5.0, 3.0]


def test_deleted_files_leave_the_result(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0]).close(time=T0 + 9)
    write_run(runs, "b", [2.0]).close(time=T0 + 9)
    assert values(runs) == [1.0, 2.0]
    (runs / "b.jsonl").unlink()
    assert values(runs) == [1.0]


def test_torn_tail_is_not_cached_and_is_read_once_complete(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0]).close(time=T0 + 9)
    path = runs / "a.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"kind":"point","run":"a","name":"m","val')
    ds = load(runs)
    assert [d.kind for d in ds.diagnostics.items] == ["torn"]
    assert ds.diagnostics.items[0].line == 4
    with open(path, "ab") as fh:
        fh.write(b'ue":7.0,"step":5}\n')
    ds = load(runs)
    assert not ds.diagnostics.items
    assert ds.points.sort("step").collect().get_column("value").to_list() == [1.0, 7.0]


def test_malformed_lines_are_reported_on_every_read(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "x.jsonl").write_bytes(
        b'{"kind":"point","run":"x","name":"m","value":1}\n{oops\n'
        b'{"kind":"point","run":"x","name":"m","value":2}\n'
    )
    for _ in range(2):
        ds = load(runs)
        assert [(d.line, d.kind) for d in ds.diagnostics.items] == [(2, "malformed")]
        assert ds.points.collect().height == 2


def test_many_appends_are_merged_and_stay_exact(tmp_path: Path, own_cache: Path) -> None:
    runs = tmp_path / "runs"
    writer = write_run(runs, "a", [0.0])
    for i in range(1, cache.MAX_SEGMENTS + 4):
        writer.track(float(i), "m", step=i, time=T0 + i)
        writer.flush()
        assert values(runs) == [float(v) for v in range(i + 1)]
    assert len(manifest(own_cache)["segments"]) <= cache.MAX_SEGMENTS


def test_cache_off_gives_the_same_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0, float("nan"), 3.0]).close(time=T0 + 9)
    cached = load(runs)
    monkeypatch.setenv("XP_NO_CACHE", "1")
    plain = load(runs)
    a = cached.points.sort("step").collect()
    b = plain.points.sort("step").collect()
    assert a.equals(b)
    assert cached.runs.collect().equals(plain.runs.collect())


def test_unwritable_cache_folder_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0]).close(time=T0 + 9)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XP_CACHE_DIR", str(blocker / "sub"))
    assert values(runs) == [1.0]


@pytest.mark.slow
def test_concurrent_readers_and_a_live_writer(tmp_path: Path, own_cache: Path) -> None:
    """Readers in several processes while a writer appends: each sees a prefix, never junk."""
    runs = tmp_path / "runs"
    runs.mkdir()
    script = (
        "import sys, polars as pl, xpcli\n"
        "counts = []\n"
        "for _ in range(15):\n"
        "    ds = xpcli.load(sys.argv[1])\n"
        "    vals = ds.points.sort('step').collect().get_column('value').to_list()\n"
        "    assert vals == [float(i) for i in range(len(vals))], vals[:5]\n"
        "    counts.append(len(vals))\n"
        "assert counts == sorted(counts), counts\n"
        "print(counts[-1])\n"
    )
    writer = Run(runs, "live", time=T0, flush_bytes=200, flush_seconds=0)
    writer.track(0.0, "m", step=0, time=T0)
    writer.flush()
    env = {**os.environ, "XP_CACHE_DIR": str(own_cache)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(runs)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    step = 1
    while any(p.poll() is None for p in procs):
        writer.track(float(step), "m", step=step, time=T0 + step)
        step += 1
    writer.close(time=T0 + step)
    for proc in procs:
        out, err = proc.communicate()
        assert proc.returncode == 0, err.decode()[-2000:]
    assert values(runs) == [float(i) for i in range(step)]
    frame = load(runs).points.collect()
    assert frame.filter(pl.col("step").is_duplicated()).height == 0


def test_large_reads_are_cut_into_bounded_batches(
    tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch of about BATCH_BYTES is parsed on its own and appended to the update's
    one segment (its own row groups); the answer is the same."""
    import pyarrow.parquet as pq

    runs = tmp_path / "runs"
    for r in range(6):
        write_run(runs, f"r{r}", [float(r * 10 + i) for i in range(20)]).close(time=T0 + 99)
    monkeypatch.setattr(cache, "BATCH_BYTES", 3000)
    ds = load(runs)
    segments = manifest(own_cache)["segments"]
    assert len(segments) == 1
    (info,) = segments.values()
    (segment,) = own_cache.rglob(info["file"])
    assert pq.ParquetFile(segment).num_row_groups >= 3
    got = ds.points.sort("run", "step").collect().get_column("value").to_list()
    assert got == [float(r * 10 + i) for r in range(6) for i in range(20)]
    assert ds.runs.collect().get_column("points").to_list() == [20] * 6
    series = ds.series.sort("run")
    assert series.select("run", "name", "points").rows() == [(f"r{r}", "m", 20) for r in range(6)]
    monkeypatch.setattr(cache, "MAX_SEGMENTS", 1)
    (runs / "r0.jsonl").unlink()  # a change: the update merges every segment into one
    ds = load(runs)
    assert len(manifest(own_cache)["segments"]) == 1
    got = ds.points.sort("run", "step").collect().get_column("value").to_list()
    assert got == [float(r * 10 + i) for r in range(1, 6) for i in range(20)]


def test_writer_output_takes_the_fast_path(tmp_path: Path) -> None:
    """Clean files must parse in one Polars call; the careful path is for bad lines only."""
    from xpcli import records

    runs = tmp_path / "runs"
    writer = Run(runs, "a", params={"lr": 0.5, "opt": {"b": 1.0}}, time=T0, flush_seconds=0)
    for i in range(5):
        writer.track(float(i), "f1", epoch=i, context={"lang": "de", "split": "eval"},
                     time=T0 + i)
        writer.track(float("nan"), "loss", step=i, time=T0 + i)
    writer.close(time=T0 + 9)
    body = (runs / "a.jsonl").read_bytes()
    frame = records.fast_frame(body)
    assert frame is not None and frame.height == body.count(b"\n")
    contexts = frame.get_column("context").drop_nulls().unique().to_list()
    assert len(contexts) == 1


def test_built_tables_are_reused_until_something_changes(tmp_path: Path, own_cache: Path) -> None:
    runs = tmp_path / "runs"
    Run(runs, "a", params={"lr": 1}, time=T0, flush_seconds=0).close(time=T0 + 1)
    Run(runs, "b", params={"lr": True}, time=T0, flush_seconds=0).close(time=T0 + 1)
    first = load(runs)
    assert [d.kind for d in first.diagnostics.items] == ["mixed-types"]
    assert len(list(own_cache.rglob("built-*.json"))) == 1
    again = load(runs)  # served from the built tables, diagnostics included
    assert again.runs.collect().equals(first.runs.collect())
    assert [str(d) for d in again.diagnostics.items] == [str(d) for d in first.diagnostics.items]
    assert str(again.diagnostics.items[0]).startswith("param 'lr' has mixed types")
    writer = Run(runs, "c", params={"lr": 2}, time=T0, flush_seconds=0)
    writer.track(1.0, "m", step=0, time=T0)
    writer.close(time=T0 + 1)
    third = load(runs)
    assert third.runs.collect().get_column("run").to_list() == ["a", "b", "c"]
    assert third.series.get_column("run").to_list() == ["c"]


def test_cache_clear_removes_only_cache_folders(tmp_path: Path, own_cache: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """XP_CACHE_DIR pointing at a folder with other things: --all keeps them."""
    from click.testing import CliRunner

    from xpcli.cli import cli

    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0]).close(time=T0 + 9)
    load(runs)
    keep = own_cache / "notes.txt"
    keep.write_text("mine")
    other = own_cache / "0123456789abcdef"  # looks like a cache name, holds no manifest
    other.mkdir()
    result = CliRunner().invoke(cli, ["cache", "clear", "--all"], catch_exceptions=False)
    assert result.exit_code == 0 and "removed" in result.stderr
    assert keep.read_text() == "mine" and other.is_dir()
    assert not list(own_cache.rglob(cache.INDEX))
    result = CliRunner().invoke(cli, ["cache", "clear", "--runs", str(runs)],
                                catch_exceptions=False)
    assert "no cache to clear" in result.stderr


# -- rewrites the stat cannot see ---------------------------------------------------------

#: Eight points, values chosen so that max and mean tell the stale answer from the true one.
EDIT_VALUES = [0.1, 0.2, 0.3, 0.4, 0.25, 0.15, 0.35, 0.05]


def max_and_mean(runs: Path) -> tuple[float, float]:
    """``xp select -m m@max -m m@mean`` for the one run, as numbers."""
    from click.testing import CliRunner

    from xpcli.cli import cli

    result = CliRunner().invoke(cli, ["select", "--runs", str(runs), "-m", "m@max",
                                      "-m", "m@mean", "--format", "json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    return row["m@max"], row["m@mean"]


def test_an_edit_in_the_middle_then_an_append_is_not_served_stale(tmp_path: Path) -> None:
    """The value of step 4 is changed in place (0.25 -> 0.95, same length, far from the
    head and the old end), then a point is appended: the whole file is read again."""
    runs = tmp_path / "runs"
    writer = write_run(runs, "a", EDIT_VALUES)
    # Before: max 0.4, mean 1.8 / 8.
    assert max_and_mean(runs) == (pytest.approx(0.4), pytest.approx(1.8 / 8))
    path = runs / "a.jsonl"
    data = path.read_bytes()
    assert data.count(b'"value":0.25,') == 1
    at = data.index(b'"value":0.25,')
    assert 64 < at < len(data) - 64 - 16
    with open(path, "r+b") as fh:  # in place: same inode, same size
        fh.seek(at)
        fh.write(b'"value":0.95,')
    writer.track(0.5, "m", step=8, time=T0 + 8)
    writer.flush()
    # Truth: 0.1 + 0.2 + 0.3 + 0.4 + 0.95 + 0.15 + 0.35 + 0.05 + 0.5 = 3.0 over 9 points
    # (stale would be max 0.5, mean 2.3 / 9).
    assert max_and_mean(runs) == (pytest.approx(0.95), pytest.approx(3.0 / 9))


def test_a_same_size_rewrite_with_the_old_mtime_put_back_is_not_served_stale(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same inode, size and mtime after the rewrite: only the ctime shows it. (The racy
    window is set to zero so that the ctime alone has to catch it.)"""
    monkeypatch.setattr(cache, "RACY_NS", 0, raising=False)
    runs = tmp_path / "runs"
    write_run(runs, "a", EDIT_VALUES).close(time=T0 + 9)
    path = runs / "a.jsonl"
    before = os.stat(path)
    assert max_and_mean(runs) == (pytest.approx(0.4), pytest.approx(1.8 / 8))
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"value":0.25,', b'"value":0.95,'))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns)
    # Truth: 0.1 + 0.2 + 0.3 + 0.4 + 0.95 + 0.15 + 0.35 + 0.05 = 2.5 over 8 points.
    assert max_and_mean(runs) == (pytest.approx(0.95), pytest.approx(2.5 / 8))


def test_a_file_changed_just_before_a_read_is_checked_again(
        tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a file system whose times do not move (coarse timestamps: two writes in one
    tick), a file read right after it changed is not trusted by its times next time."""
    def frozen(info: os.stat_result) -> dict[str, int]:  # ctime reads as the mtime
        return {"dev": info.st_dev, "ino": info.st_ino, "size": info.st_size,
                "mtime_ns": info.st_mtime_ns, "ctime_ns": info.st_mtime_ns}

    monkeypatch.setattr(cache, "_identity", frozen)
    runs = tmp_path / "runs"
    write_run(runs, "a", EDIT_VALUES).close(time=T0 + 9)
    path = runs / "a.jsonl"
    before = os.stat(path)
    assert max_and_mean(runs) == (pytest.approx(0.4), pytest.approx(1.8 / 8))
    path.write_bytes(path.read_bytes().replace(b'"value":0.25,', b'"value":0.95,'))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert max_and_mean(runs) == (pytest.approx(0.95), pytest.approx(2.5 / 8))
    # A file whose times are long past the read is trusted without being opened.
    old = T0 - 3600
    os.utime(path, (old, old))
    assert max_and_mean(runs) == (pytest.approx(0.95), pytest.approx(2.5 / 8))
    entry = manifest(own_cache)["files"]["a.jsonl"]
    assert entry["mtime_ns"] < entry["seen_ns"] - cache.RACY_NS
    real_open = open
    opened: list[str] = []

    def watching(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watching)
    assert values(runs) == [0.1, 0.2, 0.3, 0.4, 0.95, 0.15, 0.35, 0.05]
    assert str(path) not in opened


# -- frames outlive the segments they were loaded from ----------------------------------

MERGE_IN_ANOTHER_PROCESS = r"""
import sys
import xpcli
from xpcli import cache
cache.MAX_SEGMENTS = 1      # the next update merges every segment into one
cache.GRACE_SECONDS = -1.0  # and deletes the merged-away segments at once
xpcli.load(sys.argv[1])
"""


def test_a_loaded_frame_stays_readable_after_another_process_merged_its_segments(
        tmp_path: Path, own_cache: Path) -> None:
    runs = tmp_path / "runs"
    writer = write_run(runs, "a", [1.0, 2.0])
    write_run(runs, "b", [5.0]).close(time=T0 + 9)
    first = load(runs)
    segments = {s["file"] for s in manifest(own_cache)["segments"].values()}
    writer.track(3.0, "m", step=2, time=T0 + 2)
    writer.close(time=T0 + 9)
    proc = subprocess.run([sys.executable, "-c", MERGE_IN_ANOTHER_PROCESS, str(runs)],
                          env={**os.environ, "XP_CACHE_DIR": str(own_cache)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (folder,) = [p for p in own_cache.iterdir() if p.is_dir()]
    assert not any((folder / name).exists() for name in segments)  # merged and deleted
    got = first.points.sort("run", "step").collect()
    assert got.get_column("value").to_list() == [1.0, 2.0, 5.0]  # the state it loaded
    assert values(runs) == [1.0, 2.0, 3.0, 5.0]


def test_a_loaded_frame_stays_readable_after_the_cache_is_cleared(tmp_path: Path,
                                                                  own_cache: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0, 2.0]).close(time=T0 + 9)
    runs_frame, points = load(runs)
    assert cache.clear(runs)
    assert points.collect().get_column("value").to_list() == [1.0, 2.0]
    assert runs_frame.collect().get_column("points").to_list() == [2]


def test_a_cache_that_vanishes_while_it_is_read_falls_back_to_the_sources(
        tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0, 2.0]).close(time=T0 + 9)
    assert values(runs) == [1.0, 2.0]
    real = cache.Cache._raw_data

    def cleared_meanwhile(self, manifest, files):  # noqa: ANN001, ANN202
        cache.clear(runs)  # `xp cache clear` in another shell, between two steps
        return real(self, manifest, files)

    monkeypatch.setattr(cache.Cache, "_raw_data", cleared_meanwhile)
    ds = load(runs)
    assert ds.points.collect().get_column("value").to_list() == [1.0, 2.0]
    assert not len(ds.diagnostics)


# -- bounded memory per file -------------------------------------------------------------


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_big_file_is_read_in_bounded_chunks(tmp_path: Path, use_cache: bool,
                                              monkeypatch: pytest.MonkeyPatch,
                                              read_log: Callable[[Path], Any]) -> None:
    """No read asks for more than CHUNK_BYTES (a 708 MB file was read whole: 5.2 GB),
    and lines cut by a chunk boundary, or bad, keep their numbers."""
    from xpcli import records

    if not use_cache:
        monkeypatch.setenv("XP_NO_CACHE", "1")
    runs = tmp_path / "runs"
    write_run(runs, "a", [float(i) for i in range(200)]).close(time=T0 + 999)
    path = runs / "a.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(150, b"{oops\n")
    path.write_bytes(b"".join(lines))
    monkeypatch.setattr(records, "CHUNK_BYTES", 1000, raising=False)
    log = read_log(runs)
    ds = load(runs)
    got = ds.points.sort("step").collect().get_column("value").to_list()
    assert got == [float(i) for i in range(200)]
    assert [(d.line, d.kind) for d in ds.diagnostics.items] == [(151, "malformed")]
    assert log.reads and all(0 < asked <= 1000 for _, asked, _, _ in log.reads), log.reads[:5]
    assert sum(got for _, _, got, _ in log.reads) >= path.stat().st_size


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_line_longer_than_the_limit_is_skipped_unheld(tmp_path: Path, use_cache: bool,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    from xpcli import records

    if not use_cache:
        monkeypatch.setenv("XP_NO_CACHE", "1")
    monkeypatch.setattr(records, "CHUNK_BYTES", 1000, raising=False)
    monkeypatch.setattr(records, "MAX_LINE_BYTES", 4000, raising=False)
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0, 2.0]).close(time=T0 + 9)
    path = runs / "a.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    huge = (b'{"kind":"point","run":"a","name":"m","value":9,"step":9,"context":{"x":"'
            + b"y" * 5000 + b'"}}\n')  # a valid record, but 5 kB
    path.write_bytes(b"".join(lines[:2]) + huge + b"".join(lines[2:]))
    ds = load(runs)
    assert ds.points.sort("step").collect().get_column("value").to_list() == [1.0, 2.0]
    (item,) = ds.diagnostics.items
    assert (item.line, item.kind) == (3, "malformed")
    assert "longer than" in item.message
    assert ds.runs.collect().get_column("status").to_list() == ["finished"]


def test_a_long_torn_tail_is_remembered_not_read_again(tmp_path: Path, own_cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       read_log: Callable[[Path], Any]
                                                       ) -> None:
    """A torn last line longer than MAX_LINE_BYTES (a 2 GB sparse file of one torn line)
    is read once; when it grows, only the new bytes are read (and the cached lines
    hashed), not the tail seen before."""
    from xpcli import records

    monkeypatch.setattr(records, "CHUNK_BYTES", 1000, raising=False)
    monkeypatch.setattr(records, "MAX_LINE_BYTES", 4000, raising=False)
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0, 2.0]).close(time=T0 + 9)
    path = runs / "a.jsonl"
    whole = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(b"\x00" * 6000)  # what a sparse file reads as
    ds = load(runs)
    assert [(d.line, d.kind) for d in ds.diagnostics.items] == [(5, "torn")]
    with open(path, "ab") as fh:
        fh.write(b"\x00" * 3000)
    log = read_log(runs)
    ds = load(runs)
    assert [(d.line, d.kind) for d in ds.diagnostics.items] == [(5, "torn")]
    assert ds.points.sort("step").collect().get_column("value").to_list() == [1.0, 2.0]
    read = [(at, at + got) for at, _, got, _ in log.reads if got]
    assert all(end <= whole or start >= whole + 6000 for start, end in read), read
    with open(path, "ab") as fh:  # the writer comes back: the line ends, a record follows
        fh.write(b"\n" + lines_of(runs)[-2])
    ds = load(runs)
    assert [(d.line, d.kind) for d in ds.diagnostics.items] == [(5, "malformed")]
    assert len(ds.points.collect()) == 3
    # A file that is nothing but one such line (the 2 GB sparse file): not read again.
    only = runs / "b.jsonl"
    only.write_bytes(b"\x00" * 6000)
    assert [(d.path, d.line, d.kind) for d in load(runs).diagnostics.items
            if d.path == str(only)] == [(str(only), 1, "torn")]
    with open(only, "ab") as fh:
        fh.write(b"\x00" * 10)
    log.reads.clear()
    assert len(load(runs).diagnostics.items) == 2
    assert [(at, got) for at, _, got, name in log.reads if name == "b.jsonl" and got] == [
        (6000, 10)]  # only the new bytes


def lines_of(runs: Path) -> list[bytes]:
    return (runs / "a.jsonl").read_bytes().split(b"\x00")[0].splitlines(keepends=True)


def test_a_merge_keeps_the_summary_rows_of_the_sources_still_there(
        tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments written by three updates merged into one: the merged summary holds the
    rows of the files still present (a series over two updates as two parts), none of
    the deleted file, and the series answer as the points do."""
    runs = tmp_path / "runs"
    grow = write_run(runs, "grow", [1.0, 2.0])
    load(runs)
    write_run(runs, "gone", [5.0, 6.0]).close(time=T0 + 9)
    grow.track(4.0, "m", step=2, time=T0 + 2)
    grow.flush()
    load(runs)
    write_run(runs, "kept", [7.0]).close(time=T0 + 9)
    load(runs)
    assert len(manifest(own_cache)["segments"]) == 3
    monkeypatch.setattr(cache, "MAX_SEGMENTS", 1)
    (runs / "gone.jsonl").unlink()
    ds = load(runs)
    (info,) = manifest(own_cache)["segments"].values()
    (stats_file,) = own_cache.rglob(info["stats"])
    stats = pl.read_parquet(stats_file)
    assert sorted(set(stats.get_column(cache.SRC).to_list())) == ["grow.jsonl", "kept.jsonl"]
    assert stats.filter(pl.col("run") == "grow").height == 2  # one part per update
    series = ds.series.sort("run").select("run", "points", "min", "max").rows()
    assert series == [("grow", 3, 1.0, 4.0), ("kept", 1, 7.0, 7.0)]
    assert sorted(ds.points.collect().get_column("value").to_list()) == [1.0, 2.0, 4.0, 7.0]


def test_read_ahead_hints_skip_what_cannot_be_opened(tmp_path: Path) -> None:
    """The read-ahead hint opens each file only to advise the kernel: a file gone or
    unreadable meanwhile is skipped, and the read that follows reports it as usual."""
    real = tmp_path / "a.jsonl"
    real.write_text("{}\n")
    cache._read_ahead([str(tmp_path / "gone.jsonl"), str(real)])
    assert real.read_text() == "{}\n"


def test_a_batch_the_segment_cannot_take_leaves_no_files_and_the_read_answers(
        tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A later batch whose columns do not match the segment's (here its summary has
    another type) stops the update: the half-written segment is removed, nothing is
    listed, and the read answers from the files themselves."""
    runs = tmp_path / "runs"
    for r in range(4):
        write_run(runs, f"r{r}", [float(r), float(r) + 0.5]).close(time=T0 + 9)
    monkeypatch.setattr(cache, "BATCH_BYTES", 500)
    real, calls = cache._stats, []

    def odd_second(frame: pl.DataFrame) -> pl.DataFrame:
        calls.append(1)
        out = real(frame)
        return out.with_columns(pl.col("points").cast(pl.Float64)) if len(calls) == 2 else out

    monkeypatch.setattr(cache, "_stats", odd_second)
    ds = load(runs)
    assert len(calls) >= 2
    assert sorted(ds.points.collect().get_column("value").to_list()) == [
        0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert not [p.name for p in own_cache.rglob("*.parquet*")]


# -- the index and its "nothing changed" check ----------------------------------------------


def test_an_unchanged_directory_is_answered_from_the_index_alone(
        tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files whose identity is as the index says (and long past the racy window) are
    decided on the index's columns: neither the planner nor the JSON of a manifest runs."""
    monkeypatch.setattr(cache, "RACY_NS", 0)  # the files' ctimes are as new as the read
    runs = tmp_path / "runs"
    for name in ("a", "b"):
        write_run(runs, name, [1.0, 2.0]).close(time=T0 + 9)
    assert values(runs) == [1.0, 2.0, 1.0, 2.0]
    (folder,) = [p for p in own_cache.iterdir() if p.is_dir()]
    assert (folder / cache.INDEX).exists() and not (folder / "manifest.json").exists()

    def no_planning(*args: Any) -> Any:
        raise AssertionError("planned though nothing changed")

    monkeypatch.setattr(cache.Cache, "_plan", no_planning)
    monkeypatch.setattr(cache._Index, "manifest", no_planning)
    assert values(runs) == [1.0, 2.0, 1.0, 2.0]


@pytest.mark.parametrize("change", ["append", "new file", "deleted file", "same size rewrite"])
def test_every_change_of_a_run_file_is_seen_whatever_its_directory_says(
        tmp_path: Path, own_cache: Path, change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is a stat per file: appending to a file leaves its directory's mtime as
    it was, so a directory-level check alone would serve a stale answer."""
    monkeypatch.setattr(cache, "RACY_NS", 0)  # times alone decide
    said: list[bool] = []
    real = cache._Index.unchanged

    def spy(self: Any, *args: Any) -> bool:
        said.append(real(self, *args))
        return said[-1]

    monkeypatch.setattr(cache._Index, "unchanged", spy)
    runs = tmp_path / "runs"
    for name in ("a", "b"):
        write_run(runs, name, [1.0, 2.0]).close(time=T0 + 9)
    old = T0 - 3600
    for path in [*runs.iterdir(), runs]:
        os.utime(path, (old, old))
    assert values(runs) == [1.0, 2.0, 1.0, 2.0]
    assert values(runs) == [1.0, 2.0, 1.0, 2.0]
    assert said[-1] is True  # trusted as it is
    before = os.stat(runs)
    path = runs / "a.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    point = next(line for line in lines if b'"value":2.0' in line)
    if change == "append":
        with open(path, "ab") as fh:
            fh.write(point.replace(b'"value":2.0', b'"value":7.0')
                     .replace(b'"step":1', b'"step":2'))
        assert os.stat(runs).st_mtime_ns == before.st_mtime_ns  # the directory knows nothing
        want = [1.0, 2.0, 7.0, 1.0, 2.0]
    elif change == "new file":
        write_run(runs, "c", [4.0]).close(time=T0 + 9)
        want = [1.0, 2.0, 1.0, 2.0, 4.0]
    elif change == "deleted file":
        (runs / "b.jsonl").unlink()
        want = [1.0, 2.0]
    else:
        path.write_bytes(b"".join(lines).replace(b'"value":2.0', b'"value":3.0'))
        os.utime(path, (old, old))  # size and mtime as before: the ctime moved
        want = [1.0, 3.0, 1.0, 2.0]
    assert values(runs) == want
    assert said[-1] is False


def test_the_index_keeps_every_field_of_the_manifest(tmp_path: Path, own_cache: Path) -> None:
    """Notes, torn tails, offsets and hashes go through the index's columns unchanged."""
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0, 2.0]).close(time=T0 + 9)
    with open(runs / "a.jsonl", "ab") as fh:
        fh.write(b'not json\n{"kind":"point","run":"a","name":"m","value":')  # bad + torn
    first = load(runs)
    kinds = sorted(d.kind for d in first.diagnostics.items)
    state = manifest(own_cache)
    entry = state["files"]["a.jsonl"]
    assert entry["notes"] and entry["tail"] and entry["segments"]
    index = cache._Index.of(state)
    assert index.manifest() == state
    second = load(runs)
    assert sorted(d.kind for d in second.diagnostics.items) == kinds
    assert [(d.line, d.message) for d in second.diagnostics.items] == [
        (d.line, d.message) for d in first.diagnostics.items]


def test_an_index_with_damaged_notes_is_rebuilt_not_misread(tmp_path: Path,
                                                            own_cache: Path) -> None:
    """A Parquet index that reads, of the right columns, but whose notes are not what the
    cache writes, is no cache: the runs are read again, the answer and notes as before."""
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0, 2.0]).close(time=T0 + 9)
    with open(runs / "a.jsonl", "ab") as fh:
        fh.write(b"not json\n")
    first = load(runs)
    (path,) = list(own_cache.rglob(cache.INDEX))
    index = cache._Index.read(path)
    assert index is not None
    for damaged in ('[[1, "x"', '{"line": 3}', '[[null, "x", "malformed"]]'):
        index.table = index.table.with_columns(pl.lit(damaged).alias("notes"))
        index.write(path)
        assert cache._Index.read(path) is None
        again = load(runs)
        assert again.points.collect().get_column("value").to_list() == [1.0, 2.0]
        assert [(d.line, d.kind) for d in again.diagnostics.items] == [
            (d.line, d.kind) for d in first.diagnostics.items]


@pytest.mark.parametrize("damage", ["segment key", "segment type", "trash", "generation"])
def test_an_index_whose_state_is_damaged_is_rebuilt_not_misread(
        tmp_path: Path, own_cache: Path, damage: str) -> None:
    """An index whose state (its Parquet metadata) still parses as JSON but is not of the
    shape the cache writes is no cache: rebuilt, the answer as before, no traceback."""
    runs = tmp_path / "runs"
    write_run(runs, "a", [1.0, 2.0]).close(time=T0 + 9)
    assert load(runs).points.collect().get_column("value").to_list() == [1.0, 2.0]
    (path,) = list(own_cache.rglob(cache.INDEX))
    index = cache._Index.read(path)
    assert index is not None and index.state["segments"]
    info = next(iter(index.state["segments"].values()))
    if damage == "segment key":
        info["kontexts"] = info.pop("contexts")
    elif damage == "segment type":
        info["rows"] = "many"
    elif damage == "trash":
        index.state["trash"] = {"0": {"files": "seg-0.parquet"}}
    else:
        index.state["generation"] = 7
    index.write(path)
    assert not cache._state_valid(index.state)
    again = load(runs)
    assert again.points.collect().get_column("value").to_list() == [1.0, 2.0]
    rebuilt = cache._Index.read(path)
    assert rebuilt is not None and cache._state_valid(rebuilt.state)

"""The incremental cache: parsed once, appends parsed alone, rewrites detected, safe to share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    (path,) = list(folder.rglob("manifest.json"))
    return json.loads(path.read_text())


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
    """Each batch of about BATCH_BYTES becomes its own segment; the answer is the same."""
    runs = tmp_path / "runs"
    for r in range(6):
        write_run(runs, f"r{r}", [float(r * 10 + i) for i in range(20)]).close(time=T0 + 99)
    monkeypatch.setattr(cache, "BATCH_BYTES", 3000)
    ds = load(runs)
    assert len(manifest(own_cache)["segments"]) >= 3
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
    assert not list(own_cache.rglob("manifest.json"))
    result = CliRunner().invoke(cli, ["cache", "clear", "--runs", str(runs)],
                                catch_exceptions=False)
    assert "no cache to clear" in result.stderr

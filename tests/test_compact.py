"""Compaction: finished runs to Parquet; a crash at any point loses and duplicates nothing."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from xpcli import Run, load
from xpcli.cli import cli
from xpcli.compact import compact
from xpcli.records import sources_of

T0 = 1767225600.0


@pytest.fixture(autouse=True)
def no_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XP_CACHE_DIR", str(tmp_path / "cache"))


def make_runs(runs: Path, n: int = 6, points: int = 50, open_runs: int = 1) -> None:
    for r in range(n):
        writer = Run(runs, f"r{r}", params={"lr": 10.0 ** -r}, time=T0, flush_seconds=0)
        for i in range(points):
            writer.track(r + i / 100, "m", step=i, context={"k": "v"}, time=T0 + i)
        if r < n - open_runs:
            writer.close(time=T0 + 99)
        else:
            writer.flush()


def snapshot(runs: Path) -> list[tuple]:
    ds = load(runs)
    pts = ds.points.sort("run", "step").collect().rows()
    meta = ds.runs.sort("run").select("run", "lr", "status").collect().rows()
    return pts + meta


def test_compacts_finished_runs_and_keeps_open_ones(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_runs(runs)
    before = snapshot(runs)
    result = compact(str(runs), min_age=0)
    assert result.output is not None and len(result.sources) == 5 and result.runs == 5
    assert "r5.jsonl" in {Path(p).name for p in result.skipped}
    assert sorted(p.name for p in runs.iterdir()) == [Path(result.output).name, "r5.jsonl"]
    assert snapshot(runs) == before
    assert {s["path"] for s in sources_of(result.output)} == {f"r{i}.jsonl" for i in range(5)}
    again = compact(str(runs), min_age=0)
    assert again.output is None


def test_min_age_and_dry_run_change_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_runs(runs, n=2, open_runs=0)
    assert compact(str(runs), min_age=3600).output is None
    dry = compact(str(runs), min_age=0, dry_run=True)
    assert dry.output and len(dry.sources) == 2
    assert sorted(p.name for p in runs.iterdir()) == ["r0.jsonl", "r1.jsonl"]


def test_leftover_sources_after_a_crash_are_not_read_twice(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_runs(runs, open_runs=0)
    copy = tmp_path / "copy"
    shutil.copytree(runs, copy)
    before = snapshot(runs)
    result = compact(str(runs), min_age=0)
    # Crash after the rename, before the deletions: every source is back in place.
    for name in ("r0.jsonl", "r3.jsonl"):
        shutil.copy2(copy / name, runs / name)
    assert snapshot(runs) == before
    finish = compact(str(runs), min_age=0)
    assert sorted(Path(p).name for p in finish.removed_leftovers) == ["r0.jsonl", "r3.jsonl"]
    assert sorted(p.name for p in runs.iterdir()) == [Path(result.output).name]
    assert snapshot(runs) == before


def test_a_source_that_grew_after_compaction_adds_only_its_tail(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_runs(runs, n=1, open_runs=0)
    copy = tmp_path / "r0.jsonl"
    shutil.copy2(runs / "r0.jsonl", copy)
    compact(str(runs), min_age=0)
    shutil.copy2(copy, runs / "r0.jsonl")  # the crash left it; then the run was resumed
    writer = Run(runs, "r0", time=T0 + 200, flush_seconds=0)
    writer.track(9.0, "m", step=100, context={"k": "v"}, time=T0 + 200)
    writer.close(time=T0 + 300)
    steps = load(runs).points.sort("step").collect().get_column("step").to_list()
    assert steps == list(range(50)) + [100]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XP_NO_CACHE", "1")
        steps = load(runs).points.sort("step").collect().get_column("step").to_list()
        assert steps == list(range(50)) + [100]


def _leftover_resumed(runs: Path, tmp_path: Path) -> int:
    """Compact r0..r2, put r0.jsonl back as a killed compaction leaves it, then resume
    run r0 (10 more points, closed). Returns the size the compacted file holds."""
    make_runs(runs, n=3, open_runs=0)
    copy = tmp_path / "r0.jsonl"
    shutil.copy2(runs / "r0.jsonl", copy)
    compact(str(runs), min_age=0)
    shutil.copy2(copy, runs / "r0.jsonl")
    writer = Run(runs, "r0", time=T0 + 200, flush_seconds=0)
    for i in range(50, 60):
        writer.track(100 + i, "m", step=i, context={"k": "v"}, time=T0 + 200 + i)
    writer.close(time=T0 + 300)
    return copy.stat().st_size


def test_a_leftover_resumed_after_a_killed_compaction_is_compacted_next_time(
        tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    held = _leftover_resumed(runs, tmp_path)
    before = snapshot(runs)
    steps = load(runs).points.filter(pl.col("run") == "r0").collect().get_column("step")
    assert sorted(steps.to_list()) == list(range(60))  # 50 compacted, 10 in the tail
    grown = (runs / "r0.jsonl").read_bytes()
    again = compact(str(runs), min_age=0)
    assert again.output is not None and [Path(p).name for p in again.sources] == ["r0.jsonl"]
    assert not (runs / "r0.jsonl").exists()
    (source,) = sources_of(again.output)
    assert source == {"path": "r0.jsonl", "size": len(grown), "start": held,
                      "sha256": hashlib.sha256(grown).hexdigest()}
    assert snapshot(runs) == before
    assert compact(str(runs), min_age=0).output is None
    # Killed again, after the second file was written: the leftover is held by both.
    (runs / "r0.jsonl").write_bytes(grown)
    assert snapshot(runs) == before
    finish = compact(str(runs), min_age=0)
    assert [Path(p).name for p in finish.removed_leftovers] == ["r0.jsonl"]
    assert finish.output is None and snapshot(runs) == before


def test_a_resumed_leftover_is_not_hashed_again_on_every_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        read_log: Callable[[Path], Any]) -> None:
    """Its compacted prefix is hashed when the file changed, not on every read."""
    from xpcli import cache

    monkeypatch.setattr(cache, "RACY_NS", 0, raising=False)  # times alone may be trusted
    runs = tmp_path / "runs"
    _leftover_resumed(runs, tmp_path)
    first = snapshot(runs)
    log = read_log(runs)
    assert snapshot(runs) == first
    assert not [r for r in log.reads if r[2]], log.reads[:5]  # not a byte read again
    with open(runs / "r0.jsonl", "ab") as fh:  # the run goes on: checked again, read on
        fh.write(b'{"kind":"point","run":"r0","name":"m","value":1.5,"step":99,'
                 b'"context":{"k":"v"}}\n')
    steps = load(runs).points.filter(pl.col("run") == "r0").collect().get_column("step")
    assert sorted(steps.to_list()) == [*range(60), 99]


def test_a_temporary_file_from_a_crash_is_ignored_and_removed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_runs(runs, n=2, open_runs=0)
    before = snapshot(runs)
    (runs / ".compacted-x.parquet.tmp").write_bytes(b"half a file")
    assert snapshot(runs) == before
    compact(str(runs), min_age=0)
    assert not (runs / ".compacted-x.parquet.tmp").exists()
    assert snapshot(runs) == before


def test_files_with_torn_lines_are_left_as_they_are(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_runs(runs, n=1, open_runs=0)
    with open(runs / "r0.jsonl", "ab") as fh:
        fh.write(b'{"kind":"point","ru')
    result = compact(str(runs), min_age=0)
    assert result.output is None and "torn" in result.skipped[str(runs / "r0.jsonl")]


_KILL_SCRIPT = """
import sys
from xpcli.compact import compact
compact(sys.argv[1], min_age=0)
"""


@pytest.mark.slow
def test_killed_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    base = tmp_path / "base"
    make_runs(base, n=12, points=200, open_runs=0)
    expected = snapshot(base)
    rng = random.Random(7)
    env = {**os.environ, "XP_NO_CACHE": "1"}
    for attempt in range(6):
        runs = tmp_path / f"runs{attempt}"
        shutil.copytree(base, runs)
        proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(runs)], env=env)
        time.sleep(rng.uniform(0.05, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert snapshot(runs) == expected, f"attempt {attempt}"
        compact(str(runs), min_age=0)
        assert snapshot(runs) == expected
        assert [p.name for p in runs.iterdir() if p.suffix == ".jsonl"] == []


def test_cli_compact(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_runs(runs, n=2)
    result = CliRunner().invoke(cli, ["compact", "--runs", str(runs), "--min-age", "0"],
                                catch_exceptions=False)
    assert result.exit_code == 0
    assert "compacted 1 files (1 runs, 52 records)" in result.stderr
    assert "kept" in result.stderr and "r1" in result.stderr
    assert result.stdout == ""
    frame = load(runs).points.collect()
    assert frame.group_by("run").len().sort("run").rows() == [("r0", 50), ("r1", 50)]
    assert frame.filter(pl.col("run") == "r0").height == 50


# -- damage on disk after compaction --------------------------------------------------------


def _column_chunks(path: Path) -> list[tuple[int, int]]:
    """``(start, end)`` byte ranges of every column chunk (its pages) of a Parquet file."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(path)
    chunks = []
    for group in range(meta.num_row_groups):
        for column in range(meta.num_columns):
            info = meta.row_group(group).column(column)
            start = info.dictionary_page_offset or info.data_page_offset
            chunks.append((start, start + info.total_compressed_size))
    return chunks


def test_bit_flips_in_a_compacted_file_are_reported_and_it_is_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three bits flipped in the pages of one compacted file, 20 times over: the file is
    reported as damaged and skipped whole, or (a flip that changes nothing, e.g. in a
    page's statistics) read exactly. Never a changed value; the other file reads on."""
    monkeypatch.setenv("XP_NO_CACHE", "1")
    runs = tmp_path / "runs"
    make_runs(runs, n=3, points=200, open_runs=0)
    first = compact(str(runs), min_age=0).output
    for r in range(2):
        writer = Run(runs, f"s{r}", params={"lr": 0.5}, time=T0, flush_seconds=0)
        for i in range(30):
            writer.track(100 + r + i / 10, "m", step=i, context={"k": "v"}, time=T0 + i)
        writer.close(time=T0 + 99)
    second = compact(str(runs), min_age=0).output
    assert first and second
    everything = snapshot(runs)
    damaged = Path(first)
    data = damaged.read_bytes()
    damaged.unlink()
    only_second = snapshot(runs)
    assert 0 < len(only_second) < len(everything)
    probe = tmp_path / "probe.parquet"
    probe.write_bytes(data)
    ranges = _column_chunks(probe)
    reported = 0
    for seed in range(20):
        rng = random.Random(seed)
        flipped = bytearray(data)
        for _ in range(3):
            start, end = rng.choice(ranges)
            flipped[rng.randrange(start, end)] ^= 1 << rng.randrange(8)
        damaged.write_bytes(bytes(flipped))
        ds = load(runs)
        found = [d for d in ds.diagnostics.items if d.path == str(damaged)]
        if found:
            reported += 1
            assert "damaged" in str(found[0]) and str(damaged) in str(found[0]), str(found[0])
            assert snapshot(runs) == only_second, seed
        else:
            assert snapshot(runs) == everything, seed
    assert reported >= 15
    # Through the command line: named on stderr, the command still answers.
    result = CliRunner().invoke(cli, ["runs", "--runs", str(runs), "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    assert str(damaged) in result.stderr and "damaged" in result.stderr


def test_a_damaged_memo_of_prefix_hashes_is_not_trusted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prefixes.json in the cache folder, garbled: the prefix is hashed again, not taken
    as changed (which would read the compacted records twice)."""
    from xpcli import cache

    monkeypatch.setattr(cache, "RACY_NS", 0)  # a valid memo entry is trusted at once
    runs = tmp_path / "runs"
    _leftover_resumed(runs, tmp_path)
    before = snapshot(runs)
    folder = cache.cache_dir_for(runs)
    assert folder is not None
    memo = folder / "prefixes.json"
    ((key, entry),) = json.loads(memo.read_text()).items()
    assert entry["holds"] is True
    no_seen = {k: v for k, v in entry.items() if k != "seen_ns"}
    for garbage in ({key: no_seen}, {key: {**entry, "holds": "yes"}}, {key: {}},
                    {key: [1]}, [1, 2]):
        memo.write_text(json.dumps(garbage))
        assert snapshot(runs) == before, garbage
    memo.write_bytes(b"\x00not json")
    assert snapshot(runs) == before

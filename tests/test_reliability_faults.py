"""Disk full and permission denied, while writing and while reading.

Faults are real where the machine allows it (``/dev/full`` gives ENOSPC to any writer; a
tiny tmpfs when mounting is permitted; chmod when not running as root) and injected
otherwise (a failing ``os.write``/``open``). The writer raises :class:`WriteError` at once
and leaves no line that breaks another; the reader reports the file and reads the rest.
"""

from __future__ import annotations

import builtins
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from conftest import T0, half_then_enospc
from reliability_helpers import hostile_text_writers, in_place_edits, scale

from xpcli import Run, load
from xpcli import writer as writer_mod
from xpcli.errors import WriteError
from xpcli.format import parse_line


def lines_of(path: Path) -> list[dict]:
    """Every line of ``path`` parsed: fails the test on any broken line."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "the file does not end with a whole line"
    return [parse_line(line) for line in data.splitlines()]


def steps_of(path: Path, run: str | None = None) -> list[int]:
    return [r["step"] for r in lines_of(path)
            if r["kind"] == "point" and (run is None or r["run"] == run)]


# -- disk full while writing -------------------------------------------------------------


def test_dev_full_raises_at_once_from_the_constructor(tmp_path: Path) -> None:
    """A real ENOSPC (``/dev/full``): the first flush is the run record, in ``Run()``."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "full.jsonl").symlink_to("/dev/full")
    with pytest.raises(WriteError, match=r"full\.jsonl: No space left on device"):
        Run(runs, "full", flush_seconds=0)


def test_shared_run_file_keeps_the_other_writers_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers of one run id; one fails half-way: the other's lines all survive."""
    a = Run(tmp_path, "shared", flush_bytes=10**9, flush_seconds=0)
    b = Run(tmp_path, "shared", flush_bytes=10**9, flush_seconds=0)
    a.track(0.0, "a", step=0, time=T0)
    a.flush()
    for i in range(20):
        b.track(float(i), "b", step=i, time=T0)
    b.flush()
    half_then_enospc(monkeypatch, a._fd)
    for i in range(1, 30):
        a.track(float(i), "a", step=i, time=T0)
    with pytest.raises(WriteError, match="No space left"):
        a.flush()
    monkeypatch.undo()
    b.track(20.0, "b", step=20, time=T0)
    b.close()
    a.track(99.0, "a", step=99, time=T0)
    a.close()
    path = tmp_path / "shared.jsonl"
    recs = lines_of(path)
    assert [r["step"] for r in recs if r.get("name") == "b"] == list(range(21))
    # a's failed flush was kept and written by its next one, after b's lines.
    assert [r["step"] for r in recs if r.get("name") == "a"] == [*range(30), 99]


def test_a_co_writers_torn_tail_does_not_swallow_the_next_line(tmp_path: Path) -> None:
    """A writer of the same run killed mid-line leaves a torn tail; the live writer's next
    flush starts on a new line, so only the torn line is lost."""
    live = Run(tmp_path, "shared", flush_bytes=10**9, flush_seconds=0)
    live.track(1.0, "m", step=1, time=T0)
    live.flush()
    path = tmp_path / "shared.jsonl"
    with open(path, "ab") as fh:
        fh.write(b'{"kind":"point","run":"shared","name":"m","va')  # the killed one
    live.track(2.0, "m", step=2, time=T0)
    live.close()
    ds = load(tmp_path)
    assert sorted(ds.points.collect()["step"].to_list()) == [1, 2]
    assert [d.kind for d in ds.diagnostics.items] == ["malformed"]


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, when this process may mount one (root in a container)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root); /dev/full and injection cover it")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_filling_a_real_filesystem(tiny_fs: Path) -> None:
    """Write until the filesystem is full: WriteError at the failing call, every line whole,
    and what was flushed before is all there."""
    (tiny_fs / "ballast").write_bytes(b"x" * 64 * 1024)
    run = Run(tiny_fs, "filler", flush_bytes=4096, flush_seconds=0)
    written = 0
    with pytest.raises(WriteError, match="No space left"):
        for i in range(10**6):
            run.track(float(i), "m", step=i, context={"pad": "x" * 40}, time=T0)
            if run._buffered == 0:
                written = i + 1  # everything up to i was flushed just now
    steps = steps_of(tiny_fs / "filler.jsonl")
    assert steps == list(range(len(steps)))
    assert len(steps) >= written > 100
    (tiny_fs / "ballast").unlink()  # room again: the run goes on
    run.track(-1.0, "m", step=-1, time=T0)
    run.close()  # the records of the failed flush were kept and are written now
    final = steps_of(tiny_fs / "filler.jsonl")
    assert final == [*range(len(final) - 1), -1] and len(final) > len(steps) + 1
    recs = lines_of(tiny_fs / "filler.jsonl")[-2:]
    assert recs[0]["step"] == -1 and recs[1]["meta"]["status"] == "finished"


def test_close_on_a_full_disk_raises_and_leaves_whole_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run(tmp_path, "r", flush_bytes=10**9, flush_seconds=0)
    for i in range(50):
        run.track(float(i), "m", step=i, time=T0)
    half_then_enospc(monkeypatch, run._fd)
    with pytest.raises(WriteError, match=r"r\.jsonl: No space left on device"):
        run.close()
    monkeypatch.undo()
    assert not run.closed  # the records are kept; the status is not written before them
    assert steps_of(tmp_path / "r.jsonl") == []
    assert [r["meta"]["status"] for r in lines_of(tmp_path / "r.jsonl")] == ["running"]
    run.close()  # room again: the records, then the status, once
    assert run.closed
    recs = lines_of(tmp_path / "r.jsonl")
    assert steps_of(tmp_path / "r.jsonl") == list(range(50))
    assert [r["meta"]["status"] for r in recs if r["kind"] == "run"] == ["running", "finished"]
    run.close()  # idempotent


# -- permission denied while writing -----------------------------------------------------


def test_unwritable_runs_dir_raises_at_once(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    if os.geteuid() != 0:
        runs.chmod(0o500)
    else:  # root ignores modes: inject what the kernel would answer
        real = os.open

        def denied(path, flags, *args):  # noqa: ANN001, ANN002
            if str(path).startswith(str(runs)):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
            return real(path, flags, *args)

        monkeypatch.setattr(writer_mod.os, "open", denied)
    try:
        with pytest.raises(WriteError, match="cannot open .*r1.jsonl for writing: Permission"):
            Run(runs, "r1")
    finally:
        runs.chmod(0o700)


def test_read_only_filesystem_raises_at_once(tmp_path: Path, tiny_fs: Path) -> None:
    Run(tiny_fs, "before", flush_seconds=0).close()
    proc = subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip("cannot remount read-only here")
    with pytest.raises(WriteError, match="Read-only file system"):
        Run(tiny_fs, "after")
    with pytest.raises(WriteError, match="Read-only file system"):
        Run(tiny_fs, "before")  # appending to an existing run
    assert load(tiny_fs).runs.collect()["run"].to_list() == ["before"]


def test_losing_write_permission_mid_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EACCES/EROFS from a write (a remount, a revoked share): raised by track, file intact."""
    run = Run(tmp_path, "r", flush_bytes=300, flush_seconds=0)
    run.track(0.0, "m", step=0, time=T0)
    run.flush()
    real = os.write

    def denied(fd: int, data) -> int:  # noqa: ANN001
        if fd == run._fd:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(fd, data)

    monkeypatch.setattr(writer_mod.os, "write", denied)
    with pytest.raises(WriteError, match="Read-only file system"):
        for i in range(1, 100):
            run.track(float(i), "m", step=i, time=T0)
    monkeypatch.undo()
    assert steps_of(tmp_path / "r.jsonl") == [0]


# -- faults while reading ----------------------------------------------------------------


def _two_runs(runs: Path) -> None:
    for name in ("good", "bad"):
        with Run(runs, name, params={"p": name}, time=T0, flush_seconds=0) as run:
            run.track(1.0, "m", step=0, time=T0)


@pytest.mark.parametrize("cache", ["cache", "no-cache"])
def test_unreadable_file_is_reported_and_the_rest_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    runs = tmp_path / "runs"
    _two_runs(runs)
    monkeypatch.setenv("XP_CACHE_DIR", str(tmp_path / "cache"))
    if cache == "no-cache":
        monkeypatch.setenv("XP_NO_CACHE", "1")
    bad = str(runs / "bad.jsonl")
    if os.geteuid() != 0:
        os.chmod(bad, 0)
    else:
        real = builtins.open

        def denied(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            if str(file) == bad:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), file)
            return real(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", denied)
    try:
        ds = load(runs)
        assert ds.runs.collect()["run"].to_list() == ["good"]
        (diag,) = ds.diagnostics.items
        assert (diag.path, diag.kind) == (bad, "unreadable")
        assert "Permission denied" in str(diag)
    finally:
        os.chmod(bad, 0o644)


def test_unreadable_folder_is_skipped(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    runs = tmp_path / "runs"
    _two_runs(runs)
    locked = runs / "locked"
    Run(locked, "hidden", flush_seconds=0).close()
    locked.chmod(0)
    try:
        assert sorted(load(runs).runs.collect()["run"].to_list()) == ["bad", "good"]
    finally:
        locked.chmod(0o700)


def test_cache_on_a_full_disk_falls_back_to_an_exact_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache folder fills up while a segment is written: the read still answers."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    runs = tmp_path / "runs"
    _two_runs(runs)
    cache_home = tmp_path / "cache"
    monkeypatch.setenv("XP_CACHE_DIR", str(cache_home))
    from xpcli.cache import cache_dir_for

    folder = cache_dir_for(runs)
    assert folder is not None
    folder.mkdir(parents=True)
    # Every file the cache writes goes to a full device.
    for name in ("seg-0.parquet", "seg-0.stats.parquet"):
        (folder / f".{name}.{os.getpid()}.tmp").symlink_to("/dev/full")
    (folder / f".index.parquet.{os.getpid()}.tmp").symlink_to("/dev/full")
    ds = load(runs)
    assert sorted(ds.runs.collect()["run"].to_list()) == ["bad", "good"]
    assert ds.points.collect().height == 2


def test_cache_killed_files_and_garbage_do_not_change_answers(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """Half-written temporary files and a garbage index in the cache folder are ignored."""
    runs = tmp_path / "runs"
    _two_runs(runs)
    monkeypatch.setenv("XP_CACHE_DIR", str(tmp_path / "cache"))
    expected = load(runs).points.sort("run").collect()
    from xpcli.cache import cache_dir_for

    folder = cache_dir_for(runs)
    assert folder is not None
    (folder / ".seg-9.parquet.1.tmp").write_bytes(b"PAR1 half")
    (folder / "index.parquet").write_bytes(b"PAR1 half")
    assert load(runs).points.sort("run").collect().equals(expected)
    (folder / "index.parquet").write_bytes(b"\x00" * 100)
    assert load(runs).points.sort("run").collect().equals(expected)
    index = folder / "index.parquet"
    whole = index.read_bytes()
    index.write_bytes(whole[: len(whole) // 2] + b"\x00" * 16 + whole[len(whole) // 2 + 16:])
    assert load(runs).points.sort("run").collect().equals(expected)
    # An index naming a segment that is gone: rebuilt, not trusted.
    for seg in folder.glob("seg-*.parquet"):
        seg.unlink()
    assert load(runs).points.sort("run").collect().equals(expected)


def test_xp_reports_unreadable_files_and_exits_zero(tmp_path: Path) -> None:
    """Through the CLI: the damaged file is named on stderr, the command still answers."""
    runs = tmp_path / "runs"
    _two_runs(runs)
    (runs / "junk.parquet").write_bytes(b"not parquet at all")
    proc = subprocess.run([sys.executable, "-m", "xpcli", "runs", "--runs", str(runs),
                           "--format", "csv"], capture_output=True, text=True,
                          env={**os.environ, "XP_CACHE_DIR": str(tmp_path / "c")})
    assert proc.returncode == 0, proc.stderr
    assert "junk.parquet" in proc.stderr
    frame = pl.read_csv(proc.stdout.encode())
    assert sorted(frame["run"].to_list()) == ["bad", "good"]


def test_a_run_file_removed_while_open_is_created_again(tmp_path: Path) -> None:
    """Compaction (or a person) removes the file of a run that is still open: the next
    flush creates it again instead of writing into the removed file."""
    run = Run(tmp_path, "r", flush_bytes=10**9, flush_seconds=0)
    run.track(1.0, "m", step=1, time=T0)
    run.flush()
    (tmp_path / "r.jsonl").unlink()
    run.track(2.0, "m", step=2, time=T0)
    run.close()
    assert steps_of(tmp_path / "r.jsonl") == [2]


# -- text that cannot be written -------------------------------------------------------


def test_writers_refuse_non_utf8_text_and_keep_every_good_point(tmp_path: Path) -> None:
    numbers = hostile_text_writers(tmp_path, writers=scale(2, 8), points=scale(2000, 20000))
    assert numbers["refused_calls"] > 0


def test_run_files_edited_in_place_are_never_served_stale(tmp_path: Path) -> None:
    """Values changed in the middle of run files (same size, sometimes the old mtime put
    back, sometimes followed by an append or a same-size rewrite), round after round: the
    cached read always has the edited values."""
    numbers = in_place_edits(tmp_path, rounds=scale(6, 60), runs_n=scale(4, 24),
                             points=scale(200, 3000))
    assert numbers["edits"] >= scale(6, 60)

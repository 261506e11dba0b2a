"""Compaction: the JSONL of finished runs becomes one Parquet file, atomically.

``compact(runs_dir)`` gathers every ``*.jsonl`` file whose runs all have a final status
(``finished``, ``failed`` or ``interrupted``) and that has not changed for ``min_age``
seconds, and writes their records to ``<runs_dir>/compacted-<id>.parquet``. The steps,
and what a crash after each one leaves:

1. The Parquet file is written under a hidden temporary name, synced, and renamed into
   place. Its footer lists every source file with its size and SHA-256. A crash before
   the rename leaves only a hidden temporary file, which readers ignore and the next
   compaction removes.
2. The source files are deleted. A crash part-way leaves some sources beside the Parquet
   file that holds them: readers skip a listed source whose size and hash still match
   (so no record is read twice), read only the new tail of a source that has grown since
   (a resumed run), and the next compaction deletes the leftovers and compacts such a
   tail (once its runs are finished) into a new file that lists the source with the
   ``start`` of the bytes it holds. What the footers hold is read by
   :func:`xpcli.records.superseded`, for readers and compaction alike.

At no point is a record in neither place, and no reader ever counts a record twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass

import polars as pl
import pyarrow.parquet as pq

from .errors import DataError
from .progress import Progress
from .records import (
    COMPACTED_PREFIX,
    RAW_SCHEMA,
    SOURCES_KEY,
    Diagnostics,
    find_files,
    parse_jsonl,
    superseded,
)
from .writer import new_run_id

FINAL = ("finished", "failed", "interrupted")


@dataclass
class CompactResult:
    """What :func:`compact` did (or, with ``dry_run``, would do)."""

    output: str | None
    sources: list[str]
    runs: int
    records: int
    removed_leftovers: list[str]
    skipped: dict[str, str]


def compact(runs_dir: str, min_age: float = 60.0, dry_run: bool = False,
            progress: Progress | None = None) -> CompactResult:
    """Compact the JSONL files of finished runs under ``runs_dir`` into one Parquet file.

    A file qualifies when every run it holds has a final status and it has not been
    modified for ``min_age`` seconds. Returns what was written and removed; ``skipped``
    says why each other JSONL file was left alone. ``progress`` is told of each file
    read, then of the writing (:mod:`xpcli.progress`).
    """
    files = find_files(runs_dir)
    done = superseded(runs_dir, files)
    removed = []
    for path, size in done.leftovers:  # finish a compaction that was cut short
        if dry_run or _remove_leftover(path, size):
            removed.append(path)
    # A leftover that grew since (a run resumed after a killed compaction) is a candidate
    # too: its tail, from the offset the older file holds it to, is compacted.
    candidates = [p for p in files if p.endswith(".jsonl") and p not in done.skip]
    for name in os.listdir(runs_dir):
        if name.startswith(f".{COMPACTED_PREFIX}") and name.endswith(".tmp") and not dry_run:
            os.unlink(os.path.join(runs_dir, name))  # a temporary file from a crash
    skipped: dict[str, str] = {}
    held: list[_Held] = []
    sizes = [_size(path) for path in candidates] if progress is not None else []
    try:
        for number, path in enumerate(candidates, start=1):
            source = _take(path, min_age, skipped, done.offsets.get(path, 0),
                           done.prefixes.get(path))
            if source is not None:
                held.append(source)
            if progress is not None:
                progress(number, len(candidates), sum(sizes[:number]), sum(sizes), "reading")
        if not held:
            return CompactResult(None, [], 0, 0, removed, skipped)
        records = pl.concat([h.records for h in held], how="vertical")
        runs = records.get_column("run").n_unique()
        target = os.path.join(runs_dir, f"{COMPACTED_PREFIX}{new_run_id()}.parquet")
        chosen = [h.path for h in held]
        if dry_run:
            return CompactResult(target, chosen, runs, records.height, removed, skipped)
        # Size and hash of exactly the bytes parsed: a source that grows later is read
        # from there on (see :func:`xpcli.records.superseded`), never lost.
        sources = [{"path": os.path.relpath(h.path, runs_dir), "size": len(h.data),
                    "sha256": hashlib.sha256(h.data).hexdigest(),
                    **({"start": h.start} if h.start else {})} for h in held]
        if progress is not None:
            progress(len(candidates), len(candidates), sum(sizes), sum(sizes), "writing")
        _write_with_sources(records, target, sources)
        for source in held:
            source.remove_if_unchanged()
        _sync_dir(runs_dir)
        return CompactResult(target, chosen, runs, records.height, removed, skipped)
    finally:
        for source in held:
            source.release()


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


@dataclass
class _Held:
    """A source file locked against xp writers while it is compacted.

    ``Run`` takes the same exclusive ``flock`` for every append and re-creates a file that
    was removed, so a run resumed meanwhile waits, then writes to a new file: its records
    are never appended to a file that is being deleted."""

    path: str
    fd: int
    data: bytes
    records: pl.DataFrame
    start: int = 0  # the records are those of data[start:]; an older file holds the rest

    def remove_if_unchanged(self) -> None:
        """Delete the file if it is still the one read, with nothing appended since."""
        _unlink_if_same(self.path, self.fd, len(self.data))

    def release(self) -> None:
        try:
            os.close(self.fd)  # also releases the lock
        except OSError:
            pass


def _unlink_if_same(path: str, fd: int, size: int) -> bool:
    """Unlink ``path`` if it is still the file open as ``fd`` and ``size`` bytes long."""
    try:
        now, here = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    if (now.st_ino, now.st_dev) != (here.st_ino, here.st_dev) or now.st_size != size:
        return False
    os.unlink(path)
    return True


def _remove_leftover(path: str, size: int) -> bool:
    """Delete a source a compacted file already holds, under the writers' lock, if it
    still has exactly the bytes held (a run resumed meanwhile keeps its file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:
            pass
        return _unlink_if_same(path, fd, size)
    finally:
        os.close(fd)


def _take(path: str, min_age: float, skipped: dict[str, str], start: int = 0,
          prefix: str | None = None) -> _Held | None:
    """Lock and read one candidate; None (with the reason in ``skipped``) if it cannot go.

    ``start``, ``prefix``: the first ``start`` bytes, with that SHA-256, are held by an
    older compacted file; only the records after them are taken."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        skipped[path] = f"cannot open ({exc.strerror})"
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            skipped[path] = "being written right now"
            os.close(fd)
            return None
        except OSError:
            pass  # a filesystem without locks: the size checks still guard the deletion
        age = time.time() - os.fstat(fd).st_mtime
        if age < min_age:
            skipped[path] = f"modified {age:.0f}s ago (< {min_age:.0f}s)"
            os.close(fd)
            return None
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read()
        if start and hashlib.sha256(data[:start]).hexdigest() != prefix:
            skipped[path] = "changed since it was compacted (read as it is)"
            os.close(fd)
            return None
        diags = Diagnostics()
        records = parse_jsonl(path, data[start:], diags)
        reason = ("has torn or malformed lines: " + (diags.summary() or "torn")
                  if not data.endswith(b"\n") or len(diags) else _final_status(records))
        if reason is not None:
            skipped[path] = reason
            os.close(fd)
            return None
        return _Held(path, fd, data, records, start)
    except BaseException:
        os.close(fd)
        raise


def _final_status(raw: pl.DataFrame) -> str | None:
    """None when every run in the file has a final status, else why not."""
    runs = raw.get_column("run").unique().to_list()
    status: dict[str, str | None] = {run: None for run in runs}
    for run, meta in raw.filter(pl.col("kind") == "run").select("run", "meta").iter_rows():
        if meta:
            value = json.loads(meta).get("status")
            if value is not None:
                status[run] = value
    open_runs = [run for run, s in status.items() if s not in FINAL]
    if open_runs:
        return f"run {open_runs[0]} is {status[open_runs[0]] or 'without status'} (not finished)"
    return None


def _write_with_sources(records: pl.DataFrame, target: str,
                        sources: list[dict[str, object]]) -> None:
    table = records.select([pl.col(n).cast(t) for n, t in RAW_SCHEMA.items()]).to_arrow()
    table = table.replace_schema_metadata({SOURCES_KEY: json.dumps(sources).encode()})
    folder = os.path.dirname(target)
    tmp = os.path.join(folder, f".{os.path.basename(target)}.tmp")
    try:
        # Page checksums: the JSONL sources are deleted next, so a bit flipped on disk
        # later is only detectable from the file itself (readers verify them).
        pq.write_table(table, tmp, compression="zstd", write_page_checksum=True)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _sync_dir(folder)
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc.strerror}; nothing was changed") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _sync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

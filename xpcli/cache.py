"""The incremental columnar cache: every JSONL byte is parsed once.

A runs directory's records are kept as Parquet *segments* in a cache folder outside the
runs directory (so tools globbing the runs directory never see them):
``$XP_CACHE_DIR``, else ``$XDG_CACHE_HOME/xp``, else ``~/.cache/xp``, one sub-folder per
runs directory (named by a hash of its real path). ``xp cache info`` shows it,
``xp cache clear`` removes it, ``XP_NO_CACHE=1`` bypasses it. Deleting it at any time is
safe: the next read rebuilds it.

How a read works:

1. Every run file is stat-ed and compared with the index (device, inode, size, mtime
   and ctime). A file that matches, and that had not changed for :data:`RACY_NS` when it
   was last read, is served from the segments without being opened. The index is one
   small Parquet file (:data:`INDEX`: a row per file, the rest of the state in its
   metadata), so when every file matches, the check is a stat per file and a comparison
   of columns. (A check of the directory alone would be cheaper, and wrong: appending to
   a file changes the file's size and times, not its directory's.)
2. A JSONL file that differs (grew, was touched, or was read too soon after it changed)
   has its cached prefix checked: the SHA-256 of every byte the cache holds rows of is
   kept, and the file's bytes up to that point are hashed again. If they match, only the
   bytes after them are parsed (an append); if not, the file was edited in place and is
   parsed again from the start, its old rows dropped. Any other file (Parquet, gzip) is
   hashed whole and read again if the hash differs. A deleted file's rows are dropped.
3. New rows go into one new segment (each batch clustered by kind and name, so a query
   for one metric skips the row groups of the others), with each point's context decoded
   into one ``ctx.KEY`` column per key (so no query parses context JSON again) and the
   series summary of its points beside it (:mod:`xpcli.summary`); when segments pile up
   or hold many dropped rows, they are merged into one. Files are read
   :data:`~xpcli.records.CHUNK_BYTES` at a time and parsed in batches of
   :data:`BATCH_BYTES`, each appended to the segment as its own row groups (while the
   next batch is parsed), so memory stays bounded whatever the size of one file or of
   the whole directory.
4. The index is replaced atomically. Updates take an exclusive lock (``flock``) on the
   cache folder, so several ``xp`` processes can read at once; writers never wait for
   readers. A reader opens the segments it uses when it loads, and the frames it returns
   hold them open: a segment merged away (deleted after a grace period, which covers
   readers between loading the index and opening the segments) or a cache folder
   cleared while a frame is alive stays readable through it. A cache that vanishes while
   it is being read is bypassed: the sources are read instead.

A torn last line (a job writing right now) is never cached: the cache keeps only whole
lines, and the tail is looked at again when the file changes. A torn line longer than
:data:`~xpcli.records.MAX_LINE_BYTES` is remembered by its size and not read again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import polars as pl

from . import records as _records
from .errors import WriteError
from .progress import Progress
from .records import (
    RAW_SCHEMA,
    Diagnostics,
    LineReader,
    Superseded,
    careful_frame,
    count_newlines,
    fast_frame,
    read_parquet,
    read_records,
    write_parquet_frame,
)
from .records import superseded as find_superseded
from .summary import SUMMARY_SCHEMA, combine, summarize

CACHE_VERSION = 7
MAX_SEGMENTS = 16
BATCH_BYTES = 32 * 1024 * 1024
MAX_GARBAGE = 0.3
GRACE_SECONDS = 600.0
#: A file whose mtime or ctime was this close to the moment it was read is checked again
#: at the next read: a change in the same clock tick would leave both times as they were
#: (timestamps are as coarse as a jiffy on Linux, 1-2 s on some file systems).
RACY_NS = 2_000_000_000
ORDER = "__order"
SRC = "__src"
_HASH_READ = 1 << 20


def cache_home() -> Path | None:
    """The cache folder, or None when ``XP_NO_CACHE`` is set."""
    if os.environ.get("XP_NO_CACHE", "") not in ("", "0"):
        return None
    if os.environ.get("XP_CACHE_DIR"):
        return Path(os.environ["XP_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xp"


def cache_dir_for(runs_dir: str | os.PathLike[str], home: Path | None = None) -> Path | None:
    """The cache sub-folder of one runs directory (None when caching is off)."""
    home = home if home is not None else cache_home()
    if home is None:
        return None
    real = os.path.realpath(os.fspath(runs_dir))
    return home / hashlib.sha256(real.encode()).hexdigest()[:16]


@dataclass
class RawData:
    """What :func:`xpcli.dataset.build` needs, however it was read.

    ``records``: every record (:data:`~xpcli.records.RAW_SCHEMA` plus ``__order``, the read
    order) as a LazyFrame; ``contexts``: the distinct context texts; ``stats``: per run and
    metric name the point count and first/last time, so counts need no pass over points.
    """

    records: pl.LazyFrame
    contexts: list[str]
    #: The per-series stats, or what makes them when first asked for (an unchanged
    #: state's built tables need none: see :attr:`stats`).
    stats_source: pl.DataFrame | Callable[[], pl.DataFrame]
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    #: Names this exact state of the cache (None without the cache); ``built`` then keeps
    #: the tables built from it, so an unchanged directory is not built twice.
    token: str | None = None
    built: "Built | None" = None
    #: True when ``records`` has a ``ctx.KEY`` column for every context key (decoded when
    #: the cache was written); else the context texts are decoded when a query reads them.
    decoded: bool = False

    @property
    def stats(self) -> pl.DataFrame:
        """Per run, name and context text, the series summary of its points."""
        if callable(self.stats_source):
            self.stats_source = self.stats_source()
        return self.stats_source


class Built:
    """The runs table and series index built from one cache state, kept beside it.

    Building the runs table (merging run records, typing params) costs about a second at
    10,000 runs; an unchanged runs directory reuses the last one. Files are named by the
    state's token and written atomically, the JSON last, so a half-written set is unused.
    """

    def __init__(self, folder: Path, token: str) -> None:
        self.folder = folder
        self.token = token
        self.meta_path = folder / f"built-{token}.json"
        self.loaded: tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]] | None = None

    def load(self) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]] | None:
        if self.loaded is not None:
            return self.loaded
        try:
            with open(self.meta_path, encoding="utf-8") as fh:
                info = json.load(fh)
            runs = pl.read_parquet(self.folder / f"built-{self.token}.runs.parquet")
            series = pl.read_parquet(self.folder / f"built-{self.token}.series.parquet")
        except (OSError, ValueError, pl.exceptions.PolarsError, pl.exceptions.PanicException):
            return None  # missing, half-written or damaged: built again
        self.loaded = runs, series, info
        return self.loaded

    def save(self, runs: pl.DataFrame, series: pl.DataFrame, info: dict[str, Any]) -> None:
        try:
            for frame, part in ((runs, "runs"), (series, "series")):  # read by every query
                write_parquet_frame(frame, self.folder / f"built-{self.token}.{part}.parquet",
                                    compression="lz4")
            tmp = self.folder / f".built-{self.token}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(info))
            os.replace(tmp, self.meta_path)
            for old in self.folder.glob("built-*"):
                if not old.name.startswith(f"built-{self.token}."):
                    with contextlib.suppress(OSError):
                        if time.time() - old.stat().st_mtime > GRACE_SECONDS:
                            old.unlink()
        except OSError:
            pass  # a read-only or full cache: the tables are simply built again next time


STATS_SCHEMA = {"run": pl.String(), "name": pl.String(), "context": pl.String(),
                **SUMMARY_SCHEMA}


def _stats(frame: Any) -> Any:
    """Per (source,) run, name and context: the series summary (:mod:`xpcli.summary`).

    This small index (one row per series) answers "which runs, metrics and contexts
    exist", the runs table's counts and the plain reducers without a pass over the
    points."""
    names = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    keys = [SRC, "run", "name", "context"] if SRC in names else ["run", "name", "context"]
    return summarize(frame, keys)


def _contexts(frame: pl.DataFrame) -> list[str]:
    return sorted(frame.get_column("context").drop_nulls().unique().to_list())


#: The prefix of the context key columns a segment holds (``ctx.lang``): each point's
#: context decoded once, when the segment is written, so no query parses JSON again.
CTX = "ctx."


def decode_contexts(texts: list[str]) -> tuple[dict[str, dict[str, str]], list[str], list[str]]:
    """The context texts decoded: text -> its object (only objects of strings), the keys
    seen (sorted), and the texts that are not an object of strings."""
    decoded: dict[str, dict[str, str]] = {}
    keys: set[str] = set()
    bad: list[str] = []
    for text in texts:
        try:
            ctx = json.loads(text)
        except ValueError:
            ctx = None
        if not isinstance(ctx, dict) or not all(isinstance(v, str) for v in ctx.values()):
            bad.append(text)
            continue
        decoded[text] = ctx
        keys.update(ctx)
    return decoded, sorted(keys), bad


def context_columns(decoded: dict[str, dict[str, str]], keys: list[str]) -> list[pl.Expr]:
    """One String expression per key: each row's value of it, looked up by its context
    text (null where the context lacks the key or is not an object of strings)."""
    known = list(decoded)
    return [pl.col("context").replace_strict(known, [decoded[t].get(key) for t in known],
                                             default=None, return_dtype=pl.String)
            .alias(CTX + key) for key in keys]


def _aligned(scan: pl.LazyFrame, keys: list[str], every: list[str]) -> pl.LazyFrame:
    """A segment's scan with a ``ctx.KEY`` column for each of ``every`` (null where the
    segment has none), in one order, so the scans of segments concatenate."""
    missing = [pl.lit(None, dtype=pl.String).alias(CTX + k) for k in every if k not in keys]
    if missing:
        scan = scan.with_columns(missing)
    names = [c for c in scan.collect_schema().names() if not c.startswith(CTX)]
    return scan.select(*names, *[CTX + k for k in every])


# -- parsing -------------------------------------------------------------------------


@dataclass
class _Piece:
    """New bytes of one file to parse: whole lines only, the first one being ``first_line``."""

    src: str
    path: str
    body: bytes
    first_line: int
    lines: int  # newlines in ``body``, counted once


def _shifted(diags: Diagnostics, first_line: int) -> list[list[Any]]:
    return [[d.line + first_line - 1 if d.line else 0, d.message, d.kind] for d in diags.items]


def parse_pieces(pieces: list[_Piece], order_base: int) -> tuple[pl.DataFrame, dict[str, list]]:
    """Parse JSONL pieces into one raw frame with ``__src`` and ``__order`` columns.

    All pieces go through Polars in one call when they are clean; otherwise each piece on
    its own, and the careful line-by-line path for pieces with bad lines. Returns the
    frame and, per source, its diagnostics as ``[line, message, kind]`` lists.
    """
    notes: dict[str, list] = {p.src: [] for p in pieces}
    frames: list[pl.DataFrame] = []
    srcs: list[str] = []
    counts: list[int] = []
    newlines = [p.lines for p in pieces]
    whole = (fast_frame([p.body for p in pieces], newlines)
             if pieces else None)
    if whole is not None and whole.height == sum(newlines):
        frames.append(whole)
        srcs, counts = [p.src for p in pieces], newlines
    else:
        for piece, lines in zip(pieces, newlines):
            frame = fast_frame(piece.body, lines)
            if frame is None or frame.height != lines:
                local = Diagnostics()
                frame = careful_frame(piece.path, piece.body, local)
                notes[piece.src] += _shifted(local, piece.first_line)
                if local.blank_lines:
                    notes[piece.src].append([0, f"{local.blank_lines} blank lines", "blank"])
            frames.append(frame)
            srcs.append(piece.src)
            counts.append(frame.height)
    if not frames:
        return _empty_raw(), notes
    raw = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    index = pl.Series(range(len(srcs)), dtype=pl.UInt32).repeat_by(
        pl.Series(counts, dtype=pl.UInt32)).explode()
    raw = raw.with_columns(
        pl.Series(SRC, srcs, dtype=pl.String).gather(index).alias(SRC),
        (pl.int_range(0, raw.height, dtype=pl.Int64) + order_base).alias(ORDER),
    )
    return raw, notes


def _empty_raw() -> pl.DataFrame:
    return pl.DataFrame(schema={**RAW_SCHEMA, SRC: pl.String(), ORDER: pl.Int64()})


def read_uncached(files: list[str], offsets: dict[str, int] | None = None) -> RawData:
    """Read every file into memory, without the cache (``XP_NO_CACHE=1``).

    ``offsets``: files whose first bytes are to be skipped (held by a compacted file)."""
    diags = Diagnostics()
    raw = read_records(files, diags, offsets)
    raw = raw.with_columns(pl.int_range(0, raw.height, dtype=pl.Int64).alias(ORDER))
    stats = combine(_stats(raw), ["run", "name", "context"])
    return RawData(raw.lazy(), _contexts(raw), stats, diags)


# -- the cache -------------------------------------------------------------------------


def _identity(info: os.stat_result) -> dict[str, int]:
    """What says a file is unchanged: no write leaves its ctime as it was (``touch`` and
    ``os.utime`` can put an old mtime back, never an old ctime)."""
    return {"dev": info.st_dev, "ino": info.st_ino, "size": info.st_size,
            "mtime_ns": info.st_mtime_ns, "ctime_ns": info.st_ctime_ns}


def _racy(entry: dict[str, Any]) -> bool:
    """True when the file changed so shortly before it was read that another change in
    the same clock tick would not show in its times: it is checked again, not trusted."""
    return max(entry["mtime_ns"], entry["ctime_ns"]) >= entry["seen_ns"] - RACY_NS


def _same(entry: dict[str, Any], ident: dict[str, int]) -> bool:
    return all(entry.get(key) == value for key, value in ident.items())


def _plain_jsonl(path: str) -> bool:
    return not path.endswith((".gz", ".parquet"))


def _digest_file(fh: IO[bytes]) -> str:
    """The SHA-256 of a whole open file, read from the start in bounded chunks."""
    fh.seek(0)
    sha = hashlib.sha256()
    for block in iter(lambda: fh.read(_HASH_READ), b""):
        sha.update(block)
    return sha.hexdigest()


def _hash_prefix(fh: IO[bytes], start: int, end: int) -> Any:
    """A SHA-256 object fed the bytes ``start..end`` of ``fh`` (left positioned at
    ``end``), or None when the file is shorter."""
    fh.seek(start)
    sha = hashlib.sha256()
    left = end - start
    while left > 0:
        block = fh.read(min(_HASH_READ, left))
        if not block:
            return None
        sha.update(block)
        left -= len(block)
    return sha


#: Rows per Parquet row group of a segment at most (each holds one metric of a batch).
ROW_GROUP_ROWS = 256 * 1024


class _SegmentWriter:
    """One new segment, written batch by batch: each batch's rows are appended to the
    segment's Parquet file as row groups, and its series summary to the stats file, so
    an update of any size writes one segment in bounded memory and none needs merging.

    A batch is clustered, summarized and written by a thread of its own while the next
    batch is read and parsed (one batch at a time: memory stays bounded). Each metric of
    a batch is its own row groups: a query for one metric skips the others'.

    Both files are written under hidden names and renamed into place (synced) by
    :meth:`close`; :meth:`abort` removes them. ``keys``: the segment's context keys; a
    batch may lack some (their columns are null) but not bring others."""

    def __init__(self, folder: Path, seg: str, keys: list[str]) -> None:
        self.folder = folder
        self.seg = seg
        self.keys = list(keys)
        self.name, self.stats_name = f"seg-{seg}.parquet", f"seg-{seg}.stats.parquet"
        self.tmp = folder / f".{self.name}.{os.getpid()}.tmp"
        self.stats_tmp = folder / f".{self.stats_name}.{os.getpid()}.tmp"
        self.writers: dict[Path, Any] = {}
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xp-segment")
        self.pending: Future[None] | None = None
        self.rows = 0
        self.srcs: dict[str, int] = {}
        self.contexts: set[str] = set()

    def _append(self, path: Path, frame: pl.DataFrame, **options: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = frame.to_arrow()
        writer = self.writers.get(path)
        try:
            if writer is None:
                # Dictionaries for the text columns (few distinct values) only: numbers
                # are mostly distinct, and trying a dictionary for them costs a quarter
                # of the write and makes the file larger.
                texts = [c for c, dtype in frame.schema.items() if dtype == pl.String]
                writer = self.writers[path] = pq.ParquetWriter(
                    path, table.schema, compression="zstd", compression_level=3,
                    use_dictionary=texts)
            writer.write_table(table, **options)
        except OSError as exc:
            raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
        except (pa.ArrowException, ValueError) as exc:  # a batch unlike the first one
            # (columns of other types): the read goes on without the cache
            raise WriteError(f"cannot write {path}: {str(exc).strip()[:100]}") from None

    def submit(self, raw: pl.DataFrame, decoded: dict[str, dict[str, str]],
               keys: list[str]) -> None:
        """Append a batch of raw rows (their contexts ``decoded``, with ``keys``), in the
        background once the batch before it is written."""
        self._wait()
        self.pending = self.worker.submit(self._add, raw, decoded, keys)

    def _wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()  # the batch's error, if any, raised here

    def _add(self, raw: pl.DataFrame, decoded: dict[str, dict[str, str]],
             keys: list[str]) -> None:
        """Append a batch: its rows, metric by metric (a stable partition by kind and
        name, each part its own row groups, so a query for one metric skips the others'
        by their statistics), with ``ctx.KEY`` columns for the keys of this segment
        (null where the batch lacks one); then their summary."""
        names = [c for c in raw.columns if not c.startswith(CTX)]
        ctx = context_columns(decoded, keys) + [
            pl.lit(None, dtype=pl.String).alias(CTX + k) for k in self.keys if k not in keys]
        for part in raw.partition_by("kind", "name", maintain_order=True):
            frame = part.with_columns(ctx).select(*names, *[CTX + k for k in self.keys])
            self._append(self.tmp, frame, row_group_size=ROW_GROUP_ROWS)
        self._append(self.stats_tmp, _stats(raw))
        self.rows += raw.height
        for src, rows in raw.group_by(SRC).len().iter_rows():
            self.srcs[src] = self.srcs.get(src, 0) + rows
        self.contexts.update(_contexts(raw))

    def close(self) -> dict[str, Any]:
        """Finish both files and put them in place; the segment's manifest entry."""
        try:
            self._wait()
            self.worker.shutdown()
            for path, writer in list(self.writers.items()):
                del self.writers[path]
                writer.close()
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
            os.replace(self.stats_tmp, self.folder / self.stats_name)
            os.replace(self.tmp, self.folder / self.name)
        except OSError as exc:
            self.abort()
            raise WriteError(f"cannot write {self.folder / self.name}: "
                             f"{exc.strerror or exc}") from None
        return {"file": self.name, "stats": self.stats_name, "rows": self.rows,
                "srcs": self.srcs, "contexts": sorted(self.contexts), "keys": self.keys}

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._wait()
        self.worker.shutdown()
        for writer in self.writers.values():
            with contextlib.suppress(Exception):
                writer.close()
        self.writers.clear()
        for path in (self.tmp, self.stats_tmp):
            with contextlib.suppress(OSError):
                path.unlink()


#: Files asked of the disk ahead of their turn (see :func:`_read_ahead`).
READ_AHEAD = 256


def _read_ahead(paths: list[str]) -> None:
    """Tell the kernel these files are read soon, so a directory that is not in the page
    cache is read from disk while earlier files are parsed (a hint; errors are ignored)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            advise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


#: The cache's index: one Parquet file, one row per run file (:data:`_INDEX_SCHEMA`),
#: the rest of the state (segments, trash, counters) as JSON in its key-value metadata
#: under this key. Read whole in one go, so its two parts are of one state.
INDEX = "index.parquet"
_STATE_KEY = "xp.cache"
_INDEX_SCHEMA = pl.Schema({
    "src": pl.String(), "dev": pl.UInt64(), "ino": pl.UInt64(), "size": pl.Int64(),
    "mtime_ns": pl.Int64(), "ctime_ns": pl.Int64(), "seen_ns": pl.Int64(), "base": pl.Int64(),
    "offset": pl.Int64(), "lines": pl.Int64(), "sha": pl.String(), "tail_bytes": pl.Int64(),
    "segments": pl.List(pl.String()),
    "notes": pl.String(), "tail": pl.String(),  # JSON text; null for none
})
_IDENTITY = ("dev", "ino", "size", "mtime_ns", "ctime_ns")


def _notes_valid(table: pl.DataFrame) -> bool:
    """Whether the notes and torn tails of the index are what the cache writes: a list of
    ``[line, message, kind]`` (few files have any, so this is cheap)."""
    noted = table.filter(pl.col("notes").is_not_null() | pl.col("tail").is_not_null())
    try:
        for notes, tail in noted.select("notes", "tail").iter_rows():
            items = (json.loads(notes) if notes else []) + ([json.loads(tail)] if tail else [])
            if not all(isinstance(item, list) and len(item) == 3 and isinstance(item[0], int)
                       and isinstance(item[1], str) and isinstance(item[2], str)
                       for item in items):
                return False
    except (ValueError, TypeError):
        return False
    return True


def _state_valid(state: dict[str, Any]) -> bool:
    """Whether the index's state (its metadata) is of the shape the cache writes: a
    damaged one that still parses as JSON is no cache (rebuilt), never a KeyError later."""
    def strings(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    def segment(info: Any) -> bool:
        return (isinstance(info, dict) and isinstance(info.get("file"), str)
                and isinstance(info.get("stats"), str) and isinstance(info.get("rows"), int)
                and strings(info.get("contexts")) and strings(info.get("keys"))
                and isinstance(info.get("srcs"), dict)
                and all(isinstance(k, str) and isinstance(n, int)
                        for k, n in info["srcs"].items()))

    def trashed(info: Any) -> bool:
        return (isinstance(info, dict) and strings(info.get("files"))
                and isinstance(info.get("since"), (int, float)))

    segments, trash = state.get("segments"), state.get("trash")
    return (isinstance(state.get("next"), int) and isinstance(segments, dict)
            and isinstance(trash, dict) and all(map(segment, segments.values()))
            and all(map(trashed, trash.values()))
            and isinstance(state.get("next_order", 0), int)
            and isinstance(state.get("generation", ""), str))


class _Index:
    """The manifest as it is kept on disk: ``table``, a row per file (what a read compares
    and uses, in columns), and ``state``, the rest (``segments``, ``trash``, ``next``,
    ``next_order``, ``generation``, ``version``, ``root``).

    A read that finds every file as the index says (:meth:`unchanged`) uses it as it is;
    an update works on the manifest as dicts (:meth:`manifest`) and saves it back
    (:meth:`of`)."""

    def __init__(self, state: dict[str, Any], table: pl.DataFrame) -> None:
        self.state = state
        self.table = table

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> _Index:
        files = manifest["files"]
        entries = list(files.values())
        if entries and set(entries[0]) != set(_INDEX_SCHEMA.names()[1:]):
            raise ValueError(f"a file entry the index has no columns for: {sorted(entries[0])}")
        columns: dict[str, list[Any]] = {"src": list(files)}
        for key in _INDEX_SCHEMA.names()[1:]:
            columns[key] = [e[key] for e in entries]
        columns["notes"] = [json.dumps(n) if n else None for n in columns["notes"]]
        columns["tail"] = [json.dumps(t) if t is not None else None for t in columns["tail"]]
        table = pl.DataFrame(columns, schema=_INDEX_SCHEMA)
        return cls({k: v for k, v in manifest.items() if k != "files"}, table)

    def manifest(self) -> dict[str, Any]:
        """The manifest as dicts, for an update: ``files`` maps each source to its entry."""
        names = _INDEX_SCHEMA.names()
        columns = [self.table.get_column(n).to_list() for n in names]
        files = {}
        for row in zip(*columns):
            entry = dict(zip(names[1:], row[1:]))
            entry["notes"] = json.loads(entry["notes"]) if entry["notes"] else []
            entry["tail"] = json.loads(entry["tail"]) if entry["tail"] else None
            files[row[0]] = entry
        return {**self.state, "files": files}

    @classmethod
    def read(cls, path: Path) -> _Index | None:
        """The index at ``path``, or None when it is missing, damaged or of another
        version (the cache is then built again, never misread)."""
        try:
            with open(path, "rb") as fh:
                data = io.BytesIO(fh.read())
            state = json.loads(pl.read_parquet_metadata(data)[_STATE_KEY])
            if not isinstance(state, dict) or state.get("version") != CACHE_VERSION:
                return None
            data.seek(0)
            table = pl.read_parquet(data)
        except (OSError, ValueError, KeyError, TypeError,
                pl.exceptions.PolarsError, pl.exceptions.PanicException):
            return None
        if table.schema != _INDEX_SCHEMA or not _notes_valid(table):
            return None
        return cls(state, table)

    def write(self, path: Path) -> None:
        """Replace the index at ``path`` atomically (written beside it, synced, renamed)."""
        buf = io.BytesIO()
        self.table.write_parquet(buf, compression="lz4", statistics=False,
                                 metadata={_STATE_KEY: json.dumps(self.state,
                                                                  separators=(",", ":"))})
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(buf.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def unchanged(self, paths: list[str], srcs: list[str], offsets: dict[str, int]) -> bool:
        """True when every file is as the index says, trusted by its identity (see
        :func:`_identity`, :func:`_racy`) and at its offset, and no other file is in it:
        what :meth:`Cache._plan` finds as nothing to do, decided on columns.

        A stat per file, whatever the directory says: appending to a file changes its
        size and times, never its directory's."""
        if len(srcs) != self.table.height:
            return False
        try:
            infos = [os.stat(p) for p in paths]
        except OSError:
            return False  # gone meanwhile: the planner says what to do
        found = pl.DataFrame({
            "src": srcs,
            "dev": [i.st_dev for i in infos], "ino": [i.st_ino for i in infos],
            "size": [i.st_size for i in infos], "mtime_ns": [i.st_mtime_ns for i in infos],
            "ctime_ns": [i.st_ctime_ns for i in infos],
            "base": [offsets.get(p, 0) for p in paths] if offsets else [0] * len(paths),
        }, schema={k: _INDEX_SCHEMA[k] for k in ("src", *_IDENTITY, "base")})
        known = self.table.select("src", *_IDENTITY, "base", "seen_ns")
        same = found.join(known, on="src", how="inner", suffix="_known").filter(
            *[pl.col(k) == pl.col(f"{k}_known") for k in (*_IDENTITY, "base")],
            pl.max_horizontal("mtime_ns", "ctime_ns") < pl.col("seen_ns") - RACY_NS)
        return same.height == len(srcs) == found.get_column("src").n_unique()


class Cache:
    """The cache of one runs directory. ``Cache(runs_dir).read(files)`` -> :class:`RawData`."""

    def __init__(self, runs_dir: str | os.PathLike[str], folder: Path) -> None:
        self.root = os.path.realpath(os.fspath(runs_dir))
        self.base = os.path.abspath(os.fspath(runs_dir))
        self.given = os.fspath(runs_dir).rstrip(os.sep) or os.sep
        self.folder = folder
        self.index_path = folder / INDEX
        self.progress: _Tally | None = None

    # manifest ---------------------------------------------------------------------

    def _fresh(self) -> dict[str, Any]:
        return {"version": CACHE_VERSION, "root": self.root, "next": 0, "files": {},
                "segments": {}, "trash": {}}

    def _load_index(self) -> _Index | None:
        """The index, if it is of this runs directory, of the shape the cache writes
        (:func:`_state_valid`), and its segments are all there."""
        index = _Index.read(self.index_path)
        if index is None or index.state.get("root") != self.root:
            return None
        if not _state_valid(index.state):
            return None
        if all((self.folder / s["file"]).exists() for s in index.state["segments"].values()):
            return index
        return None

    def _load_manifest(self) -> dict[str, Any]:
        return self._manifest(self._load_index())

    def _manifest(self, index: _Index | None) -> dict[str, Any]:
        """The manifest as dicts (a fresh one without an index)."""
        if index is None:
            return self._fresh()
        return index.manifest()

    def _save_manifest(self, manifest: dict[str, Any], new_state: bool = True) -> None:
        if new_state or "generation" not in manifest:
            manifest["generation"] = os.urandom(8).hex()  # other rows: built tables are stale
        _Index.of(manifest).write(self.index_path)
        with contextlib.suppress(OSError):  # the JSON manifest of version 6 and before
            os.unlink(self.folder / "manifest.json")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _src(self, path: str) -> str:
        """A file's name in the manifest: its path relative to the runs directory."""
        for prefix in (self.given, self.base):
            if path.startswith(prefix + os.sep):
                return path[len(prefix) + 1:]
        return os.path.relpath(os.path.abspath(path), self.base)

    def _srcs(self, paths: list[str]) -> list[str]:
        """:meth:`_src` of every path (those under the runs directory as given, sliced)."""
        prefix = self.given + os.sep
        cut = len(prefix)
        return [p[cut:] if p.startswith(prefix) else self._src(p) for p in paths]

    # planning -----------------------------------------------------------------------

    def _plan(self, manifest: dict[str, Any], files: list[str],
              offsets: dict[str, int]) -> tuple[list[tuple[str, str, str]], set[str]]:
        """Which files need reading, and how: ``(src, path, mode)`` with mode ``full`` or
        ``verify`` (check the cached part by its hash, then read what follows); and the
        sources that left the directory."""
        todo = []
        present = set()
        for path in files:
            src = self._src(path)
            present.add(src)
            try:
                ident = _identity(os.stat(path))
            except OSError:
                continue
            entry = manifest["files"].get(src)
            if entry is None or entry.get("base", 0) != offsets.get(path, 0):
                todo.append((src, path, "full"))  # new, or compacted meanwhile: read it all
            elif _same(entry, ident) and not _racy(entry):
                continue
            elif (entry["dev"], entry["ino"]) == (ident["dev"], ident["ino"]) and (
                    ident["size"] >= entry["offset"] if _plain_jsonl(path)
                    else ident["size"] == entry["size"]):
                todo.append((src, path, "verify"))
            else:
                todo.append((src, path, "full"))
        gone = set(manifest["files"]) - present
        return todo, gone

    # reading --------------------------------------------------------------------------

    def read(self, files: list[str], offsets: dict[str, int] | None = None,
             progress: Progress | None = None) -> RawData:
        """Bring the cache up to date with ``files`` and return their records.

        ``offsets``: files whose first bytes are held elsewhere (a compacted file);
        ``progress`` is told of each file read and batch parsed."""
        offsets = offsets or {}
        self.progress = _Tally(progress) if progress is not None else None
        index = self._load_index()
        if index is not None and index.unchanged(files, self._srcs(files), offsets):
            return self._raw_data(index, files)  # the common case, decided on columns
        manifest = self._manifest(index)
        todo, gone = self._plan(manifest, files, offsets)
        if todo or gone:
            with self._locked():
                manifest = self._load_manifest()  # another process may have done the work
                todo, gone = self._plan(manifest, files, offsets)
                if todo or gone:
                    manifest = self._update(manifest, todo, gone, offsets)
            index = None
        return self._raw_data(index if index is not None else _Index.of(manifest), files)

    def _update(self, manifest: dict[str, Any], todo: list[tuple[str, str, str]],
                gone: set[str], offsets: dict[str, int]) -> dict[str, Any]:
        """Read what changed; parse it in batches of about :data:`BATCH_BYTES` each.

        Each batch becomes one segment, so memory stays bounded however large the runs
        directory or one file is (only one batch's bytes and rows are held at a time)."""
        files = manifest["files"]
        before = {src: list(entry["segments"]) for src, entry in files.items()}
        changed = False
        for src in gone:
            files.pop(src, None)
        self._batch: list[_Piece] = []
        self._batch_parquet: list[pl.DataFrame] = []
        self._size: float = 0
        self._segment: _SegmentWriter | None = None
        if self.progress is not None:
            self.progress.plan([path for _, path, _ in todo])
        try:
            for k, (src, path, mode) in enumerate(todo):
                if k % READ_AHEAD == 0:  # the disk reads the next files while these parse
                    _read_ahead([p for _, p, _ in todo[k + READ_AHEAD:k + 2 * READ_AHEAD]]
                                if k else [p for _, p, _ in todo[:2 * READ_AHEAD]])
                old = files.get(src)
                if _plain_jsonl(path):
                    self._read_jsonl(manifest, src, path, mode, offsets.get(path, 0))
                else:
                    self._read_whole(manifest, src, path, mode)
                changed = changed or files.get(src) != old
                if self.progress is not None:
                    self.progress.file(path)
            self._flush_batch(manifest)
            self._close_segment(manifest)
        finally:
            if self._segment is not None:  # failed half-way: its files never appear
                self._segment.abort()
                self._segment = None
        self._maybe_merge(manifest)
        new_state = bool(gone) or any(before.get(src) != entry["segments"]
                                      for src, entry in files.items())
        if changed or new_state:
            self._save_manifest(manifest, new_state)
        self._empty_trash(manifest)
        return manifest

    def _entry(self, old: dict[str, Any] | None, ident: dict[str, int], seen: int,
               **fields: Any) -> dict[str, Any]:
        """A manifest entry. A file found unchanged but still racy keeps its old
        ``seen_ns``: the entry stays as it was, and the file is checked again next time."""
        if old is not None and _same(old, ident) and _racy({**ident, "seen_ns": seen}):
            seen = old["seen_ns"]
        return {**ident, "seen_ns": seen, **fields}

    def _add(self, manifest: dict[str, Any], piece: _Piece | None,
             frame: pl.DataFrame | None = None) -> None:
        if piece is not None:
            self._batch.append(piece)
            self._size += len(piece.body)
        if frame is not None:
            self._batch_parquet.append(frame)
            self._size += frame.estimated_size()
        if self._size >= BATCH_BYTES:
            self._flush_batch(manifest)

    def _flush_batch(self, manifest: dict[str, Any]) -> None:
        self._write_batch(manifest, self._batch, self._batch_parquet)
        self._batch, self._batch_parquet, self._size = [], [], 0

    def _read_jsonl(self, manifest: dict[str, Any], src: str, path: str, mode: str,
                    base: int) -> None:
        """Bring one JSONL file's entry up to date: check its cached prefix by hash (mode
        ``verify``) and parse only what follows, or parse it all again."""
        files = manifest["files"]
        old = files.get(src)
        seen = time.time_ns()  # before the file is looked at: see _racy
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed in the finally below
        except OSError as exc:
            self._unreadable(manifest, src, path, seen, base, exc)
            return
        try:
            ident = _identity(os.fstat(fh.fileno()))
            hasher = None
            if (mode == "verify" and old is not None
                    and (old["dev"], old["ino"]) == (ident["dev"], ident["ino"])):
                hasher = _hash_prefix(fh, base, old["offset"])
                if hasher is not None and hasher.hexdigest() != old["sha"]:
                    hasher = None  # edited in place: every row of it is read again
            if hasher is not None and old is not None and (
                    old["offset"] > base or old["tail_bytes"] > _records.MAX_LINE_BYTES):
                start, first_line = old["offset"], old["lines"] + 1
                # A torn tail already too long to be read is not read again.
                skip = old["tail_bytes"] if old["tail_bytes"] > _records.MAX_LINE_BYTES else 0
                segments, notes = list(old["segments"]), list(old["notes"])
            else:
                first_line = 1 + count_newlines(fh, base)
                start, skip, segments, notes = base, 0, [], []
                hasher = hashlib.sha256()
            entry = {"base": base, "segments": segments, "notes": notes}
            files[src] = {**(old or {}), **entry}  # where _write_batch adds segments
            local = Diagnostics()
            reader = LineReader(path, local, start, first_line, hasher, fh=fh, skip_tail=skip)
            for chunk in reader:
                self._add(manifest, _Piece(src, path, chunk.body, chunk.first_line,
                                           chunk.lines))
            current = files[src]
            files[src] = self._entry(
                old, ident, seen, base=base, offset=reader.end, lines=reader.lines,
                sha=hasher.hexdigest(), tail_bytes=reader.tail, segments=current["segments"],
                notes=current["notes"] + _shifted(local, 1), tail=reader.torn)
        finally:
            fh.close()

    def _unreadable(self, manifest: dict[str, Any], src: str, path: str, seen: int,
                    base: int, exc: OSError) -> None:
        """The entry of a file that cannot be opened: no rows, the reason as a note (kept
        until the file changes: a chmod moves its ctime). A file gone meanwhile leaves."""
        try:
            ident = _identity(os.stat(path))
        except OSError:
            manifest["files"].pop(src, None)
            return
        manifest["files"][src] = self._entry(
            None, ident, seen, base=base, offset=base, lines=0, sha="", tail_bytes=0,
            segments=[], tail=None, notes=[[0, f"cannot read: {exc.strerror}", "unreadable"]])

    def _read_whole(self, manifest: dict[str, Any], src: str, path: str, mode: str) -> None:
        """Bring one Parquet or gzip file's entry up to date: unchanged if its hash is,
        else read again whole."""
        files = manifest["files"]
        old = files.get(src)
        seen = time.time_ns()
        local = Diagnostics()
        try:
            with open(path, "rb") as fh:
                ident = _identity(os.fstat(fh.fileno()))
                sha = _digest_file(fh)  # before the read: a change meanwhile shows next time
        except OSError as exc:
            self._unreadable(manifest, src, path, seen, 0, exc)
            return
        if mode == "verify" and old is not None and old["sha"] == sha:
            files[src] = self._entry(old, ident, seen, **{
                k: old[k] for k in ("base", "offset", "lines", "sha", "tail_bytes",
                                    "segments", "notes", "tail")})
            return
        files[src] = {**ident, "seen_ns": seen, "base": 0, "offset": ident["size"], "lines": 0,
                      "sha": sha, "tail_bytes": 0, "segments": [], "notes": [], "tail": None}
        if path.endswith(".parquet"):
            frame = read_parquet(path, local)
            if frame is not None:
                self._add(manifest, None, frame.with_columns(pl.lit(src).alias(SRC)))
        else:
            reader = LineReader(path, local)
            for chunk in reader:
                self._add(manifest, _Piece(src, path, chunk.body, chunk.first_line,
                                           chunk.lines))
            files[src]["lines"], files[src]["tail"] = reader.lines, reader.torn
        files[src]["notes"] += _shifted(local, 1)

    def _write_batch(self, manifest: dict[str, Any], pieces: list[_Piece],
                     parquet_frames: list[pl.DataFrame]) -> None:
        """Parse one batch of pieces (and Parquet sources) into one new segment."""
        if not pieces and not parquet_frames:
            return
        if self.progress is not None:
            self.progress.step("parsing")
        files = manifest["files"]
        order_base = manifest.get("next_order", 0)
        raw, notes = parse_pieces(pieces, order_base)
        for src, extra in notes.items():
            files[src]["notes"] += extra
        if parquet_frames:
            pq = pl.concat(parquet_frames, how="vertical")
            pq = pq.with_columns((pl.int_range(0, pq.height, dtype=pl.Int64)
                                  + order_base + raw.height).alias(ORDER))
            raw = pl.concat([raw, pq.select(raw.columns)], how="vertical") if raw.height else pq
        manifest["next_order"] = order_base + raw.height
        if raw.height:
            seg = self._write_segment(manifest, raw)
            for src in raw.get_column(SRC).unique().to_list():
                if seg not in files[src]["segments"]:
                    files[src]["segments"].append(seg)

    def _write_segment(self, manifest: dict[str, Any], raw: pl.DataFrame) -> str:
        """Add one batch's rows to the segment this update writes (started here, or
        closed and another started when the batch has context keys it lacks)."""
        decoded, keys, _ = decode_contexts(_contexts(raw))
        if self._segment is not None and not set(keys) <= set(self._segment.keys):
            self._close_segment(manifest)
        if self._segment is None:
            seg = str(manifest["next"])
            manifest["next"] += 1
            self._segment = _SegmentWriter(self.folder, seg, keys)
        self._segment.submit(raw, decoded, keys)
        return self._segment.seg

    def _close_segment(self, manifest: dict[str, Any]) -> None:
        """Finish the segment being written (its files appear whole) and list it."""
        if self._segment is None:
            return
        manifest["segments"][self._segment.seg] = self._segment.close()
        self._segment = None

    @staticmethod
    def _live(manifest: dict[str, Any]) -> dict[str, set[str]]:
        """Per segment, the sources whose current rows it holds."""
        live: dict[str, set[str]] = {seg: set() for seg in manifest["segments"]}
        for src, entry in manifest["files"].items():
            for seg in entry["segments"]:
                if seg in live:
                    live[seg].add(src)
        return live

    def _maybe_merge(self, manifest: dict[str, Any]) -> None:
        """Retire segments nobody uses; merge all into one when many or mostly stale."""
        live = self._live(manifest)
        segments = manifest["segments"]
        for seg in [s for s, srcs in live.items() if not srcs]:
            self._retire(manifest, seg)
            del live[seg]
        total = sum(s["rows"] for s in segments.values())
        stale = sum(n for seg, info in segments.items() for src, n in info["srcs"].items()
                    if src not in live[seg])
        if len(segments) <= MAX_SEGMENTS and (not total or stale / total <= MAX_GARBAGE):
            return
        # Streamed from the old segments to the new one: memory stays bounded.
        seg = str(manifest["next"])
        manifest["next"] += 1
        name, stats_name = f"seg-{seg}.parquet", f"seg-{seg}.stats.parquet"
        every = sorted({k for info in segments.values() for k in info["keys"]})
        merged = pl.concat([_aligned(self._scan(s, manifest, live[s]), segments[s]["keys"], every)
                            for s in segments], how="vertical")
        tmp = self.folder / f".{name}.{os.getpid()}.tmp"
        merged.sink_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, self.folder / name)
        # The summary rows of the live sources, as their segments had them (a series
        # held by several is combined when read, as it was before the merge): no pass
        # over the points, and memory bounded by the summary's size.
        stats = [pl.read_parquet(self.folder / segments[s]["stats"])
                 .filter(pl.col(SRC).is_in(sorted(live[s]))) for s in segments]
        write_parquet_frame(pl.concat(stats, how="vertical"), self.folder / stats_name)
        rows: dict[str, int] = {}
        for s in segments:
            for src in live[s]:
                rows[src] = rows.get(src, 0) + segments[s]["srcs"][src]
        contexts = sorted({c for info in segments.values() for c in info["contexts"]})
        old = list(segments)
        segments[seg] = {"file": name, "stats": stats_name, "rows": sum(rows.values()),
                         "srcs": rows, "contexts": contexts, "keys": every}
        for entry in manifest["files"].values():
            if entry["segments"]:
                entry["segments"] = [seg]
        for name in old:
            self._retire(manifest, name)

    def _scan(self, seg: str, manifest: dict[str, Any], srcs: set[str]) -> pl.LazyFrame:
        """A segment's rows of ``srcs`` (no filter when that is all of them).

        The segment is opened here and the frame holds the open file: however late it is
        collected, it reads this segment, even after a merge deleted it or the cache
        folder was cleared (an unlinked file lives while it is open)."""
        info = manifest["segments"][seg]
        with open(self.folder / info["file"], "rb") as fh:
            scan = pl.scan_parquet(fh)  # Polars keeps a duplicate of the descriptor
        if srcs != set(info["srcs"]):
            scan = scan.filter(pl.col(SRC).is_in(sorted(srcs)))
        return scan

    def _retire(self, manifest: dict[str, Any], seg: str) -> None:
        info = manifest["segments"].pop(seg)
        manifest["trash"][seg] = {"files": [info["file"], info["stats"]], "since": time.time()}

    def _empty_trash(self, manifest: dict[str, Any]) -> None:
        now = time.time()
        expired = [s for s, info in manifest["trash"].items()
                   if now - info["since"] > GRACE_SECONDS]
        for seg in expired:
            for name in manifest["trash"].pop(seg)["files"]:
                with contextlib.suppress(OSError):
                    os.unlink(self.folder / name)
        if expired:
            self._save_manifest(manifest, new_state=False)

    def _raw_data(self, index: _Index, files: list[str]) -> RawData:
        wanted = self._srcs(files)
        rows = index.table.filter(pl.col("src").is_in(wanted))
        held = (rows.select("src", "segments").explode("segments").drop_nulls("segments")
                .group_by("segments").agg("src"))
        live = dict(zip(held.get_column("segments").to_list(), held.get_column("src").to_list()))
        state = index.state
        scans, stats, contexts = [], [], set()
        for seg, info in state["segments"].items():
            srcs = set(live.get(seg, ()))
            if not srcs:
                continue
            scans.append((self._scan(seg, state, srcs), info["keys"]))
            stats.append((self.folder / info["stats"], sorted(srcs)))
            contexts.update(info["contexts"])
        diags = Diagnostics()
        noted = (rows.filter(pl.col("notes").is_not_null() | pl.col("tail").is_not_null())
                 .sort("src").select("src", "notes", "tail"))
        for src, notes_text, tail_text in noted.iter_rows():
            path = os.path.join(self.given, src)
            notes = sorted(json.loads(notes_text) if notes_text else [],
                           key=lambda note: note[0])  # in line order
            tail = json.loads(tail_text) if tail_text else None
            for line, message, kind in notes + ([tail] if tail else []):
                if kind == "blank":
                    diags.blank_lines += int(message.split()[0])
                else:
                    diags.add(path, line, message, kind)
        if scans:
            every = sorted({k for _, keys in scans for k in keys})
            records = pl.concat([_aligned(scan, keys, every) for scan, keys in scans],
                                how="vertical").drop(SRC)

            def stat_frame() -> pl.DataFrame:
                parts = [pl.read_parquet(path).filter(pl.col(SRC).is_in(srcs))
                         for path, srcs in stats]
                return combine(pl.concat(parts).drop(SRC), ["run", "name", "context"])
        else:
            records = _empty_raw().drop(SRC).lazy()

            def stat_frame() -> pl.DataFrame:
                return pl.DataFrame(schema={**STATS_SCHEMA, "parts": pl.Int64()})
        named = state.get("generation", "") + "\n" + "\n".join(sorted(set(wanted)))
        token = hashlib.sha1(named.encode()).hexdigest()[:16]
        return RawData(records, sorted(contexts), stat_frame, diags, token,
                       Built(self.folder, token), decoded=True)


_CACHE_NAME = re.compile(r"[0-9a-f]{16}")


def is_cache_folder(folder: Path) -> bool:
    """True for a folder this module made: a 16-hex name holding an index (or the
    manifest.json of a version before it) or a lock."""
    return (folder.is_dir() and not folder.is_symlink()
            and _CACHE_NAME.fullmatch(folder.name) is not None
            and any((folder / name).exists() for name in (INDEX, "manifest.json", "lock")))


def clear(runs_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Delete the cache of ``runs_dir``, or of every runs directory when it is None.

    Only folders this module made are removed (see :func:`is_cache_folder`), so an
    ``XP_CACHE_DIR`` pointing at a folder with other things in it loses nothing else.
    Returns the folders removed."""
    import shutil

    home = cache_home()
    if home is None or not home.is_dir():
        return []
    if runs_dir is not None:
        folder = cache_dir_for(runs_dir, home)
        candidates = [folder] if folder is not None else []
    else:
        candidates = sorted(home.iterdir())
    removed = []
    for folder in candidates:
        if is_cache_folder(folder):
            shutil.rmtree(folder)
            removed.append(folder)
    return removed


class _PrefixChecks:
    """What hashing found about the prefixes that compacted files hold, remembered in the
    cache folder (``prefixes.json``): a leftover run file beside a compacted file (a run
    resumed after a killed compaction) has its compacted prefix hashed when the file
    changed, not on every read. An answer holds while the file's identity does and it
    is not racy, as for the cache's own entries."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "prefixes.json"
        try:
            with open(self.path, encoding="utf-8") as fh:
                self.known: dict[str, Any] = dict(json.load(fh))
        except (OSError, ValueError, TypeError):
            self.known = {}
        self.used: dict[str, Any] = {}

    def holds(self, path: str, size: int, sha256: str) -> bool:
        key = f"{path}\n{size}\n{sha256}"
        seen = time.time_ns()
        try:
            with open(path, "rb") as fh:
                ident = _identity(os.fstat(fh.fileno()))
                entry: dict[str, Any] = self.known.get(key) or {}
                if not self._trusted(entry, ident):
                    hasher = _hash_prefix(fh, 0, size)
                    entry = {**ident, "seen_ns": seen,
                             "holds": hasher is not None and hasher.hexdigest() == sha256}
        except OSError:
            return False  # unreadable: read as it is (and reported by the reader)
        self.used[key] = entry
        return bool(entry["holds"])

    @staticmethod
    def _trusted(entry: Any, ident: dict[str, int]) -> bool:
        """An answer found before, for this very file, not racy (a damaged memo is not)."""
        try:
            return (isinstance(entry, dict) and isinstance(entry.get("holds"), bool)
                    and _same(entry, ident) and not _racy(entry))
        except (KeyError, TypeError):
            return False

    def save(self) -> None:
        if self.used == self.known:
            return
        try:
            tmp = self.path.with_name(f".prefixes.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.used), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only or full cache: hashed again next time


def superseded(runs_dir: str | os.PathLike[str], files: list[str]) -> Superseded:
    """:func:`xpcli.records.superseded`, remembering its hashes in the cache folder."""
    folder = cache_dir_for(runs_dir)
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            folder = None  # an unwritable cache: hash every time
    if folder is None:
        return find_superseded(os.fspath(runs_dir), files)
    checks = _PrefixChecks(folder)
    found = find_superseded(os.fspath(runs_dir), files, checks.holds)
    checks.save()
    return found


class _Tally:
    """Counts files and bytes of a cache update for a :data:`~xpcli.progress.Progress`."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.sizes: dict[str, int] = {}
        self.files = self.done = 0

    def plan(self, paths: list[str]) -> None:
        for path in paths:
            with contextlib.suppress(OSError):
                self.sizes[path] = os.path.getsize(path)
        self.files = self.done = 0

    def file(self, path: str) -> None:
        self.files += 1
        self.done += self.sizes.get(path, 0)
        self.step("reading")

    def step(self, what: str) -> None:
        self.progress(self.files, len(self.sizes), self.done, sum(self.sizes.values()), what)


def read(runs_dir: str | os.PathLike[str], files: list[str],
         offsets: dict[str, int] | None = None, progress: Progress | None = None) -> RawData:
    """Records of ``files`` under ``runs_dir``, through the cache unless it is disabled.

    ``offsets`` maps files whose first bytes are already held by a compacted Parquet file
    to the number of bytes to skip; ``progress`` follows a cache update file by file."""
    folder = cache_dir_for(runs_dir)
    if folder is None:
        return read_uncached(files, offsets)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return Cache(runs_dir, folder).read(files, offsets, progress)
    except (OSError, WriteError, pl.exceptions.PolarsError, pl.exceptions.PanicException):
        # An unwritable, full or damaged cache folder, or one cleared while it was read,
        # must not stop a read: go without it, to the sources.
        return read_uncached(files, offsets)

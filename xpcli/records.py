"""Reading records: run files found, their bytes parsed into raw record frames.

This module turns the bytes of a runs directory into frames and knows nothing of the
runs and points tables (:mod:`xpcli.dataset` builds those) or of the cache
(:mod:`xpcli.cache` keeps what it parses here):

- :func:`find_files` lists the ``*.jsonl``, ``*.jsonl.gz`` and ``*.parquet`` files;
- :func:`read_records` reads files into one raw frame (:data:`RAW_SCHEMA`, a row per
  record); :class:`LineReader` (whole lines of a JSONL file, in bounded chunks),
  :func:`fast_frame`, :func:`careful_frame`, :func:`parse_jsonl` and
  :func:`read_parquet` are its steps, for callers that read the bytes themselves;
- :func:`superseded` says which JSONL files a compacted Parquet file already holds;
- :func:`write_parquet` writes raw records back, atomically.

Bad input never stops a read: a torn last line, a malformed line, an empty file or an
unreadable or damaged file is skipped and recorded in a :class:`Diagnostics` with its file
and line. Memory stays bounded by the chunk size, not by the size of a file: a JSONL file
is read :data:`CHUNK_BYTES` at a time, and a line longer than :data:`MAX_LINE_BYTES` is
skipped (and reported) without being held.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import itertools
import json
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, cast

import polars as pl

from . import format as fmt
from .errors import DataError, WriteError

SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")

#: Every file is first read into this one "raw" schema: a row per record.
RAW_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(),
    "run": pl.String(),
    "name": pl.String(),
    "value": pl.Float64(),
    "step": pl.Int64(),
    "epoch": pl.Float64(),
    "time": pl.Float64(),
    "context": pl.String(),
    "params": pl.String(),
    "meta": pl.String(),
}
#: What the fast JSONL path asks Polars for: every field but ``params`` and ``meta``,
#: which only run records hold (a few lines, read with :mod:`json`: see
#: :func:`_exact_objects`); the context arrives as its JSON text. Polars parses the
#: ``value`` as a number, or (a file holding "NaN" or "Infinity") as text.
_FLOAT_SCHEMA = {k: v for k, v in RAW_SCHEMA.items() if k not in ("params", "meta")}
_JSON_SCHEMA = {**_FLOAT_SCHEMA, "value": pl.String()}


@dataclass
class Diagnostic:
    """One problem met while reading: ``path:line: message`` (line 0 = the whole file)."""

    path: str
    line: int
    message: str
    kind: str = "malformed"

    def __str__(self) -> str:
        if not self.path:  # about the whole directory (e.g. a param's mixed types)
            return self.message
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass
class Diagnostics:
    """Problems met while reading, and counts by kind (torn, malformed, blank, empty...)."""

    items: list[Diagnostic] = field(default_factory=list)
    blank_lines: int = 0

    def add(self, path: str, line: int, message: str, kind: str = "malformed") -> None:
        self.items.append(Diagnostic(path, line, message, kind))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item.kind] = out.get(item.kind, 0) + 1
        if self.blank_lines:
            out["blank"] = self.blank_lines
        return out

    def __len__(self) -> int:
        return len(self.items)

    def summary(self) -> str:
        """``2 torn, 1 malformed`` - one phrase for a status line."""
        return ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts().items()))


# -- finding files ---------------------------------------------------------------------


def find_files(runs_dir: str | os.PathLike[str]) -> list[str]:
    """Every ``*.jsonl``, ``*.jsonl.gz`` and ``*.parquet`` under ``runs_dir``, sorted.

    Hidden files and folders (a leading dot) are skipped; symlinked folders are followed
    once each, so a symlink loop cannot hang the walk.
    """
    root = os.fspath(runs_dir)
    if not os.path.exists(root):
        raise DataError(f"runs directory {root} does not exist; pass --runs DIR or set XP_RUNS")
    if os.path.isfile(root):
        if root.endswith(SUFFIXES):
            return [root]
        raise DataError(f"{root} is not a runs directory or a .jsonl/.parquet file")
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = os.stat(folder)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(entry.path)
                elif entry.name.endswith(SUFFIXES) and entry.is_file(follow_symlinks=True):
                    found.append(entry.path)
            except OSError:
                continue
    found.sort()
    return found


# -- reading records ---------------------------------------------------------------------

#: A JSONL file is read this many bytes at a time, so memory does not grow with its size.
CHUNK_BYTES = 32 << 20
#: Whole lines are parsed in batches of about this many bytes (without the cache).
PARSE_BYTES = 128 << 20
#: A line longer than this is skipped and reported without being held in memory: no
#: record a training job writes comes near it, and a reader must not need gigabytes for
#: one line of a damaged or hostile file.
MAX_LINE_BYTES = 64 << 20
#: Compressed bytes of a gzip file read at a time.
_GZ_READ = 1 << 20
#: What a torn last line is reported as.
TORN_MESSAGE = "torn last line (file cut while being written); skipped"
_BLANK = re.compile(rb"\s*")


def _damaged(exc: BaseException) -> str:
    """The first line of an exception's text, short, for a diagnostic."""
    text = str(exc).strip()
    return text.splitlines()[0][:100] if text else type(exc).__name__


def _gunzip(fh: IO[bytes], path: str, diags: Diagnostics, size: int) -> Iterator[bytes]:
    """The decompressed bytes of a gzip file (any number of members), at most ``size`` at
    a time. A damaged or cut stream yields what decompressed and is reported (``torn``)."""
    pending = fh.read(_GZ_READ)
    if not pending:
        return  # an empty file
    stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        while True:
            out = stream.decompress(pending, size)
            pending = stream.unconsumed_tail
            if out:
                yield out
            if stream.eof:  # the end of one member: another may follow
                rest = stream.unused_data
                while len(rest) < 2:
                    more = fh.read(_GZ_READ)
                    if not more:
                        break
                    rest += more
                if not rest:
                    return
                if rest[:2] != b"\x1f\x8b":
                    raise zlib.error("not a gzip stream after the end of the last one")
                stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
                pending = rest
            elif len(out) < size and not pending:  # all input used: read more
                pending = fh.read(_GZ_READ)
                if not pending:
                    raise EOFError("compressed file ended before the end-of-stream marker "
                                   "was reached")
    except (zlib.error, EOFError) as exc:
        diags.add(path, 0, f"damaged gzip ({exc}); read what was intact", "torn")


def _blocks(fh: IO[bytes], size: int) -> Iterator[bytes]:
    """The bytes of a plain file from where it stands, at most ``size`` at a time.

    Each read asks for no more than the file holds (and a little more, to see it grow):
    a read buffer is allocated at the size asked for, and most run files are far
    smaller than ``size``."""
    try:
        left = os.fstat(fh.fileno()).st_size - fh.tell()
    except (OSError, ValueError, io.UnsupportedOperation):
        left = size
    while True:
        block = fh.read(min(size, max(left + 1, 1 << 16)))
        if not block:
            return
        left -= len(block)
        yield block


@dataclass
class Chunk:
    """Whole lines of one JSONL file: ``body`` ends in a newline, its first line is line
    ``first_line`` of the file, and it holds ``lines`` newlines."""

    path: str
    body: bytes
    first_line: int
    lines: int


class LineReader:
    """The whole lines of one JSONL file (plain or gzip) from a byte offset, in chunks.

    Iterating yields :class:`Chunk` objects of about :data:`CHUNK_BYTES` each, so a file of
    any size is read in bounded memory. Problems go to ``diags`` with their line numbers
    (a line longer than :data:`MAX_LINE_BYTES`, a damaged gzip stream, an empty file, an
    unreadable file), except a torn last line: that is kept in ``torn`` (``[line, message,
    "torn"]``), for a caller that looks at the tail again later (the cache). A last line
    without its newline that is a whole record is read.

    After the iteration: ``end`` is the offset just after the last line read (a torn last
    line is left: the next read starts there); ``lines`` the number of lines before
    ``end``; ``tail`` the size of the torn last line; ``hasher``, if given, has been fed
    exactly the bytes ``start..end``.

    ``fh``: the file, already open and positioned at ``start`` (else it is opened).
    ``skip_tail``: the ``skip_tail`` bytes at ``start`` are known to start a line longer
    than :data:`MAX_LINE_BYTES` (a torn tail seen before); they are not read again unless
    the line ends (then only to hash them).
    """

    def __init__(self, path: str, diags: Diagnostics, start: int = 0, first_line: int = 1,
                 hasher: Any = None, fh: IO[bytes] | None = None, skip_tail: int = 0,
                 chunk_bytes: int | None = None) -> None:
        self.path = path
        self.diags = diags
        self.start = start
        self.hasher = hasher
        self.skip_tail = skip_tail
        self.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self._fh = fh
        self.end = start
        self.lines = first_line - 1
        self.tail = 0
        self.torn: list[Any] | None = None

    def __iter__(self) -> Iterator[Chunk]:
        fh = self._fh
        try:
            if fh is None:
                fh = open(self.path, "rb")  # noqa: SIM115 - closed below, after the last chunk
                if self.start:
                    fh.seek(self.start)
            if self.skip_tail:
                fh.seek(self.start + self.skip_tail)
            if self.path.endswith(".gz"):
                blocks: Iterator[bytes] = _gunzip(fh, self.path, self.diags, self.chunk_bytes)
            else:
                blocks = _blocks(fh, self.chunk_bytes)
            yield from self._chunks(fh, blocks)
        except OSError as exc:
            self.diags.add(self.path, 0, f"cannot read: {exc.strerror or exc}", "unreadable")
        finally:
            if fh is not None and self._fh is None:
                fh.close()

    def _commit(self, chunk: Chunk, counted: bool = True) -> Chunk:
        if self.hasher is not None:
            self.hasher.update(chunk.body if counted else chunk.body[:-1])
        self.end += len(chunk.body) if counted else len(chunk.body) - 1
        if counted:
            self.lines += chunk.lines
        return chunk

    def _chunks(self, fh: IO[bytes], blocks: Iterator[bytes]) -> Iterator[Chunk]:
        path = self.path
        pos = self.start  # the offset of buf[0] in the (decompressed) file
        line = self.lines + 1  # the number of the line at buf[0]
        buf = b""
        long_from = -1  # while skipping a line that is too long: where it started
        if self.skip_tail:
            long_from, pos = self.start, self.start + self.skip_tail
        held: Chunk | None = None  # leading blank lines, kept back: the file may be empty
        sent = False
        for block in blocks:
            if long_from >= 0:
                newline = block.find(b"\n")
                pos += len(block) if newline < 0 else newline + 1
                if newline < 0:
                    continue
                self._skip_long_line(fh, long_from, pos, line)
                line += 1
                long_from = -1
                block = block[newline + 1:]
            cut = block.rfind(b"\n") + 1
            if not cut:
                buf += block  # all of it inside one line
            else:
                # The lines end in this block: one copy makes the chunk (the rest of the
                # block, a line begun, waits for the next block).
                if cut == len(block) and not buf:
                    body = block
                else:
                    body = b"".join((buf, memoryview(block)[:cut]))
                buf = block[cut:]
                chunk = Chunk(path, body, line, body.count(b"\n"))
                pos += len(body)
                line += chunk.lines
                if not sent and held is None and _BLANK.fullmatch(chunk.body):
                    held = chunk
                    continue
                if held is not None:
                    yield self._commit(held)
                    held = None
                sent = True
                yield self._commit(chunk)
            if len(buf) > MAX_LINE_BYTES:
                if held is not None:  # the line is content: the blank lines before it count
                    yield self._commit(held)
                    held = None
                sent = True
                long_from, pos, buf = pos, pos + len(buf), b""
        if long_from >= 0:
            self.tail = pos - long_from
            self.torn = [line, TORN_MESSAGE, "torn"]
        elif buf and _BLANK.fullmatch(buf) is None:
            try:
                fmt.parse_line(buf)  # a whole record that only lacks its newline: read it
                whole = len(buf) <= MAX_LINE_BYTES
            except ValueError:
                whole = False
            if whole:
                if held is not None:
                    yield self._commit(held)
                    held = None
                sent = True
                yield self._commit(Chunk(path, buf + b"\n", line, 1), counted=False)
            else:
                self.tail = len(buf)
                self.torn = [line, TORN_MESSAGE, "torn"]
        if held is not None and (sent or self.torn):
            yield self._commit(held)
        elif not sent and not self.torn and self.start == 0 and not self.skip_tail:
            self.diags.add(path, 0, "empty file", "empty")

    def _skip_long_line(self, fh: IO[bytes], start: int, end: int, line: int) -> None:
        """Report the line ``start..end`` as too long; feed its bytes to the hasher."""
        self.diags.add(self.path, line, f"line of {end - start:,} bytes, longer than "
                       f"{MAX_LINE_BYTES >> 20} MiB; skipped", "malformed")
        if self.hasher is not None:
            # Read again, from the file: the bytes were not kept (only a plain file is
            # hashed, so offsets are file offsets).
            at = start
            while at < end:
                data = os.pread(fh.fileno(), min(1 << 20, end - at), at)
                if not data:
                    break
                self.hasher.update(data)
                at += len(data)
        self.end = end
        self.lines = line


def count_newlines(fh: IO[bytes], end: int) -> int:
    """The newlines in the first ``end`` bytes of ``fh``, read in chunks (``fh`` is left
    at ``end``)."""
    fh.seek(0)
    count = 0
    while end > 0:
        data = fh.read(min(1 << 20, end))
        if not data:
            break
        count += data.count(b"\n")
        end -= len(data)
    return count


def _split_body(path: str, data: bytes, diags: Diagnostics) -> bytes:
    """The whole lines of ``data``, all in memory (compaction hashes what it parses); a
    torn last line is recorded and dropped."""
    if not data.strip():
        diags.add(path, 0, "empty file", "empty")
        return b""
    if data.endswith(b"\n"):
        return data
    cut = data.rfind(b"\n") + 1
    tail = data[cut:]
    if tail.strip():
        try:
            fmt.parse_line(tail)
        except ValueError:
            line = data.count(b"\n", 0, cut) + 1
            diags.add(path, line, TORN_MESSAGE, "torn")
            return data[:cut]
    return data + b"\n"


def fast_frame(body: bytes | Sequence[bytes],
               newlines: int | Sequence[int] | None = None) -> pl.DataFrame | None:
    """Parse JSONL with Polars; None when any line needs the careful path.

    ``body``: whole lines, or a list of such bodies (the new lines of several files),
    which Polars' reader parses in parallel, without joining them into one buffer first.
    ``newlines``: the number of newlines in all of ``body`` when the caller has counted
    them, or in each of the bodies."""
    counts: list[int] | None = None
    if newlines is not None and not isinstance(newlines, int):
        counts = [n for b, n in zip([body] if isinstance(body, bytes) else body, newlines,
                                    strict=True) if b]
        newlines = sum(counts)
    bodies = [body] if isinstance(body, bytes) else [b for b in body if b]
    if not bodies:
        return pl.DataFrame(schema=RAW_SCHEMA)
    try:
        # Values as numbers first: about 30% faster. Only a file holding "NaN"/"Infinity"
        # values (or a bad line) pays for the second, text-valued parse.
        frame = _read_ndjson(bodies, _FLOAT_SCHEMA)
    except (Exception, pl.exceptions.PanicException):  # noqa: BLE001
        try:
            frame = _read_ndjson(bodies, _JSON_SCHEMA)
        except (Exception, pl.exceptions.PanicException):  # noqa: BLE001 - any parse error
            return None  # (even a panic) sends the lines to the careful path
    value = frame["value"].cast(pl.Float64, strict=False)
    kind = frame["kind"]
    bad = (
        ~kind.is_in(["run", "point"]).fill_null(False)
        | frame["run"].is_null()
        | (frame["run"] == "")
        | ((kind == "point") & (frame["name"].is_null() | value.is_null()))
        | frame["time"].is_infinite().fill_null(False)
        # A context that is not an object of strings: the careful path names its line.
        # (Conservative: an escaped quote in a key also matches; that line is then exact.)
        | frame["context"].str.contains(r'^[^{]|":\s*[^"\s]').fill_null(False)
    )
    if bad.any():
        return None
    return _exact_objects(frame.with_columns(value=value), bodies, newlines, counts)


def _read_ndjson(bodies: list[bytes], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """One frame of the records of ``bodies``, in order: one buffer is parsed in chunks by
    Polars' threads, several buffers (files) side by side."""
    if len(bodies) == 1:
        return pl.read_ndjson(io.BytesIO(bodies[0]), schema=schema)
    sources: list[IO[bytes]] = [io.BytesIO(body) for body in bodies]
    return pl.scan_ndjson(sources, schema=schema).collect()


_OBJECT_COLUMNS = ("context", "params", "meta")
_RUN_NEEDLE = b'"kind":"run"'


def _exact_objects(frame: pl.DataFrame, bodies: list[bytes], newlines: int | None = None,
                   counts: list[int] | None = None) -> pl.DataFrame | None:
    """Replace Polars' re-encoding of JSON objects where it is not exact.

    Polars turns an object read as text into JSON of its own: whole floats lose their
    ``.0`` (a float param would read back as an int) and backslashes are not escaped. So
    run records (few; the only ones with ``params`` and ``meta``, which Polars is not
    asked for) and every line holding an escape are re-read with :mod:`json`; the
    contexts of other point lines are plain strings, which Polars renders exactly.
    """
    kind = frame["kind"]
    runs = (kind == "run").arg_true().to_list()
    has_escape = any(b"\\" in body for body in bodies)
    frame = frame.with_columns(pl.lit(None, pl.String()).alias(name)
                               for name in ("params", "meta")).select(list(RAW_SCHEMA))
    if not runs and not has_escape:
        return frame
    texts = None
    if not has_escape:
        found = (_edge_lines(bodies, counts, runs)
                 if counts is not None and sum(counts) == frame.height else None)
        if found is None:
            found = _run_lines(bodies, len(runs))
        if found is not None:
            texts = _object_texts(found, frame["run"].gather(runs).to_list())
            rows = runs
    if texts is None:  # escapes, or run records not found by their usual spelling
        body = bodies[0] if len(bodies) == 1 else b"".join(bodies)
        lines = _lines_by_row(frame, body, set(runs), has_escape, newlines)
        if lines is None:
            return None
        rows = sorted(lines)
        texts = _object_texts([lines[i] for i in rows], None)
        if texts is None:
            return None
    return frame.with_columns(
        frame[name].scatter(rows, pl.Series(name, texts[name], dtype=pl.String))
        for name in _OBJECT_COLUMNS
    )


def _object_texts(lines: list[bytes],
                  run_ids: list[str] | None) -> dict[str, list[str | None]] | None:
    """The exact JSON text of each line's objects; None when a line is bad, or (given
    ``run_ids``) is not the run record of that run."""
    texts: dict[str, list[str | None]] = {name: [] for name in _OBJECT_COLUMNS}
    for k, line in enumerate(lines):
        try:
            rec = fmt.parse_line(line)
        except ValueError:
            return None
        if run_ids is not None and (rec["kind"] != "run" or rec["run"] != run_ids[k]):
            return None
        for name in _OBJECT_COLUMNS:
            value = rec.get(name)
            texts[name].append(json_text(value) if value else None)
    return texts


def _edge_lines(bodies: list[bytes], counts: list[int], rows: list[int]) -> list[bytes] | None:
    """The lines at frame rows ``rows`` when each is the first or last line of its body
    (where a writer puts run records), found without scanning the bodies; None when
    rows are not lines one for one (blank lines) or a row is inside a body."""
    starts = list(itertools.accumulate(counts, initial=0))
    found = []
    for row in rows:
        i = bisect.bisect_right(starts, row) - 1
        body, line = bodies[i], row - starts[i]
        if line == 0:
            found.append(body[:body.find(b"\n")])
        elif line == counts[i] - 1:
            found.append(body[body.rfind(b"\n", 0, len(body) - 1) + 1:-1])
        else:
            return None
    return found


def _run_lines(bodies: list[bytes], count: int) -> list[bytes] | None:
    """The lines holding ``"kind":"run"`` (the spelling every writer of the format uses),
    in order, found without counting lines; None unless there are exactly ``count``.
    The caller checks that they are the run records, row for row (the text could also be
    inside another record: a context key named "kind")."""
    found: list[bytes] = []
    for body in bodies:
        pos = body.find(_RUN_NEEDLE)
        while pos != -1:
            if len(found) == count:
                return None
            start = body.rfind(b"\n", 0, pos) + 1
            end = body.find(b"\n", pos)
            end = len(body) if end < 0 else end
            found.append(body[start:end])
            pos = body.find(_RUN_NEEDLE, end)
    return found if len(found) == count else None


def _lines_by_row(frame: pl.DataFrame, body: bytes, redo: set[int], has_escape: bool,
                  newlines: int | None) -> dict[int, bytes] | None:
    """The lines of ``body`` at rows ``redo`` of ``frame`` (and every line holding a
    backslash), found by counting lines; None when rows and lines do not pair up."""
    if frame.height == (body.count(b"\n") if newlines is None else newlines):
        return _lines_at(body, sorted(redo), has_escape)  # no blank lines: row i = line i
    every = [line for line in body.split(b"\n")[:-1] if line.strip()]
    if len(every) != frame.height:
        return None
    if has_escape:
        redo.update(i for i, line in enumerate(every) if b"\\" in line)
    return {i: every[i] for i in redo}


def _lines_at(body: bytes, rows: list[int], escapes: bool) -> dict[int, bytes]:
    """Lines ``rows`` of ``body`` (and every line holding a backslash), without splitting
    the whole body: run records are found by their ``"kind":"run"`` and the few other
    wanted lines by counting newlines between consecutive hits, in one pass."""
    wanted = set(rows)
    marks = []
    for needle in ((b'"kind":"run"', b"\\") if escapes else (b'"kind":"run"',)):
        pos = body.find(needle)
        while pos != -1:
            start = body.rfind(b"\n", 0, pos) + 1
            end = body.find(b"\n", pos)
            marks.append((start, end))
            pos = body.find(needle, end)
    marks.sort()
    found: dict[int, bytes] = {}
    line, at = 0, 0
    for start, end in marks:
        line += body.count(b"\n", at, start)
        at = start
        found[line] = body[start:end]
    if not wanted <= set(found):
        # A run record written with other spacing: fall back to looking at every line.
        every = body.split(b"\n")[:-1]
        found.update((i, every[i]) for i in wanted)
    return found


def careful_frame(path: str, body: bytes, diags: Diagnostics,
                  first_line: int = 1) -> pl.DataFrame:
    """Parse line by line, recording each bad line with its number (``body`` starts at
    line ``first_line`` of ``path``)."""
    cols: dict[str, list[Any]] = {name: [] for name in RAW_SCHEMA}
    for number, line in enumerate(body.split(b"\n")[:-1], start=first_line):
        if not line.strip():
            diags.blank_lines += 1
            continue
        try:
            rec = fmt.parse_line(line)
        except ValueError as exc:
            diags.add(path, number, f"{exc}; line skipped")
            continue
        for name in RAW_SCHEMA:
            value = rec.get(name)
            if name in ("context", "params", "meta"):
                value = json.dumps(value) if value else None
            cols[name].append(value)
    return pl.DataFrame(cols, schema=RAW_SCHEMA)


def parse_jsonl(path: str, data: bytes, diags: Diagnostics) -> pl.DataFrame:
    """The records of ``data``, the bytes of the JSONL file ``path`` as read once.

    For callers that must know exactly which bytes the records came from (compaction
    hashes the same bytes it parses). A torn last line is recorded and dropped."""
    body = _split_body(path, data, diags)
    if not body:
        return pl.DataFrame(schema=RAW_SCHEMA)
    frame = fast_frame(body)
    if frame is None:
        return careful_frame(path, body, diags)
    diags.blank_lines += body.count(b"\n") - frame.height
    return frame


def parse_chunks(chunks: Sequence[Chunk], diags: Diagnostics) -> list[pl.DataFrame]:
    """Raw frames of whole-line chunks: one Polars call when every line is clean, else
    chunk by chunk, the careful path naming each bad line."""
    if not chunks:
        return []
    newlines = sum(chunk.lines for chunk in chunks)
    whole = fast_frame([chunk.body for chunk in chunks], newlines)
    if whole is not None:
        diags.blank_lines += newlines - whole.height
        return [whole]
    frames = []
    for chunk in chunks:
        frame = fast_frame(chunk.body, chunk.lines)
        if frame is None:
            frame = careful_frame(chunk.path, chunk.body, diags, chunk.first_line)
        else:
            diags.blank_lines += chunk.lines - frame.height
        frames.append(frame)
    return frames


def _read_jsonl(paths: Sequence[str], diags: Diagnostics,
                offsets: dict[str, int] | None = None) -> list[pl.DataFrame]:
    frames: list[pl.DataFrame] = []
    batch: list[Chunk] = []
    size = 0
    for path in paths:
        base = offsets.get(path, 0) if offsets else 0  # the start is held by a compacted file
        first_line = 1
        if base:
            try:
                with open(path, "rb") as fh:
                    first_line += count_newlines(fh, base)
            except OSError:
                pass  # the reader reports the file
        reader = LineReader(path, diags, start=base, first_line=first_line)
        for chunk in reader:
            batch.append(chunk)
            size += len(chunk.body)
            if size >= PARSE_BYTES:
                frames += parse_chunks(batch, diags)
                batch, size = [], 0
        if reader.torn:
            diags.add(path, *reader.torn)
    frames += parse_chunks(batch, diags)
    return frames


def read_parquet(path: str, diags: Diagnostics) -> pl.DataFrame | None:
    """A Parquet file of records; missing columns are null, ``kind`` defaults to point.

    Page checksums are verified where the file has them (xp writes them): a file that
    fails, or that cannot be decoded at all, is reported as damaged and skipped whole,
    never read in part. Rows that JSONL would refuse (no ``run``, an unknown ``kind``, a
    point without a name or value, an infinite time) are skipped and reported by row."""
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path, page_checksum_verification=True) as source:
            table = source.read()
    except OSError as exc:
        if exc.errno is not None:  # the file system, not the content
            diags.add(path, 0, f"cannot read: {exc.strerror}", "unreadable")
            return None
        diags.add(path, 0, f"damaged Parquet file ({_damaged(exc)}); skipped", "unreadable")
        return None
    except (Exception, pl.exceptions.PanicException) as exc:  # noqa: BLE001 - any damage
        diags.add(path, 0, f"damaged Parquet file ({_damaged(exc)}); skipped", "unreadable")
        return None
    try:
        frame = cast(pl.DataFrame, pl.from_arrow(table))  # a Table gives a DataFrame
        if "run" not in frame.columns:
            diags.add(path, 0, "Parquet file without a 'run' column; skipped", "malformed")
            return None
        out = frame.select(_raw_columns(frame))
    except (Exception, pl.exceptions.PanicException) as exc:  # noqa: BLE001
        diags.add(path, 0, f"Parquet columns of the wrong type ({_damaged(exc)}); skipped",
                  "malformed")
        return None
    # A cast that cannot apply may still "succeed" (a struct casts field by field).
    wrong = [f"{name} ({frame.schema[name]})" for name, dtype in RAW_SCHEMA.items()
             if out.schema[name] != dtype]
    if wrong:
        diags.add(path, 0, f"Parquet columns of the wrong type: {', '.join(wrong)}; skipped",
                  "malformed")
        return None
    return _refuse_rows(path, out, diags)


def _raw_columns(frame: pl.DataFrame) -> list[pl.Expr]:
    """The :data:`RAW_SCHEMA` columns of a Parquet file's frame: missing ones null (``kind``
    a point), objects as JSON text, the rest cast where possible."""
    exprs = []
    for name, dtype in RAW_SCHEMA.items():
        if name not in frame.columns:
            exprs.append(pl.lit("point" if name == "kind" else None, dtype).alias(name))
        elif name in ("context", "params", "meta") and isinstance(frame.schema[name], pl.Struct):
            exprs.append(pl.col(name).struct.json_encode().alias(name))
        else:
            exprs.append(pl.col(name).cast(dtype, strict=False))
    return exprs


#: The rows of a Parquet file that JSONL would refuse, with the reason parse_line gives.
_BAD_ROWS = (
    (pl.col("run").is_null() | (pl.col("run") == ""), "missing or empty 'run'"),
    (~pl.col("kind").is_in(["run", "point"]).fill_null(False),
     "unknown kind (expected 'run' or 'point')"),
    ((pl.col("kind") == "point") & (pl.col("name").is_null() | (pl.col("name") == "")),
     "missing or empty 'name'"),
    ((pl.col("kind") == "point") & pl.col("value").is_null(), "missing 'value'"),
    (pl.col("time").is_infinite(), "'time' must be a finite number"),
)


def _refuse_rows(path: str, frame: pl.DataFrame, diags: Diagnostics) -> pl.DataFrame:
    """``frame`` without the rows JSONL would refuse, each reported with its row number."""
    reasons = pl.coalesce([pl.when(test.fill_null(False)).then(pl.lit(why))
                           for test, why in _BAD_ROWS])
    bad = frame.select(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("row"),
                       reasons.alias("why")).filter(pl.col("why").is_not_null())
    if bad.height == 0:
        return frame
    for row, why in bad.iter_rows():
        diags.add(path, row, f"{why}; row skipped")
    return frame.filter(~pl.any_horizontal(*[t.fill_null(False) for t, _ in _BAD_ROWS]))


def read_records(paths: Sequence[str], diags: Diagnostics | None = None,
                 offsets: dict[str, int] | None = None) -> pl.DataFrame:
    """All records of ``paths`` as one raw frame (:data:`RAW_SCHEMA`), in file order.

    ``offsets`` maps a JSONL path to a number of leading bytes to skip."""
    diags = diags if diags is not None else Diagnostics()
    jsonl = [p for p in paths if not p.endswith(".parquet")]
    frames = _read_jsonl(jsonl, diags, offsets)
    for path in paths:
        if path.endswith(".parquet"):
            frame = read_parquet(path, diags)
            if frame is not None:
                frames.append(frame)
    if not frames:
        return pl.DataFrame(schema=RAW_SCHEMA)
    return pl.concat(frames, how="vertical")


def json_text(value: Any) -> str:
    """A JSON object or value as the raw frame holds it: compact, UTF-8 kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- what compacted files hold -----------------------------------------------------------

#: The footer key of a compacted Parquet file that lists its sources (size and SHA-256).
SOURCES_KEY = b"xp.sources"
#: The file name prefix of a compacted Parquet file (``compacted-<id>.parquet``).
COMPACTED_PREFIX = "compacted-"


@dataclass
class Superseded:
    """What the compacted Parquet files say about JSONL files that may still exist."""

    skip: set[str] = field(default_factory=set)  # sources fully held by a Parquet file
    offsets: dict[str, int] = field(default_factory=dict)  # sources grown since: read from
    leftovers: list[tuple[str, int]] = field(default_factory=list)  # (path, size) to delete
    #: For each of ``offsets``: the SHA-256 of the bytes before the offset.
    prefixes: dict[str, str] = field(default_factory=dict)


def _digest(path: str, size: int | None = None) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        remaining = size
        while True:
            chunk = fh.read(1 << 20 if remaining is None else min(1 << 20, remaining))
            if not chunk:
                break
            sha.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
                if remaining <= 0:
                    break
    return sha.hexdigest()


def prefix_holds(path: str, size: int, sha256: str) -> bool:
    """Whether the first ``size`` bytes of ``path`` have this SHA-256 (False if unreadable)."""
    try:
        return _digest(path, size) == sha256
    except OSError:
        return False


def sources_of(parquet_path: str) -> list[dict[str, object]]:
    """The source list in a compacted file's footer (empty for any other Parquet file).

    Each source: ``path`` (relative to the Parquet file's folder), ``size`` and ``sha256``
    of its first ``size`` bytes; the Parquet file holds the records of the bytes from
    ``start`` (0 when absent) to ``size``."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(parquet_path).metadata or {}
        return list(json.loads(meta.get(SOURCES_KEY, b"[]")))
    except (OSError, ValueError, TypeError):
        return []


def superseded(runs_dir: str, files: Iterable[str],
               holds: Callable[[str, int, str], bool] = prefix_holds) -> Superseded:
    """Classify the JSONL files that compacted Parquet files already hold.

    A source listed by several compacted files (compacted, resumed, compacted again) is
    held up to the largest size whose bytes still match. ``holds(path, size, sha256)``
    checks that (by hashing; :mod:`xpcli.cache` remembers what it found)."""
    out = Superseded()
    files = list(files)
    compacted = [path for path in files if path.endswith(".parquet")
                 and os.path.basename(path).startswith(COMPACTED_PREFIX)]
    present = {os.path.normpath(p): p for p in files if p.endswith(".jsonl")} if compacted else {}
    if not present:
        return out
    claims: dict[str, list[tuple[int, str]]] = {}
    for path in compacted:
        folder = os.path.dirname(path)
        for src in sources_of(path):
            source = os.path.normpath(os.path.join(folder, str(src["path"])))
            if source in present:
                claims.setdefault(source, []).append((int(str(src["size"])), str(src["sha256"])))
    for source, held in claims.items():
        try:
            now = os.path.getsize(source)
        except OSError:
            continue
        for size, sha in sorted(held, reverse=True):
            if size > now or not holds(present[source], size, sha):
                continue  # a different file under the same name: read it as it is
            if now == size:
                out.skip.add(present[source])
                out.leftovers.append((present[source], size))
            else:
                out.offsets[present[source]] = size
                out.prefixes[present[source]] = sha
            break
    return out


# -- writing records ---------------------------------------------------------------------


def write_parquet_frame(frame: pl.DataFrame, path: str | os.PathLike[str],
                        checksums: bool = False, compression: str = "zstd") -> None:
    """Write ``frame`` as a Parquet file, atomically.

    The file appears complete or not at all: it is written beside its target under a
    hidden name, synced, then renamed. A failed write (disk full, permission denied)
    raises :class:`WriteError` and leaves the target as it was. ``checksums``: write a
    CRC with every page (through pyarrow), which :func:`read_parquet` verifies;
    ``compression``: lz4 for what is read on every query (twice as fast to decode).
    """
    target = os.fspath(path)
    folder = os.path.dirname(target) or "."
    tmp = os.path.join(folder, f".{os.path.basename(target)}.{os.getpid()}.tmp")
    try:
        os.makedirs(folder, exist_ok=True)
        if checksums:
            import pyarrow.parquet as pq

            pq.write_table(frame.to_arrow(), tmp, compression="zstd",
                           write_page_checksum=True)
        else:
            frame.write_parquet(tmp, compression=compression,  # type: ignore[arg-type]
                                statistics=True)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from None
    except pl.exceptions.PolarsError as exc:  # Polars reports IO errors as its own
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WriteError(f"cannot write {target}: {reason}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_parquet(raw: pl.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write raw records (:data:`RAW_SCHEMA` columns, in that order) as Parquet, atomically,
    with page checksums."""
    write_parquet_frame(raw.select([pl.col(n).cast(t) for n, t in RAW_SCHEMA.items()]), path,
                        checksums=True)

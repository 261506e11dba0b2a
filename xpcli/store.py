"""Reading a runs directory: find files, parse JSONL/Parquet records, build the two tables.

``load(runs_dir)`` returns a :class:`Dataset` whose ``runs`` and ``points`` are Polars
LazyFrames:

- runs: ``run``, one column per flattened param (``optimizer.lr``), meta columns
  (``status``, ``created``, ``ended``, ``host``, ...), and counts (``points``,
  ``metrics``, ``first_time``, ``last_time``).
- points: ``run``, ``name``, one String column per context key (null where a point has
  no such key), ``step`` (Int64), ``epoch`` (Float64), ``time`` (Float64, unix seconds),
  ``value`` (Float64).

Bad input never stops a read: a torn last line, a malformed line, an empty file or an
unreadable file is skipped and recorded in ``Dataset.diagnostics`` with its file and line.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from . import format as fmt

if TYPE_CHECKING:
    from .cache import RawData
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
#: What the fast JSONL path asks Polars for: objects arrive as their JSON text.
_JSON_SCHEMA = {**RAW_SCHEMA, "value": pl.String()}
_FLOAT_SCHEMA = {**RAW_SCHEMA}

POINT_COLUMNS = ("run", "name", "step", "epoch", "time", "value")
COUNT_COLUMNS = ("points", "metrics", "first_time", "last_time")
DATETIME_META = ("created", "ended")


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


@dataclass
class Dataset:
    """A loaded runs directory. Unpacks as ``runs, points = xpcli.load("runs")``."""

    runs: pl.LazyFrame
    points: pl.LazyFrame
    params: list[str]
    meta: list[str]
    context_keys: list[str]
    files: list[str]
    diagnostics: Diagnostics
    #: One row per series: ``run``, ``name``, the context key columns, ``points``,
    #: ``first_time``, ``last_time`` (unix seconds), ``step_min``/``step_max``,
    #: ``epoch_min``/``epoch_max``. Small: which metrics and contexts exist, and their
    #: ranges, without a pass over the points.
    series: pl.DataFrame | None = None

    def series_keys(self) -> pl.DataFrame:
        """``run``, ``name`` and the context key columns, one row per series.

        What :func:`xpcli.spec.expand` needs to resolve ``f1:lang=*``, from the small
        series index instead of a pass over every point."""
        if self.series is None:
            return self.points.select("run", "name", *self.context_keys).unique().collect()
        return self.series.select("run", "name", *self.context_keys)

    def __iter__(self) -> Iterator[pl.LazyFrame]:
        yield self.runs
        yield self.points


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


def _read_bytes(path: str, diags: Diagnostics) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if path.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                # A gzip stream cut short still yields what it holds.
                data = _partial_gunzip(data)
                diags.add(path, 0, f"damaged gzip ({exc}); read what was intact", "torn")
    except OSError as exc:
        diags.add(path, 0, f"cannot read: {exc.strerror}", "unreadable")
        return None
    return data


def _partial_gunzip(data: bytes) -> bytes:
    out = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return out.decompress(data)
    except zlib.error:
        return b""


def _split_body(path: str, data: bytes, diags: Diagnostics) -> bytes:
    """The whole lines of ``data``; a torn last line is recorded and dropped."""
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
            diags.add(path, line, "torn last line (file cut while being written); skipped",
                      "torn")
            return data[:cut]
    return data + b"\n"


def _fast_frame(body: bytes, newlines: int | None = None) -> pl.DataFrame | None:
    """Parse JSONL with Polars; None when any line needs the careful path.

    ``newlines``: the number of newlines in ``body`` when the caller has counted them."""
    try:
        # Values as numbers first: about 30% faster. Only a file holding "NaN"/"Infinity"
        # values (or a bad line) pays for the second, text-valued parse.
        frame = pl.read_ndjson(io.BytesIO(body), schema=_FLOAT_SCHEMA)
    except Exception:  # noqa: BLE001
        try:
            frame = pl.read_ndjson(io.BytesIO(body), schema=_JSON_SCHEMA)
        except Exception:  # noqa: BLE001 - any parse error sends the file to the careful path
            return None
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
    return _exact_objects(frame.with_columns(value=value), body, newlines)


_OBJECT_COLUMNS = ("context", "params", "meta")


def _exact_objects(frame: pl.DataFrame, body: bytes,
                   newlines: int | None = None) -> pl.DataFrame | None:
    """Replace Polars' re-encoding of JSON objects where it is not exact.

    Polars turns an object read as text into JSON of its own: whole floats lose their
    ``.0`` (a float param would read back as an int) and backslashes are not escaped. So
    run records (few) and every line holding an escape are re-read with :mod:`json`; the
    contexts of other point lines are plain strings, which Polars renders exactly.
    """
    kind = frame["kind"]
    redo = set((kind == "run").arg_true().to_list())
    has_escape = b"\\" in body
    if not redo and not has_escape:
        return frame
    if frame.height == (body.count(b"\n") if newlines is None else newlines):
        lines = _lines_at(body, sorted(redo), has_escape)  # no blank lines: row i = line i
    else:
        every = [line for line in body.split(b"\n")[:-1] if line.strip()]
        if len(every) != frame.height:
            return None
        if has_escape:
            redo.update(i for i, line in enumerate(every) if b"\\" in line)
        lines = {i: every[i] for i in redo}
    rows = sorted(lines)
    texts: dict[str, list[str | None]] = {name: [] for name in _OBJECT_COLUMNS}
    for i in rows:
        try:
            rec = fmt.parse_line(lines[i])
        except ValueError:
            return None
        for name in _OBJECT_COLUMNS:
            value = rec.get(name)
            texts[name].append(_json_text(value) if value else None)
    return frame.with_columns(
        frame[name].scatter(rows, pl.Series(name, texts[name], dtype=pl.String))
        for name in _OBJECT_COLUMNS
    )


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


def _careful_frame(path: str, body: bytes, diags: Diagnostics) -> pl.DataFrame:
    """Parse line by line, recording each bad line with its number."""
    cols: dict[str, list[Any]] = {name: [] for name in RAW_SCHEMA}
    for number, line in enumerate(body.split(b"\n")[:-1], start=1):
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
    frame = _fast_frame(body)
    if frame is None:
        return _careful_frame(path, body, diags)
    diags.blank_lines += body.count(b"\n") - frame.height
    return frame


def _read_jsonl(paths: Sequence[str], diags: Diagnostics,
                offsets: dict[str, int] | None = None) -> list[pl.DataFrame]:
    bodies: list[tuple[str, bytes]] = []
    for path in paths:
        data = _read_bytes(path, diags)
        if data is None:
            continue
        if offsets and path in offsets:
            data = data[offsets[path]:]  # the start is held by a compacted file
        body = _split_body(path, data, diags)
        if body:
            bodies.append((path, body))
    if not bodies:
        return []
    whole = _fast_frame(b"".join(body for _, body in bodies))
    if whole is not None:
        diags.blank_lines += sum(b.count(b"\n") for _, b in bodies) - whole.height
        return [whole]
    frames = []
    for path, body in bodies:
        frame = _fast_frame(body)
        if frame is None:
            frame = _careful_frame(path, body, diags)
        else:
            diags.blank_lines += body.count(b"\n") - frame.height
        frames.append(frame)
    return frames


def _read_parquet(path: str, diags: Diagnostics) -> pl.DataFrame | None:
    """A Parquet file of records; missing columns are null, ``kind`` defaults to point."""
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any damage: report the file, read the rest
        diags.add(path, 0, f"unreadable Parquet ({str(exc).splitlines()[0][:100]}); skipped",
                  "unreadable")
        return None
    if "run" not in frame.columns:
        diags.add(path, 0, "Parquet file without a 'run' column; skipped", "malformed")
        return None
    exprs = []
    for name, dtype in RAW_SCHEMA.items():
        if name not in frame.columns:
            exprs.append(pl.lit("point" if name == "kind" else None, dtype).alias(name))
        elif name in ("context", "params", "meta") and isinstance(frame.schema[name], pl.Struct):
            exprs.append(pl.col(name).struct.json_encode().alias(name))
        else:
            exprs.append(pl.col(name).cast(dtype, strict=False))
    try:
        out = frame.select(exprs)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else type(exc).__name__
        diags.add(path, 0, f"Parquet columns of the wrong type ({first}); skipped", "malformed")
        return None
    # A cast that cannot apply may still "succeed" (a struct casts field by field).
    wrong = [f"{name} ({frame.schema[name]})" for name, dtype in RAW_SCHEMA.items()
             if out.schema[name] != dtype]
    if wrong:
        diags.add(path, 0, f"Parquet columns of the wrong type: {', '.join(wrong)}; skipped",
                  "malformed")
        return None
    return out


def read_records(paths: Sequence[str], diags: Diagnostics | None = None,
                 offsets: dict[str, int] | None = None) -> pl.DataFrame:
    """All records of ``paths`` as one raw frame (:data:`RAW_SCHEMA`), in file order.

    ``offsets`` maps a JSONL path to a number of leading bytes to skip."""
    diags = diags if diags is not None else Diagnostics()
    jsonl = [p for p in paths if not p.endswith(".parquet")]
    frames = _read_jsonl(jsonl, diags, offsets)
    for path in paths:
        if path.endswith(".parquet"):
            frame = _read_parquet(path, diags)
            if frame is not None:
                frames.append(frame)
    if not frames:
        return pl.DataFrame(schema=RAW_SCHEMA)
    return pl.concat(frames, how="vertical")


# -- building the tables ---------------------------------------------------------------


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def infer_column(name: str, values: list[Any], diags: Diagnostics | None = None,
                 what: str = "param") -> pl.Series:
    """One typed column from per-run Python values (None = absent).

    bool -> Boolean; int -> Int64; int and float -> Float64 (non-finite floats written as
    ``"NaN"``/``"Infinity"`` count as floats); str -> String; lists and dicts -> their JSON
    text. Any other mix becomes text, with a diagnostic, rather than a guess.
    """
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int" if -(2**63) <= v < 2**63 else "float")
        elif isinstance(v, float):
            kinds.add("float")
        elif isinstance(v, str):
            kinds.add("nonfinite" if v in fmt.NONFINITE else "str")
        else:
            kinds.add("json")
    if not kinds:
        return pl.Series(name, values, dtype=pl.Null)
    if kinds == {"bool"}:
        return pl.Series(name, values, dtype=pl.Boolean)
    if kinds == {"int"}:
        return pl.Series(name, values, dtype=pl.Int64)
    if kinds <= {"int", "float", "nonfinite"} and kinds & {"int", "float"}:
        return pl.Series(
            name,
            [None if v is None else fmt.NONFINITE[v] if isinstance(v, str) else float(v)
             for v in values],
            dtype=pl.Float64,
        )
    if len(kinds - {"nonfinite"} - {"str"}) and (kinds & {"str", "bool", "int", "float"}) and \
            len(kinds) > 1 and diags is not None:
        diags.add("", 0, f"{what} {name!r} has mixed types across runs "
                  f"({', '.join(sorted(kinds))}); shown as text", "mixed-types")
    return pl.Series(
        name,
        [None if v is None else v if isinstance(v, str) else _json_text(v) for v in values],
        dtype=pl.String,
    )


def _merge_run_records(records: pl.LazyFrame) -> tuple[list[str], dict[str, dict],
                                                        dict[str, dict]]:
    """Params and meta per run: run records merged in read order, later keys winning."""
    recs = (records.filter(pl.col("kind") == "run").sort("__order")
            .select("run", "params", "meta").collect())
    params: dict[str, dict[str, Any]] = {}
    meta: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for run, p, m in recs.iter_rows():
        if run not in params:
            order.append(run)
            params[run], meta[run] = {}, {}
        if p:
            params[run].update(fmt.flatten(json.loads(p)))
        if m:
            meta[run].update(json.loads(m))
    return order, params, meta


def _decode_contexts(raw_points: pl.LazyFrame, texts: list[str],
                     diags: Diagnostics) -> tuple[pl.LazyFrame, list[str]]:
    """Replace the JSON ``context`` column by one String column per key (lazily).

    ``texts`` are the distinct context texts present; each is decoded once, and the
    per-key columns are a lookup from text to value, so no point row is parsed again.
    """
    decoded: dict[str, dict[str, str]] = {}
    keys: list[str] = []
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
        for key in ctx:
            if key not in keys:
                keys.append(key)
    frame = raw_points
    if bad:
        diags.add("", 0, f"points with a context that is not an object of strings "
                  f"(e.g. {bad[0][:60]}); skipped", "malformed")
        frame = frame.filter(~pl.col("context").is_in(bad).fill_null(False))
    keys.sort()
    columns = []
    known = list(decoded)
    for key in keys:
        column = key if key not in fmt.RESERVED_CONTEXT_KEYS else f"context.{key}"
        values = [decoded[t].get(key) for t in known]
        columns.append(
            pl.col("context").replace_strict(known, values, default=None, return_dtype=pl.String)
            .alias(column)
        )
    names = [k if k not in fmt.RESERVED_CONTEXT_KEYS else f"context.{k}" for k in keys]
    frame = frame.select("run", "name", *columns, "step", "epoch", "time", "value")
    return frame, names


def _to_datetime(expr: pl.Expr) -> pl.Expr:
    # Out-of-range times become null rather than failing the whole read.
    return (expr.cast(pl.Float64) * 1e6).cast(pl.Int64, strict=False).cast(
        pl.Datetime("us", "UTC"))


def build(data: "RawData", files: list[str]) -> Dataset:
    """The runs and points tables from records read with or without the cache.

    With the cache, the runs table and series index of an unchanged state are read back
    instead of built again (:class:`xpcli.cache.Built`)."""
    diags = data.diagnostics
    raw_points = data.records.filter(pl.col("kind") == "point")
    kept = data.built.load() if data.built is not None else None
    if kept is not None:
        runs, index, info = kept
        for path, line, message, kind in info["diagnostics"]:
            diags.add(path, line, message, kind)
        points, context_keys = _decode_contexts(raw_points, data.contexts, Diagnostics())
        return Dataset(runs=runs.lazy(), points=points, params=info["params"],
                       meta=info["meta"], context_keys=context_keys, files=files,
                       diagnostics=diags, series=index)
    before = len(diags.items)
    points, context_keys = _decode_contexts(raw_points, data.contexts, diags)
    index = _series_index(data.stats, data.contexts)

    order, params, meta = _merge_run_records(data.records)
    counts = data.stats.group_by("run").agg(
        pl.col("points").sum().alias("points"),
        pl.col("name").n_unique().alias("metrics"),
        pl.col("first_time").min().alias("first_time"),
        pl.col("last_time").max().alias("last_time"),
    )
    known = set(order)
    order += [r for r in counts.get_column("run").sort().to_list() if r not in known]

    param_names: list[str] = []
    for run in order:
        for key in params.get(run, {}):
            if key not in param_names:
                param_names.append(key)
    meta_names: list[str] = []
    for run in order:
        for key in meta.get(run, {}):
            if key not in meta_names:
                meta_names.append(key)

    taken = {"run", *COUNT_COLUMNS}
    columns: list[pl.Series] = [pl.Series("run", order, dtype=pl.String)]
    param_cols: list[str] = []
    for key in param_names:
        col = key if key not in taken else f"params.{key}"
        taken.add(col)
        param_cols.append(col)
        columns.append(infer_column(col, [params.get(r, {}).get(key) for r in order], diags))
    meta_cols: list[str] = []
    for key in meta_names:
        col = key if key not in taken else f"meta.{key}"
        taken.add(col)
        meta_cols.append(col)
        series = infer_column(col, [meta.get(r, {}).get(key) for r in order], diags, "meta")
        if key in DATETIME_META and series.dtype in (pl.Float64, pl.Int64):
            series = pl.select(_to_datetime(pl.lit(series))).to_series().alias(col)
        columns.append(series)
    runs = pl.DataFrame(columns)
    runs = runs.join(
        counts.with_columns(_to_datetime(pl.col(c)).alias(c) for c in ("first_time", "last_time")),
        on="run", how="left",
    ).with_columns(
        pl.col("points").fill_null(0).cast(pl.Int64), pl.col("metrics").fill_null(0).cast(pl.Int64)
    )
    if data.built is not None:
        notes = [[d.path, d.line, d.message, d.kind] for d in diags.items[before:]]
        data.built.save(runs, index, {"params": param_cols, "meta": meta_cols,
                                      "diagnostics": notes})
    return Dataset(
        runs=runs.lazy(),
        points=points,
        params=param_cols,
        meta=meta_cols,
        context_keys=context_keys,
        files=files,
        diagnostics=diags,
        series=index,
    )


def _series_index(stats: pl.DataFrame, contexts: list[str]) -> pl.DataFrame:
    """The per-series stats with the context decoded into key columns, like ``points``."""
    # ``step`` carries the row number through the decoding, which drops the series whose
    # context is not an object of strings; their counts are then left out too.
    frame, _ = _decode_contexts(
        stats.lazy().with_columns(step=pl.int_range(pl.len(), dtype=pl.Int64),
                                  epoch=pl.lit(None, pl.Float64),
                                  time=pl.lit(None, pl.Float64), value=pl.lit(None, pl.Float64)),
        contexts, Diagnostics())
    keys = [c for c in frame.collect_schema().names() if c not in POINT_COLUMNS]
    rows = frame.select("run", "name", *keys, "step").collect()
    counts = stats.select("points", "first_time", "last_time", "step_min", "step_max",
                          "epoch_min", "epoch_max")[rows.get_column("step")]
    return rows.drop("step").hstack(counts)


def load(runs_dir: str | os.PathLike[str] = "runs") -> Dataset:
    """Load a runs directory (or one file) into a :class:`Dataset`.

    JSONL is parsed once and kept in a columnar cache (:mod:`xpcli.cache`; ``XP_NO_CACHE=1``
    bypasses it), so ``points`` is a lazy scan: a query reads only the columns and
    metrics it needs. Raises :class:`DataError` when the directory is missing or holds no
    records at all; anything less (torn or malformed lines, empty files) is skipped and
    reported in ``Dataset.diagnostics``.
    """
    from .cache import read
    from .compact import superseded

    root = os.fspath(runs_dir)
    files = find_files(root)
    if not files:
        raise DataError(
            f"no run files (*.jsonl, *.jsonl.gz, *.parquet) under {root}; "
            "pass --runs DIR or set XP_RUNS"
        )
    held = superseded(root, files)  # JSONL already held by a compacted Parquet file
    files = [f for f in files if f not in held.skip]
    data = read(root, files, held.offsets)
    if data.stats.height == 0 and data.records.filter(pl.col("kind") == "run").head(1) \
            .collect().height == 0:
        raise DataError(
            f"no records in the {len(files)} run file(s) under {root}"
            + (f" ({data.diagnostics.summary()})" if len(data.diagnostics) else "")
        )
    return build(data, files)


def write_parquet_frame(frame: pl.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``frame`` as a Parquet file, atomically.

    The file appears complete or not at all: it is written beside its target under a
    hidden name, synced, then renamed. A failed write (disk full, permission denied)
    raises :class:`WriteError` and leaves the target as it was.
    """
    target = os.fspath(path)
    folder = os.path.dirname(target) or "."
    tmp = os.path.join(folder, f".{os.path.basename(target)}.{os.getpid()}.tmp")
    try:
        os.makedirs(folder, exist_ok=True)
        frame.write_parquet(tmp, compression="zstd", statistics=True)
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
    """Write raw records (:data:`RAW_SCHEMA` columns, in that order) as Parquet, atomically."""
    write_parquet_frame(raw.select([pl.col(n).cast(t) for n, t in RAW_SCHEMA.items()]), path)

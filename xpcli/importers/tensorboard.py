"""TensorBoard event files: the TFRecord framing read here, events decoded column-wise.

Needs ``pip install 'xpcli[tensorboard]'`` (its protobuf classes and hparams parser).

Runs: every folder holding ``*tfevents*`` files is a run, except that

- sub-folders named like a split (``train``, ``validation``, ``val``, ``eval``, ``test``...,
  as Keras writes them) belong to their parent run and become the context ``split``;
- sub-folders named by a number (``1712345678.123``, where PyTorch's ``add_hparams``
  writes its hparams) belong to their parent run, without context;
- sub-folders written by PyTorch's ``add_scalars(main_tag, {key: value})`` (named
  ``<main_tag>_<key>``, holding scalars tagged ``main_tag``, beside the parent's own event
  file) belong to their parent run and become the context ``tag=<key>`` of the metric
  ``main_tag``.

Points: scalars only, with the event's step and wall time (no epoch: TensorBoard has
none). Tags become spec-safe names (``IoU (avg on test)`` -> ``IoU_avg_on_test``). Text,
image, histogram, audio, graph and other plugin events are skipped and counted. HParams
plugin data (``session_start_info``) gives the run's params.

How a file is read (the same values as tensorboard's own ``event_file_loader`` with
``data_compat``, about 15 times faster; see docs/importers.md): the whole file is framed
into records by their length headers; the events with a single scalar value in one of the
encodings writers use (legacy ``simple_value``, a float32 or float64 tensor as
``tensor_content`` or ``float_val``/``double_val``) are decoded with numpy over all
records at once, and every other event with tensorboard's protobuf classes. A value with
no plugin metadata takes the plugin of the first earlier value of its tag, as
TensorBoard does. The CRC-32C of every record is checked, with numpy in bulk, but for
records of 64 KiB or more that give no point or param (graphs, images); the read of a
file stops at the first record that fails (or does not decode), as TensorBoard's loader
does, and the file is reported. A truncated file keeps the records before the cut, and is
reported.
"""

from __future__ import annotations

import os
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ._base import Report, RunData, SourceRun, relative_name, require

KIND = "tensorboard"
LOOK_FOR = "point it at a TensorBoard log folder (files named events.out.tfevents.*)"

SPLIT_FOLDERS = {
    "train": "train", "training": "train",
    "validation": "validation", "valid": "validation", "val": "validation",
    "eval": "eval", "evaluation": "eval", "test": "test",
}
#: The context key of PyTorch ``add_scalars`` sub-folders (PyTorch calls the dict's keys tags).
SCALARS_KEY = "tag"
_NUMBER_FOLDER = re.compile(r"\d+(?:\.\d+)?")
_SKIP_REASONS = {"text": "text events", "images": "image events",
                 "histograms": "histogram events", "audio": "audio events",
                 "pr_curves": "pr-curve events"}
#: How legacy (pre-tensor) summary values map to plugins, as ``data_compat`` migrates them.
_LEGACY_PLUGINS = {"simple_value": "scalars", "histo": "histograms", "image": "images",
                   "audio": "audio"}
_HEADER = struct.Struct("<Q")
#: Records shorter than this are checksummed even when nothing is read from them.
_CHECK_ALWAYS = 1 << 16


def _tb() -> tuple[Any, Any, Any, Any]:
    what = "importing TensorBoard logs"
    event_pb2 = require("tensorboard.compat.proto.event_pb2", "tensorboard", what)
    summary_pb2 = require("tensorboard.compat.proto.summary_pb2", "tensorboard", what)
    tensor_util = require("tensorboard.util.tensor_util", "tensorboard", what)
    hparams = require("tensorboard.plugins.hparams.metadata", "tensorboard", what)
    return event_pb2, summary_pb2, tensor_util, hparams


def _is_event_file(name: str) -> bool:
    return "tfevents" in name and not name.startswith(".")


# -- finding runs ----------------------------------------------------------------------


def discover(source: str, report: Report) -> list[SourceRun]:
    """Group event files into runs (split, hparams and add_scalars folders join their parent)."""
    _tb()  # fail early, with the pip hint, when the extra is missing
    root = source if os.path.isdir(source) else os.path.dirname(source)
    files: list[str] = []
    if os.path.isfile(source):
        files = [source]
    else:
        for folder, dirs, names in os.walk(source):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files += [os.path.join(folder, n) for n in sorted(names) if _is_event_file(n)]
    by_folder: dict[str, list[str]] = {}
    for path in files:
        by_folder.setdefault(os.path.dirname(path), []).append(path)
    runs: dict[str, list[tuple[str, dict[str, str] | None]]] = {}
    for folder, paths in by_folder.items():
        base = os.path.basename(folder)
        run_folder, context = folder, None
        if folder != root:
            split = SPLIT_FOLDERS.get(base.lower())
            if split:
                run_folder, context = os.path.dirname(folder), {"split": split}
            elif _NUMBER_FOLDER.fullmatch(base):
                run_folder = os.path.dirname(folder)
            elif os.path.dirname(folder) in by_folder:  # add_scalars: the parent has files
                key = _add_scalars_key(base, paths)
                if key is not None:
                    run_folder, context = os.path.dirname(folder), {SCALARS_KEY: key}
        runs.setdefault(run_folder, []).extend((path, context) for path in paths)
    return [
        SourceRun(relative_name(root, folder), folder, extra={"files": runs[folder]})
        for folder in sorted(runs)
    ]


def _add_scalars_key(base: str, paths: list[str]) -> str | None:
    """``key`` when ``base`` is an ``add_scalars`` folder ``<main_tag>_<key>``, else None.

    PyTorch names the folder after the main tag (``/`` written as ``_``) and the dict key,
    and tags every scalar in it with the main tag: the first summary tag tells.
    """
    tag = next((t for t in (_first_tag(p) for p in paths) if t is not None), None)
    if tag is None:
        return None
    prefix = tag.replace("/", "_") + "_"
    if base.startswith(prefix) and len(base) > len(prefix):
        return base[len(prefix):]
    return None


def _first_tag(path: str, records: int = 16) -> str | None:
    """The tag of the first summary value among the first ``records`` records of ``path``."""
    event_pb2 = _tb()[0]
    try:
        with open(path, "rb") as fh:
            for _ in range(records):
                header = fh.read(12)
                if len(header) < 12:
                    return None
                (length,) = _HEADER.unpack_from(header)
                if length > 1 << 24:
                    return None
                body = fh.read(length + 4)
                if len(body) < length + 4:
                    return None
                event = event_pb2.Event.FromString(body[:length])
                if event.WhichOneof("what") == "summary" and event.summary.value:
                    return str(event.summary.value[0].tag)
    except (OSError, ValueError, RuntimeError):
        return None
    except Exception:  # noqa: BLE001 - a record that does not decode: not an add_scalars folder
        return None
    return None


# -- CRC-32C over many records at once -------------------------------------------------

_CRC_TABLES: tuple[Any, Any, Any] | None = None


def _crc_tables() -> tuple[Any, Any, Any]:
    """CRC-32C (Castagnoli, reflected) tables: one byte, and four bytes as two halves.

    After a 32-bit word is xored into the register, four byte steps give
    ``low[register & 0xFFFF] ^ high[register >> 16]`` (the steps are linear).
    """
    global _CRC_TABLES
    if _CRC_TABLES is None:
        import numpy as np

        byte = np.arange(256, dtype=np.uint32)
        for _ in range(8):
            byte = np.where(byte & 1, (byte >> 1) ^ np.uint32(0x82F63B78), byte >> 1)
        byte = byte.astype(np.uint32)

        def four_steps(register: Any) -> Any:
            for _ in range(4):
                register = byte[register & 0xFF] ^ (register >> 8)
            return register.astype(np.uint32)

        half = np.arange(65536, dtype=np.uint32)
        _CRC_TABLES = (byte, four_steps(half), four_steps(half << 16))
    return _CRC_TABLES


def masked_crc32c(buf: Any, starts: Any, lengths: Any) -> Any:
    """The masked CRC-32C (as TFRecord stores it) of ``buf[start:start+length]``, per record.

    Records of one length are checksummed together, four bytes per numpy step.
    """
    import numpy as np

    byte, low, high = _crc_tables()
    out = np.empty(len(starts), dtype=np.uint32)
    if not len(starts):
        return out
    order = np.argsort(lengths, kind="stable")
    cuts = np.flatnonzero(np.diff(lengths[order])) + 1
    for group in np.split(order, cuts):
        length = int(lengths[group[0]])
        crc = np.full(len(group), 0xFFFFFFFF, dtype=np.uint32)
        if length:
            rows = np.lib.stride_tricks.sliding_window_view(buf, length)[starts[group]]
            quads = length // 4
            if quads:
                words = np.ascontiguousarray(rows[:, :4 * quads].view("<u4").T)
                for j in range(quads):
                    crc ^= words[j]
                    halves = crc.view(np.uint16)
                    crc = low[halves[0::2]] ^ high[halves[1::2]]
            for j in range(4 * quads, length):
                crc = byte[(crc ^ rows[:, j]) & 0xFF] ^ (crc >> 8)
        crc ^= np.uint32(0xFFFFFFFF)
        out[group] = ((crc >> 15) | (crc << 17)) + np.uint32(0xA282EAD8)
    return out


# -- decoding --------------------------------------------------------------------------


def _frame(data: bytes) -> tuple[list[int], list[int], int]:
    """Record starts and lengths by the TFRecord framing, and the bytes left at the end.

    A record is an 8-byte length, its 4-byte masked CRC, the data, the data's CRC.
    """
    starts: list[int] = []
    lengths: list[int] = []
    unpack = _HEADER.unpack_from
    pos, size = 0, len(data)
    while pos + 12 <= size:
        (length,) = unpack(data, pos)
        end = pos + 16 + length
        if end > size:
            break
        starts.append(pos + 12)
        lengths.append(length)
        pos = end
    return starts, lengths, size - pos


#: Tensor encodings of one float scalar: the bytes before the value, and its width. Fields:
#: dtype (1: DT_FLOAT, 2: DT_DOUBLE), an empty tensor_shape (optional), then
#: tensor_content (4), float_val (5) or double_val (6), packed.
_TENSOR_PREFIXES: tuple[tuple[bytes, int], ...] = tuple(
    (dtype + shape + field_len, width)
    for dtype, fields, width in ((b"\x08\x01", (b"\x22\x04", b"\x2a\x04"), 4),
                                 (b"\x08\x02", (b"\x22\x08", b"\x32\x08"), 8))
    for shape in (b"\x12\x00", b"")
    for field_len in fields
)


def _varint(buf: Any, pos: Any, limit: int) -> tuple[Any, Any]:
    """Protobuf varints at ``pos``: (values, byte counts); a count of 0 marks a bad varint."""
    import numpy as np

    value = np.zeros(len(pos), dtype=np.uint64)
    count = np.zeros(len(pos), dtype=np.int64)
    for j in range(10):
        open_ = count == 0
        if not open_.any():
            break
        b = buf[np.minimum(pos + j, limit)]
        value |= np.where(open_, (b & 0x7F).astype(np.uint64) << np.uint64(7 * j),
                          np.uint64(0))
        count[open_ & (b < 0x80)] = j + 1
    return value, count


def _length(value: Any) -> Any:
    """Varint values as int64 lengths (absurd ones clamped, so checks against ends fail)."""
    import numpy as np

    return np.minimum(value, np.uint64(1 << 40)).astype(np.int64)


@dataclass
class _Fast:
    """Events decoded column-wise: one scalar-shaped value each."""

    records: Any  # int64 record indices
    walls: Any  # float64
    steps: Any  # int64
    numbers: Any  # float64
    codes: Any  # int64: the value's layout, an index into ``layouts``
    layouts: list[bytes]  # a value's bytes with the number zeroed: tag, encoding, metadata
    simple: Any  # per layout, bool: a legacy simple_value (else a tensor)

    def only(self, mask: Any) -> _Fast:
        return _Fast(self.records[mask], self.walls[mask], self.steps[mask],
                     self.numbers[mask], self.codes[mask], self.layouts, self.simple)


def _decode_fast(data: bytes, buf: Any, starts: Any, lengths: Any) -> _Fast:
    """Every record that is an event with one summary value of a single float, decoded.

    Layout checked byte by byte (fields in number order, as every writer emits them):
    wall_time (1, fixed64), step (2, varint, absent when 0), summary (5) holding exactly
    one value: tag (1), then simple_value (2, float32) or a tensor (8) in one of
    ``_TENSOR_PREFIXES`` followed by nothing or its metadata (9). Anything else is left
    to the protobuf decoder.
    """
    import numpy as np

    limit = len(buf) - 1

    def at(pos: Any) -> Any:
        return buf[np.minimum(pos, limit)]

    def number(pos: Any, width: int) -> Any:
        raw = buf[np.minimum(pos, limit - width)[:, None] + np.arange(width)]
        kind = "<f4" if width == 4 else "<f8"
        return np.ascontiguousarray(raw).view(kind)[:, 0].astype(np.float64)

    ends = starts + lengths
    ok = (lengths >= 11) & (at(starts) == 0x09)
    pos = starts + 9
    has_step = at(pos) == 0x10
    step_raw, step_n = _varint(buf, pos + 1, limit)
    ok &= ~has_step | (step_n > 0)
    steps = np.where(has_step, step_raw.view(np.int64), 0)
    pos = np.where(has_step, pos + 1 + step_n, pos)
    ok &= at(pos) == 0x2A  # summary
    size, n = _varint(buf, pos + 1, limit)
    pos = pos + 1 + n
    ok &= (n > 0) & (pos + _length(size) == ends) & (at(pos) == 0x0A)  # one value
    size, n = _varint(buf, pos + 1, limit)
    v0 = pos + 1 + n
    ok &= (n > 0) & (v0 + _length(size) == ends) & (at(v0) == 0x0A)  # its tag
    size, n = _varint(buf, v0 + 1, limit)
    after_tag = v0 + 1 + n + _length(size)
    ok &= (n > 0) & (after_tag < ends)
    kind = at(after_tag)

    def then_metadata(pos: Any) -> Any:
        """Nothing more after ``pos``, or exactly the metadata (9) up to the end."""
        size, n = _varint(buf, pos + 1, limit)
        return (pos == ends) | ((at(pos) == 0x4A) & (n > 0) & (pos + 1 + n + _length(size)
                                                               == ends))

    value_at = np.zeros(len(starts), dtype=np.int64)
    width = np.zeros(len(starts), dtype=np.int64)
    simple = ok & (kind == 0x15) & (after_tag + 5 <= ends)
    simple &= then_metadata(after_tag + 5)
    value_at[simple] = after_tag[simple] + 1
    width[simple] = 4
    tensor = ok & (kind == 0x42)
    size, n = _varint(buf, after_tag + 1, limit)
    t0 = after_tag + 1 + n
    t1 = t0 + _length(size)
    tensor &= (n > 0) & (t1 <= ends)
    tensor &= then_metadata(t1)
    matched = np.zeros(len(starts), dtype=bool)
    for prefix, bytes_ in _TENSOR_PREFIXES:
        hit = tensor & ~matched & (t1 - t0 == len(prefix) + bytes_)
        for j, byte in enumerate(prefix):
            if hit.any():
                hit &= at(t0 + j) == byte
        value_at[hit] = t0[hit] + len(prefix)
        width[hit] = bytes_
        matched |= hit
    records = np.flatnonzero(simple | matched)
    value_at, width = value_at[records], width[records]
    numbers = np.zeros(len(records), dtype=np.float64)
    for bytes_ in (4, 8):
        sel = width == bytes_
        numbers[sel] = number(value_at[sel], bytes_)
    # A value's layout: its bytes with the number zeroed; the values of a series share one.
    masked = np.frombuffer(data, dtype=np.uint8).copy()
    for j in range(8):
        masked[value_at[width > j] + j] = 0
    blob = masked.tobytes()
    index: dict[bytes, int] = {}
    codes = np.array([index.setdefault(blob[a:b], len(index))
                      for a, b in zip(v0[records].tolist(), ends[records].tolist())],
                     dtype=np.int64)
    layout_simple = np.zeros(len(index), dtype=bool)
    layout_simple[codes] = simple[records]
    return _Fast(records, number(starts[records] + 1, 8), steps[records], numbers, codes,
                 list(index), layout_simple)


@dataclass
class _FileResult:
    """What one event file gives: points (column-wise), params, skipped counts, problems."""

    tags: list[str] = field(default_factory=list)  # the distinct tags
    codes: Any = None  # per point, its tag: an index into ``tags``
    steps: Any = None
    times: Any = None
    values: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    first_time: float | None = None
    problem: tuple[str, str] | None = None  # (reason, message)
    truncated: str | None = None


def _scalar(tensor: Any, tensor_util: Any) -> float:
    """A scalar tensor's value; the common float/double cases without building an array."""
    if not tensor.tensor_content and not tensor.tensor_shape.dim:
        if len(tensor.float_val) == 1:
            return float(tensor.float_val[0])
        if len(tensor.double_val) == 1:
            return float(tensor.double_val[0])
    return float(tensor_util.make_ndarray(tensor))


def _hparam_values(info: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in info.hparams.items():
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            number = value.number_value
            params[key] = int(number) if number.is_integer() and abs(number) < 2**53 else number
        elif kind == "string_value":
            params[key] = value.string_value
        elif kind == "bool_value":
            params[key] = value.bool_value
    return params


def _skip_reason(plugin: str) -> str:
    if plugin.startswith("graph"):
        return "graph events"
    return _SKIP_REASONS.get(plugin, f"{plugin or 'other'} events")


def read_file(path: str) -> _FileResult:
    """Scalars, hparams and skipped counts of one event file (see the module doc)."""
    import numpy as np

    event_pb2, summary_pb2, tensor_util, hparams = _tb()
    out = _FileResult()
    with open(path, "rb") as fh:
        data = fh.read()
    start_list, length_list, left = _frame(data)
    total = len(start_list)
    if left:
        out.truncated = f"truncated: the last {left} bytes are not a whole record"
    buf = np.frombuffer(data + bytes(16), dtype=np.uint8)
    starts = np.array(start_list, dtype=np.int64)
    lengths = np.array(length_list, dtype=np.int64)

    def stored_crc(at: Any) -> Any:
        return np.ascontiguousarray(buf[at[:, None] + np.arange(4)]).view("<u4")[:, 0]

    # Every length header first: after a bad one the framing is garbage.
    bad = np.flatnonzero(masked_crc32c(buf, starts - 12, np.full(total, 8, dtype=np.int64))
                         != stored_crc(starts - 4))
    cut = int(bad[0]) if len(bad) else total
    header_cut = cut < total
    starts, lengths = starts[:cut], lengths[:cut]

    # The numpy pass, then each distinct value layout once with protobuf: tag and plugin.
    fast = _decode_fast(data, buf, starts, lengths)
    layouts: list[tuple[str, str, Any]] = []  # (tag, own plugin, Summary.Value)
    good = np.ones(len(fast.layouts), dtype=bool)
    for code, (key, simple) in enumerate(zip(fast.layouts, fast.simple.tolist())):
        try:
            value = summary_pb2.Summary.Value.FromString(key)
        except Exception:  # noqa: BLE001 - left to the protobuf pass, which reports it
            value = None
        if value is None or value.WhichOneof("value") != ("simple_value" if simple
                                                          else "tensor"):
            good[code] = False  # (a repeated oneof field: protobuf keeps the last one)
            layouts.append(("", "", None))
            continue
        plugin = "scalars" if simple else value.metadata.plugin_data.plugin_name
        layouts.append((value.tag, plugin, value))
    fast = fast.only(good[fast.codes])
    walls = np.full(cut, np.nan)
    walls[fast.records] = fast.walls
    steps = np.zeros(cut, dtype=np.int64)
    steps[fast.records] = fast.steps
    is_fast = np.zeros(cut, dtype=bool)
    is_fast[fast.records] = True

    # The protobuf pass over the rest, in record order; a record that does not decode
    # ends the file (as TensorBoard's loader stops there). Each value is its own layout.
    slow_records: list[int] = []
    undecodable: str | None = None
    for record in np.flatnonzero(~is_fast).tolist():
        start, length = start_list[record], length_list[record]
        try:
            event = event_pb2.Event.FromString(data[start:start + length])
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and its kin
            cut, undecodable = record, type(exc).__name__
            break
        walls[record] = event.wall_time
        steps[record] = event.step
        what = event.WhichOneof("what")
        if what in ("graph_def", "meta_graph_def", "tagged_run_metadata"):
            slow_records.append(record)
            layouts.append(("", "graph", None))
        elif what == "summary":
            for raw in event.summary.value:
                kind = raw.WhichOneof("value") or ""
                plugin = _LEGACY_PLUGINS.get(kind) or raw.metadata.plugin_data.plugin_name
                slow_records.append(record)
                layouts.append((raw.tag, plugin, raw))

    # Every value in record order: its tag and plugin. A value without plugin metadata
    # takes the plugin of the first earlier value of its tag (TensorBoard's rule).
    tag_ids: dict[str, int] = {}
    plugin_ids: dict[str, int] = {"": 0}
    layout_tag = np.array([tag_ids.setdefault(t, len(tag_ids)) for t, _, _ in layouts],
                          dtype=np.int64)
    layout_plugin = np.array([plugin_ids.setdefault(p, len(plugin_ids)) for _, p, _ in layouts],
                             dtype=np.int64)
    n_slow = len(slow_records)
    records = np.concatenate([fast.records, np.array(slow_records, dtype=np.int64)])
    codes = np.concatenate([fast.codes, np.arange(len(layouts) - n_slow, len(layouts))])
    order = np.argsort(records, kind="stable")  # a fast record holds one value: no ties
    records, codes = records[order], codes[order]
    tags, own = layout_tag[codes], layout_plugin[codes]
    plugins = own.copy()
    named = np.flatnonzero(own > 0)
    if len(named) < len(own):
        first_at = np.full(len(tag_ids), len(own), dtype=np.int64)
        first_plugin = np.zeros(len(tag_ids), dtype=np.int64)
        tag_named, first = np.unique(tags[named], return_index=True)
        first_at[tag_named] = named[first]
        first_plugin[tag_named] = own[named[first]]
        bare = own == 0
        inherits = bare & (first_at[tags] < np.arange(len(own)))
        plugins[inherits] = first_plugin[tags[inherits]]
    scalars = plugin_ids.get("scalars", -1)
    hparams_id = plugin_ids.get("hparams", -1)

    # The CRC of every record read up to the cut, but for big ones no point or param comes
    # from (graphs, images); the read stops at the first record that fails.
    check = lengths[:cut + 1] < _CHECK_ALWAYS
    check[records[(records < cut) & ((plugins == scalars) | (plugins == hparams_id))]] = True
    if undecodable is not None:
        check[cut] = True
    checked = np.flatnonzero(check)
    failed = checked[masked_crc32c(buf, starts[checked], lengths[checked])
                     != stored_crc(starts[checked] + lengths[checked])]
    if len(failed):
        cut = int(failed.min())
        out.problem = ("damaged event files", f"damaged: record {cut + 1} of {total} fails "
                       f"its checksum; {cut} records read, the rest skipped")
    elif undecodable is not None:
        out.problem = ("damaged event files", f"record {cut + 1} of {total} does not decode "
                       f"({undecodable}); {cut} records read, the rest skipped")
    elif header_cut:
        out.problem = ("damaged event files", f"damaged: the length of record {cut + 1} of "
                       f"{total} fails its checksum; {cut} records read, the rest skipped")
    read_walls = walls[:cut]
    read_walls = read_walls[(read_walls != 0) & ~np.isnan(read_walls)]
    out.first_time = float(read_walls.min()) if len(read_walls) else None

    # Points: the fast ones column-wise, the others one by one, all in record order.
    keep = records < cut
    rows = np.flatnonzero(keep & (plugins == scalars))
    source = order[rows]
    from_fast = source < len(fast.records)
    values = np.zeros(len(rows), dtype=np.float64)
    values[from_fast] = fast.numbers[source[from_fast]]
    valid = np.ones(len(rows), dtype=bool)
    for i in np.flatnonzero(~from_fast).tolist():
        raw = layouts[int(codes[rows[i]])][2]
        try:
            values[i] = float(raw.simple_value) if raw.WhichOneof("value") == "simple_value" \
                else _scalar(raw.tensor, tensor_util)
        except (TypeError, ValueError):
            valid[i] = False
    out.skipped["non-numeric values"] += int((~valid).sum())
    rows, point_records = rows[valid], records[rows[valid]]
    out.tags = list(tag_ids)
    out.codes = tags[rows]
    out.steps = steps[point_records]
    out.times = walls[point_records]
    out.values = values[valid]
    for row in np.flatnonzero(keep & (plugins == hparams_id)).tolist():
        tag, _, raw = layouts[int(codes[row])]
        _hparams(out, tag, raw, hparams)
    others = keep & (plugins != scalars) & (plugins != hparams_id)
    plugin_names = list(plugin_ids)
    for plugin, count in zip(*np.unique(plugins[others], return_counts=True)):
        out.skipped[_skip_reason(plugin_names[int(plugin)])] += int(count)
    return out


def _hparams(out: _FileResult, tag: str, value: Any, hparams: Any) -> None:
    if tag.endswith("session_start_info"):
        content = value.metadata.plugin_data.content
        info = hparams.parse_session_start_info_plugin_data(content)
        out.params.update(_hparam_values(info))


def read(run: SourceRun, report: Report) -> RunData | None:
    """Scalars and hparams of every event file of one run."""
    data = RunData()
    first_time: float | None = None
    for path, context in run.extra["files"]:
        try:
            result = read_file(path)
        except OSError as exc:
            report.skip(path, "unreadable files", f"cannot read: {exc.strerror}")
            continue
        except Exception as exc:  # noqa: BLE001 - one bad file must not lose the run
            report.skip(path, "damaged event files", f"cannot read ({type(exc).__name__}); "
                        "the file skipped")
            continue
        if result.truncated:
            report.skip(path, "truncated event files", result.truncated + "; the records "
                        "before it read")
        if result.problem:
            report.skip(path, result.problem[0], result.problem[1])
        for reason, count in sorted(result.skipped.items()):
            report.skip(path, reason, count=count)
        if result.first_time is not None and (first_time is None
                                              or result.first_time < first_time):
            first_time = result.first_time
        data.params.update(result.params)
        data.add_columns(result.tags, result.codes, result.values, result.steps, result.times,
                         context)
    data.created = first_time
    if not len(data):
        report.skip(run.path, "empty runs", "no scalar values; run skipped")
        return None
    return data

"""Numbers of a line view, packed: decimal integers where the data has few decimals,
delta-coded, byte-planed and deflated, as base64 text the page inflates.

A curves page of 10,000 runs holds three million points; as JSON text (``0.6791,``) that
is 27 MB. Logged values mostly have a few decimals (F1 ``0.6791``, epochs ``1..60``):
each array is stored as integers ``round(v * 10**d)`` at the fewest decimals ``d`` that
give every value back exactly, as the difference to the previous value of the array
(small numbers), zigzag-coded (0, -1, 1, -2 ... as 0, 1, 2, 3 ...: the sign in the lowest
bit), in 32-bit little-endian words whose bytes are stored plane by plane (all first
bytes, then all second bytes, ...: the high planes are long runs of zeros), and deflated.
An array no ``d`` up to :data:`MAX_DECIMALS` gives back exactly (or too large for 32
bits) is stored as 64-bit floats, also deflated. Values are first rounded to
:data:`DIGITS` significant digits, as the page shows them to 4.

The page decodes with the browser's ``DecompressionStream('deflate')`` (Chrome 80,
Firefox 113, Safari 16.4); :func:`unpack` is the same decoding in Python, for tests.
A missing value (None, NaN, an infinity) travels as missing.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Significant digits a value keeps (hover shows 4).
DIGITS = 7
#: The most decimals an array is stored at as integers.
MAX_DECIMALS = 15
#: A missing value in the integer stream (never a difference: values stay below 2**30,
#: so a zigzag-coded difference stays below 2**32 - 1).
MISSING = 2**32 - 1
LIMIT = 2**30


def significant(values: np.ndarray, digits: np.ndarray | int = DIGITS) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (one count, or one per value;
    NaN stays NaN, 0 stays 0)."""
    out = values.copy()
    ok = np.isfinite(values) & (values != 0)
    v = values[ok]
    places = (np.broadcast_to(digits, values.shape)[ok] - 1
              - np.floor(np.log10(np.abs(v)))).astype(np.int64)
    rounded = v.copy()
    # Decimals kept (places >= 0): scale up, round, scale down by an exact power of ten;
    # a value past the digits (places < 0): scale down first. Powers past 1e22 are not
    # exact: those few values go through Python's own formatting.
    up = (places >= 0) & (places <= 22)
    scale = 10.0 ** places[up]
    rounded[up] = np.round(v[up] * scale) / scale
    down = (places < 0) & (places >= -22)
    scale = 10.0 ** -places[down]
    rounded[down] = np.round(v[down] / scale) * scale
    wide = np.flatnonzero(np.abs(places) > 22)
    keep = np.broadcast_to(digits, values.shape)[ok]
    for i in wide.tolist():
        rounded[i] = float(f"{v[i]:.{int(keep[i])}g}")
    out[ok] = rounded
    return out


def _planes(words: np.ndarray) -> bytes:
    """Little-endian words, bytes grouped by plane (all byte 0, all byte 1, ...)."""
    width = words.dtype.itemsize
    raw = np.frombuffer(words.astype(words.dtype.newbyteorder("<")).tobytes(), np.uint8)
    return raw.reshape(-1, width).T.tobytes()


def _unplanes(data: bytes, dtype: str) -> np.ndarray:
    width = np.dtype(dtype).itemsize
    raw = np.frombuffer(data, np.uint8).reshape(width, -1).T
    return np.frombuffer(raw.tobytes(), dtype)


def _text(data: bytes) -> str:
    return base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def pack(arrays: Sequence[Any], digits: Sequence[int] | None = None) -> dict[str, Any]:
    """Pack ``arrays`` (sequences of numbers, None for missing) into the page's form:
    ``n`` (each array's length), ``d`` (its decimals, -1 for floats), ``ints`` and
    ``floats`` (deflated, base64). ``digits``: the significant digits each array keeps
    (default :data:`DIGITS`; x values such as times since the epoch need more)."""
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    flat = (np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays])
            if len(arrays) else np.empty(0))
    flat = np.where(np.isfinite(flat), flat, np.nan)
    ids = np.repeat(np.arange(len(arrays)), lengths)
    keep_digits = np.asarray(digits if digits is not None else [DIGITS] * len(arrays),
                             dtype=np.int64)
    values = significant(flat, keep_digits[ids])
    present = ~np.isnan(values)
    # Per array, the fewest decimals that give every value back exactly.
    decimals = np.full(len(arrays), -1, dtype=np.int64)
    todo = np.ones(len(arrays), dtype=bool)
    for d in range(MAX_DECIMALS + 1):
        if not todo.any():
            break
        at = todo[ids]  # the values of the arrays still undecided
        v = values[at]
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = np.round(v * 10.0**d)
        good = np.isnan(v) | ((scaled / 10.0**d == v) & (np.abs(scaled) < LIMIT))
        bad = np.bincount(ids[at][~good], minlength=len(arrays)) > 0
        decimals[todo & ~bad] = d
        todo &= bad
    as_int = decimals[ids] >= 0 if len(arrays) else np.zeros(0, dtype=bool)
    ints = np.full(int(as_int.sum()), MISSING, dtype=np.int64)
    keep = present[as_int]
    scaled = np.round(values[as_int][keep] * 10.0 ** decimals[ids[as_int][keep]])
    words = scaled.astype(np.int64)
    owner = ids[as_int][keep]
    deltas = np.diff(words, prepend=0)
    if words.size:
        first = np.ones(words.size, dtype=bool)
        first[1:] = owner[1:] != owner[:-1]
        deltas[first] = words[first]
    ints[keep] = (deltas << 1) ^ (deltas >> 63)  # zigzag
    floats = values[~as_int]
    return {"n": lengths.tolist(), "d": decimals.tolist(),
            "ints": _text(_planes(ints.astype(np.uint32))),
            "floats": _text(_planes(floats.astype(np.float64)))}


def unpack(packed: dict[str, Any]) -> list[list[float | None]]:
    """The arrays back from :func:`pack`'s form (as the page decodes them)."""
    ints = _unplanes(zlib.decompress(base64.b64decode(packed["ints"])), "<u4")
    floats = _unplanes(zlib.decompress(base64.b64decode(packed["floats"])), "<f8")
    out: list[list[float | None]] = []
    i = f = 0
    for n, d in zip(packed["n"], packed["d"]):
        row: list[float | None] = []
        if d < 0:
            for v in floats[f:f + n].tolist():
                row.append(None if v != v else v)
            f += n
        else:
            acc = 0
            for w in ints[i:i + n].tolist():
                if w == MISSING:
                    row.append(None)
                else:
                    acc += (w >> 1) ^ -(w & 1)
                    row.append(acc / 10**d)
            i += n
        out.append(row)
    return out

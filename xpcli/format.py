"""The record format, version 1: the one module that knows the bytes.

A runs directory holds JSONL files (``*.jsonl``, ``*.jsonl.gz``) and Parquet files
(``*.parquet``). Every JSONL line is one self-describing record; a Parquet file holds the
same records as rows. ``docs/format.md`` is the specification written for people; this
module is its implementation, and neither imports polars.

Two record kinds:

- ``run``: ``{"kind": "run", "run": ID, "time": T, "params": {...}, "meta": {...}}``.
  A run may have several run records; they merge in file order, later keys winning.
- ``point``: ``{"kind": "point", "run": ID, "name": NAME, "value": V, "step": S,
  "epoch": E, "time": T, "context": {KEY: VALUE}}``; ``step``, ``epoch`` and ``context``
  are optional.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from .errors import UsageError

VERSION = 1
KINDS = ("run", "point")

#: Point fields, in the order the writer emits them (the reader does not rely on order).
POINT_FIELDS = ("kind", "run", "name", "value", "step", "epoch", "time", "context")

#: How non-finite floats are written: JSON has no NaN, so they are strings.
NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

#: The columns of the points table that are not context keys (one per context key follows).
POINT_COLUMNS = ("run", "name", "step", "epoch", "time", "value")

#: Column names the points table uses itself; a context key may not take them.
RESERVED_CONTEXT_KEYS = frozenset({"kind", *POINT_COLUMNS})

RUN_ID_MAX = 128
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")


def check_run_id(run: str) -> str:
    """Return ``run`` if it is a valid run id, else raise :class:`UsageError`.

    A run id is 1-128 characters of ``A-Z a-z 0-9 . _ -`` starting with a letter or
    digit, so it is always a plain file name: it cannot leave the runs directory.
    """
    if not isinstance(run, str) or not _RUN_ID.fullmatch(run):
        shown = repr(run)[:80]
        raise UsageError(
            f"invalid run id {shown}: use 1-{RUN_ID_MAX} characters of letters, digits, "
            "'.', '_' and '-', starting with a letter or digit (no path separators)"
        )
    return run


def check_text(text: str, what: str) -> str:
    """Return ``text`` if it can be written as UTF-8, else raise :class:`UsageError`
    naming ``what``. A lone surrogate (what ``os.fsdecode`` gives for a file name that is
    not UTF-8) cannot: caught here, it never reaches a buffer whose flush would fail."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"{what}: {text!r} is not valid Unicode text (a lone surrogate, as os.fsdecode "
            "gives for a file name that is not UTF-8); decode such bytes with "
            "errors='replace' first"
        ) from None
    return text


def check_name(name: str, what: str = "metric name") -> str:
    """Validate a metric name or context key: non-empty text without control characters."""
    if not isinstance(name, str) or not name or len(name) > 256 or any(
        ord(c) < 32 or ord(c) == 127 for c in name
    ):
        raise UsageError(f"invalid {what} {name!r}: use 1-256 printable characters")
    return check_text(name, f"invalid {what}")


def check_context_key(key: str) -> str:
    """Context keys are identifiers (dots and dashes allowed) and not a reserved column."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise UsageError(
            f"invalid context key {key!r}: use letters, digits, '_', '.', '-', "
            "starting with a letter or '_'"
        )
    if key in RESERVED_CONTEXT_KEYS:
        raise UsageError(
            f"invalid context key {key!r}: it names a column of the points table "
            f"({', '.join(sorted(RESERVED_CONTEXT_KEYS))}); pick another"
        )
    return key


def encode_float(value: float) -> str:
    """JSON text of a float: shortest round-trip repr, non-finite as strings."""
    if value != value:
        return '"NaN"'
    if value in (math.inf, -math.inf):
        return '"Infinity"' if value > 0 else '"-Infinity"'
    return repr(value)


def decode_value(raw: Any) -> float:
    """A point's ``value`` from its JSON form; raise ValueError if it is not a number."""
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"value must be a number, got {json.dumps(raw)}")
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str) and raw in NONFINITE:
        return NONFINITE[raw]
    raise ValueError(f"value must be a number or one of NaN, Infinity, -Infinity, got {raw!r}")


#: How deep params may nest. A real config is a few levels; far deeper is hostile input,
#: and writing it as JSON would hit Python's recursion limit.
MAX_PARAM_DEPTH = 100


#: The largest integer a param may hold: the reader turns larger ones into floats (as it
#: does ``1e400``), so they would not read back. Record such a number as a string.
MAX_INT_BITS = 999


def _plain(value: Any, what: str, path: str, parents: list[int]) -> Any:
    """Turn a param value into plain JSON types (numpy scalars, tuples, paths...).

    ``what`` and ``path`` name the value in errors (``param 'opt.lr'``). ``parents`` holds
    the ids of the dicts and lists enclosing ``value``: meeting one of them again is a
    cycle (``d["self"] = d``, a YAML alias of its own parent).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return check_text(value, f"{what} {path!r}")
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise UsageError(
                f"{what} {path!r}: an integer of {value.bit_length()} bits does not read "
                f"back (at most {MAX_INT_BITS}); record it as a string or a float"
            )
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else encode_float(value).strip('"')
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in parents:
            raise UsageError(
                f"{what} {path!r}: a value refers to itself (a reference cycle, e.g. a YAML "
                "alias inside itself)"
            )
        if len(parents) > MAX_PARAM_DEPTH:  # the params dict itself is parents[0]
            raise UsageError(
                f"{what} {path!r}: nested more than {MAX_PARAM_DEPTH} levels deep; "
                "flatten it or record it as a string"
            )
        parents.append(id(value))
        try:
            if isinstance(value, Mapping):
                return _plain_mapping(value, what, path, parents)
            return [_plain(v, what, path, parents) for v in value]
        finally:
            parents.pop()
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return _plain(item(), what, path, parents)
        except (TypeError, ValueError):
            pass
    if hasattr(value, "__fspath__"):
        return check_text(str(value), f"{what} {path!r}")
    raise UsageError(
        f"{what} {path!r}: cannot record a {type(value).__name__}; "
        "use numbers, strings, booleans, None, lists or dicts"
    )


def _plain_mapping(value: Mapping[Any, Any], what: str, path: str,
                   parents: list[int]) -> dict[str, Any]:
    """A nested dict with string keys; two keys that read the same (``1`` and ``"1"``)
    are refused rather than silently merged."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = check_text(str(key), f"{what} {path!r}: key")
        inner = f"{path}.{name}"
        if name in out:
            raise UsageError(f"{what} {inner!r}: two keys are written as {name!r}; rename one")
        out[name] = _plain(item, what, inner, parents)
    return out


def plain_params(params: Mapping[str, Any], what: str = "param") -> dict[str, Any]:
    """Params as plain JSON values, keys as strings; raises UsageError on other types.

    A value that contains itself (a cycle) or nests deeper than :data:`MAX_PARAM_DEPTH`,
    text that is not valid Unicode, an integer too large to read back, or two keys that
    are written the same (``1`` and ``"1"``) is refused with a UsageError naming the
    param (``what`` is ``param`` or ``meta``).
    """
    if not isinstance(params, Mapping):
        raise UsageError(f"{what}s must be a dict, got {type(params).__name__}")
    parents = [id(params)]
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = check_name(str(key), f"{what} name")
        if name in out:
            raise UsageError(f"{what} {name!r}: two keys are written as {name!r}; rename one")
        out[name] = _plain(value, what, name, parents)
    return out


def context_text(key: str, value: Any) -> str:
    """A context value as the string it is written as: text as is, numbers and booleans
    as their JSON text (``3`` -> ``"3"``, ``True`` -> ``"true"``)."""
    what = f"context value {key!r}"
    if isinstance(value, str):
        return check_text(value, what)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        raise UsageError(
            f"{what}: a {type(value).__name__} cannot be a context value; use a string, "
            "number or boolean"
        )
    plain = _plain(value, "context value", key, [])
    return plain if isinstance(plain, str) else dumps(plain)


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts flatten to dotted names: ``{"optimizer": {"lr": 1}}`` -> ``optimizer.lr``.

    Lists stay lists (the reader shows them as JSON text). An empty dict is dropped.
    """
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def dumps(obj: Any) -> str:
    """Compact JSON, the way every record is written (no NaN tokens, UTF-8 kept)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def run_record(run: str, time: float, params: Mapping[str, Any] | None = None,
               meta: Mapping[str, Any] | None = None) -> str:
    """One ``run`` record as a JSON line (with its newline)."""
    rec: dict[str, Any] = {"kind": "run", "run": run, "time": time}
    if params:
        rec["params"] = dict(params)
    if meta:
        rec["meta"] = dict(meta)
    return dumps(rec) + "\n"


def point_prefix(run: str, name: str, context: Mapping[str, str] | None) -> str:
    """The fixed part of a point line for one (run, name, context); see :func:`point_line`."""
    head = '{"kind":"point","run":' + dumps(run) + ',"name":' + dumps(name)
    if context:
        return head + ',"context":' + dumps(dict(context))
    return head


def point_line(prefix: str, value: float, step: int | None, epoch: float | None,
               time: float) -> str:
    """A point line: ``prefix`` from :func:`point_prefix`, then the varying fields."""
    parts = [prefix, ',"value":', encode_float(value)]
    if step is not None:
        parts.append(f',"step":{step}')
    if epoch is not None:
        parts.append(',"epoch":' + encode_float(epoch))
    parts.append(f',"time":{time!r}}}\n')
    return "".join(parts)


def _parse_int(text: str) -> int | float:
    """A JSON integer; one too big for a float is infinite (as ``1e400`` is), never an
    OverflowError later."""
    number = int(text)
    return number if number.bit_length() < 1000 else float(text)


def parse_line(line: bytes | str) -> dict[str, Any]:
    """Parse and validate one record; raise ValueError with a short reason if it is bad.

    Returns a normalised dict: for points ``value`` is a float, ``step`` an int or None,
    ``epoch`` a float or None, ``context`` a dict of str to str; for runs ``params`` and
    ``meta`` are dicts. Unknown fields are ignored (forward compatible within version 1).
    """
    try:
        rec = json.loads(line, parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON ({str(exc)[:60]})") from None
    if not isinstance(rec, dict):
        raise ValueError("a record must be a JSON object")
    kind = rec.get("kind")
    run = rec.get("run")
    if not isinstance(run, str) or not run:
        raise ValueError("missing or non-string 'run'")
    time = rec.get("time")
    if time is not None and (isinstance(time, bool) or not isinstance(time, (int, float))
                             or not math.isfinite(time)):
        raise ValueError("'time' must be a finite number")
    if kind == "run":
        params = rec.get("params") or {}
        meta = rec.get("meta") or {}
        if not isinstance(params, dict) or not isinstance(meta, dict):
            raise ValueError("'params' and 'meta' must be objects")
        return {"kind": "run", "run": run, "time": time, "params": params, "meta": meta}
    if kind != "point":
        raise ValueError(f"unknown kind {kind!r} (expected 'run' or 'point')")
    name = rec.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("missing or non-string 'name'")
    value = decode_value(rec.get("value"))
    step = rec.get("step")
    if step is not None:
        if isinstance(step, float) and step.is_integer():
            step = int(step)
        if isinstance(step, bool) or not isinstance(step, int):
            raise ValueError("'step' must be an integer")
        if not -(2**63) <= step < 2**63:
            raise ValueError("'step' must fit in 64 bits")
    epoch = rec.get("epoch")
    if epoch is not None:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, float)):
            raise ValueError("'epoch' must be a number")
        epoch = float(epoch)
    context = rec.get("context") or {}
    if not isinstance(context, dict) or not all(
        isinstance(v, str) for v in context.values()
    ):
        raise ValueError("'context' must map string keys to string values")
    return {"kind": "point", "run": run, "name": name, "value": value, "step": step,
            "epoch": epoch, "time": None if time is None else float(time), "context": context}

"""Selectors: metric specs, ``--where`` expressions and run pickers, turned into Polars.

Every user-facing selector is parsed here, by hand-written parsers (never ``eval``), and
every error is a :class:`~xpcli.errors.SpecError` whose one-line message says where the
text broke and what was expected.

Metric specs
============

::

    SPEC    := NAME [":" KEY "=" VALUE]... ["@" REDUCE]
             | NAME "[" KEY "=" VALUE ["," KEY "=" VALUE]... "]" ["@" REDUCE]
    REDUCE  := last | first | max | min | mean | median
             | at=N | at=step:N | at=epoch:N
             | at-max(SPEC) | at-min(SPEC)

- ``f1`` is the metric ``f1``; ``f1:lang=de`` only its points whose context has
  ``lang=de``; ``f1:lang=de:split=eval`` both. The bracket form ``f1[lang=de,split=eval]``
  means the same and is exactly how columns are labelled, so a label can be pasted back.
- A VALUE is an exact value; ``*`` (every value seen, one column each, in sorted order);
  a glob with ``*`` and ``?`` (``d*``, ``?e``: one column per matching value); or empty
  (``loss:split=``), which selects the points that have *no* value for that key (an
  empty string in the data counts as no value).
- A key not given is unconstrained, but a spec never silently mixes contexts: if ``f1``
  is logged with several ``lang`` values (or with and without one), ``f1`` is an error
  that suggests ``f1:lang=*`` or ``f1:lang=en``.
- NAME and KEY: any text without blanks, quotes, backticks and the characters
  ``: @ , ( ) [ ] = * ?``. VALUE: any text without ``: @ , ( ) [ ] =`` (blanks around
  it are dropped).
  Keywords of REDUCE are case-insensitive.
- Lists (``--metrics f1:lang=*,lms``) are split at commas outside parentheses and
  brackets; a repeated option counts as more list items.

Examples::

    f1:lang=de                     German F1, last value
    f1:lang=*@max                  best F1, one column per language
    f1[lang=de,split=eval]@mean    the bracket form of f1:lang=de:split=eval@mean
    f1:lang=de@at-max(f1:lang=en)  German F1 where English F1 peaks
    loss:split=@at=step:1000       loss without a split, at step 1000

Reduce: one number per run and column. ``x`` is the epoch by default (``reduce_runs(x=)``
may choose ``step`` or ``time``); a series (one run, one column) without any epoch uses
its step instead.

One value per x: a run that logs the same x of a series twice (a job resumed from a
checkpoint re-logs its epochs) keeps only the *last logged* value there: the one with
the latest ``time``, then the one read last. Every reduce, ``xp curves`` and ``xp
forgetting`` see the series after this rule (:func:`last_logged`), so they agree; a
re-logged NaN replaces the earlier value too (and is then dropped, see NaN below).
Points without an x are all kept.

- ``last`` (default) / ``first``: the value at the largest / smallest x. Points with no
  x at all count as earlier than every point with one (ties among them: later ``time``,
  then read order).
- ``max``, ``min``, ``mean``, ``median`` of the values.
- ``at=N``: the value at x == N (``at=step:N`` / ``at=epoch:N`` pick the axis
  explicitly, without fallback); null when the run has no point there. x is matched
  with a relative tolerance of 1e-9, so fractional epochs work. A column that is null
  for *every* run (no run logged that x) is a :class:`SpecError` naming the x range
  that exists, not a column of blanks.
- ``at-max(REF)`` / ``at-min(REF)``: the value at the x where REF, another series of the
  same run, is highest / lowest; ties go to the earliest such x. REF must name one
  series (no ``*`` or glob, no ``@``). ``f1:lang=de@at-max(f1:lang=en)`` is German F1 at
  the epoch where English F1 peaks. Null when the run has no REF or no point at that x;
  null for every run is a :class:`SpecError`, as for ``at=N``.

NaN: NaN (and null) values are dropped from a series before it is reduced. So
``max``/``min``/``mean``/``median`` and the argmax of ``at-max`` ignore them, ``last`` and
``first`` are the last/first *non-NaN* values, and ``at=N`` is null if the value kept at N
is NaN. A series that holds only NaN reduces to null. ``+inf``/``-inf`` are ordinary
numbers. A run appears in the result as soon as it has any point (even NaN) in a column.

Column labels: ``f1``, ``f1[lang=de]``, ``f1[lang=de,split=eval]`` (keys sorted), with
``@REDUCE`` appended unless it is ``last``: ``f1[lang=de]@max``, ``f1@at=step:500``,
``f1[lang=de]@at-max(f1[lang=en])``.

``--where`` expressions
=======================

::

    EXPR     := OR
    OR       := AND ("or" AND)...
    AND      := NOT ("and" NOT)...
    NOT      := "not" NOT | "(" EXPR ")" | TEST
    TEST     := OPERAND OP OPERAND                  (at least one side a NAME)
              | NAME ["not"] "in" "(" VALUE ["," VALUE]... [","] ")"
              | NAME "is" ["not"] "null"
              | NAME                                 (a Boolean column)
    OP       := "==" | "=" | "!=" | "<" | "<=" | ">" | ">="
    OPERAND  := NAME | VALUE
    VALUE    := NUMBER | STRING | "true" | "false" | "null"

- Keywords (``and or not in is null true false``) are case-insensitive.
- NAME: letters, digits and ``_``, not starting with a digit, with single ``.`` or ``-``
  inside (``optimizer.lr``, ``warmup-steps``). Any other name, or a keyword used as a
  name, is written between backticks (see the examples below); it cannot contain one.
- NUMBER: ``3``, ``-2``, ``0.5``, ``.5``, ``1e-4``, ``-3.5E+2``. STRING: single or
  double quotes, with the escapes ``\\\\ \\' \\" \\n \\t``.
- Numbers compare with integer and float columns; strings with text columns (and with
  date/datetime columns, as ISO dates: ``created >= "2024-05-01"``); ``true``/``false``
  with Boolean columns (``==``/``!=`` only). Comparing a text column with a number, or
  the other way round, is an error. ``NAME == null`` is an error: write ``is null``.
- Nulls follow Polars: a comparison with a null operand is null, and the filter drops
  it, so ``lr > 1``, ``lr != 1``, ``not lr > 1`` and ``lr not in (1, 2)`` all drop runs
  without ``lr``; only ``lr is null`` keeps them. NaN in a float column counts as null.
- Limits: at most 4096 characters and 64 levels of nesting (parentheses and ``not``).
  Nothing else is accepted: calls, attributes, subscripts, arithmetic and the like fail
  at the offending column with "unexpected ...".

Examples::

    lr >= 1e-5 and seed in (1, 2, 3)
    optimizer.lr < 3e-5 or model == "xlm-r"
    not converged and status is not null
    `f1[lang=de]@max` > 0.7
    `f1:lang=en@max` > 0.7 and created >= "2024-05-01"

A name that is not a column but a metric spec (the last example) is left to the caller:
:func:`metric_names_in` lists such specs; the caller reduces them and adds each as a
column named ``spec.text`` before compiling.

Run pickers
===========

- a run id present in the runs table (an exact id always wins);
- ``best:SPEC`` (alias ``max:SPEC``): the run with the highest reduced value;
- ``worst:SPEC`` (alias ``min:SPEC``): the run with the lowest one.

SPEC must resolve to one column. Only runs of the given runs table are candidates, runs
with a null/NaN value are never picked, and ties go to the smallest run id.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import operator
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import polars as pl

from xpcli.errors import SpecError

__all__ = [
    "POINT_COLUMNS",
    "Column",
    "MetricSpec",
    "Picker",
    "Reduce",
    "SchemaLike",
    "Where",
    "compile_where",
    "context_keys",
    "expand",
    "last_logged",
    "metric_names_in",
    "parse_metric_spec",
    "parse_metric_specs",
    "parse_picker",
    "parse_where",
    "reduce_runs",
    "resolve_picker",
    "series_filter",
    "split_list",
]

#: Columns of the points frame that are not context keys.
POINT_COLUMNS = ("run", "name", "step", "epoch", "time", "value")

ReduceKind = Literal["last", "first", "max", "min", "mean", "median", "at", "at-max", "at-min"]
XAxis = Literal["epoch", "step", "time"]

_SIMPLE_REDUCES = ("last", "first", "max", "min", "mean", "median")
_REDUCE_HELP = (
    "expected one of last, first, max, min, mean, median, at=N, at-max(SPEC), at-min(SPEC)"
)
_SPEC_HELP = "NAME[:KEY=VALUE...][@REDUCE], e.g. f1:lang=de@max"
_MAX_SPEC_LENGTH = 1024
_MAX_WHERE_LENGTH = 4096
_MAX_WHERE_DEPTH = 64
_TOLERANCE = 1e-9

# Metric names and context keys: no blanks, no syntax characters, no glob characters.
_IDENT_RE = re.compile(r"[^\s:@,()\[\]=*?'\"`]+")
_VALUE_FORBIDDEN = set(":@,()[]=")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


# --------------------------------------------------------------------------------------
# Metric specs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reduce:
    """How a series becomes one number per run.

    ``kind`` is one of last, first, max, min, mean, median, at, at-max, at-min; ``at`` is
    N of ``at=N``; ``x`` the explicit axis of ``at=step:N``/``at=epoch:N`` (None: the
    caller's x); ``ref`` the reference spec of ``at-max``/``at-min``.
    """

    kind: ReduceKind = "last"
    at: float | None = None
    x: Literal["epoch", "step"] | None = None
    ref: MetricSpec | None = None

    def spec_text(self) -> str:
        """The canonical spec syntax (``@max``, ``@at=step:5``), empty for ``last``."""
        return self._render(lambda ref: ref.canonical_text())

    def label_suffix(self, ref_label: str | None = None) -> str:
        """The suffix of a column label: ``@max``, ``@at-max(f1[lang=en])``, or empty."""
        return self._render(lambda ref: ref_label or ref.label())

    def _render(self, ref_text: Callable[[MetricSpec], str]) -> str:
        if self.kind == "last":
            return ""
        if self.kind == "at":
            axis = f"{self.x}:" if self.x else ""
            return f"@at={axis}{_format_number(self.at)}"
        if self.kind in ("at-max", "at-min"):
            assert self.ref is not None
            return f"@{self.kind}({ref_text(self.ref)})"
        return f"@{self.kind}"


@dataclass(frozen=True)
class MetricSpec:
    """A parsed ``NAME[:KEY=VALUE...][@REDUCE]``.

    ``context`` keeps the keys in the order written; a value is exact, ``*``, a glob, or
    empty (no value for that key). ``text`` is the text it was parsed from (stripped).
    """

    name: str
    context: tuple[tuple[str, str], ...] = ()
    reduce: Reduce = Reduce()
    text: str = ""

    @property
    def is_single(self) -> bool:
        """True when no context value is ``*`` or a glob (the spec names one series)."""
        return not any(_is_pattern(value) for _, value in self.context)

    def canonical_text(self) -> str:
        """The spec in canonical syntax: ``f1:lang=de:split=eval@max`` (keys sorted)."""
        keys = "".join(f":{key}={value}" for key, value in sorted(self.context))
        return f"{self.name}{keys}{self.reduce.spec_text()}"

    def label(self) -> str:
        """The column label of a single-series spec: ``f1[lang=de]@max``."""
        return _label(self.name, tuple(sorted(self.context)), self.reduce.label_suffix())

    def __str__(self) -> str:
        return self.text or self.canonical_text()


@dataclass(frozen=True)
class Column:
    """One concrete column of a reduced table: a spec with every wildcard resolved.

    ``context`` holds the keys the spec constrains, sorted, with concrete values (``""``
    for "no value"); ``ref`` is the resolved reference of ``at-max``/``at-min``.
    """

    spec: MetricSpec
    context: tuple[tuple[str, str], ...]
    label: str
    ref: Column | None = None

    @property
    def name(self) -> str:
        """The metric name."""
        return self.spec.name

    @property
    def reduce(self) -> Reduce:
        """The spec's reduce."""
        return self.spec.reduce


def _is_pattern(value: str) -> bool:
    return "*" in value or "?" in value


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _format_number(value: float | None) -> str:
    if value is None:
        return ""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _label(name: str, context: tuple[tuple[str, str], ...], suffix: str) -> str:
    inner = ",".join(f"{key}={value}" for key, value in context)
    return f"{name}[{inner}]{suffix}" if context else f"{name}{suffix}"


def _fail(text: str, message: str) -> SpecError:
    return SpecError(f"{text}: {message}")


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _check_utf8(text: str, prefix: Callable[[str], str] = str) -> None:
    """Refuse a lone surrogate: what a byte that is not UTF-8 in argv becomes.

    Polars cannot take such text and a terminal cannot show it, so it stops here with a
    :class:`SpecError` at its column; the message shows U+FFFD in its place.
    """
    match = _SURROGATE_RE.search(text)
    if match is None:
        return
    code = ord(match.group())
    what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else \
        f"lone surrogate U+{code:04X}"
    shown = _SURROGATE_RE.sub("\ufffd", text)
    raise SpecError(f"{prefix(shown)}: {what} is not valid UTF-8 at column {match.start() + 1}"
                    " (pass UTF-8 text)")


def _scan_brackets(text: str) -> int:
    """Check that () and [] balance; return the index of the first top-level '@' or -1."""
    stack: list[tuple[str, int]] = []
    at = -1
    pairs = {")": "(", "]": "["}
    for i, char in enumerate(text):
        if char in "([":
            stack.append((char, i))
        elif char in ")]":
            if not stack or stack[-1][0] != pairs[char]:
                raise _fail(text, f"unexpected '{char}' at column {i + 1}")
            stack.pop()
        elif char == "@" and not stack and at < 0:
            at = i
    if stack:
        char, i = stack[-1]
        closer = ")" if char == "(" else "]"
        raise _fail(text, f"'{char}' at column {i + 1} is never closed (expected '{closer}')")
    return at


def _check_ident(text: str, ident: str, pos: int, what: str) -> None:
    if not ident:
        raise _fail(text, f"expected a {what} at column {pos + 1} ({_SPEC_HELP})")
    if _IDENT_RE.fullmatch(ident):
        return
    bad = next(i for i, char in enumerate(ident) if not _IDENT_RE.fullmatch(char))
    char = ident[bad]
    if char in "*?":
        hint = " (globs are allowed in context values only, e.g. f1:lang=d*)"
    else:
        hint = f" (expected a {what})"
    raise _fail(text, f"unexpected {char!r} in {what} at column {pos + bad + 1}{hint}")


def _parse_items(text: str, body: str, start: int, sep: str) -> tuple[tuple[str, str], ...]:
    """Parse ``KEY=VALUE`` items separated by ``sep``; ``start`` is body's offset in text."""
    items: list[tuple[str, str]] = []
    seen: set[str] = set()
    offset = 0
    for raw in body.split(sep):
        pos = start + offset
        offset += len(raw) + 1
        if "=" not in raw:
            shown = raw.strip()
            got = f", got {shown!r}" if shown else ""
            raise _fail(text, f"expected KEY=VALUE at column {pos + 1}{got}")
        key_raw, value_raw = raw.split("=", 1)
        key = key_raw.strip()
        key_pos = pos + len(key_raw) - len(key_raw.lstrip())
        _check_ident(text, key, key_pos, "context key")
        value = value_raw.strip()
        value_pos = pos + len(key_raw) + 1 + len(value_raw) - len(value_raw.lstrip())
        for i, char in enumerate(value):
            if char in _VALUE_FORBIDDEN:
                raise _fail(
                    text, f"unexpected {char!r} in the value of {key} at column {value_pos + i + 1}"
                )
        if key in seen:
            raise _fail(text, f"context key {key!r} given twice (at column {key_pos + 1})")
        seen.add(key)
        items.append((key, value))
    return tuple(items)


def _parse_body(text: str, body: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    cut = min((i for i in (body.find(":"), body.find("[")) if i >= 0), default=len(body))
    name_raw = body[:cut]
    name = name_raw.strip()
    _check_ident(text, name, len(name_raw) - len(name_raw.lstrip()), "metric name")
    rest = body[cut:]
    if not rest:
        return name, ()
    if rest[0] == ":":
        return name, _parse_items(text, rest[1:], cut + 1, ":")
    # Bracket form: NAME[k=v,k=v], nothing after the closing bracket.
    close = rest.find("]")
    if rest[close + 1 :].strip():
        pos = cut + close + 1 + len(rest[close + 1 :]) - len(rest[close + 1 :].lstrip())
        raise _fail(
            text,
            f"unexpected {rest[close + 1 :].strip()[0]!r} at column {pos + 1}"
            " (expected '@' or the end after ']')",
        )
    inner = rest[1:close]
    if not inner.strip():
        raise _fail(text, f"expected KEY=VALUE at column {cut + 2}")
    return name, _parse_items(text, inner, cut + 1, ",")


def _parse_number(text: str, raw: str, pos: int, what: str) -> float:
    value = raw.strip()
    if not _NUMBER_RE.fullmatch(value):
        raise _fail(text, f"expected a number at column {pos + 1} ({what})")
    number = float(value)
    if not math.isfinite(number):
        raise _fail(text, f"number out of range at column {pos + 1}")
    return number


def _parse_reduce(text: str, raw: str, start: int) -> Reduce:
    red = raw.strip()
    pos = start + len(raw) - len(raw.lstrip())
    low = red.lower()
    if not red:
        raise _fail(text, f"expected a reduce after '@' at column {start + 1} ({_REDUCE_HELP})")
    if low in _SIMPLE_REDUCES:
        return Reduce(low)  # type: ignore[arg-type]
    if low.startswith("at="):
        arg = red[3:]
        arg_pos = pos + 3
        axis: Literal["epoch", "step"] | None = None
        for prefix in ("step", "epoch"):
            if arg.lower().lstrip().startswith(prefix + ":"):
                axis = prefix
                cut = arg.index(":") + 1
                arg, arg_pos = arg[cut:], arg_pos + cut
                break
        number = _parse_number(text, arg, arg_pos, "e.g. at=10, at=step:500, at=epoch:2.5")
        return Reduce("at", at=number, x=axis)
    for kind in ("at-max", "at-min"):
        if low == kind or low.startswith(kind + "("):
            return _parse_ref_reduce(text, red, pos, kind)
    raise _fail(text, f"unknown reduce {red!r} ({_REDUCE_HELP})")


def _parse_ref_reduce(text: str, red: str, pos: int, kind: Literal["at-max", "at-min"]) -> Reduce:
    usage = f"expected {kind}(SPEC), e.g. {kind}(f1:lang=en)"
    if not red.startswith("(", len(kind)):
        raise _fail(text, f"{usage} at column {pos + len(kind) + 1}")
    depth = 0
    close = -1
    for i in range(len(kind), len(red)):
        if red[i] in "([":
            depth += 1
        elif red[i] in ")]":
            depth -= 1
            if depth == 0:
                close = i
                break
    if close < 0:  # _scan_brackets guarantees balance; kept for safety
        raise _fail(text, f"{usage} at column {pos + 1}")
    trailing = red[close + 1 :]
    if trailing.strip():
        raise _fail(
            text,
            f"unexpected {trailing.strip()!r} after {kind}(...) at column {pos + close + 2}",
        )
    inner = red[len(kind) + 1 : close]
    if not inner.strip():
        raise _fail(text, f"{usage} at column {pos + len(kind) + 2}")
    if "@" in inner:
        raise _fail(text, f"the reference spec in {kind}(...) takes no @REDUCE")
    try:
        ref = parse_metric_spec(inner)
    except SpecError as exc:
        raise _fail(text, f"in {kind}(...): {exc}") from None
    if not ref.is_single:
        raise _fail(
            text, f"the reference {ref.text} must name one series (no * or glob in {kind}(...))"
        )
    return Reduce(kind, ref=ref)


def parse_metric_spec(text: str) -> MetricSpec:
    """Parse one metric spec, ``NAME[:KEY=VALUE...][@REDUCE]`` (see the module docs).

    Raises :class:`SpecError` naming the column where the text broke.
    """
    spec = text.strip()
    if not spec:
        raise SpecError(f"empty metric spec (expected {_SPEC_HELP})")
    if len(spec) > _MAX_SPEC_LENGTH:
        raise SpecError(
            f"metric spec is {len(spec)} characters long; the limit is {_MAX_SPEC_LENGTH}"
        )
    _check_utf8(spec)
    at = _scan_brackets(spec)
    body = spec if at < 0 else spec[:at]
    name, context = _parse_body(spec, body)
    reduce = Reduce() if at < 0 else _parse_reduce(spec, spec[at + 1 :], at + 1)
    return MetricSpec(name=name, context=context, reduce=reduce, text=spec)


def _split_top(text: str) -> list[tuple[str, int]]:
    """Split at commas outside () and []; yield (piece, offset)."""
    pieces: list[tuple[str, int]] = []
    depth = 0
    start = 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            pieces.append((text[start:i], start))
            start = i + 1
    pieces.append((text[start:], start))
    return pieces


def split_list(texts: str | Iterable[str] | None) -> list[str]:
    """Split a comma-separated option value, or several (a repeated option), into items.

    Commas inside ``()``/``[]`` stay with their item, so ``f1:lang=de@at-max(f1[lang=en,
    split=dev]),lms_score`` is two items. Items are stripped; empty ones are dropped.
    Every comma-separated option (``--params``, ``--by``, ``--metrics`` words, ...) splits
    with this.
    """
    if texts is None:
        return []
    items: list[str] = []
    for text in [texts] if isinstance(texts, str) else texts:
        items += [piece.strip() for piece, _ in _split_top(text) if piece.strip()]
    return items


def parse_metric_specs(text: str | Iterable[str]) -> list[MetricSpec]:
    """Parse a comma-separated list of metric specs, or several such lists.

    Commas inside parentheses or brackets belong to the inner spec
    (``f1@at-max(f1[lang=en,split=dev]),lms`` is two specs). An empty item is an error.
    """
    texts = [text] if isinstance(text, str) else list(text)
    specs: list[MetricSpec] = []
    for whole in texts:
        if len(whole) > _MAX_WHERE_LENGTH:
            raise SpecError(
                f"metric list is {len(whole)} characters long; the limit is {_MAX_WHERE_LENGTH}"
            )
        _check_utf8(whole)
        for piece, offset in _split_top(whole):
            if not piece.strip():
                raise SpecError(
                    f"{whole}: empty metric spec at column {offset + 1} (expected {_SPEC_HELP})"
                )
            specs.append(parse_metric_spec(piece))
    return specs


# --------------------------------------------------------------------------------------
# Expansion against the points present
# --------------------------------------------------------------------------------------


def context_keys(points: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """The context key columns of a points frame: every column not in POINT_COLUMNS."""
    return [c for c in points.lazy().collect_schema().names() if c not in POINT_COLUMNS]


def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def _matches(value: str | None, pattern: str) -> bool:
    if pattern == "":
        return value is None
    if value is None:
        return False
    if pattern == "*":
        return True
    if _is_pattern(pattern):
        return _glob_regex(pattern).fullmatch(value) is not None
    return value == pattern


def _shown(values: Iterable[str | None], limit: int = 12) -> str:
    items = sorted({"(none)" if v is None else v for v in values})
    more = f", ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _closest(word: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Combos:
    """The distinct (name, context) combinations of a points frame, as Python rows."""

    def __init__(self, points: pl.DataFrame | pl.LazyFrame) -> None:
        self.keys = context_keys(points)
        frame = (
            points.lazy()
            .select(
                pl.col("name").cast(pl.String),
                *[
                    pl.when(pl.col(k).cast(pl.String) == "")
                    .then(None)
                    .otherwise(pl.col(k).cast(pl.String))
                    .alias(k)
                    for k in self.keys
                ],
            )
            .unique()
            .collect()
        )
        self.by_name: dict[str, list[dict[str, str | None]]] = {}
        for row in frame.iter_rows(named=True):
            self.by_name.setdefault(row["name"], []).append(row)


def _resolve(spec: MetricSpec, combos: _Combos) -> list[tuple[tuple[str, str], ...]]:
    """The concrete contexts (sorted keys) of the columns a spec names, sorted."""
    rows = combos.by_name.get(spec.name)
    if not rows:
        names = sorted(n for n in combos.by_name if n is not None)
        if not names:
            raise _fail(spec.text, "no metric points to select from")
        raise _fail(
            spec.text,
            f"unknown metric {spec.name!r}{_closest(spec.name, names)} (metrics: {_shown(names)})",
        )
    metric_keys = [k for k in combos.keys if any(r[k] is not None for r in rows)]
    for key, pattern in spec.context:
        if key not in combos.keys or (key not in metric_keys and pattern != ""):
            shown = ", ".join(metric_keys) if metric_keys else "none"
            raise _fail(
                spec.text,
                f"metric {spec.name!r} has no context key {key!r}"
                f"{_closest(key, metric_keys)} (its keys: {shown})",
            )
        kept = [r for r in rows if _matches(r[key], pattern)]
        if not kept:
            values = [r[key] for r in rows]
            wanted = "no value" if pattern == "" else f"{key}={pattern}"
            raise _fail(
                spec.text,
                f"no point of {spec.name!r} has {wanted}"
                f"{_closest(pattern, [v for v in values if v])} ({key} values: {_shown(values)})",
            )
        rows = kept
    given = [k for k, _ in spec.context]
    wild = [k for k, v in spec.context if v == "*" or _is_pattern(v)]
    groups: dict[tuple[str | None, ...], list[dict[str, str | None]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in wild), []).append(row)
    contexts: list[tuple[tuple[str, str], ...]] = []
    for combo in sorted(groups, key=lambda vs: tuple(v or "" for v in vs)):
        group = groups[combo]
        for key in combos.keys:
            if key in given:
                continue
            seen = {r[key] for r in group}
            if len(seen) > 1:
                raise _mixing_error(spec, key, seen)
        concrete = dict(spec.context)
        concrete.update({k: v or "" for k, v in zip(wild, combo, strict=True)})
        contexts.append(tuple(sorted(concrete.items())))
    return contexts


def _mixing_error(spec: MetricSpec, key: str, seen: set[str | None]) -> SpecError:
    def with_key(value: str) -> str:
        return MetricSpec(spec.name, (*spec.context, (key, value)), spec.reduce).canonical_text()

    some = sorted(v for v in seen if v is not None)
    hints = [with_key("*")] + ([with_key(some[0])] if some else [])
    if None in seen:
        hints.append(with_key(""))
    return _fail(
        spec.text,
        f"metric {spec.name!r} is logged with several {key} values ({_shown(seen)}); "
        f"name one column per value with {hints[0]} or pick one, e.g. " + " or ".join(hints[1:]),
    )


def expand(specs: Iterable[MetricSpec], points: pl.DataFrame | pl.LazyFrame) -> list[Column]:
    """Resolve specs against the points present: one :class:`Column` per concrete series.

    ``*`` and globs expand to one column per matching value, in sorted order; columns
    with the same label are kept once. A spec that matches nothing, or that would mix
    several contexts in one column, raises :class:`SpecError` saying which metrics, keys
    or values exist.
    """
    combos = _Combos(points)
    columns: list[Column] = []
    labels: set[str] = set()
    for spec in specs:
        ref: Column | None = None
        if spec.reduce.ref is not None:
            ref_spec = spec.reduce.ref
            try:
                (ref_context,) = _resolve(ref_spec, combos)
            except SpecError as exc:
                raise _fail(spec.text, f"in {spec.reduce.kind}(...): {exc}") from None
            ref = Column(ref_spec, ref_context, _label(ref_spec.name, ref_context, ""))
        for context in _resolve(spec, combos):
            suffix = spec.reduce.label_suffix(ref.label if ref else None)
            label = _label(spec.name, context, suffix)
            if label == "run":
                raise _fail(
                    spec.text, "a column cannot be labelled 'run'; add a context or @REDUCE"
                )
            if label not in labels:
                labels.add(label)
                columns.append(Column(spec, context, label, ref))
    return columns


def series_filter(column: Column) -> pl.Expr:
    """The filter selecting a column's points: its name, and each key it names equal.

    Keys the column does not name are unconstrained; an empty value means "no value".
    """
    expr = pl.col("name") == column.spec.name
    for key, value in column.context:
        if value == "":
            expr = expr & (pl.col(key).is_null() | (pl.col(key).cast(pl.String) == ""))
        else:
            expr = expr & (pl.col(key) == value)
    return expr


def _close_to(x: pl.Expr, target: pl.Expr | float) -> pl.Expr:
    scale = (
        max(1.0, abs(target))
        if isinstance(target, float)
        else pl.max_horizontal(pl.lit(1.0), target.abs())
    )
    return (x - target).abs() <= _TOLERANCE * scale


def _check_x(x: str) -> None:
    if x not in ("epoch", "step", "time"):
        raise SpecError(f"unknown x axis {x!r} (expected epoch, step or time)")


def last_logged(
    points: pl.DataFrame, by: Sequence[str] = ("run",), x: str = "epoch"
) -> pl.DataFrame:
    """One point per ``by`` + ``x`` value: the last logged one (see "One value per x").

    ``by`` names a series (``run`` of a frame holding one column's points, or ``run``,
    ``context``); the last logged point has the latest ``time`` (null counts as
    earliest; without a ``time`` column only the order counts), then the latest row:
    the frame's row order is the read order. Points whose ``x`` is null are all kept.
    The kept rows keep their order.

    Vectorised: a pass over neighbouring rows finds the series that may repeat an x
    (x not strictly increasing in read order, or the series' rows not contiguous); only
    those are sorted, so the usual frame without repeats costs one cheap pass.
    """
    by = list(by)
    same = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(1)) for k in by])
    same = same & pl.int_range(pl.len()).gt(0)
    rising = (pl.col(x) > pl.col(x).shift(1)).fill_null(False)
    lazy = points.lazy()
    starts = lazy.filter(~same).group_by(by).len().filter(pl.col("len") > 1).select(by)
    suspects = pl.concat([lazy.filter(same & ~rising).select(by), starts]).unique().collect()
    if suspects.is_empty():
        return points
    read = "__last_logged_row"
    indexed = points.with_row_index(read)
    check = indexed.join(suspects, on=by, how="semi", nulls_equal=True)
    times = ["time"] if "time" in points.columns else []
    check = check.sort([*by, x, *times, read], nulls_last=False)
    later = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(-1)) for k in [*by, x]])
    kept = check.filter(~(later & pl.col(x).is_not_null()).fill_null(False))
    clean = indexed.join(suspects, on=by, how="anti", nulls_equal=True)
    return pl.concat([clean, kept]).sort(read).drop(read)


def reduce_runs(
    points: pl.DataFrame | pl.LazyFrame,
    columns: Sequence[Column],
    x: XAxis = "epoch",
) -> pl.DataFrame:
    """Reduce every column to one number per run: ``run`` + one Float64 column per label.

    One row per run that has any point (even NaN) in any column, sorted by run; a run
    without a value for a column gets null there. ``x`` orders the points and places
    ``at=N``/``at-max``/``at-min``: with ``x="epoch"`` a series (run, column) that has no
    epoch at all uses its step instead. The work is grouped Polars aggregations, one per
    distinct series, never a loop over runs. See the module docs for each reduce and NaN.
    """
    _check_x(x)
    unique: dict[str, Column] = {}
    for column in columns:
        unique.setdefault(column.label, column)
    if not unique:
        return pl.DataFrame(schema={"run": pl.String})

    def key(column: Column) -> tuple[str, tuple[tuple[str, str], ...]]:
        return column.spec.name, column.context

    filters: dict[tuple[str, tuple[tuple[str, str], ...]], pl.Expr] = {}
    for column in unique.values():
        for c in (column, column.ref):
            if c is not None:
                filters.setdefault(key(c), series_filter(c))
    used_keys = sorted({k for _, context in filters for k, _ in context})
    # Select the needed points once, so a lazy scan is read once for all columns.
    base = (
        points.lazy()
        .filter(pl.any_horizontal(list(filters.values())))
        .select(
            "run",
            "name",
            *used_keys,
            pl.col("step").cast(pl.Float64).alias("_step"),
            pl.col("epoch").cast(pl.Float64).alias("_epoch"),
            pl.col("time").cast(pl.Float64),
            pl.col("value").cast(pl.Float64),
        )
        .with_row_index("_row")
        .collect()
        .lazy()
    )
    default_x = {
        "epoch": pl.when(pl.col("_epoch").is_not_null().any().over("run"))
        .then(pl.col("_epoch"))
        .otherwise(pl.col("_step")),
        "step": pl.col("_step"),
        "time": pl.col("time"),
    }[x]

    kept: dict[tuple[str, tuple[tuple[str, str], ...]], pl.DataFrame] = {}

    def logged(series: tuple[str, tuple[tuple[str, str], ...]]) -> pl.DataFrame:
        # One value per (run, x) of the series, the last logged, before anything else.
        if series not in kept:
            frame = (
                base.filter(filters[series])
                .select("run", "_step", "_epoch", "time", "value", "_row")
                .collect()
            )
            x_expr = default_x
            if x == "epoch":  # the per-run fallback costs a window; skip it when moot
                missing = frame.get_column("_epoch").null_count()
                if missing in (0, frame.height):
                    x_expr = pl.col("_epoch" if missing == 0 else "_step")
            frame = frame.with_columns(x_expr.alias("_x"))
            kept[series] = last_logged(frame, ("run",), "_x")
        return kept[series]

    def valid(series: tuple[str, tuple[tuple[str, str], ...]]) -> pl.LazyFrame:
        return logged(series).lazy().filter(
            pl.col("value").is_not_null() & pl.col("value").is_not_nan()
        )

    order = ["_x", "time", "_row"]
    targets = list(dict.fromkeys(key(c) for c in unique.values()))
    result = pl.concat([base.filter(filters[s]).select("run") for s in targets]).unique()
    for series in targets:
        points_ok = valid(series)
        aggs: list[pl.Expr] = []
        for column in (c for c in unique.values() if key(c) == series):
            red = column.spec.reduce
            value = pl.col("value")
            if red.kind == "last":
                aggs.append(value.sort_by(order).last().alias(column.label))
            elif red.kind == "first":
                aggs.append(value.sort_by(order).first().alias(column.label))
            elif red.kind in ("max", "min", "mean", "median"):
                aggs.append(getattr(value, red.kind)().alias(column.label))
            elif red.kind == "at":
                axis = pl.col({"step": "_step", "epoch": "_epoch", None: "_x"}[red.x])
                assert red.at is not None
                hit = _close_to(axis, red.at)
                aggs.append(
                    value.filter(hit)
                    .sort_by(pl.col("time").filter(hit), pl.col("_row").filter(hit))
                    .last()
                    .alias(column.label)
                )
            else:
                assert column.ref is not None
                ref_points = valid(key(column.ref))
                best = pl.col("value").max() if red.kind == "at-max" else pl.col("value").min()
                at_x = ref_points.group_by("run").agg(
                    pl.col("_x").filter(pl.col("value") == best).min().alias("_at")
                )
                picked = (
                    points_ok.join(at_x, on="run", how="inner")
                    .filter(_close_to(pl.col("_x"), pl.col("_at")))
                    .group_by("run")
                    .agg(pl.col("value").sort_by("time", "_row").last().alias(column.label))
                )
                result = result.join(picked, on="run", how="left")
        if aggs:
            result = result.join(points_ok.group_by("run").agg(aggs), on="run", how="left")
    table = (
        result.select("run", *[pl.col(label).cast(pl.Float64) for label in unique])
        .sort("run")
        .collect()
    )
    for column in unique.values():
        if column.reduce.kind in ("at", "at-max", "at-min") and table.height and \
                table[column.label].null_count() == table.height:
            raise _nowhere(column, logged(key(column)), x)
    return table


def _nowhere(column: Column, points: pl.DataFrame, x: XAxis) -> SpecError:
    """The error for an at=/at-max/at-min column that is null for every run."""
    red = column.reduce
    text = str(column.spec)
    if red.kind != "at":
        assert column.ref is not None
        where = "highest" if red.kind == "at-max" else "lowest"
        return _fail(text, f"no run has a value of {column.label.split('@')[0]} at the "
                           f"{x} where {column.ref.label} is {where}")
    axis = red.x or x
    xs = points.get_column({"step": "_step", "epoch": "_epoch"}.get(axis, "_x"))
    xs = xs.filter(xs.is_not_null() & xs.is_not_nan() & points["value"].is_not_nan()
                   & points["value"].is_not_null())
    label = column.label.split("@")[0]
    lo, hi = xs.cast(pl.Float64).min(), xs.cast(pl.Float64).max()
    have = (f"{label} has {axis}s {_format_number(_as_float(lo))}..{_format_number(_as_float(hi))}"
            if xs.len() else f"{label} has no value with a{'n' if axis == 'epoch' else ''} {axis}")
    return _fail(text, f"no run has a value at {axis} {_format_number(red.at)} ({have})")


# --------------------------------------------------------------------------------------
# --where
# --------------------------------------------------------------------------------------

_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false"})
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
_WHERE_TOKEN_RE = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>(?:[^\W\d]|_)\w*(?:[.\-]\w+)*)"
    r"|(?P<op>==|!=|<=|>=|<|>|=)"
    r"|(?P<punct>[(),])"
)
_OPS: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

LiteralValue: TypeAlias = "int | float | str | bool | None"
#: A schema as Polars gives it (``frame.schema``) or written by hand (``{"lr": pl.Float64}``).
SchemaLike: TypeAlias = "Mapping[str, pl.DataType | type[pl.DataType]]"


@dataclass(frozen=True)
class _Token:
    kind: str  # name, kw, num, str, op, "(", ")", ",", eof
    value: str | int | float
    pos: int
    text: str


@dataclass(frozen=True)
class Name:
    """A column reference."""

    name: str
    pos: int


@dataclass(frozen=True)
class Value:
    """A literal: number, string, true/false or null."""

    value: int | float | str | bool | None
    pos: int


@dataclass(frozen=True)
class Compare:
    """``left OP right``; at least one side is a :class:`Name`."""

    op: str
    left: Name | Value
    right: Name | Value
    pos: int


@dataclass(frozen=True)
class InList:
    """``name [not] in (v1, v2, ...)``."""

    name: Name
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True)
class IsNull:
    """``name is [not] null``."""

    name: Name
    negated: bool


@dataclass(frozen=True)
class Truth:
    """A bare Boolean column used as a condition."""

    name: Name


@dataclass(frozen=True)
class Not:
    """``not operand``."""

    operand: Node


@dataclass(frozen=True)
class BoolOp:
    """``a and b and ...`` or ``a or b or ...``."""

    op: Literal["and", "or"]
    operands: tuple[Node, ...]


Node: TypeAlias = "Compare | InList | IsNull | Truth | Not | BoolOp"


def _where_prefix(text: str, option: str = "--where") -> str:
    shown = text if len(text) <= 100 else text[:97] + "..."
    return f'{option} "{shown}"'


def _where_error(
    text: str, message: str, pos: int, hint: str = "", option: str = "--where"
) -> SpecError:
    return SpecError(f"{_where_prefix(text, option)}: {message} at column {pos + 1}{hint}")


def _describe(token: _Token) -> str:
    return "the end of the expression" if token.kind == "eof" else repr(token.text)


def _tokenize(text: str, option: str = "--where") -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(text)

    def fail(message: str, pos: int, hint: str = "") -> SpecError:
        return _where_error(text, message, pos, hint, option)

    while i < n:
        char = text[i]
        if char in "'\"":
            out: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise fail(f"string opened with {char} is never closed", i)
                c = text[j]
                if c == char:
                    break
                if c == "\\":
                    if j + 1 >= n:
                        raise fail(f"string opened with {char} is never closed", i)
                    esc = text[j + 1]
                    if esc not in _ESCAPES:
                        raise fail(f"unknown escape '\\{esc}'", j, " (use \\\\ \\' \\\" \\n \\t)")
                    out.append(_ESCAPES[esc])
                    j += 2
                    continue
                out.append(c)
                j += 1
            tokens.append(_Token("str", "".join(out), i, text[i : j + 1]))
            i = j + 1
            continue
        if char == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise fail("name opened with ` is never closed", i)
            if j == i + 1:
                raise fail("empty name in backticks", i)
            tokens.append(_Token("name", text[i + 1 : j], i, text[i : j + 1]))
            i = j + 1
            continue
        match = _WHERE_TOKEN_RE.match(text, i)
        if match is None:
            raise fail(f"unexpected character {char!r}", i)
        kind = match.lastgroup
        raw = match.group()
        end = match.end()
        if kind == "num":
            if end < n and (text[end].isalnum() or text[end] in "._"):
                raise fail(f"unexpected {text[i : end + 1]!r}", i, " (malformed number)")
            number: int | float
            if re.fullmatch(r"[+-]?\d+", raw):
                number = int(raw)
                if abs(number) >= 2**63:
                    number = float(raw)  # inf for huge ints (refused below), no OverflowError
            else:
                number = float(raw)
            if isinstance(number, float) and not math.isfinite(number):
                raise fail(f"number {raw} out of range", i)
            tokens.append(_Token("num", number, i, raw))
        elif kind == "name":
            if raw.lower() in _KEYWORDS:
                tokens.append(_Token("kw", raw.lower(), i, raw))
            else:
                tokens.append(_Token("name", raw, i, raw))
        elif kind == "op":
            tokens.append(_Token("op", "==" if raw == "=" else raw, i, raw))
        elif kind == "punct":
            tokens.append(_Token(raw, raw, i, raw))
        i = end
    tokens.append(_Token("eof", "", n, ""))
    return tokens


class _Parser:
    def __init__(self, text: str, option: str = "--where") -> None:
        self.text = text
        self.option = option
        self.tokens = _tokenize(text, option)
        self.i = 0
        self.names: list[str] = []

    def fail(self, message: str, pos: int, hint: str = "") -> SpecError:
        return _where_error(self.text, message, pos, hint, self.option)

    def expected(self, what: str) -> SpecError:
        token = self.peek()
        if token.kind == "eof":
            return self.fail(f"expected {what}", token.pos)
        return self.fail(f"unexpected {_describe(token)}", token.pos, f" (expected {what})")

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at_kw(self, word: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "kw" and token.value == word

    def deeper(self, depth: int, token: _Token) -> int:
        if depth + 1 > _MAX_WHERE_DEPTH:
            raise self.fail(f"nesting deeper than {_MAX_WHERE_DEPTH} levels", token.pos)
        return depth + 1

    def parse(self) -> Node:
        node = self.or_(0)
        if self.peek().kind != "eof":
            raise self.expected("'and', 'or' or the end of the expression")
        return node

    def or_(self, depth: int) -> Node:
        operands = [self.and_(depth)]
        while self.at_kw("or"):
            self.advance()
            operands.append(self.and_(depth))
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def and_(self, depth: int) -> Node:
        operands = [self.not_(depth)]
        while self.at_kw("and"):
            self.advance()
            operands.append(self.not_(depth))
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def not_(self, depth: int) -> Node:
        token = self.peek()
        if self.at_kw("not"):
            self.advance()
            return Not(self.not_(self.deeper(depth, token)))
        if token.kind == "(":
            self.advance()
            node = self.or_(self.deeper(depth, token))
            if self.peek().kind != ")":
                raise self.expected("')'")
            self.advance()
            return node
        return self.test()

    def operand(self, what: str) -> Name | Value:
        token = self.peek()
        if token.kind == "name":
            self.advance()
            assert isinstance(token.value, str)
            self.names.append(token.value)
            return Name(token.value, token.pos)
        if token.kind in ("num", "str"):
            self.advance()
            return Value(token.value, token.pos)
        if token.kind == "kw" and token.value in ("true", "false", "null"):
            self.advance()
            literal = {"true": True, "false": False, "null": None}[str(token.value)]
            return Value(literal, token.pos)
        raise self.expected(what)

    def test(self) -> Node:
        left = self.operand("a name, a value, 'not' or '('")
        token = self.peek()
        if isinstance(left, Name):
            if self.at_kw("is"):
                self.advance()
                negated = self.at_kw("not")
                if negated:
                    self.advance()
                if not self.at_kw("null"):
                    raise self.expected("'null'" if negated else "'null' or 'not null'")
                self.advance()
                return IsNull(left, negated)
            if self.at_kw("in"):
                self.advance()
                return InList(left, self.values(), False)
            if self.at_kw("not") and self.at_kw("in", 1):
                self.advance()
                self.advance()
                return InList(left, self.values(), True)
        if token.kind == "op":
            self.advance()
            right = self.operand("a value")
            if isinstance(left, Value) and isinstance(right, Value):
                raise self.fail("a comparison needs a name on one side", left.pos)
            assert isinstance(token.value, str)
            return Compare(token.value, left, right, token.pos)
        if isinstance(left, Name):
            return Truth(left)
        raise self.expected("a comparison operator")

    def values(self) -> tuple[Value, ...]:
        if self.peek().kind != "(":
            raise self.expected("'(' and a list of values")
        self.advance()
        values: list[Value] = []
        while True:
            item = self.operand("a value")
            if isinstance(item, Name):
                raise self.fail(f"unexpected {item.name!r}", item.pos, " (expected a value)")
            if item.value is None:
                raise self.fail("null in a list never matches", item.pos, "; use 'is null'")
            values.append(item)
            if self.peek().kind == ",":
                self.advance()
                if self.peek().kind == ")":
                    break
                continue
            if self.peek().kind != ")":
                raise self.expected("',' or ')'")
            break
        self.advance()
        return tuple(values)


def _instance(dtype: pl.DataType | type[pl.DataType]) -> pl.DataType:
    if isinstance(dtype, pl.DataType):
        return dtype
    try:
        return dtype()
    except TypeError:  # a class that needs arguments (List, Struct): compare never works
        return pl.Object()


def _category(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "boolean"
    if dtype == pl.Null:
        return "null"
    if dtype.is_numeric():
        return "number"
    if dtype.base_type() in (pl.String, pl.Categorical, pl.Enum):
        return "text"
    if dtype.base_type() in (pl.Date, pl.Datetime):
        return "date"
    return "other"


def _value_category(value: LiteralValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "text"


def _show_value(value: LiteralValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "the string " + repr(value)
    return f"the number {value}"


@dataclass(frozen=True)
class Where:
    """A parsed ``--where`` expression: the AST ``root`` and the source ``text``.

    ``option`` is the command-line option the text came from (``--where``, ``--fail-if``);
    every error message names it.
    """

    text: str
    root: Node
    referenced: tuple[str, ...]
    option: str = "--where"

    def names(self) -> tuple[str, ...]:
        """The names the expression references, in order of first appearance."""
        return self.referenced

    def to_expr(self, schema: SchemaLike) -> pl.Expr:
        """Compile to a Polars boolean expression over columns described by ``schema``.

        Raises :class:`SpecError` for unknown names (with the closest match) and for
        comparisons whose types cannot match (a text column against a number, ...).
        """
        return _Compiler(self.text, schema, self.option).node(self.root)


class _Compiler:
    def __init__(self, text: str, schema: SchemaLike, option: str = "--where") -> None:
        self.text = text
        self.option = option
        self.schema = {name: _instance(dtype) for name, dtype in schema.items()}

    def fail(self, message: str, pos: int, hint: str = "") -> SpecError:
        return _where_error(self.text, message, pos, hint, self.option)

    def node(self, node: Node) -> pl.Expr:
        if isinstance(node, BoolOp):
            return self.balanced(node.op, [self.node(n) for n in node.operands])
        if isinstance(node, Not):
            return ~self.node(node.operand)
        if isinstance(node, IsNull):
            col = self.column(node.name)
            return col.is_not_null() if node.negated else col.is_null()
        if isinstance(node, Truth):
            if self.dtype(node.name) not in (pl.Boolean, pl.Null):
                raise self.fail(
                    f"{node.name.name} is a {self.dtype(node.name)} column, not a condition",
                    node.name.pos,
                    f"; compare it, e.g. {node.name.name} > 0",
                )
            return self.column(node.name).cast(pl.Boolean)
        if isinstance(node, InList):
            return self.in_list(node)
        return self.compare(node)

    @staticmethod
    def balanced(op: str, exprs: list[pl.Expr]) -> pl.Expr:
        # A balanced tree keeps long and/or chains shallow for Polars.
        if len(exprs) == 1:
            return exprs[0]
        mid = len(exprs) // 2
        left = _Compiler.balanced(op, exprs[:mid])
        right = _Compiler.balanced(op, exprs[mid:])
        return left & right if op == "and" else left | right

    def dtype(self, name: Name) -> pl.DataType:
        if name.name not in self.schema:
            known = sorted(self.schema)
            more = f", ... and {len(known) - 20} more" if len(known) > 20 else ""
            shown = ", ".join(known[:20]) + more
            raise self.fail(
                f"unknown name {name.name!r}",
                name.pos,
                f"{_closest(name.name, known)} (known: {shown or 'none'})",
            )
        return self.schema[name.name]

    def column(self, name: Name) -> pl.Expr:
        dtype = self.dtype(name)
        col = pl.col(name.name)
        if dtype.is_float():
            return col.fill_nan(None)
        if _category(dtype) == "text":
            return col.cast(pl.String)
        return col

    def mismatch(self, name: Name, value: LiteralValue, pos: int) -> SpecError:
        dtype = self.dtype(name)
        category = _category(dtype)
        shown = _show_value(value)
        if category == "text" and isinstance(value, (int, float)) and not isinstance(value, bool):
            hint = f"; quote it ('{value}') to compare text"
        elif category == "number" and isinstance(value, str):
            hint = "; drop the quotes to compare numbers"
        elif category == "boolean":
            hint = "; compare it with true or false"
        else:
            hint = ""
        return self.fail(f"{name.name} is a {dtype} column but is compared with {shown}", pos, hint)

    def literal(self, name: Name, value: Value, op: str) -> pl.Expr:
        dtype = self.dtype(name)
        category = _category(dtype)
        if value.value is None:
            raise self.fail(
                "comparing with null is never true", value.pos, f"; use '{name.name} is null'"
            )
        kind = _value_category(value.value)
        if category == "other":
            raise self.fail(
                f"{name.name} is a {dtype} column, which {self.option} cannot compare", name.pos
            )
        if category == "null":
            return pl.lit(value.value)
        if category == "date" and kind == "text":
            return self.date_literal(dtype, value)
        if category != kind:
            raise self.mismatch(name, value.value, value.pos)
        if kind == "boolean" and op not in ("==", "!="):
            raise self.fail(
                f"{name.name} is Boolean; only == and != work", value.pos, " (with true/false)"
            )
        return pl.lit(value.value)

    def date_literal(self, dtype: pl.DataType, value: Value) -> pl.Expr:
        assert isinstance(value.value, str)
        try:
            if dtype == pl.Date:
                return pl.lit(dt.date.fromisoformat(value.value))
            moment = dt.datetime.fromisoformat(value.value)
        except ValueError:
            raise self.fail(
                f"expected an ISO date, got {value.value!r}",
                value.pos,
                " (e.g. '2024-05-01' or '2024-05-01T12:00')",
            ) from None
        zone = getattr(dtype, "time_zone", None)
        if zone:
            if moment.tzinfo is None:
                return pl.lit(moment).dt.replace_time_zone(zone)
            return pl.lit(moment.astimezone(dt.UTC)).dt.convert_time_zone(zone)
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        return pl.lit(moment)

    def compare(self, node: Compare) -> pl.Expr:
        left, right, op = node.left, node.right, node.op
        if isinstance(left, Value):  # "0.1 < lr" is "lr > 0.1"
            assert isinstance(right, Name)
            left, right, op = right, left, _FLIP[op]
        assert isinstance(left, Name)
        if isinstance(right, Name):
            a, b = _category(self.dtype(left)), _category(self.dtype(right))
            if "null" not in (a, b) and (a != b or a == "other"):
                raise self.fail(
                    f"cannot compare {left.name} ({self.dtype(left)}) with "
                    f"{right.name} ({self.dtype(right)})",
                    node.pos,
                )
            return _OPS[op](self.column(left), self.column(right))
        return _OPS[op](self.column(left), self.literal(left, right, op))

    def in_list(self, node: InList) -> pl.Expr:
        dtype = self.dtype(node.name)
        category = _category(dtype)
        values = [v.value for v in node.values]
        for value in node.values:
            kind = _value_category(value.value)
            if category not in ("null", "date") and kind != category:
                raise self.mismatch(node.name, value.value, value.pos)
            if category == "date" or category == "other":
                raise self.fail(f"'in' does not work on {dtype} columns", node.name.pos)
        col = self.column(node.name)
        if category == "number":
            if dtype.is_integer() and all(isinstance(v, int) for v in values):
                expr = col.cast(pl.Int64).is_in(pl.lit(pl.Series(values, dtype=pl.Int64)).implode())
            else:
                floats = [float(v) for v in values]  # type: ignore[arg-type]
                expr = col.cast(pl.Float64).is_in(
                    pl.lit(pl.Series(floats, dtype=pl.Float64)).implode()
                )
        elif category == "text":
            expr = col.is_in(pl.lit(pl.Series(values, dtype=pl.String)).implode())
        elif category == "boolean":
            expr = col.is_in(pl.lit(pl.Series(values, dtype=pl.Boolean)).implode())
        else:  # an all-null column: nothing is in any list
            expr = col.is_not_null()
        return ~expr if node.negated else expr


def parse_where(text: str, option: str = "--where") -> Where:
    """Parse a ``--where`` expression (grammar in the module docs) into a :class:`Where`.

    Raises :class:`SpecError` at the first offending column; never evaluates anything.
    ``option`` names the option the text came from in every error message (``--fail-if``
    takes the same grammar).
    """
    if len(text) > _MAX_WHERE_LENGTH:
        raise SpecError(
            f"{option} is {len(text)} characters long; the limit is {_MAX_WHERE_LENGTH}"
        )
    if not text.strip():
        raise SpecError(
            f'{option} "": expected an expression, e.g. "lr >= 1e-5 and seed in (1, 2)"'
        )
    _check_utf8(text, lambda shown: _where_prefix(shown, option))
    parser = _Parser(text, option)
    root = parser.parse()
    return Where(text=text, root=root, referenced=tuple(dict.fromkeys(parser.names)),
                 option=option)


def compile_where(text: str, schema: SchemaLike, option: str = "--where") -> pl.Expr:
    """Parse ``text`` and compile it against ``schema``: ``parse_where(text).to_expr(schema)``.

    ``option`` is the option named in error messages, as in :func:`parse_where`.
    """
    return parse_where(text, option).to_expr(schema)


def metric_names_in(
    where: Where, known: Collection[str], metrics: Collection[str] | None = None
) -> list[MetricSpec]:
    """The names in ``where`` that are not ``known`` columns but parse as metric specs.

    The caller reduces each (``expand`` + ``reduce_runs``) and adds it as a column named
    ``spec.text`` before compiling. With ``metrics`` (the metric names that exist), only
    specs of those metrics are returned, so a typo of a param stays an "unknown name"
    error. A spec with ``*`` or a glob raises :class:`SpecError`: a condition needs one
    column.
    """
    specs: list[MetricSpec] = []
    for name in where.names():
        if name in known:
            continue
        try:
            spec = parse_metric_spec(name)
        except SpecError:
            continue
        if metrics is not None and spec.name not in metrics:
            continue
        if not spec.is_single:
            raise SpecError(
                f"{_where_prefix(where.text, where.option)}: {name} names several columns; "
                f"name one value (no * or glob) in {where.option}"
            )
        specs.append(spec)
    return specs


# --------------------------------------------------------------------------------------
# Run pickers
# --------------------------------------------------------------------------------------

_PICKER_PREFIXES: dict[str, Literal["best", "worst"]] = {
    "best": "best",
    "max": "best",
    "worst": "worst",
    "min": "worst",
}


@dataclass(frozen=True)
class Picker:
    """A parsed run picker: a run id (``kind="run"``) or ``best``/``worst`` with a spec."""

    kind: Literal["run", "best", "worst"]
    text: str
    run: str | None = None
    spec: MetricSpec | None = None


def parse_picker(text: str) -> Picker:
    """Parse ``RUN_ID``, ``best:SPEC``/``max:SPEC`` or ``worst:SPEC``/``min:SPEC``."""
    picker = text.strip()
    if not picker:
        raise SpecError("empty run picker (expected a run id, best:SPEC or worst:SPEC)")
    _check_utf8(picker)
    prefix, sep, rest = picker.partition(":")
    kind = _PICKER_PREFIXES.get(prefix.strip().lower()) if sep else None
    if kind is None:
        return Picker("run", picker, run=picker)
    if not rest.strip():
        raise SpecError(
            f"{picker}: expected a metric spec after '{prefix}:', e.g. {prefix}:f1:lang=en"
        )
    try:
        spec = parse_metric_spec(rest)
    except SpecError as exc:
        raise SpecError(f"{picker}: {exc}") from None
    return Picker(kind, picker, spec=spec)


def resolve_picker(
    text: str,
    runs: pl.DataFrame | pl.LazyFrame,
    points: pl.DataFrame | pl.LazyFrame,
    x: XAxis = "epoch",
) -> str:
    """Resolve a picker to a run id among ``runs``.

    An exact run id wins over the picker syntax. ``best``/``worst`` reduce the spec over
    the runs of ``runs`` only, skip null/NaN values, and break ties by the smallest id.
    """
    ids = runs.lazy().select(pl.col("run").cast(pl.String)).collect().to_series()
    id_set = set(ids.to_list())
    if text.strip() in id_set:
        return text.strip()
    picker = parse_picker(text)
    if picker.kind == "run":
        close = sorted(difflib.get_close_matches(picker.text, sorted(id_set), n=3, cutoff=0.5))
        hint = f"; closest: {', '.join(close)}" if close else ""
        count = f"{len(id_set)} runs" if id_set else "there are no runs"
        raise SpecError(
            f"unknown run {picker.text!r}{hint} ({count}; a picker is a run id, best:SPEC"
            " or worst:SPEC)"
        )
    assert picker.spec is not None
    columns = expand([picker.spec], points)
    if len(columns) != 1:
        labels = ", ".join(c.label for c in columns[:6])
        raise SpecError(f"{picker.text}: names {len(columns)} columns ({labels}); pick one")
    (column,) = columns
    scoped = points.lazy().filter(pl.col("run").is_in(pl.lit(ids).implode()))
    table = reduce_runs(scoped, columns, x=x)
    ranked = table.filter(
        pl.col(column.label).is_not_null() & pl.col(column.label).is_not_nan()
    ).sort([column.label, "run"], descending=[picker.kind == "best", False])
    if ranked.is_empty():
        raise SpecError(f"{picker.text}: no run has a value for {column.label}")
    return str(ranked["run"][0])

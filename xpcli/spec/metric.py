"""Metric specs: the grammar, its reducers, and expansion against the points present.

Every metric spec is parsed here, by a hand-written parser (never ``eval``), and every
error is a :class:`~xpcli.errors.SpecError` whose one-line message says where the text
broke and what was expected. ``docs/specs.md`` is generated from this text and from
:data:`REDUCERS` (``make docs``).

Metric specs
============

::

    SPEC    := NAME [":" KEY "=" VALUE]... ["@" REDUCE]
             | NAME "[" KEY "=" VALUE ["," KEY "=" VALUE]... "]" ["@" REDUCE]
    REDUCE  := a reducer of the table below (last, max, at=N, at-max(SPEC), ...)

- ``f1`` is the metric ``f1``; ``f1:lang=de`` only its points whose context has
  ``lang=de``; ``f1:lang=de:split=eval`` both. The bracket form ``f1[lang=de,split=eval]``
  means the same and is exactly how columns are labelled, so a label can be pasted back.
- A VALUE is an exact value; ``*`` (every value seen, one column each, in sorted order);
  a glob with ``*`` and ``?`` (``d*``, ``?e``: one column per matching value); or empty
  (``loss:split=``), which selects the points that have *no* value for that key (an
  empty string in the data counts as no value). Globs match without backtracking (in
  time linear in the value), and the specs of one command expand to at most
  ``--max-columns`` columns (default 1000): ``f1:lang=*`` over a key with more values
  is an error that says how many it matches, not a table of a million columns.
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

Reducers
========

REDUCE turns a series (one run's points of one column) into one number per run and
column (:func:`xpcli.analysis.reduce.reduce_runs` computes it), on the series model of
:mod:`xpcli.analysis.series_model`:

- ``first``, ``last``, ``min``, ``max``, ``mean`` and ``median`` read **every** point of
  the series, in *logging order*: by ``time`` when every point of the series has one
  (ties by read position), else by read position alone (files in path order, lines in
  file order). ``last`` is the last value logged, ``first`` the first; no point is left
  out for sharing an x with another, and x plays no part.
- ``at=N``, ``at-max(SPEC)`` and ``at-min(SPEC)`` need a value *at* an x, so they read the
  series aligned to one value per x, the last logged (a job resumed from a checkpoint
  re-logs its epochs: the re-logged value counts there). x is what ``--x`` says:
  ``epoch``, ``step``, ``time`` (seconds since the run's first point) or ``order`` (the
  index in logging order, from 0); by default (``auto``) per column the epoch where
  epochs never go backwards, else the step where steps do not, else the order (the
  exact rule is in ``docs/format.md``). stderr says when the axis is not the epoch, and
  names a series whose x repeats or goes backwards.

The reducers are the rows of :data:`REDUCERS`, one per REDUCE.

NaN: NaN (and null) values are dropped from a series before it is reduced. So
``max``/``min``/``mean``/``median`` and the argmax of ``at-max`` ignore them, ``last`` and
``first`` are the last/first *non-NaN* values, and ``at=N`` is null if the value kept at N
is NaN. A series that holds only NaN reduces to null. ``+inf``/``-inf`` are ordinary
numbers. A run appears in the result as soon as it has any point (even NaN) in a column.

Column labels: ``f1``, ``f1[lang=de]``, ``f1[lang=de,split=eval]`` (keys sorted), with
``@REDUCE`` appended unless it is ``last``: ``f1[lang=de]@max``, ``f1@at=step:500``,
``f1[lang=de]@at-max(f1[lang=en])``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

import polars as pl

from xpcli.errors import SpecError
from xpcli.format import POINT_COLUMNS
from xpcli.summary import sequential_mean

__all__ = [
    "DEFAULT_MAX_COLUMNS",
    "MAX_COLUMNS",
    "POINT_COLUMNS",
    "REDUCERS",
    "Column",
    "MetricSpec",
    "Reduce",
    "Reducer",
    "check_utf8",
    "closest",
    "context_keys",
    "expand",
    "glob_regex",
    "parse_metric_spec",
    "parse_metric_specs",
    "series_filter",
    "spec_number",
    "split_list",
]

ReduceKind = Literal["last", "first", "max", "min", "mean", "median", "at", "at-max", "at-min"]

_SPEC_HELP = "NAME[:KEY=VALUE...][@REDUCE], e.g. f1:lang=de@max"
_MAX_SPEC_LENGTH = 1024
_MAX_LIST_LENGTH = 4096
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

    ``kind`` names a row of :data:`REDUCERS` (last, first, max, ...); ``at`` is
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
        takes = REDUCERS[self.kind].takes
        if takes == "N":
            axis = f"{self.x}:" if self.x else ""
            return f"@{self.kind}={axis}{spec_number(self.at)}"
        if takes == "SPEC":
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


def spec_number(value: float | None) -> str:
    """A number as spec text writes it: ``10``, ``2.5``, ``1e-05`` (empty for None)."""
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


def check_utf8(text: str, prefix: Callable[[str], str] = str) -> None:
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
    for reducer in REDUCERS.values():
        kind = reducer.kind
        if reducer.takes is None and low == kind:
            return Reduce(kind)
        if reducer.takes == "N" and low.startswith(kind + "="):
            return _parse_number_reduce(text, red, pos, kind)
        if reducer.takes == "SPEC" and (low == kind or low.startswith(kind + "(")):
            return _parse_ref_reduce(text, red, pos, kind)
    raise _fail(text, f"unknown reduce {red!r} ({_REDUCE_HELP})")


def _parse_number_reduce(text: str, red: str, pos: int, kind: ReduceKind) -> Reduce:
    """``KIND=N``, ``KIND=step:N`` or ``KIND=epoch:N``."""
    arg = red[len(kind) + 1 :]
    arg_pos = pos + len(kind) + 1
    axis: Literal["epoch", "step"] | None = None
    for prefix in ("step", "epoch"):
        if arg.lower().lstrip().startswith(prefix + ":"):
            axis = prefix
            cut = arg.index(":") + 1
            arg, arg_pos = arg[cut:], arg_pos + cut
            break
    example = f"e.g. {kind}=10, {kind}=step:500, {kind}=epoch:2.5"
    return Reduce(kind, at=_parse_number(text, arg, arg_pos, example), x=axis)


def _parse_ref_reduce(text: str, red: str, pos: int, kind: ReduceKind) -> Reduce:
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
    check_utf8(spec)
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
        if len(whole) > _MAX_LIST_LENGTH:
            raise SpecError(
                f"metric list is {len(whole)} characters long; the limit is {_MAX_LIST_LENGTH}"
            )
        check_utf8(whole)
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


def glob_regex(pattern: str) -> str:
    """The glob ``pattern`` as a regex for Polars (``*`` any run of characters, ``?`` any
    one, every other character itself; the whole value must match).

    Polars runs Rust's regex engine, which never backtracks: matching takes time linear in
    the value, where Python's ``re`` takes minutes on ``*a*a*a*a*a*b`` against a value of a
    few hundred characters.
    """
    parts = (".*" if c == "*" else "." if c == "?" else pl.escape_regex(c) for c in pattern)
    return "(?s)^" + "".join(parts) + "$"


def _match_expr(key: str, pattern: str) -> pl.Expr:
    """Rows whose ``key`` matches a spec's value: empty (no value), ``*``, a glob, exact."""
    column = pl.col(key)
    if pattern == "":
        return column.is_null()
    if pattern == "*":
        return column.is_not_null()
    if _is_pattern(pattern):
        return column.str.contains(glob_regex(pattern)).fill_null(False)
    return (column == pattern).fill_null(False)


def point_matches(spec: MetricSpec, name: str, context: Mapping[str, str]) -> bool:
    """Whether one point (its metric ``name`` and ``context``) is named by ``spec``: the
    same name, and each key the spec gives matches as in :func:`_match_expr` (``*``, a
    glob, an exact value, or empty for no value; an empty string in the data counts as no
    value). Keys the spec does not give are free. The reduce is not looked at."""
    if name != spec.name:
        return False
    for key, pattern in spec.context:
        value = context.get(key) or None
        if pattern == "":
            matched = value is None
        elif value is None:
            matched = False
        elif pattern == "*":
            matched = True
        else:
            matched = glob_match(value, pattern) if _is_pattern(pattern) else value == pattern
        if not matched:
            return False
    return True


def glob_match(value: str, pattern: str) -> bool:
    """Whether all of ``value`` matches the glob ``pattern`` (as :func:`glob_regex`), for
    one value at a time. Greedy with a return to the last ``*`` only: time at most the
    product of the two lengths, never the exponential backtracking of a regex engine."""
    v = p = 0
    star = -1  # the position in pattern just after the last '*' seen
    resume = 0  # where in value that '*' would next give up one more character
    while v < len(value):
        if p < len(pattern) and pattern[p] == "*":
            star, resume = p + 1, v
            p += 1
        elif p < len(pattern) and (pattern[p] == "?" or pattern[p] == value[v]):
            v += 1
            p += 1
        elif star >= 0:
            resume += 1
            v, p = resume, star
        else:
            return False
    return all(c == "*" for c in pattern[p:])


def _shown(values: Iterable[str | None], limit: int = 12) -> str:
    items = sorted({"(none)" if v is None else v for v in values})
    more = f", ... and {len(items) - limit:,} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


#: Suggestions ("did you mean") look at this many values at most: difflib is slow.
_MAX_SUGGESTIONS = 10_000


def closest(word: str, candidates: Collection[str]) -> str:
    """``; did you mean 'lr'?`` for the candidate closest to ``word``, or empty."""
    close = difflib.get_close_matches(word, list(candidates)[:_MAX_SUGGESTIONS], n=1,
                                      cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


#: The most columns one expansion may name unless told otherwise (``--max-columns``): a
#: guard against ``f1:lang=*`` over a key with a million values.
DEFAULT_MAX_COLUMNS = 1000
#: The limit in force: the CLI sets it from ``--max-columns`` for one command.
MAX_COLUMNS: ContextVar[int] = ContextVar("xp_max_columns", default=DEFAULT_MAX_COLUMNS)


class _Combos:
    """The distinct (name, context) combinations of a points frame, as a small frame
    (an empty context value counts as no value)."""

    def __init__(self, points: pl.DataFrame | pl.LazyFrame) -> None:
        self.keys = context_keys(points)
        self.frame = (
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
        self._named: dict[str, pl.DataFrame] = {}

    def named(self, name: str) -> pl.DataFrame:
        """The combinations of one metric."""
        if name not in self._named:
            self._named[name] = self.frame.filter(pl.col("name") == name)
        return self._named[name]

    def names(self) -> list[str]:
        return sorted(self.frame.get_column("name").drop_nulls().unique().to_list())


def _resolve(spec: MetricSpec, combos: _Combos,
             limit: int) -> list[tuple[tuple[str, str], ...]]:
    """The concrete contexts (sorted keys) of the columns a spec names, sorted.

    Everything runs on the (small) frame of combinations in Polars, and a wildcard that
    matches more than ``limit`` series is an error before any column is made."""
    rows = combos.named(spec.name)
    if rows.height == 0:
        names = combos.names()
        if not names:
            raise _fail(spec.text, "no metric points to select from")
        raise _fail(
            spec.text,
            f"unknown metric {spec.name!r}{closest(spec.name, names)} (metrics: {_shown(names)})",
        )
    metric_keys = [k for k in combos.keys if rows.get_column(k).null_count() < rows.height]
    for key, pattern in spec.context:
        if key not in combos.keys or (key not in metric_keys and pattern != ""):
            shown = ", ".join(metric_keys) if metric_keys else "none"
            raise _fail(
                spec.text,
                f"metric {spec.name!r} has no context key {key!r}"
                f"{closest(key, metric_keys)} (its keys: {shown})",
            )
        kept = rows.filter(_match_expr(key, pattern))
        if kept.height == 0:
            values = rows.get_column(key).unique().sort(nulls_last=True)
            wanted = "no value" if pattern == "" else f"{key}={pattern}"
            raise _fail(
                spec.text,
                f"no point of {spec.name!r} has {wanted}"
                f"{closest(pattern, values.drop_nulls().to_list())} "
                f"({key} values: {_shown(values.to_list())})",
            )
        rows = kept
    given = [k for k, _ in spec.context]
    wild = [k for k, v in spec.context if v == "*" or _is_pattern(v)]
    free = [k for k in combos.keys if k not in given]
    if wild:
        groups = rows.group_by(wild).agg(pl.col(k).n_unique() for k in free)
        if groups.height > limit:
            raise SpecError(f"{spec.text} matches {groups.height:,} series; narrow it or raise "
                            f"--max-columns (now {limit:,})")
        found = list(groups.sort([pl.col(k).fill_null("") for k in wild]).iter_rows(named=True))
    else:
        found = [{k: rows.get_column(k).n_unique() for k in free}]
    contexts: list[tuple[tuple[str, str], ...]] = []
    for group in found:
        combo = [group[k] for k in wild]
        for key in free:
            if group[key] > 1:
                inside = rows.filter(*[(pl.col(k) == v) if v is not None else pl.col(k).is_null()
                                       for k, v in zip(wild, combo, strict=True)])
                raise _mixing_error(spec, key, set(inside.get_column(key).to_list()))
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


def expand(specs: Iterable[MetricSpec], points: pl.DataFrame | pl.LazyFrame,
           max_columns: int | None = None) -> list[Column]:
    """Resolve specs against the points present: one :class:`Column` per concrete series.

    ``*`` and globs expand to one column per matching value, in sorted order; columns
    with the same label are kept once. A spec that matches nothing, or that would mix
    several contexts in one column, raises :class:`SpecError` saying which metrics, keys
    or values exist. More than ``max_columns`` columns (default: :data:`MAX_COLUMNS`, set
    by ``--max-columns``) is a :class:`SpecError` too, raised before they are made.
    """
    limit = MAX_COLUMNS.get() if max_columns is None else max_columns
    combos = _Combos(points)
    columns: list[Column] = []
    labels: set[str] = set()
    for spec in specs:
        ref: Column | None = None
        if spec.reduce.ref is not None:
            ref_spec = spec.reduce.ref
            try:
                (ref_context,) = _resolve(ref_spec, combos, limit)
            except SpecError as exc:
                raise _fail(spec.text, f"in {spec.reduce.kind}(...): {exc}") from None
            ref = Column(ref_spec, ref_context, _label(ref_spec.name, ref_context, ""))
        for context in _resolve(spec, combos, limit):
            suffix = spec.reduce.label_suffix(ref.label if ref else None)
            label = _label(spec.name, context, suffix)
            if label == "run":
                raise _fail(
                    spec.text, "a column cannot be labelled 'run'; add a context or @REDUCE"
                )
            if label not in labels:
                labels.add(label)
                columns.append(Column(spec, context, label, ref))
        if len(columns) > limit:
            raise SpecError(f"the metric specs name {len(columns):,} columns; narrow them or "
                            f"raise --max-columns (now {limit:,})")
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


def close_to(x: pl.Expr, target: pl.Expr | float) -> pl.Expr:
    """``x == target`` up to a relative tolerance of 1e-9 (fractional epochs match)."""
    scale = (
        max(1.0, abs(target))
        if isinstance(target, float)
        else pl.max_horizontal(pl.lit(1.0), target.abs())
    )
    return (x - target).abs() <= _TOLERANCE * scale


# --------------------------------------------------------------------------------------
# The reducers
# --------------------------------------------------------------------------------------

#: Columns of the frame a reducer reads, beside ``value``, ``step``, ``epoch`` and ``time``
#: (:mod:`xpcli.analysis.series_model` adds them): the time that orders a series (null
#: when a point lacks one), the read position, and the index in logging order.
TIME_KEY = "__time_key"
ROW = "__row"
POSITION = "__position"

#: The order of "last" and "first": the logging order (the time that orders the series,
#: then the read position).
_ORDER = [TIME_KEY, ROW]


@dataclass(frozen=True)
class Reducer:
    """One REDUCE: its keyword, what it takes, what it means, and how it is computed.

    ``takes`` is None for a bare keyword (``max``), ``"N"`` for ``KIND=N`` (with an
    optional ``step:``/``epoch:`` axis) and ``"SPEC"`` for ``KIND(SPEC)``, a reference
    series of the same run. ``doc`` is the sentence ``docs/specs.md`` shows.

    ``aggregate(reduce)`` is a Polars aggregation over one run's points of the series, as
    :func:`xpcli.analysis.reduce.reduce_runs` prepares them, without NaN or null values:
    columns ``value``, ``step``, ``epoch`` and ``time`` (as floats), ``__time_key`` (the
    time that orders the series, null when a point lacks one) and ``__row`` (the read
    position). A reducer that ``takes`` something reads the series aligned to one value
    per x (the last logged), with ``_x`` (the x chosen) and ``__position`` (the index in
    logging order) too; one with ``ref`` also ``_at``, the earliest x where the reference
    series takes its ``max`` or ``min``.
    """

    kind: ReduceKind
    takes: Literal["N", "SPEC"] | None
    doc: str
    aggregate: Callable[[Reduce], pl.Expr]
    ref: Literal["max", "min"] | None = None

    @property
    def syntax(self) -> str:
        """How it is written after ``@``: ``max``, ``at=N``, ``at-max(SPEC)``."""
        if self.takes == "N":
            return f"{self.kind}=N"
        if self.takes == "SPEC":
            return f"{self.kind}(SPEC)"
        return self.kind


def _value_where(hit: pl.Expr) -> pl.Expr:
    """The last logged value among the points where ``hit`` holds; null if none."""
    return pl.col("value").filter(hit).sort_by(pl.col(POSITION).filter(hit)).last()


def _value_at_n(reduce: Reduce) -> pl.Expr:
    assert reduce.at is not None
    return _value_where(close_to(pl.col("_x"), reduce.at))


def _value_at_ref(reduce: Reduce) -> pl.Expr:
    return _value_where(close_to(pl.col("_x"), pl.col("_at")))


#: Every REDUCE, in the order the docs and the error text list them.
REDUCERS: dict[str, Reducer] = {reducer.kind: reducer for reducer in (
    Reducer("last", None,
            "the last value logged (the default): the last point of the series in logging "
            "order, whatever its x.",
            lambda reduce: pl.col("value").sort_by(_ORDER).last()),
    Reducer("first", None, "the first value logged.",
            lambda reduce: pl.col("value").sort_by(_ORDER).first()),
    Reducer("max", None, "the largest value of every point of the series.",
            lambda reduce: pl.col("value").max()),
    Reducer("min", None, "the smallest value of every point of the series.",
            lambda reduce: pl.col("value").min()),
    Reducer("mean", None, "the mean of every point of the series.",
            lambda reduce: sequential_mean(pl.col("value"))),
    Reducer("median", None, "the median of every point of the series.",
            lambda reduce: pl.col("value").median()),
    Reducer("at", "N",
            "the value at x == N, the last logged there (``at=step:N`` / ``at=epoch:N`` "
            "pick the axis, whatever ``--x`` says); null when the run has no point there. "
            "x is matched with a relative tolerance of 1e-9, so fractional epochs work. A "
            "column that is null for *every* run (no run logged that x) is an error naming "
            "the x range that exists, not a column of blanks.",
            _value_at_n),
    Reducer("at-max", "SPEC",
            "the value at the x where SPEC, another series of the same run, is highest; "
            "ties go to the earliest such x. SPEC must name one series (no ``*`` or glob, "
            "no ``@``): ``f1:lang=de@at-max(f1:lang=en)`` is German F1 at the epoch where "
            "English F1 peaks. Null when the run has no SPEC or no point at that x; null "
            "for every run is an error, as for ``at=N``.",
            _value_at_ref, ref="max"),
    Reducer("at-min", "SPEC", "as ``at-max(SPEC)``, at the x where SPEC is lowest.",
            _value_at_ref, ref="min"),
)}

_REDUCE_HELP = "expected one of " + ", ".join(r.syntax for r in REDUCERS.values())

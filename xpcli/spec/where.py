"""``--where`` expressions: tokenizer, parser and compiler to a Polars expression.

The text is parsed by hand (never ``eval``) into a small AST (:class:`Where`) and compiled
against a schema; every error is a :class:`~xpcli.errors.SpecError` naming the option
(``--where``, ``--fail-if``) and the column where the text broke.

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
              | VALUE ["not"] "in" NAME              (NAME a list column: 'ner' in tags)
              | NAME ["not"] "contains" VALUE        (the same: tags contains 'ner')
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
- Numbers compare with integer and float columns, and with duration columns as seconds
  (``elapsed > 3600``); strings with text columns (and with
  date/datetime columns, as ISO dates: ``created >= "2024-05-01"``); ``true``/``false``
  with Boolean columns (``==``/``!=`` only). Comparing a text column with a number, or
  the other way round, is an error. ``NAME == null`` is an error: write ``is null``.
- A list-valued param or meta field (``tags``) is tested for membership: ``'ner' in
  tags``, ``tags contains 'ner'`` and their ``not`` forms; the value's type must match the
  list's items. ``contains`` is a keyword only in that place (a column may be named so).
  A run whose list is missing is dropped by both forms, like any other null. Comparing
  such a column with text (``tags == 'ner'``, ``tags in ('ner')``), which would match
  nothing, is an error that says to test membership.
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
    'ner' in tags and 'draft' not in tags
    `f1[lang=de]@max` > 0.7
    `f1:lang=en@max` > 0.7 and created >= "2024-05-01"

A name that is not a column but a metric spec (the last example) is left to the caller:
:func:`metric_names_in` lists such specs; the caller reduces them and adds each as a
column named ``spec.text`` before compiling.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

import polars as pl

from xpcli.errors import SpecError, did_you_mean

from .metric import MetricSpec, check_utf8, parse_metric_spec

__all__ = [
    "SchemaLike",
    "Where",
    "compile_where",
    "metric_names_in",
    "parse_where",
]

_MAX_WHERE_LENGTH = 4096
_MAX_WHERE_DEPTH = 64

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
class Member:
    """``value [not] in name`` or ``name [not] contains value``: list membership."""

    name: Name
    value: Value
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


Node: TypeAlias = "Compare | InList | Member | IsNull | Truth | Not | BoolOp"


def _where_prefix(text: str, option: str = "--where") -> str:
    shown = text if len(text) <= 100 else text[:97] + "..."
    return f'{option} "{shown}"'


def _where_error(
    text: str, message: str, pos: int, hint: str = "", option: str = "--where"
) -> SpecError:
    return SpecError(f"{_where_prefix(text, option)}: {message} at column {pos + 1}{hint}")


def _describe(token: _Token) -> str:
    return "the end of the expression" if token.kind == "eof" else repr(token.text)


def _backtick_hint(text: str, i: int) -> str:
    """For ``f1[lang=de] < 0.7`` (a metric column or spec typed bare): put it in backticks."""
    if text[i] not in "[:@":
        return ""
    start = i
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
        start -= 1
    close = text.find("]", i)
    end = close + 1 if text[i] == "[" and close > 0 else i
    while (end < len(text) and not text[end].isspace() and text[end] not in "<>!()"
           and not text.startswith("==", end)):
        end += 1
    word = text[start:end]
    return f"; put a metric column or spec in backticks: `{word}`" if start < i else ""


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
            raise fail(f"unexpected character {char!r}", i, _backtick_hint(text, i))
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
            word = self.peek(1 if self.at_kw("not") else 0)
            after = self.peek(2 if self.at_kw("not") else 1)
            if (word.kind == "name" and str(word.value).lower() == "contains"
                    and after.kind == "name"):
                raise self.fail(f"unknown name {after.value!r}", after.pos,
                                f"; to test for the text, quote it: {left.name} "
                                f"contains '{after.value}'")
            negated = self.at_kw("not") and self._at_contains(1)
            if negated or self._at_contains(0):
                self.i += 2 if negated else 1
                value = self.operand("a value")
                if isinstance(value, Name):
                    raise self.fail(f"unexpected {value.name!r}", value.pos,
                                    " (expected a value, e.g. 'ner')")
                return Member(left, value, negated)
        if isinstance(left, Value) and (self.at_kw("in") or (
                self.at_kw("not") and self.at_kw("in", 1))):
            negated = self.at_kw("not")
            self.i += 2 if negated else 1
            name = self.operand("a list column, e.g. tags")
            if not isinstance(name, Name):
                raise self.fail("'in' after a value needs a list column", name.pos,
                                " (e.g. 'ner' in tags)")
            return Member(name, left, negated)
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

    def _at_contains(self, ahead: int) -> bool:
        """``contains`` followed by a value: a keyword only there."""
        token = self.peek(ahead)
        following = self.peek(ahead + 1)
        return (token.kind == "name" and str(token.value).lower() == "contains"
                and (following.kind in ("num", "str") or (
                    following.kind == "kw" and following.value in ("true", "false", "null"))))

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
    if dtype.base_type() == pl.Duration:
        return "duration"
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
        if isinstance(node, Member):
            return self.member(node)
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
            raise self.fail(f"unknown name {name.name!r}", name.pos,
                            f"; {did_you_mean(name.name, self.schema)}")
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
            hint = (f"; test membership: {_quoted(value.value)} in {name.name}"
                    if isinstance(dtype, (pl.List, pl.Array)) and op == "==" else "")
            raise self.fail(
                f"{name.name} is a {dtype} column, which {self.option} cannot compare",
                name.pos, hint)
        if category == "null":
            return pl.lit(value.value)
        if category == "date" and kind == "text":
            return self.date_literal(dtype, value)
        if category == "duration" and kind == "number":
            assert isinstance(value.value, (int, float))
            if not math.isfinite(value.value) or abs(value.value) > 9e12:
                raise self.fail(f"{name.name} is a duration; {value.value} seconds is out of "
                                "range", value.pos)
            return pl.lit(dt.timedelta(seconds=value.value), dtype)
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
        if (isinstance(right, Name) and right.name not in self.schema
                and left.name in self.schema
                and _category(self.schema[left.name]) in ("text", "null")):
            # status == finished: a bare word is a name; the text wants quotes.
            raise self.fail(f"unknown name {right.name!r}", right.pos,
                            f"; to compare with the text, quote it: "
                            f"{left.name} {op} \"{right.name}\"")
        if isinstance(right, Name):
            a, b = _category(self.dtype(left)), _category(self.dtype(right))
            if "null" not in (a, b) and (a != b or a == "other"):
                raise self.fail(
                    f"cannot compare {left.name} ({self.dtype(left)}) with "
                    f"{right.name} ({self.dtype(right)})",
                    node.pos,
                )
            return _OPS[op](self.column(left), self.column(right))
        literal = self.literal(left, right, op)
        column = self.column(left)
        if (op in ("==", "!=") and isinstance(right.value, str)
                and _category(self.dtype(left)) == "text"):
            column = self.not_lists(left, [right.value], column)
        return _OPS[op](column, literal)

    def in_list(self, node: InList) -> pl.Expr:
        dtype = self.dtype(node.name)
        category = _category(dtype)
        values = [v.value for v in node.values]
        if category in ("date", "duration", "other"):
            hint = ""
            if isinstance(dtype, (pl.List, pl.Array)) and len(values) == 1:
                hint = f"; for list membership write {_quoted(values[0])} in {node.name.name}"
            raise self.fail(f"'in' does not work on {dtype} columns", node.name.pos, hint)
        for value in node.values:
            kind = _value_category(value.value)
            if category != "null" and kind != category:
                raise self.mismatch(node.name, value.value, value.pos)
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
            col = self.not_lists(node.name, [str(v) for v in values], col)
            expr = col.is_in(pl.lit(pl.Series(values, dtype=pl.String)).implode())
        elif category == "boolean":
            expr = col.is_in(pl.lit(pl.Series(values, dtype=pl.Boolean)).implode())
        else:  # an all-null column: nothing is in any list
            expr = col.is_not_null()
        return ~expr if node.negated else expr


    def member(self, node: Member) -> pl.Expr:
        dtype = self.dtype(node.name)
        if _category(dtype) == "text":  # lists in params/meta are kept as JSON text
            return self.json_member(node)
        if not isinstance(dtype, (pl.List, pl.Array)):
            word = "in" if not node.negated else "not in"
            hint = (f"; to compare the value, write {node.name.name} == "
                    f"{_quoted(node.value.value)}" if not node.negated else "")
            raise self.fail(f"{node.name.name} is a {dtype} column, not a list: "
                            f"'{word}' needs a list column (such as tags)", node.name.pos, hint)
        if node.value.value is None:
            raise self.fail("null in a list never matches", node.value.pos)
        inner = _instance(dtype.inner) if isinstance(dtype.inner, pl.DataType) else pl.Null()
        category, kind = _category(inner), _value_category(node.value.value)
        if category not in ("null", kind):
            raise self.fail(f"{node.name.name} holds {inner} items but is tested for "
                            f"{_show_value(node.value.value)}", node.value.pos)
        col = pl.col(node.name.name)
        if isinstance(dtype, pl.Array):
            col = col.arr.to_list()
        if category == "null":  # a list of nulls (or empty lists only): nothing is in it
            expr = col.list.len() < 0
        else:
            expr = col.list.contains(pl.lit(node.value.value, dtype=inner))
        return ~expr if node.negated else expr


    def not_lists(self, name: Name, values: list[str], column: pl.Expr) -> pl.Expr:
        """``column`` as it is, unless every value in it is a JSON array (list params and
        tags, as the runs table keeps them) and the ``values`` compared are not: then
        ``tags == 'ner'`` would silently match nothing, and the filter says to test
        membership instead."""
        if any(value.lstrip().startswith("[") for value in values):
            return column
        tests = " or ".join(f"{_quoted(value)} in {name.name}" for value in values)
        message = (f"{_where_prefix(self.text, self.option)}: {name.name} holds lists; "
                   f"test membership: {tests}")

        def check(texts: pl.Series) -> pl.Series:
            present = texts.drop_nulls()
            if present.len() and bool((present.str.starts_with("[")
                                       & present.str.ends_with("]")).all()):
                raise _RowError(message)
            return texts

        return column.map_batches(check, return_dtype=pl.String)

    def json_member(self, node: Member) -> pl.Expr:
        """Membership in a text column whose values are JSON arrays (``["ner", "x"]``,
        as a runs table keeps list params and tags): decoded with :func:`json.loads`,
        never evaluated. A value that is not an array is an error naming it, when the
        filter runs (the schema alone cannot tell)."""
        wanted = node.value.value
        if wanted is None:
            raise self.fail("null in a list never matches", node.value.pos)
        name, prefix = node.name.name, _where_prefix(self.text, self.option)
        word = "not in" if node.negated else "in"

        def test(texts: pl.Series) -> pl.Series:
            found: list[bool | None] = []
            for text in texts.to_list():
                if text is None:
                    found.append(None)
                    continue
                try:
                    items = json.loads(text)
                except ValueError:
                    items = text
                if not isinstance(items, list):
                    shown = text if len(text) <= 40 else text[:37] + "..."
                    raise _RowError(f"{prefix}: {name} holds {shown!r}, not a list: '{word}' "
                                    f"needs a list column (such as tags); to compare the "
                                    f"value, write {name} == {_quoted(wanted)}")
                hit = any(_same(item, wanted) for item in items)
                found.append(hit != node.negated)
            return pl.Series(found, dtype=pl.Boolean)

        return pl.col(name).cast(pl.String).map_batches(test, return_dtype=pl.Boolean)


class _RowError(SpecError):
    """A SpecError raised while Polars runs a filter, shown without the note Polars adds
    (which expression failed): the message is the first line."""

    def __str__(self) -> str:
        return super().__str__().split("\n", 1)[0]


def _same(item: object, wanted: LiteralValue) -> bool:
    """A list item equals the value: text to text, number to number (``2 == 2.0``),
    Boolean to Boolean (never ``true == 1``)."""
    if isinstance(wanted, bool) or isinstance(item, bool):
        return isinstance(item, bool) and isinstance(wanted, bool) and item == wanted
    if isinstance(wanted, (int, float)):
        return isinstance(item, (int, float)) and item == wanted
    return isinstance(item, str) and item == wanted


def _quoted(value: LiteralValue) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


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
    check_utf8(text, lambda shown: _where_prefix(shown, option))
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

"""CI gates: ``--fail-if EXPR`` over the rows a command produced.

The condition is a ``--where`` expression (:mod:`xpcli.spec`) over the result's columns,
e.g. ``--fail-if '`f1[lang=de]` < 0.7'`` on ``xp select`` or ``--fail-if 'regret > 0.02'``
on ``xp selection``. The gate fails (exit 3) when

- the condition holds for any row, or
- it cannot be decided for a row because a value it needs is missing (null or NaN): a
  gate that passes on missing data would hide a broken run, or
- there are no rows at all (an over-eager ``--where`` must not turn the check green).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ..errors import GateError
from ..output import format_number
from ..spec import parse_where

__all__ = ["check_gate", "failing_rows"]

MAX_SHOWN = 5


def failing_rows(frame: pl.DataFrame, condition: str) -> tuple[pl.DataFrame, pl.Series]:
    """The rows for which ``condition`` holds or is undecided, and the per-row outcome.

    The outcome is True (holds), False (passes) or null (undecided) for every row of
    ``frame``; the returned frame keeps only the True and null rows.
    """
    parsed = parse_where(condition)
    outcome = frame.select(parsed.to_expr(frame.schema).alias("_gate")).to_series()
    failing = frame.filter(outcome.fill_null(True))
    return failing, outcome


def _describe(row: dict[str, object], id_columns: Sequence[str], names: Sequence[str],
              undecided: bool) -> str:
    ident = " ".join(
        str(row[c]) if c == "run" else f"{c}={format_number(row[c])}" for c in id_columns
    )
    values = ", ".join(f"{n}={format_number(row[n]) if row[n] is not None else 'null'}"
                       for n in names if n in row and n not in id_columns)
    note = "; undecided, a value is missing" if undecided else ""
    inner = f" ({values}{note})" if values or note else ""
    return f"{ident}{inner}"


def check_gate(frame: pl.DataFrame, condition: str, id_columns: Sequence[str],
               option: str = "--fail-if") -> None:
    """Raise :class:`GateError` (exit 3) when ``condition`` fails the gate on ``frame``.

    The message names the condition, how many rows failed, and the first few of them by
    ``id_columns`` with the values the condition reads, e.g. ``gate failed: --fail-if
    "`f1[lang=de]` < 0.7" holds for 1 of 1 rows: lr3e-5-s05 (f1[lang=de]=0.6835)``.
    """
    if frame.is_empty():
        raise GateError(f"gate failed: {option} {condition!r}: no rows to check "
                        "(did --where or --best leave nothing?)")
    failing, outcome = failing_rows(frame, condition)
    if failing.is_empty():
        return
    names = parse_where(condition).names()
    undecided = outcome.filter(outcome.fill_null(True)).is_null().to_list()
    shown = [
        _describe(row, id_columns, names, flag)
        for row, flag in zip(failing.head(MAX_SHOWN).iter_rows(named=True), undecided)
    ]
    more = f"; and {failing.height - MAX_SHOWN} more" if failing.height > MAX_SHOWN else ""
    raise GateError(
        f"gate failed: {option} {condition!r} holds for {failing.height} of {frame.height} "
        f"rows: {'; '.join(shown)}{more}"
    )

"""CI gates: ``--fail-if EXPR`` over the rows a command produced.

The condition is a ``--where`` expression (:mod:`xpcli.spec.where`) over the result's columns,
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
from ..spec.where import parse_where

__all__ = ["check_gate", "failing_rows", "gate_error"]

MAX_SHOWN = 5


def failing_rows(frame: pl.DataFrame, condition: str,
                 option: str = "--fail-if") -> tuple[pl.DataFrame, pl.Series]:
    """The rows for which ``condition`` holds or is undecided, and the per-row outcome.

    The outcome is True (holds), False (passes) or null (undecided) for every row of
    ``frame``; the returned frame keeps only the True and null rows. A bad condition is a
    :class:`~xpcli.errors.SpecError` naming ``option``.
    """
    parsed = parse_where(condition, option)
    outcome = frame.select(parsed.to_expr(frame.schema).alias("_gate")).to_series()
    failing = frame.filter(outcome.fill_null(True))
    return failing, outcome


def _describe(row: dict[str, object], id_columns: Sequence[str], names: Sequence[str],
              undecided: bool) -> str:
    parts = [
        str(row[c]) if c in ("run", "selector", "target") else f"{c}={format_number(row[c])}"
        for c in id_columns
    ]
    if "selector" in id_columns and "target" in id_columns:  # "lr=1e-05 sel -> target"
        parts = parts[:-2] + [f"{row['selector']} -> {row['target']}"]
    ident = " ".join(parts) or "all runs"
    values = ", ".join(f"{n}={format_number(row[n]) if row[n] is not None else 'null'}"
                       for n in names if n in row and n not in id_columns)
    note = "; undecided, a value is missing" if undecided else ""
    inner = f" ({values}{note})" if values or note else ""
    return f"{ident}{inner}"


def gate_error(frame: pl.DataFrame, condition: str, id_columns: Sequence[str],
               option: str = "--fail-if") -> GateError | None:
    """The :class:`GateError` that ``condition`` raises on ``frame``, or None if it passes.

    A condition that does not parse or names an unknown column raises
    :class:`~xpcli.errors.SpecError` at once. Commands call this before printing the
    table and raise the error after it, so a CI log shows both the table and the verdict.
    The message names the condition, how many rows failed, and the first few of them by
    ``id_columns`` with the values the condition reads, e.g. ``gate failed: --fail-if
    "`f1[lang=de]` < 0.7" holds for 1 of 1 rows: lr3e-5-s05 (f1[lang=de]=0.6835)``.
    """
    failing, outcome = failing_rows(frame, condition, option)
    if frame.is_empty():
        return GateError(f"gate failed: {option} {condition!r}: no rows to check "
                         "(did --where or --best leave nothing?)")
    if failing.is_empty():
        return None
    names = parse_where(condition, option).names()
    undecided = outcome.filter(outcome.fill_null(True)).is_null().to_list()
    shown = [
        _describe(row, id_columns, names, flag)
        for row, flag in zip(failing.head(MAX_SHOWN).iter_rows(named=True), undecided)
    ]
    more = f"; and {failing.height - MAX_SHOWN} more" if failing.height > MAX_SHOWN else ""
    return GateError(
        f"gate failed: {option} {condition!r} holds for {failing.height} of {frame.height} "
        f"rows: {'; '.join(shown)}{more}"
    )


def check_gate(frame: pl.DataFrame, condition: str, id_columns: Sequence[str],
               option: str = "--fail-if") -> None:
    """Raise the :class:`GateError` of :func:`gate_error` (exit 3) if the gate fails."""
    error = gate_error(frame, condition, id_columns, option)
    if error is not None:
        raise error

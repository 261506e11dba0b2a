"""Run pickers: a run named by its id, or the best or worst run on a metric spec.

Run pickers
===========

- a run id present in the runs table (an exact id always wins);
- ``best:SPEC`` (alias ``max:SPEC``): the run with the highest reduced value;
- ``worst:SPEC`` (alias ``min:SPEC``): the run with the lowest one.

SPEC must resolve to one column. Only runs of the given runs table are candidates, runs
with a null/NaN value are never picked, and ties go to the smallest run id.

In Python, :func:`parse_picker` parses a picker and
:func:`xpcli.analysis.reduce.resolve_picker` resolves it to a run id among runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xpcli.errors import SpecError

from .metric import MetricSpec, check_utf8, parse_metric_spec

__all__ = ["Picker", "parse_picker"]

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
    check_utf8(picker)
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

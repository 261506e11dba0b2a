"""Bins for continuous params, so a random-search sweep groups like a grid.

Wherever a param groups runs (``--by`` of ``group``, ``aggregate``, ``compare`` and
``selection``; ``--params`` of ``importance``), an item may ask for bins::

    ITEM   := PARAM                 the param's values as they are
            | PARAM ":" KIND "=" K  the param's values cut into K bins (K from 1 to 1000)
    KIND   := "log"    K bins of equal width in log10 between the smallest and largest
                       value (positive values only): lr:log=5
            | "bins"   K bins of equal width between the smallest and largest value:
                       dropout:bins=4
            | "q"      K quantile bins, about as many runs in each (ties can merge two):
                       lr:q=4

The param's column is replaced by its bin, labelled ``[low, high)`` (the last bin
``[low, high]``, closed), ordered from low to high, so tables sort by bin and
``--baseline``/``--where`` can name one by its label. The edges come from the runs being
grouped (after ``--where``); a value on an edge goes to the bin above it. Runs without a
value stay without one (null), in a group of their own. A PARAM that is itself a column
name containing ``:`` is taken as it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import polars as pl

from ..errors import UsageError
from ..output import format_number

if TYPE_CHECKING:  # numpy is imported where it is used: not every command needs it
    import numpy as np

__all__ = ["BinSpec", "bin_column", "bin_params", "parse_bin"]

Kind = Literal["log", "bins", "q"]
_BIN_RE = re.compile(r"(?P<param>.+?)\s*:\s*(?P<kind>[A-Za-z]+)\s*=\s*(?P<k>\S+)")
MAX_BINS = 1000
#: A value this close to an edge (in units of one bin) is on the edge, not just below it,
#: so 1e-5 stays on a decade edge that log10 computed as 4.9999999999 bins.
_EDGE_SLACK = 1e-9


@dataclass(frozen=True)
class BinSpec:
    """``lr:log=5`` parsed: the param, the kind of bins, how many."""

    param: str
    kind: Kind
    bins: int

    @property
    def text(self) -> str:
        """The item as written canonically: ``lr:log=5``."""
        return f"{self.param}:{self.kind}={self.bins}"


def parse_bin(text: str, option: str = "--by") -> BinSpec | None:
    """``lr:log=5`` -> BinSpec; a plain name -> None; a malformed bin is a UsageError."""
    match = _BIN_RE.fullmatch(text.strip())
    if match is None:
        if ":" in text:
            raise UsageError(f"{option} {text}: expected PARAM or PARAM:KIND=K with KIND "
                             "log, bins or q, e.g. lr:log=5")
        return None
    kind, count = match.group("kind").lower(), match.group("k")
    if kind not in ("log", "bins", "q"):
        raise UsageError(f"{option} {text}: unknown binning {kind!r}; use log=K (equal "
                         "width in log10), bins=K (equal width) or q=K (quantiles)")
    if not count.isdigit() or not 1 <= int(count) <= MAX_BINS:
        raise UsageError(f"{option} {text}: the number of bins is a whole number from 1 to "
                         f"{MAX_BINS}, e.g. {match.group('param')}:{kind}=5")
    return BinSpec(match.group("param").strip(), kind, int(count))  # type: ignore[arg-type]


def _number(value: float, digits: int, scientific: bool) -> str:
    if not scientific or value == 0:
        return format_number(value, digits)
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _labels(edges: np.ndarray) -> list[str]:
    """``[low, high)`` per bin, the last closed, in one style (``1e-4``, not ``0.001``,
    beside ``1e-5``); digits are added until the labels differ."""

    magnitudes = [abs(float(e)) for e in edges if e != 0]
    scientific = any(m < 1e-3 or m >= 1e6 for m in magnitudes)
    for digits in range(4, 18):
        texts = [_number(float(e), digits, scientific) for e in edges]
        labels = [f"[{lo}, {hi})" for lo, hi in zip(texts[:-1], texts[1:])]
        if labels:
            labels[-1] = labels[-1][:-1] + "]"
        if len(set(labels)) == len(labels):
            return labels
    return [f"[{lo!r}, {hi!r})" for lo, hi in zip(edges[:-1], edges[1:])]


def bin_column(series: pl.Series, spec: BinSpec, option: str = "--by") -> pl.Series:
    """The bin of every value of ``series`` (see the module docs), as an ordered Enum."""
    import numpy as np

    if not series.dtype.is_numeric() or series.dtype == pl.Boolean:
        raise UsageError(f"{option} {spec.text}: {spec.param} holds {series.dtype} values; "
                         "only numbers can be binned")
    values = series.cast(pl.Float64).to_numpy().astype(np.float64)
    present = ~np.isnan(values)
    finite = values[present]
    if finite.size == 0:
        raise UsageError(f"{option} {spec.text}: no run has a value of {spec.param} to bin")
    if not np.all(np.isfinite(finite)):
        raise UsageError(f"{option} {spec.text}: {spec.param} has infinite values; "
                         "filter them out with --where")
    lo, hi = float(finite.min()), float(finite.max())
    if spec.kind == "log":
        if lo <= 0:
            raise UsageError(f"{option} {spec.text}: log bins need positive values; "
                             f"{spec.param} goes down to {format_number(lo)} (use bins=K)")
        scaled, low, high = np.log10(finite), math.log10(lo), math.log10(hi)
        edges = np.logspace(low, high, spec.bins + 1)
    elif spec.kind == "bins":
        scaled, low, high = finite, lo, hi
        edges = np.linspace(lo, hi, spec.bins + 1)
    else:
        edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, spec.bins + 1)))
        if edges.size == 1:
            edges = np.array([lo, hi])
    if spec.kind == "q":
        index = np.searchsorted(edges, finite, side="right") - 1
    elif high > low:
        index = np.floor((scaled - low) / (high - low) * spec.bins + _EDGE_SLACK)
    else:  # one value: one bin
        index = np.zeros(finite.size)
    count = edges.size - 1
    index = np.clip(index, 0, count - 1).astype(np.int64)
    edges[0], edges[-1] = lo, hi  # labels show the data's own ends, not their rounding
    labels = _labels(edges)
    out: list[str | None] = [None] * values.size
    for position, bin_index in zip(np.nonzero(present)[0], index):
        out[position] = labels[bin_index]
    return pl.Series(series.name, out, dtype=pl.Enum(labels))


def bin_params(frame: pl.DataFrame, items: Sequence[str], option: str = "--by"
               ) -> tuple[pl.DataFrame, list[str]]:
    """Replace the columns that ``items`` bin (``lr:log=5``) by their bins; return the
    frame and the column names (``lr``), in order. A plain name, or a binned one whose
    param is not a column, passes through as it is (the caller checks that it exists)."""
    names: list[str] = []
    for item in items:
        if item in frame.columns:
            names.append(item)
            continue
        match = _BIN_RE.fullmatch(item.strip())
        if match is None or match.group("param").strip() not in frame.columns:
            names.append(item)  # the caller names what is unknown, and what is known
            continue
        spec = parse_bin(item, option)
        if spec is None or spec.param == "run":
            names.append(item)
            continue
        frame = frame.with_columns(bin_column(frame[spec.param], spec, option))
        names.append(spec.param)
    if len(set(names)) < len(names):
        raise UsageError(f"{option}: a param is named twice ({', '.join(items)})")
    return frame, names

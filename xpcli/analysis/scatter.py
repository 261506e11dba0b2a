"""The table behind ``xp scatter``: one row per run, an x and a y column, how they rank.

X and Y are each a param (``lr``) or a metric spec naming one column
(``f1:lang=en@max``). The table is built the way ``xp parcoords`` builds its own
(:func:`~xpcli.analysis.parcoords.parcoords_table`, with X and Y as its two axes), so
``--where``, ``--color`` and ``--highlight`` mean the same in both. Runs without a finite
x or y stay in the table (null there), are counted in :attr:`Scatter.missing` and are
not drawn.

The rank correlation of x and y over the runs that have both is Spearman's rho and
Kendall's tau-b (:func:`~xpcli.analysis.selection.spearman_rho`,
:func:`~xpcli.analysis.selection.kendall_tau_b`): +1 when y orders the runs as x does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..dataset import Dataset
from ..errors import SpecError, UsageError, did_you_mean
from ..spec import parse_metric_spec, split_list
from .parcoords import Axis, parcoords_table
from .selection import kendall_tau_b, spearman_rho
from .series_model import Notes, XChoice

__all__ = ["Scatter", "scatter_table"]


@dataclass
class Scatter:
    """What a scatter figure draws.

    ``table``: ``run``, the x column, the y column, and the colour column if any. ``x``,
    ``y``, ``color``: those columns; ``labels``: column -> readable label. ``missing``:
    runs without a finite x or y. ``highlights``: (picker as written, run id).
    ``spearman``/``kendall``: rank correlations over the ``n`` runs with both values
    (None when undefined: fewer than two runs, or a constant side).
    """

    table: pl.DataFrame
    x: str
    y: str
    labels: dict[str, str]
    color: str | None = None
    missing: int = 0
    highlights: list[tuple[str, str]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    linear: list[str] = field(default_factory=list)
    spearman: float | None = None
    kendall: float | None = None
    n: int = 0
    title: str = ""

    @property
    def correlation_text(self) -> str:
        """``Spearman ρ = 0.654, Kendall τ = 0.458 (240 runs)``."""
        def show(value: float | None) -> str:
            return "undefined" if value is None else f"{value:.3f}"

        return (f"Spearman ρ = {show(self.spearman)}, Kendall τ = {show(self.kendall)} "
                f"({self.n} runs)")

    def figure_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`xpcli.plots.scatter.scatter_figure`."""
        return {"table": self.table, "x": self.x, "y": self.y, "labels": self.labels,
                "color": self.color, "highlights": [(run, text) for text, run in
                                                    self.highlights],
                "log": self.log, "linear": self.linear, "title": self.title,
                "note": self.correlation_text}


def _axis(word: str, axes: Sequence[Axis], option: str) -> Axis:
    found = [a for a in axes if word in (a.column, a.label) or word in a.names]
    if not found:
        try:
            canonical = parse_metric_spec(word).canonical_text()
        except SpecError:
            canonical = word
        found = [a for a in axes if canonical in a.names]
    if len(found) != 1:
        names = ", ".join(a.column for a in found) or "nothing"
        raise UsageError(f"{option} {word}: names {names}; name one column, e.g. "
                         "f1:lang=de instead of f1:lang=*")
    return found[0]


def _which(word: str, option: str, run_columns: Sequence[str]) -> str:
    """``param`` or ``metric``: a run column is a param, anything else a metric spec."""
    if word in run_columns:
        if word == "run":
            raise UsageError(f"{option} run: the run id is not a number; name a param or "
                             "metric spec")
        return "param"
    try:
        spec = parse_metric_spec(word)
    except SpecError as exc:
        raise UsageError(f"{option} {word}: neither a param nor a metric spec ({exc})") from None
    if not spec.is_single:
        raise UsageError(f"{option} {word}: a scatter axis is one column; name one context "
                         "value, e.g. f1:lang=de")
    return "metric"


def scatter_table(
    dataset: Dataset,
    x: str,
    y: str,
    *,
    color: str | None = None,
    highlights: Sequence[str] = (),
    where: str | None = None,
    log: Sequence[str] = (),
    linear: Sequence[str] = (),
    xaxis: XChoice = "auto",
    notes: Notes | None = None,
) -> Scatter:
    """Build the table behind ``xp scatter`` (see the module docs).

    ``log``/``linear``: ``x`` and/or ``y`` (comma-separated allowed) forced to a log or
    linear scale; otherwise an axis whose positive values span two decades is drawn on a
    log scale. ``color``: a param or metric spec (default: no colour). ``xaxis``: the x
    that places ``at=N``/``at-max``/``at-min``; what the user should know is added to
    ``notes``.
    """
    x, y = x.strip(), y.strip()
    if x == y:
        raise UsageError(f"X and Y are both {x}; name two different columns")
    run_columns = dataset.runs.collect_schema().names()
    kinds = {word: _which(word, option, run_columns) for word, option in ((x, "X"), (y, "Y"))}
    params = [w for w in (x, y) if kinds[w] == "param"]
    metrics = [w for w in (x, y) if kinds[w] == "metric"]
    if metrics:
        names = set(dataset.points.select(pl.col("name").unique()).collect().to_series())
        for word, option in ((x, "X"), (y, "Y")):
            if kinds[word] == "metric" and parse_metric_spec(word).name not in names:
                known = [*(c for c in run_columns if c != "run"), *sorted(names)]
                raise UsageError(f"{option} {word}: neither a param nor a metric; "
                                 f"{did_you_mean(word, known)}")
    scales = {}
    for option, words in (("--log", log), ("--linear", linear)):
        chosen = split_list(words)
        wrong = [w for w in chosen if w not in ("x", "y")]
        if wrong:
            raise UsageError(f"{option} {wrong[0]}: name the axis x or y")
        scales[option] = chosen
    both = set(scales["--log"]) & set(scales["--linear"])
    if both:
        raise UsageError(f"--log and --linear both name {both.pop()}; pick one")
    pc = parcoords_table(dataset, params=params, metrics=metrics, where=where,
                         color=color if color is not None else "none",
                         highlights=list(highlights), x=xaxis, notes=notes)
    x_axis, y_axis = _axis(x, pc.axes, "X"), _axis(y, pc.axes, "Y")
    columns = list(dict.fromkeys(["run", x_axis.column, y_axis.column,
                                  *([pc.color] if pc.color else [])]))
    table = pc.table.select(columns)
    for option, axis in (("X", x_axis), ("Y", y_axis)):
        dtype = table.schema[axis.column]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise UsageError(f"{option} {axis.column}: holds {dtype} values, not numbers; "
                             f"compare its groups with xp group --by {axis.column}")
    xs, ys = table[x_axis.column], table[y_axis.column]
    both_ok = pl.DataFrame({"x": xs.cast(pl.Float64), "y": ys.cast(pl.Float64)}).select(
        (pl.col("x").is_finite() & pl.col("y").is_finite()).fill_null(False)).to_series()
    kept = table.filter(both_ok)
    xv = kept[x_axis.column].cast(pl.Float64).to_list()
    yv = kept[y_axis.column].cast(pl.Float64).to_list()
    labels = {**pc.labels, x_axis.column: x_axis.label, y_axis.column: y_axis.label}
    axis_columns = {"x": x_axis.column, "y": y_axis.column}
    return Scatter(
        table=table, x=x_axis.column, y=y_axis.column, labels=labels, color=pc.color,
        missing=table.height - kept.height, highlights=pc.highlights,
        log=[axis_columns[w] for w in scales["--log"]],
        linear=[axis_columns[w] for w in scales["--linear"]],
        spearman=spearman_rho(xv, yv), kendall=kendall_tau_b(xv, yv), n=kept.height,
        title=pc.title,
    )

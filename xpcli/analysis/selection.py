"""Model selection: what a selection rule picks, and what it costs on the targets.

A *selector* is a metric spec whose best run is the one a rule would ship
(``f1:lang=en@max``: the run best on English dev; ``lms_score``); a *target* is a metric
spec that says how good the shipped run really is (``f1:lang=*`` without English). For
every selector and target, :func:`selection_frame` reports

- ``run``: the run the selector picks (highest selector value; ``min:SPEC`` picks the
  lowest; ties go to the smallest run id; runs without a selector value never win),
  and ``selector_value``, its selector value;
- ``value``: that run's value on the target (null if it has none);
- ``oracle``, ``oracle_run``: the best target value over all runs, and its run;
- ``regret``: ``oracle - value`` (``value - oracle`` for a ``min:`` target): >= 0, 0 when
  the selector picks a best run;
- ``kendall_tau`` (tau-b, ties corrected) and ``spearman_rho`` (Pearson correlation of
  average ranks) between selector and target over the ``n`` runs that have both values.
  Both are oriented so that +1 means the selector orders runs exactly as the target does
  (a ``min:`` side is negated first). Undefined (null) with fewer than two runs or when
  either side is constant.

With two or more targets (all of the same direction) a row ``mean(targets)`` follows for
each selector: the per-run mean of the targets (null for a run that lacks one of them).
With ``by`` every group of runs is analysed separately.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from ..dataset import Dataset
from ..errors import UsageError, unknown_name
from ..spec.metric import Column, MetricSpec, expand
from .binning import bin_params
from .select import collect_points, parse_best, reduced_table, split_list
from .series_model import Notes, XChoice

if TYPE_CHECKING:
    from .select import Engine

__all__ = [
    "MEAN_TARGET",
    "Role",
    "exclude_columns",
    "kendall_tau_b",
    "selection",
    "selection_frame",
    "spearman_rho",
]

MEAN_TARGET = "mean(targets)"
Direction = Literal["best", "worst"]


@dataclass(frozen=True)
class Role:
    """A selector or target column and its direction (``best``: higher is better)."""

    label: str
    direction: Direction = "best"


# --------------------------------------------------------------------------------------
# Rank correlations (no SciPy: plain Python and Polars)
# --------------------------------------------------------------------------------------


def _finite_pairs(x: Iterable[float | None], y: Iterable[float | None]
                  ) -> list[tuple[float, float]]:
    return [
        (float(a), float(b))
        for a, b in zip(x, y, strict=True)
        if a is not None and b is not None and not math.isnan(a) and not math.isnan(b)
    ]


def _tied_pairs(sorted_values: Sequence[object]) -> int:
    """Pairs of equal values in a sorted sequence: sum of t(t-1)/2 over runs of ties."""
    total, run = 0, 1
    for i in range(1, len(sorted_values) + 1):
        if i < len(sorted_values) and sorted_values[i] == sorted_values[i - 1]:
            run += 1
        else:
            total += run * (run - 1) // 2
            run = 1
    return total


def _count_inversions(values: list[float]) -> tuple[list[float], int]:
    """Sort ``values`` (merge sort) and count pairs i < j with values[i] > values[j]."""
    if len(values) < 2:
        return values, 0
    mid = len(values) // 2
    left, a = _count_inversions(values[:mid])
    right, b = _count_inversions(values[mid:])
    merged: list[float] = []
    inversions = a + b
    i = j = 0
    while i < len(left) and j < len(right):
        if right[j] < left[i]:
            merged.append(right[j])
            inversions += len(left) - i
            j += 1
        else:
            merged.append(left[i])
            i += 1
    merged.extend(left[i:])
    merged.extend(right[j:])
    return merged, inversions


def kendall_tau_b(x: Iterable[float | None], y: Iterable[float | None]) -> float | None:
    """Kendall's tau-b of paired values, O(n log n) (Knight's algorithm).

    Pairs with a null or NaN on either side are dropped. tau-b = (C - D) /
    sqrt((P - Tx) (P - Ty)) with C/D concordant/discordant pairs, P all pairs, Tx/Ty the
    pairs tied in x/y. None when fewer than two pairs remain or either side is constant.
    """
    pairs = sorted(_finite_pairs(x, y))
    n = len(pairs)
    if n < 2:
        return None
    total = n * (n - 1) // 2
    tied_x = _tied_pairs([a for a, _ in pairs])
    tied_xy = _tied_pairs(pairs)
    # Sorted by (x, y), pairs tied in x are in y order, so every strict inversion of y is
    # a discordant pair, and pairs tied in y are never inversions.
    sorted_y, discordant = _count_inversions([b for _, b in pairs])
    tied_y = _tied_pairs(sorted_y)
    denominator = math.sqrt((total - tied_x) * (total - tied_y))
    if denominator == 0:
        return None
    return (total - tied_x - tied_y + tied_xy - 2 * discordant) / denominator


def spearman_rho(x: Iterable[float | None], y: Iterable[float | None]) -> float | None:
    """Spearman's rho: the Pearson correlation of the average ranks (ties share a rank).

    Pairs with a null or NaN on either side are dropped; None with fewer than two pairs
    or a constant side.
    """
    pairs = _finite_pairs(x, y)
    if len(pairs) < 2:
        return None
    frame = pl.DataFrame(pairs, schema={"x": pl.Float64, "y": pl.Float64}, orient="row")
    ranks = frame.select(pl.col("x").rank("average"), pl.col("y").rank("average"))
    dx = ranks["x"] - ranks["x"].mean()
    dy = ranks["y"] - ranks["y"].mean()
    sxx, syy = float((dx * dx).sum()), float((dy * dy).sum())
    if sxx == 0 or syy == 0:
        return None
    return float((dx * dy).sum()) / math.sqrt(sxx * syy)


# --------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------

_SCHEMA: dict[str, pl.DataType] = {
    "selector": pl.String(),
    "target": pl.String(),
    "run": pl.String(),
    "selector_value": pl.Float64(),
    "value": pl.Float64(),
    "oracle": pl.Float64(),
    "oracle_run": pl.String(),
    "regret": pl.Float64(),
    "kendall_tau": pl.Float64(),
    "spearman_rho": pl.Float64(),
    "n": pl.Int64(),
}


def _pick(frame: pl.DataFrame, label: str, direction: Direction) -> dict[str, Any] | None:
    ranked = frame.filter(pl.col(label).is_not_null() & pl.col(label).is_not_nan()).sort(
        [label, "run"], descending=[direction == "best", False]
    )
    return ranked.row(0, named=True) if ranked.height else None


def _one_group(frame: pl.DataFrame, selectors: Sequence[Role], targets: Sequence[Role]
               ) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for selector in selectors:
        picked = _pick(frame, selector.label, selector.direction)
        for target in targets:
            best = _pick(frame, target.label, target.direction)
            value = picked[target.label] if picked else None
            if value is not None and math.isnan(value):
                value = None
            oracle = best[target.label] if best else None
            regret = None
            if value is not None and oracle is not None:
                regret = oracle - value if target.direction == "best" else value - oracle
            sign = 1.0 if selector.direction == target.direction else -1.0
            xs = frame[selector.label].to_list()
            ys = [None if v is None else sign * v for v in frame[target.label].to_list()]
            rows.append({
                "selector": selector.label,
                "target": target.label,
                "run": picked["run"] if picked else None,
                "selector_value": picked[selector.label] if picked else None,
                "value": value,
                "oracle": oracle,
                "oracle_run": best["run"] if best else None,
                "regret": regret,
                "kendall_tau": kendall_tau_b(xs, ys),
                "spearman_rho": spearman_rho(xs, ys),
                "n": len(_finite_pairs(xs, ys)),
            })
    return rows


def selection_frame(frame: pl.DataFrame, selectors: Sequence[Role], targets: Sequence[Role],
                    by: Sequence[str] = ()) -> pl.DataFrame:
    """The selection table of a runs frame (``run`` + the selector and target columns).

    One row per (group, selector, target), plus ``mean(targets)`` rows when there are
    several targets of one direction; see the module docs for every column.
    """
    if not selectors or not targets:
        raise UsageError("selection needs at least one selector and one target")
    for name in (*by, *(r.label for r in (*selectors, *targets))):
        if name not in frame.columns:
            raise unknown_name("", "column", name, frame.columns)
    roles = list(targets)
    directions = {t.direction for t in targets}
    if len(targets) >= 2 and len(directions) == 1:
        labels = [t.label for t in targets]
        frame = frame.with_columns(
            pl.when(pl.all_horizontal(pl.col(c).is_not_null() & pl.col(c).is_not_nan()
                                      for c in labels))
            .then(pl.mean_horizontal(labels))
            .alias(MEAN_TARGET)
        )
        roles.append(Role(MEAN_TARGET, targets[0].direction))
    if not by:
        return pl.DataFrame(_one_group(frame, selectors, roles), schema=_SCHEMA)
    parts = []
    groups = frame.partition_by(list(by), as_dict=True, maintain_order=True)
    ordered = sorted(groups, key=lambda key: tuple((v is None, v) for v in key))
    for key in ordered:
        rows = _one_group(groups[key], selectors, roles)
        part = pl.DataFrame(rows, schema=_SCHEMA)
        parts.append(part.select(
            *[pl.lit(v, dtype=frame.schema[c]).alias(c) for c, v in zip(by, key)],
            pl.all(),
        ))
    return pl.concat(parts)


def exclude_columns(columns: Sequence[Column], patterns: Iterable[str]) -> list[Column]:
    """Drop columns whose context matches any ``KEY=GLOB`` pattern (``lang=en``, ``lang=z*``)."""
    rules = []
    for pattern in patterns:
        key, sep, glob = pattern.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--exclude {pattern!r}: expected KEY=VALUE, e.g. lang=en or lang=z*")
        rules.append((key.strip(), glob.strip()))
    kept = []
    for column in columns:
        context = dict(column.context)
        if any(k in context and fnmatch.fnmatchcase(context[k], g) for k, g in rules):
            continue
        kept.append(column)
    return kept


def _parse_roles(texts: str | Sequence[str] | None, option: str
                 ) -> list[tuple[str, MetricSpec, Direction]]:
    items = split_list(texts)
    if not items:
        raise UsageError(f"{option}: give at least one metric spec, e.g. {option} f1:lang=en@max")
    return [(item, *parse_best(item)) for item in items]


def _roles(parsed: Sequence[tuple[str, MetricSpec, Direction]], option: str,
           points: pl.DataFrame, exclude: Sequence[str] = ()) -> tuple[list[Role], list[Column]]:
    roles: list[Role] = []
    columns: list[Column] = []
    for item, spec, direction in parsed:
        expanded = expand([spec], points)
        kept = exclude_columns(expanded, exclude) if exclude else expanded
        if not kept:
            raise UsageError(f"{option} {item}: --exclude leaves no column "
                             f"(of {', '.join(c.label for c in expanded)})")
        for column in kept:
            if column.label not in {r.label for r in roles}:
                roles.append(Role(column.label, direction))
                columns.append(column)
    return roles, columns


def selection(
    dataset: Dataset,
    selectors: str | Sequence[str],
    targets: str | Sequence[str],
    *,
    exclude: str | Sequence[str] | None = None,
    by: str | Sequence[str] | None = None,
    where: str | None = None,
    x: XChoice = "auto",
    notes: Notes | None = None,
    engine: Engine | None = None,
) -> pl.DataFrame:
    """``xp selection``: reduce the selector and target specs per run, then
    :func:`selection_frame`.

    ``selectors``/``targets`` are metric-spec lists; an item prefixed ``min:`` (or
    ``worst:``) means lower is better. ``exclude`` (``KEY=GLOB`` items) drops target
    columns, e.g. ``lang=en`` from ``f1:lang=*``. ``where`` filters runs first. ``x``
    places ``at=N``/``at-max``/``at-min``; what the user should know is added to ``notes``.
    ``engine``: reduce and filter on Spark (:mod:`xpcli.spark`); the statistics over the
    runs (one row each) are computed here.
    """
    selector_specs = _parse_roles(selectors, "--selector")
    target_specs = _parse_roles(targets, "--target")
    points = collect_points(dataset, [s for _, s, _ in (*selector_specs, *target_specs)], where)
    selector_roles, selector_columns = _roles(selector_specs, "--selector", points)
    target_roles, target_columns = _roles(target_specs, "--target", points, split_list(exclude))
    by_list = list(dict.fromkeys(split_list(by)))
    table = reduced_table(dataset, [], columns=[*selector_columns, *target_columns],
                          where=where, points=points, x=x, notes=notes, engine=engine)
    frame, by_list = bin_params(table.frame, by_list)  # lr:log=5 -> lr, binned
    known = [c for c in table.frame.columns if c != "run" and c not in table.metrics]
    for name in by_list:
        if name not in known:
            raise unknown_name("--by", "param", name, known)
    return selection_frame(frame, selector_roles, target_roles, by_list)

"""Is a difference between groups of runs real? The table of ``xp compare``.

Runs are reduced to one number per metric column (the path of ``xp select``:
:func:`~xpcli.analysis.select.reduced_table`), grouped by ``by`` (like ``xp group``), and
every pair of groups is compared, or every group against a baseline group. Per pair
(group ``a`` against group ``b``, ``a`` first in group order or the non-baseline one) and
per metric column:

- ``n_a``, ``n_b``: the runs with a finite value (runs without one are left out and the
  ``note`` says how many);
- ``median_a``, ``median_b``, ``median_diff`` = median_a - median_b, ``mean_diff`` =
  mean_a - mean_b;
- ``ci_low``, ``ci_high``: the percentile bootstrap confidence interval (``level``, 0.95
  by default) of ``median_diff``, from ``resamples`` resamples (10,000 by default) drawn
  independently in each group with a generator seeded by ``seed`` and the group's and
  metric's names, so the same command gives the same interval, whatever other groups
  are present;
- ``p``: the two-sided Mann–Whitney U test (:func:`scipy.stats.mannwhitneyu`);
  ``p_holm``: ``p`` adjusted by Holm's method over every test in the table (all pairs
  and metrics), which keeps the chance of any false "difference" at 1 - level;
- ``delta``: Cliff's delta, P(a > b) - P(a < b) over all pairs of runs, in [-1, 1]
  (|delta| < 0.147 is usually called negligible, < 0.33 small, < 0.474 medium);
- ``verdict``: the answer in words, e.g. ``1e-5 > 3e-5, CI excludes 0`` (CI excludes 0
  and p_holm < 1 - level), ``1e-5 > 3e-5 by the CI only, p_holm >= 0.05`` (the CI and the
  corrected test disagree), ``unclear: CI includes 0, p_holm < 0.05`` (the other way
  round), ``no clear difference`` (the CI includes 0, p_holm >= 0.05);
- ``note``: what was left out, or why a statistic is missing (``n=1 in 3e-5``).

With ``paired_by`` (e.g. ``seed``, where every group ran the same seeds) the runs of the
two groups are matched on that param's value, and the pair statistics are those of the
per-pair differences a - b: ``median_diff`` is their median, the bootstrap resamples
pairs, and ``p`` is the Wilcoxon signed-rank test (:func:`scipy.stats.wilcoxon`, zero
differences dropped). ``n_a`` = ``n_b`` = the number of pairs; runs without a partner
are left out (counted in ``note``). Cliff's delta stays the unpaired one, over the paired
runs.

A group with fewer than two runs with a value gets no interval and no test (null), and
its rows say so: ``n=1 in 3e-5: no CI or test``. A test with no information (every value
equal) has a null ``p`` and a note saying so. Nothing is NaN.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from ..dataset import Dataset
from ..errors import UsageError, unknown_name
from ..output import format_number
from ..spec import parse_metric_specs
from .binning import bin_params
from .group import default_by
from .select import ReducedTable, reduced_table, split_list
from .series_model import Notes, XChoice
from .stats import (
    bootstrap_medians,
    cliffs_delta,
    finite,
    holm,
    mann_whitney_p,
    percentile_interval,
    wilcoxon_p,
)

__all__ = [
    "COLUMNS",
    "CompareResult",
    "check_params",
    "compare",
    "compare_runs",
    "group_label",
    "runs_with_metrics",
]

DEFAULT_RESAMPLES = 10_000

#: Machine columns of the result, in order.
COLUMNS: dict[str, Any] = {
    "metric": pl.String(),
    "a": pl.String(),
    "b": pl.String(),
    "n_a": pl.Int64(),
    "n_b": pl.Int64(),
    "median_a": pl.Float64(),
    "median_b": pl.Float64(),
    "median_diff": pl.Float64(),
    "mean_diff": pl.Float64(),
    "ci_low": pl.Float64(),
    "ci_high": pl.Float64(),
    "p": pl.Float64(),
    "p_holm": pl.Float64(),
    "delta": pl.Float64(),
    "verdict": pl.String(),
    "note": pl.String(),
}


@dataclass
class CompareResult:
    """What ``xp compare`` computed: ``table`` (the :data:`COLUMNS`), and how."""

    table: pl.DataFrame
    by: list[str]
    metrics: list[str]
    paired_by: str | None
    level: float
    resamples: int
    seed: int

    @property
    def tests(self) -> int:
        """How many tests Holm's correction ran over."""
        return int(self.table["p"].is_not_null().sum())

    @property
    def title(self) -> str:
        """One line: what the numbers are."""
        paired = f", paired by {self.paired_by}" if self.paired_by else ""
        what = "median of a - b" if self.paired_by else "median a - b"
        test = "Wilcoxon" if self.paired_by else "Mann–Whitney U"
        metric = f"{self.metrics[0]} " if len(self.metrics) == 1 else ""
        tests = f"{self.tests} test" + ("" if self.tests == 1 else "s")
        return (f"{metric}by {', '.join(self.by)}{paired}: {what}, {self.level:.0%} CI "
                f"(bootstrap, {self.resamples:,}, seed {self.seed}), {test}, Holm ({tests})")

    def compact(self) -> pl.DataFrame:
        """The view for people: ``n`` as ``n_a/n_b``, the difference and its CI in one
        cell, p_holm, delta and the verdict with its note (the metric only with several;
        the uncorrected p and the medians are in :attr:`table`). Long group labels (bins
        such as ``[1e-6, 6.694e-6)``) are written ``a``/``b`` in the verdict, which sits
        next to the ``a`` and ``b`` columns anyway."""
        rows = []
        ci_name = f"median_diff [{self.level:.0%} CI]"
        long_labels = any(len(label) > 8 for label in (*self.table["a"], *self.table["b"]))
        for row in self.table.iter_rows(named=True):
            diff = row["median_diff"]
            cell = "" if diff is None else format_number(diff)
            if row["ci_low"] is not None:
                cell += f" [{format_number(row['ci_low'])}, {format_number(row['ci_high'])}]"
            out = {"metric": row["metric"], "a": row["a"], "b": row["b"],
                   "n": f"{row['n_a']}/{row['n_b']}", ci_name: cell,
                   "p_holm": row["p_holm"], "delta": row["delta"], "verdict": row["verdict"]}
            for sign in ("<", ">"):
                named = f"{row['a']} {sign} {row['b']}"
                if long_labels and out["verdict"].startswith(named):
                    out["verdict"] = f"a {sign} b" + out["verdict"][len(named):]
            if row["note"]:
                out["verdict"] = f"{out['verdict']} ({row['note']})"
            rows.append(out)
        schema: dict[str, Any] = {"metric": pl.String(), "a": pl.String(), "b": pl.String(),
                                  "n": pl.String(), ci_name: pl.String(),
                                  "p_holm": pl.Float64(), "delta": pl.Float64(),
                                  "verdict": pl.String()}
        frame = pl.DataFrame(rows, schema=schema, orient="row")
        return frame.drop("metric") if len(self.metrics) == 1 else frame


def _value_text(value: Any) -> str:
    """A param value as a group label: ``3e-5``, ``0.1``, ``adam``, ``null``; exact (a
    float that 4 significant digits would round is written in full)."""
    if value is None:
        return "null"
    if isinstance(value, float):
        short = format_number(value)
        try:
            if float(short) == value:
                return short
        except ValueError:
            pass
        return repr(value)
    return format_number(value)


def group_label(by: Sequence[str], key: Sequence[Any]) -> str:
    """``3e-5`` for one ``by`` param, ``lr=3e-5, wd=0.1`` for several."""
    if len(by) == 1:
        return _value_text(key[0])
    return ", ".join(f"{name}={_value_text(v)}" for name, v in zip(by, key))


@dataclass
class _Group:
    label: str
    key: tuple[Any, ...]
    frame: pl.DataFrame


def _groups(frame: pl.DataFrame, by: Sequence[str]) -> list[_Group]:
    """The groups of ``frame`` by ``by``, ordered by their values (nulls last)."""
    indexed = frame.with_row_index("_row")
    keys = frame.select(by).unique().sort(list(by), nulls_last=True, maintain_order=True)
    parts = indexed.group_by(list(by), maintain_order=True).agg(pl.col("_row"))
    rows_of = {tuple(r[:-1]): r[-1] for r in parts.iter_rows()}
    groups = []
    for key in keys.iter_rows():
        rows = rows_of[tuple(key)]
        groups.append(_Group(group_label(by, key), tuple(key), frame[rows]))
    return groups


def _matches(text: str, group: _Group, by: Sequence[str], frame: pl.DataFrame) -> bool:
    wanted = text.strip()
    if wanted == group.label or wanted.replace(" ", "") == group.label.replace(" ", ""):
        return True
    if len(by) == 1 and frame.schema[by[0]].is_numeric() and group.key[0] is not None:
        try:
            number = float(wanted)
        except ValueError:
            return False
        return math.isclose(number, float(group.key[0]), rel_tol=1e-9, abs_tol=0.0)
    return len(by) == 1 and str(group.key[0]) == wanted


def _seeded(seed: int, *names: str) -> np.random.Generator:
    """A generator for one bootstrap, from the seed and stable names (not positions)."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def _paired_values(a: _Group, b: _Group, label: str, paired_by: str
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """The values of ``a`` and ``b`` matched on ``paired_by``, and the runs left over."""
    sides = []
    for group in (a, b):
        part = group.frame.select(paired_by, label).filter(
            pl.col(label).is_not_null() & pl.col(label).is_finite())
        counts = part.group_by(paired_by).len().filter(pl.col("len") > 1)
        if counts.height:
            value = counts.item(0, paired_by)
            raise UsageError(f"--paired-by {paired_by}: {counts.item(0, 'len')} runs of "
                             f"{group.label} have {paired_by}={_value_text(value)}; pairs "
                             "need one run per value in each group")
        sides.append(part)
    joined = sides[0].join(sides[1], on=paired_by, how="inner", suffix="_b", nulls_equal=False)
    va = joined[label].to_numpy().astype(np.float64)
    vb = joined[f"{label}_b"].to_numpy().astype(np.float64)
    left_over = sides[0].height + sides[1].height - 2 * joined.height
    return va, vb, left_over


def _pair_row(metric: str, a: _Group, b: _Group, *, paired_by: str | None, level: float,
              resamples: int, seed: int, draws: dict[str, np.ndarray]) -> dict[str, Any]:
    notes: list[str] = []
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(metric=metric, a=a.label, b=b.label)
    va = finite(a.frame[metric].to_numpy())
    vb = finite(b.frame[metric].to_numpy())
    for group, values in ((a, va), (b, vb)):
        missing = group.frame.height - values.size
        if missing:
            notes.append(f"{missing} of {group.frame.height} runs in {group.label} "
                         "have no value")
    if paired_by is not None:
        va, vb, left_over = _paired_values(a, b, metric, paired_by)
        if left_over:
            notes.append(f"{left_over} runs without a partner in {paired_by} left out")
    row.update(n_a=int(va.size), n_b=int(vb.size))
    if va.size == 0 or vb.size == 0:
        empty = a.label if va.size == 0 else b.label
        row["verdict"] = ("no pairs: not compared" if paired_by is not None
                          else f"no values in {empty}: not compared")
        row["note"] = "; ".join(notes) or None
        return row
    row.update(median_a=float(np.median(va)), median_b=float(np.median(vb)),
               delta=cliffs_delta(va, vb))
    if paired_by is None:
        row.update(median_diff=row["median_a"] - row["median_b"],
                   mean_diff=float(va.mean() - vb.mean()))
    else:
        differences = va - vb
        row.update(median_diff=float(np.median(differences)),
                   mean_diff=float(differences.mean()))
    small = [g.label for g, v in ((a, va), (b, vb)) if v.size < 2]
    if small:
        n = 1 if paired_by is None else va.size
        where = f"in {' and '.join(small)}" if paired_by is None else "pair"
        row["verdict"] = f"n={n} {where}: no CI or test"
        row["note"] = "; ".join(notes) or None
        return row
    if paired_by is None:
        for group, values in ((a, va), (b, vb)):
            if group.label not in draws:
                rng = _seeded(seed, metric, group.label)
                draws[group.label] = bootstrap_medians(values, resamples, rng)
        boot = draws[a.label] - draws[b.label]
        row["p"] = mann_whitney_p(va, vb)
    else:
        rng = _seeded(seed, metric, a.label, b.label)
        boot = bootstrap_medians(va - vb, resamples, rng)
        row["p"] = wilcoxon_p(va - vb)
    row["ci_low"], row["ci_high"] = percentile_interval(boot, level)
    if row["p"] is None:
        notes.append("every difference is 0: no test" if paired_by is not None
                     else "every value is the same: no test")
    row["note"] = "; ".join(notes) or None
    return row


def _verdict(row: dict[str, Any], level: float) -> str:
    alpha = 1.0 - level
    lo, hi, p_holm = row["ci_low"], row["ci_high"], row["p_holm"]
    significant = p_holm is not None and p_holm < alpha
    a, b = row["a"], row["b"]
    if lo > 0 or hi < 0:
        sign = ">" if lo > 0 else "<"
        if significant:
            return f"{a} {sign} {b}, CI excludes 0"
        return f"{a} {sign} {b} by the CI only, p_holm >= {alpha:g}"
    if significant:
        return f"unclear: CI includes 0, p_holm < {alpha:g}"
    return "no clear difference"


def compare_runs(frame: pl.DataFrame, metrics: Sequence[str], by: Sequence[str], *,
                 baseline: str | None = None, paired_by: str | None = None,
                 level: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0) -> pl.DataFrame:
    """Compare the groups of a runs frame (one row per run, as
    :func:`~xpcli.analysis.select.reduced_table` makes it) on each ``metrics`` column.

    Returns the :data:`COLUMNS` table, one row per metric and pair; see the module docs.
    """
    if not 0.0 < level < 1.0:
        raise UsageError(f"--ci {level:g}: a confidence level is between 0 and 1, e.g. 0.95")
    if resamples < 100:
        raise UsageError(f"--resamples {resamples}: use at least 100 (default 10,000)")
    if not by:
        raise UsageError("--by: name the param whose groups to compare, e.g. --by lr")
    for name in (*by, *metrics, *([paired_by] if paired_by else [])):
        if name not in frame.columns:
            raise unknown_name("", "column", name, frame.columns)
    if paired_by is not None and paired_by in by:
        raise UsageError(f"--paired-by {paired_by} is also in --by; pair on another param")
    groups = _groups(frame, by)
    if len(groups) < 2:
        only = groups[0].label if groups else "none"
        raise UsageError(f"--by {', '.join(by)}: only one group ({only}); nothing to compare")
    if baseline is not None:
        found = [g for g in groups if _matches(baseline, g, by, frame)]
        if not found:
            listed = ", ".join(g.label for g in groups[:20])
            raise UsageError(f"--baseline {baseline}: no such group of {', '.join(by)}; "
                             f"groups: {listed}")
        base = found[0]
        pairs = [(g, base) for g in groups if g is not base]
    else:
        pairs = [(groups[i], groups[j]) for i in range(len(groups))
                 for j in range(i + 1, len(groups))]
    rows = []
    for metric in metrics:
        draws: dict[str, np.ndarray] = {}
        for a, b in pairs:
            rows.append(_pair_row(metric, a, b, paired_by=paired_by, level=level,
                                  resamples=resamples, seed=seed, draws=draws))
    for row, adjusted in zip(rows, holm([row["p"] for row in rows])):
        row["p_holm"] = adjusted
        if row["ci_low"] is not None:
            row["verdict"] = _verdict(row, level)
    return pl.DataFrame(rows, schema=COLUMNS, orient="row")


def runs_with_metrics(dataset: Dataset, metrics: str | Sequence[str], verb: str, *,
                      where: str | None = None, x: XChoice = "auto",
                      notes: Notes | None = None) -> ReducedTable:
    """The runs table (params and meta) with ``metrics`` reduced per run, after
    ``where``; a clear error when no metric is named or no run is left. ``x`` places
    ``at=N``/``at-max``/``at-min``; what the user should know is added to ``notes``."""
    specs = parse_metric_specs(metrics) if metrics else []
    if not specs:
        raise UsageError(f"-m/--metrics: name the metric to {verb}, e.g. -m f1:lang=de@max")
    table = reduced_table(dataset, specs, where=where, x=x, notes=notes)
    if table.frame.is_empty():
        raise UsageError("no runs" + (f" match --where {where!r}" if where else "") +
                         f"; nothing to {verb}")
    return table


def check_params(table: ReducedTable, names: Sequence[str], option: str) -> None:
    """Raise a :class:`UsageError` naming ``option`` for a name that is no run column."""
    known = [c for c in table.frame.columns if c != "run" and c not in table.metrics]
    for name in names:
        if name not in known:
            raise unknown_name(option, "param", name, known)


def compare(
    dataset: Dataset,
    metrics: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    *,
    baseline: str | None = None,
    paired_by: str | None = None,
    where: str | None = None,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    x: XChoice = "auto",
    notes: Notes | None = None,
) -> CompareResult:
    """``xp compare``: reduce ``metrics`` per run, keep the runs matching ``where``, group
    by ``by`` (default: the params that vary, except seeds; ``lr:log=5`` groups by bins,
    :mod:`~xpcli.analysis.binning`) and compare the groups."""
    table = runs_with_metrics(dataset, metrics, "compare", where=where, x=x, notes=notes)
    by_list = list(dict.fromkeys(split_list(by)))
    if not by_list:
        by_list = default_by(dataset.runs.collect(), table.params)
    frame, by_list = bin_params(table.frame, by_list)  # lr:log=5 -> lr, binned
    check_params(table, by_list, "--by")
    if paired_by is not None:
        check_params(table, [paired_by], "--paired-by")
    result = compare_runs(frame, table.metrics, by_list, baseline=baseline,
                          paired_by=paired_by, level=level, resamples=resamples, seed=seed)
    return CompareResult(result, by_list, list(table.metrics), paired_by, level, resamples,
                         seed)

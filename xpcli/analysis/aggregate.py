"""Aggregate series across runs: per group and column, at each x, a centre, a band and n.

Input is a long series frame (:func:`xpcli.analysis.series.extract_series`: ``run``,
series keys, x, ``value``) and, for ``--by``, the runs table. Output is one row per
group, column and x: the group keys, the series keys, x, ``center``, ``low``, ``high``
and ``n``.

Each run's series arrives with one value per x, the last logged
(:func:`xpcli.analysis.series.extract_series`, the series model's alignment; the command
says on stderr how many points that discarded). With ``--x auto`` the columns may be on
different axes: the frame's x column is then ``x`` and ``x_axis`` names each one's.

Alignment (which runs a point aggregates):

- ``exact`` (default): a point at x aggregates the runs that logged exactly that x.
  Runs that stop early or skip an x simply do not count there (``n`` says how many did).
- ``interp``: each run is linearly interpolated onto a common grid per column - the
  sorted union of every run's x values when there are at most ``grid`` of them, else
  ``grid`` evenly spaced values from the smallest to the largest x - and counts only
  between its own first and last point: never extrapolated.

Values: only finite values count. NaN and inf are dropped before aligning (an
interpolated run bridges them), and ``n`` is the number of finite values behind a point.
Points with ``n < min_runs`` are dropped.

Centre: ``mean``, ``median``, ``min`` or ``max`` of the values at the point.

Band (``low``/``high``):

- ``minmax``: the smallest and largest value.
- ``qLO-qHI`` (``q25-q75``, ``q10-q90``): quantiles, linearly interpolated like numpy's
  default.
- ``std``: mean -/+ the sample standard deviation (ddof 1).
- ``sem``: mean -/+ the standard error of the mean, std / sqrt(n).
- ``ci95``: the 95% confidence interval of the mean, t-based: mean -/+ t(0.975, n-1) *
  sem, with Student's t quantile for n-1 degrees of freedom.

``std``, ``sem`` and ``ci95`` describe the mean, so they are centred on the mean whatever
the centre is; they are undefined for a single run, so ``low`` and ``high`` are null
where ``n == 1`` (the centre is still given).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from ..errors import UsageError
from .series import COLUMN

if TYPE_CHECKING:  # numpy is imported where it is used: not every command needs it
    import numpy as np

CENTERS = ("mean", "median", "min", "max")
BANDS = ("minmax", "std", "sem", "ci95", "qLO-qHI")
ALIGNS = ("exact", "interp")
DEFAULT_GRID = 200

_QUANTILE_RE = re.compile(r"q(\d+(?:\.\d+)?)-q(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Band:
    """A band kind (minmax, std, sem, ci95, quantile) and, for quantiles, its bounds."""

    kind: str
    lo: float = 0.0
    hi: float = 1.0

    @property
    def text(self) -> str:
        """The option text: ``minmax``, ``q25-q75``..."""
        if self.kind == "quantile":
            return f"q{self.lo * 100:g}-q{self.hi * 100:g}"
        return self.kind

    def describe(self) -> str:
        """For titles: ``min-max``, ``25-75% quantile``, ``t-based 95% CI of the mean``..."""
        return {
            "minmax": "min–max",
            "std": "mean ± std",
            "sem": "mean ± sem",
            "ci95": "t-based 95% CI of the mean",
        }.get(self.kind, f"{self.lo * 100:g}–{self.hi * 100:g}% quantile")


def parse_band(text: str) -> Band:
    """Parse ``--band``: minmax, std, sem, ci95 or qLO-qHI (``q25-q75``, 0 <= LO < HI <= 100)."""
    value = text.strip().lower()
    if value in ("minmax", "std", "sem", "ci95"):
        return Band(value)
    match = _QUANTILE_RE.fullmatch(value)
    if match:
        lo, hi = float(match.group(1)), float(match.group(2))
        if 0 <= lo < hi <= 100:
            return Band("quantile", lo / 100, hi / 100)
    raise UsageError(
        f"--band {text}: expected minmax, std, sem, ci95 or a quantile range qLO-qHI "
        "with 0 <= LO < HI <= 100, e.g. q25-q75"
    )


def default_center(band: Band) -> str:
    """The centre that goes with a band: the mean for std/sem/ci95 (they describe the
    mean), the median otherwise."""
    return "mean" if band.kind in ("std", "sem", "ci95") else "median"


def check_center(center: str) -> str:
    """Validate ``--center`` (mean, median, min, max)."""
    if center not in CENTERS:
        raise UsageError(f"--center {center}: expected one of {', '.join(CENTERS)}")
    return center


def check_options(center: str, band: Band | str, align: str, min_runs: int) -> Band:
    """Validate the options of :func:`aggregate` (either engine's): ``band`` parsed
    when it is text."""
    check_center(center)
    band = parse_band(band) if isinstance(band, str) else band
    if align not in ALIGNS:
        raise UsageError(f"--align {align}: expected one of {', '.join(ALIGNS)}")
    if min_runs < 1:
        raise UsageError(f"--min-runs {min_runs}: expected 1 or more")
    return band


# -- Student's t --------------------------------------------------------------------------


def _t_two_sided(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer ``df`` (Abramowitz & Stegun 26.7.3/4)."""
    theta = math.atan(t / math.sqrt(df))
    s, c = math.sin(theta), math.cos(theta)
    if df % 2 == 1:
        total, term = 0.0, 0.0
        if df > 1:
            term = c
            total = c
            for k in range(3, df - 1, 2):  # c + 2/3 c^3 + 2*4/(3*5) c^5 + ...
                term *= c * c * (k - 1) / k
                total += term
        return 2.0 / math.pi * (theta + s * total)
    term = 1.0
    total = 1.0
    for k in range(2, df - 1, 2):  # 1 + 1/2 c^2 + 1*3/(2*4) c^4 + ...
        term *= c * c * (k - 1) / k
        total += term
    return s * total


@functools.lru_cache(maxsize=4096)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (p > 0.5) of Student's t with ``df`` >= 1 degrees of freedom.

    Exact series up to 300 degrees of freedom, solved by bisection; beyond, the
    Cornish-Fisher expansion around the normal quantile (error far below 1e-9 there).
    """
    if df < 1 or not 0.5 < p < 1.0:
        raise ValueError("t_quantile needs df >= 1 and 0.5 < p < 1")
    target = 2.0 * p - 1.0
    if df > 300:
        z = _normal_quantile(p)
        g1 = (z**3 + z) / 4
        g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
        g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
        g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
        return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
    lo, hi = 0.0, 1.0
    while _t_two_sided(hi, df) < target:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_two_sided(mid, df) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


def _normal_quantile(p: float) -> float:
    """The standard normal quantile, by bisection on erf (only used for df > 300)."""
    lo, hi = 0.0, 10.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# -- alignment ----------------------------------------------------------------------------


def common_grid(xs: np.ndarray, grid: int = DEFAULT_GRID) -> np.ndarray:
    """The union of ``xs`` (sorted) if it has at most ``grid`` values, else an even grid."""
    import numpy as np

    values = np.unique(xs[np.isfinite(xs)])
    if len(values) <= grid:
        return values
    return np.linspace(values[0], values[-1], grid)


def interpolate(series: pl.DataFrame, keys: Sequence[str], x: str,
                grid: int = DEFAULT_GRID) -> pl.DataFrame:
    """Each run's series linearly interpolated onto a common grid per column.

    The grid of a column is :func:`common_grid` over every run's x values of it; a run
    gets a value only at grid points between its own first and last finite point (no
    extrapolation). Non-finite values are dropped first. Returns the same columns, with
    a Float64 x.
    """
    import numpy as np

    keys = list(keys)
    clean = (
        series.filter(pl.col("value").is_finite() & pl.col(x).is_not_null())
        .with_columns(pl.col(x).cast(pl.Float64))
        .sort([*keys, "run", x])
    )
    out: list[pl.DataFrame] = []
    for key_values, part in clean.group_by(keys, maintain_order=True):
        xs_all = part[x].to_numpy()
        points = common_grid(xs_all, grid)
        runs = part["run"].to_numpy()
        values = part["value"].to_numpy()
        # Row ranges of each run inside the part (sorted by run, then x).
        starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
        ends = np.r_[starts[1:], len(runs)]
        run_col: list[np.ndarray] = []
        x_col: list[np.ndarray] = []
        v_col: list[np.ndarray] = []
        for start, end in zip(starts, ends):
            xs, ys = xs_all[start:end], values[start:end]
            first = np.searchsorted(points, xs[0], side="left")
            last = np.searchsorted(points, xs[-1], side="right")
            where = points[first:last]
            if not len(where):
                continue
            run_col.append(np.full(len(where), runs[start], dtype=object))
            x_col.append(where)
            v_col.append(np.interp(where, xs, ys))
        if not run_col:
            continue
        frame = pl.DataFrame({
            "run": pl.Series(np.concatenate(run_col), dtype=pl.String),
            x: np.concatenate(x_col),
            "value": np.concatenate(v_col),
        })
        out.append(frame.with_columns(
            [pl.lit(v, dtype=series.schema[k]).alias(k) for k, v in zip(keys, key_values)]
        ).select("run", *keys, x, "value"))
    if not out:
        return clean.select("run", *keys, x, "value").clear()
    return pl.concat(out)


# -- aggregation --------------------------------------------------------------------------


def aggregate(
    series: pl.DataFrame | pl.LazyFrame | Sequence[pl.LazyFrame],
    keys: Sequence[str],
    x: str,
    *,
    runs: pl.DataFrame | pl.LazyFrame | None = None,
    by: Sequence[str] = (),
    center: str = "median",
    band: Band | str = "minmax",
    align: str = "exact",
    grid: int = DEFAULT_GRID,
    min_runs: int = 1,
    labels: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Centre, band and n per group (``by`` columns of ``runs``), series keys and x.

    Returns ``*by, *keys, x, center, low, high, n`` sorted by those keys and x (and
    ``x_axis`` after the keys when ``series`` has one: its columns are on different
    axes). See the module docs for alignment, bands and the n == 1 rule.

    ``series`` may be a lazy query (rows in any order), or one per column: with exact
    alignment they are aggregated one after the other as they stream, never held
    whole. A mean (the centre, or the std, sem and ci95 bands) adds up values in an
    order that follows the rows, so for it the series are collected and sorted by
    series keys, run and x first, as :func:`xpcli.analysis.series.extract_series` gives
    them: the same to the last bit. ``labels``: ``series`` has a column number
    (:data:`xpcli.analysis.series.COLUMN`) in place of the series keys, and ``labels``
    gives the keys of each number (grouping on a number is cheaper).
    """
    band = check_options(center, band, align, min_runs)
    keys, by = list(keys), list(by)
    parts: list[pl.DataFrame | pl.LazyFrame] = (
        list(series) if isinstance(series, Sequence) else [series])
    numbered = labels is not None and all(COLUMN in p.collect_schema().names() for p in parts)
    if numbered and align == "interp":
        assert labels is not None
        frame = pl.concat([p.lazy() for p in parts]).join(labels.lazy(), on=COLUMN,
                                                            how="left").collect()
        parts, numbered = [frame.select("run", *keys, x, "value")], False
    if "x_axis" in parts[0].collect_schema().names() and "x_axis" not in keys:
        keys.append("x_axis")  # columns on different axes (--x auto): x means each one's
    if align == "interp":
        frame = pl.concat([p.lazy() for p in parts]).collect()
        parts = [interpolate(frame, keys, x, grid)]
    table = None
    if by:
        if runs is None:
            raise UsageError("--by needs the runs table")
        table = runs.lazy().select("run", *by).collect()
    group = [*by, *keys, x]
    grouped = [*by, COLUMN, x] if numbered else group
    value = pl.col("value")
    means = center == "mean" or band.kind in ("std", "sem", "ci95")
    wanted = {"n", f"__{center}"} | {
        "minmax": {"__min", "__max"}, "quantile": {"__qlo", "__qhi"}}.get(
            band.kind, {"__mean", "__std"})
    aggs = [agg for agg in [
        pl.len().alias("n"),
        value.mean().alias("__mean"),
        value.median().alias("__median"),
        value.min().alias("__min"),
        value.max().alias("__max"),
        value.std(ddof=1).alias("__std"),
        value.quantile(band.lo, interpolation="linear").alias("__qlo"),
        value.quantile(band.hi, interpolation="linear").alias("__qhi"),
    ] if agg.meta.output_name() in wanted]
    if means:
        # Sums and squares add up in an order that follows the rows: the frame sorted by
        # series keys, run and x, as the general path gives it, and grouped at once.
        if numbered:
            assert labels is not None
            frame = pl.concat([p.lazy() for p in parts]).collect().join(
                labels, on=COLUMN, how="left").select("run", *keys, x, "value").sort(
                [*keys, "run", x], nulls_last=False)
            parts = [frame]
        whole = pl.concat([p.lazy() for p in parts]).collect()
        data_eager = whole.filter(pl.col("value").is_finite() & pl.col(x).is_not_null())
        if table is not None:
            data_eager = data_eager.join(table, on="run", how="left")
        result = data_eager.group_by(group).agg(aggs).filter(pl.col("n") >= min_runs)
    else:
        done = []
        for part in parts:  # one after the other: memory holds one part's points at most
            data = part.lazy().filter(pl.col("value").is_finite() & pl.col(x).is_not_null())
            if table is not None:
                data = data.join(table.lazy(), on="run", how="left")
            done.append(data.group_by(grouped).agg(aggs).filter(pl.col("n") >= min_runs)
                        .collect(engine="streaming"))
        result = pl.concat(done)
    if numbered and not means:
        assert labels is not None
        result = result.join(labels, on=COLUMN, how="left")
    n = pl.col("n").cast(pl.Float64)
    spread: pl.Expr | None = None
    if band.kind == "std":
        spread = pl.col("__std")
    elif band.kind == "sem":
        spread = pl.col("__std") / n.sqrt()
    elif band.kind == "ci95":
        dfs = sorted({int(v) - 1 for v in result["n"].unique().to_list() if v > 1})
        tq = pl.Series("__t", [t_quantile(0.975, d) for d in dfs], dtype=pl.Float64)
        t = (pl.col("n").cast(pl.Int64) - 1).replace_strict(
            pl.Series(dfs, dtype=pl.Int64), tq, default=None
        )
        spread = t * pl.col("__std") / n.sqrt()
    if band.kind == "minmax":
        low, high = pl.col("__min"), pl.col("__max")
    elif band.kind == "quantile":
        low, high = pl.col("__qlo"), pl.col("__qhi")
    else:
        assert spread is not None
        defined = pl.col("n") > 1
        low = pl.when(defined).then(pl.col("__mean") - spread)
        high = pl.when(defined).then(pl.col("__mean") + spread)
    return result.select(
        *group,
        pl.col(f"__{center}").alias("center"),
        low.cast(pl.Float64).alias("low"),
        high.cast(pl.Float64).alias("high"),
        pl.col("n").cast(pl.Int64),
    ).sort(group, nulls_last=True)


def describe_policy(x: str, align: str, min_runs: int = 1, grid: int = DEFAULT_GRID) -> str:
    """One line stating the alignment, for stderr and titles. ``x`` is the axis, or a
    phrase naming each column's (``order for acc; step for loss``)."""
    head, axis = (f"x={x}", x) if " " not in x else (f"x: {x}", "x")
    if align == "interp":
        text = (f"{head}, interpolated onto a common grid (the union of logged {axis} values, "
                f"at most {grid} points); a run counts only between its first and last point")
    else:
        text = f"{head}, exact alignment: a point aggregates the runs that logged that {axis}"
    if min_runs > 1:
        text += f"; points with fewer than {min_runs} runs dropped"
    return text


def runs_per_group(series: pl.DataFrame | pl.Series, runs: pl.DataFrame | pl.LazyFrame | None,
                   by: Sequence[str]) -> dict[tuple, int]:
    """Runs with any point in ``series`` (a series frame, or those runs' ids) per group
    of ``by`` (key tuple -> count)."""
    by = list(by)
    ids = series if isinstance(series, pl.Series) else series.get_column("run")
    present = ids.unique().alias("run").to_frame()
    if not by:
        return {(): present.height}
    if runs is None:
        raise UsageError("--by needs the runs table")
    table = runs.lazy().select("run", *by).collect()
    counts = present.join(table, on="run", how="left").group_by(by).agg(pl.len().alias("n"))
    return {tuple(row[:-1]): int(row[-1]) for row in counts.iter_rows()}

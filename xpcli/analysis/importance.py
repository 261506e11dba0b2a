"""Which params matter: how much of a metric's variance each param explains.

Runs are reduced to one number per metric column (the path of ``xp select``,
:func:`~xpcli.analysis.select.reduced_table`); runs without a finite value are left out
(and counted). Two methods:

``anova`` — a main-effects decomposition (NumPy least squares, SciPy's F distribution)
=====================================================================================

Every param is a factor (each distinct value a level; null is a level too). With SS the
sum of squares about the mean:

- a param's ``ss`` is how much the residual sum of squares of the additive model (every
  param's main effect, fitted by least squares) grows when that param is dropped from
  it ("type II" sums of squares); ``df`` its levels - 1;
- a pair's interaction ``A × B`` is how much the residual shrinks when the (A, B) cells
  are added to the additive model. A pair with one run per cell (``lr × seed`` when every
  (lr, seed) ran once) cannot be told from noise; it stays in the residual, and the
  residual's note says so;
- ``residual``: what the additive model with the separable interactions leaves;
- ``share`` = ss / total SS, the fraction of the metric's variance; ``f`` = (ss / df) /
  (residual ss / residual df) and ``p`` its F-test p-value (the F distribution's
  survival function, :func:`scipy.special.fdtrc`, which spares the import of
  :mod:`scipy.stats`): a param that does nothing (a seed) still gets a small share by
  chance, and ``p`` says whether it is more than chance.

On a balanced grid (every combination of values run equally often) these are the
classical two-way (n-way) ANOVA sums of squares: the shares of the params, the
interactions and the residual add up to 1. On an unbalanced design a param's share is
what it explains beyond the other params, and the shares need not add up to 1 (the
title says which case it is).

``forest`` — permutation importance of a random forest (scikit-learn, optional)
=============================================================================

For random-search sweeps, where a continuous param takes a new value in every run: a
:class:`sklearn.ensemble.RandomForestRegressor` is fitted in 5-fold cross-validation
(shuffled with ``seed``), and on each held-out fold every param is shuffled 5 times
(:func:`sklearn.inspection.permutation_importance`); ``r2_drop`` is the mean drop of the
held-out R² when that param is shuffled, ``sd`` its standard deviation over folds and
repeats, ``cv_r2`` the held-out R² of the forest itself (how much of the variance the
params explain together: the drops mean little when it is low). Held-out data, not the
training data, so a param the forest merely memorised (a seed) scores near 0. Numbers
and booleans are used as they are (trees are unaffected by a log scale), other values
as ordered codes. Install with ``pip install 'xpcli[importance]'``.

``auto`` picks ``forest`` when a param takes a different value in more than half of the
runs (a continuous param of a random search: a factor with that many levels leaves the
decomposition next to nothing to estimate the noise from), and ``anova`` otherwise (a
grid, seeds included, also with a crashed run or two). Binning a continuous param
(``lr:log=5``, see :mod:`xpcli.analysis.binning`) turns a random search into a design
``anova`` can decompose, without scikit-learn.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from ..dataset import Dataset
from ..errors import UsageError, unknown_name
from .binning import bin_params
from .compare import check_params, runs_with_metrics
from .select import split_list, varying_params
from .series_model import Notes, XChoice

__all__ = [
    "ANOVA_COLUMNS",
    "FOREST_COLUMNS",
    "METHODS",
    "ImportanceResult",
    "anova",
    "choose_method",
    "forest",
    "importance",
    "importance_runs",
]

Method = Literal["auto", "anova", "forest"]
METHODS = ("auto", "anova", "forest")
RESIDUAL = "residual"
FOREST_FOLDS = 5
FOREST_REPEATS = 5
FOREST_TREES = 100
MIN_FOREST_RUNS = 10

ANOVA_COLUMNS: dict[str, Any] = {
    "metric": pl.String(), "term": pl.String(), "df": pl.Int64(), "ss": pl.Float64(),
    "share": pl.Float64(), "f": pl.Float64(), "p": pl.Float64(), "note": pl.String(),
}
FOREST_COLUMNS: dict[str, Any] = {
    "metric": pl.String(), "term": pl.String(), "r2_drop": pl.Float64(),
    "sd": pl.Float64(), "cv_r2": pl.Float64(), "note": pl.String(),
}


@dataclass
class ImportanceResult:
    """What ``xp importance`` computed: ``table`` (:data:`ANOVA_COLUMNS` or
    :data:`FOREST_COLUMNS`), the method used, and what it was computed over."""

    table: pl.DataFrame
    method: Literal["anova", "forest"]
    metrics: list[str]
    params: list[str]
    runs: int
    balanced: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def value_column(self) -> str:
        """The column a bar chart draws: ``share`` (anova) or ``r2_drop`` (forest)."""
        return "share" if self.method == "anova" else "r2_drop"

    @property
    def title(self) -> str:
        """One line: the method and the design."""
        metric = f"{self.metrics[0]}: " if len(self.metrics) == 1 else ""
        if self.method == "anova":
            design = ("balanced: shares add up to 1" if self.balanced
                      else "unbalanced: type II shares need not add up to 1")
            return f"{metric}share of variance per param, {self.runs} runs ({design})"
        return (f"{metric}drop in held-out R² when a param is shuffled, random forest, "
                f"{FOREST_FOLDS}-fold, {self.runs} runs")


# --------------------------------------------------------------------------------------
# Factors
# --------------------------------------------------------------------------------------


def _codes(series: pl.Series) -> tuple[np.ndarray, int]:
    """Level codes 0..k-1 of a column (null is a level), in order of first appearance."""
    seen: dict[Any, int] = {}
    codes = np.empty(series.len(), dtype=np.int64)
    for i, value in enumerate(series.to_list()):
        key = repr(value)
        codes[i] = seen.setdefault(key, len(seen))
    return codes, len(seen)


Factor = tuple[np.ndarray, int]  # level codes 0..k-1 of every run, and k


def _cross(a: Factor, b: Factor) -> np.ndarray:
    """The (k_a x k_b) table of runs per pair of levels: X_a' X_b of the indicators."""
    (codes_a, levels_a), (codes_b, levels_b) = a, b
    counts = np.bincount(codes_a * levels_b + codes_b, minlength=levels_a * levels_b)
    return counts.reshape(levels_a, levels_b).astype(np.float64)


def _fit(y: np.ndarray, factors: Sequence[Factor]) -> tuple[float, int]:
    """Residual sum of squares and rank of the least-squares fit of ``y`` on an intercept
    and the level indicators of ``factors`` (every level observed at least once).

    The normal equations are solved with the factor of most levels absorbed: its block
    of X'X is diagonal (the runs per level), so only the Schur complement of the other
    columns, S = C - B' D^-1 B, is decomposed (:func:`numpy.linalg.eigh`; eigenvalues
    below 1e-9 of the largest are the design's redundancies, e.g. the intercept and a
    full set of indicators). Fitted values are sums of per-level effects, so the residual
    is computed directly, not as y'y - b'X'y.
    """
    n = y.size
    if not factors:
        residual = y - y.mean()
        return float(residual @ residual), 1
    big = max(range(len(factors)), key=lambda i: factors[i][1])
    absorbed = factors[big]
    others: list[Factor] = [(np.zeros(n, dtype=np.int64), 1),
                            *(f for i, f in enumerate(factors) if i != big)]
    counts = np.bincount(absorbed[0], minlength=absorbed[1]).astype(np.float64)
    sums = np.bincount(absorbed[0], weights=y, minlength=absorbed[1])
    cross = np.hstack([_cross(absorbed, f) for f in others])  # B: big x others
    gram = np.block([[_cross(f, g) for g in others] for f in others])  # C
    rhs = np.concatenate([np.bincount(c, weights=y, minlength=k) for c, k in others])
    schur = gram - cross.T @ (cross / counts[:, None])
    reduced = rhs - cross.T @ (sums / counts)
    values, vectors = np.linalg.eigh(schur)
    keep = values > 1e-9 * max(float(values.max()), 1.0)
    beta = vectors[:, keep] @ ((vectors[:, keep].T @ reduced) / values[keep])
    beta_big = (sums - cross @ beta) / counts
    fitted = beta_big[absorbed[0]]
    start = 0
    for codes, levels in others:
        fitted = fitted + beta[start:start + levels][codes]
        start += levels
    residual = y - fitted
    return float(residual @ residual), absorbed[1] + int(keep.sum())


def _pair_codes(a: np.ndarray, b: np.ndarray, levels_b: int) -> tuple[np.ndarray, int]:
    cells = a * levels_b + b
    _, codes = np.unique(cells, return_inverse=True)
    return codes, int(codes.max()) + 1


def is_balanced(factors: Sequence[tuple[np.ndarray, int]]) -> bool:
    """True when every combination of levels occurs, each equally often (a full grid)."""
    if not factors:
        return True
    cells = np.zeros(factors[0][0].size, dtype=np.int64)
    total = 1
    for codes, levels in factors:
        cells = cells * levels + codes
        total *= levels
    counts = np.unique(cells, return_counts=True)[1]
    return counts.size == total and bool(np.all(counts == counts[0]))


def anova(y: np.ndarray, factors: dict[str, pl.Series], interactions: bool = True
          ) -> tuple[list[dict[str, Any]], bool]:
    """The decomposition of ``y``'s variance over ``factors`` (see the module docs).

    Returns one row per param, per separable pair (``A × B``) and the residual, with
    ``term``, ``df``, ``ss``, ``share``, ``f``, ``p``, ``note`` (no ``metric``), params
    and pairs ordered by share, the residual last; and whether the design is balanced.
    """
    from scipy.special import fdtrc  # P(F(df1, df2) > f)

    n = y.size
    names = list(factors)
    coded = {name: _codes(series) for name, series in factors.items()}
    # A constant metric has nothing to explain (its mean's rounding is no variance).
    total = 0.0 if np.all(y == y[0]) else float(((y - y.mean()) ** 2).sum())
    rss_add, rank_add = _fit(y, [coded[name] for name in names])
    rows: list[dict[str, Any]] = []
    for name in names:
        rss, rank = _fit(y, [coded[other] for other in names if other != name])
        rows.append({"term": name, "df": rank_add - rank, "ss": max(rss - rss_add, 0.0),
                     "note": None})
    pairs: list[Factor] = []
    confounded: list[str] = []
    for a, b in itertools.combinations(names, 2) if interactions else ():
        codes, cells = _pair_codes(coded[a][0], coded[b][0], coded[b][1])
        term = f"{a} × {b}"
        if cells == n:  # one run per cell: the interaction is the residual
            confounded.append(term)
            continue
        rss, rank = _fit(y, [*(coded[name] for name in names), (codes, cells)])
        if rank - rank_add == 0:  # the cells add nothing the main effects do not hold
            continue
        if n - rank == 0:
            confounded.append(term)
            continue
        pairs.append((codes, cells))
        rows.append({"term": term, "df": rank - rank_add, "ss": max(rss_add - rss, 0.0),
                     "note": None})
    rss_full, rank_full = _fit(y, [*(coded[name] for name in names), *pairs])
    df_resid = n - rank_full
    for row in rows:
        row["share"] = row["ss"] / total if total > 0 else None
        row["f"] = row["p"] = None
        if row["df"] == 0 and coded.get(row["term"], (None, 2))[1] == 1:
            row["note"] = "one value: explains nothing"
        elif row["df"] == 0:
            row["note"] = "confounded: the other params already tell its values apart"
        elif df_resid > 0 and rss_full > 0:
            row["f"] = (row["ss"] / row["df"]) / (rss_full / df_resid)
            row["p"] = float(fdtrc(row["df"], df_resid, row["f"]))
        elif df_resid > 0:
            row["note"] = "no residual variance: no F test"
        else:
            row["note"] = "no residual degrees of freedom: no F test"
        if total == 0:
            row["note"] = "the metric is constant: nothing to explain"
    rows.sort(key=lambda r: -(r["share"] or 0.0))
    residual_note = (f"includes {', '.join(confounded)} (one run per cell)"
                     if confounded else None)
    rows.append({"term": RESIDUAL, "df": df_resid, "ss": rss_full,
                 "share": rss_full / total if total > 0 else None, "f": None, "p": None,
                 "note": residual_note})
    balanced = is_balanced([coded[name] for name in names])
    return rows, balanced


# --------------------------------------------------------------------------------------
# Random forest (scikit-learn)
# --------------------------------------------------------------------------------------


def _features(factors: dict[str, pl.Series]) -> np.ndarray:
    columns = []
    for series in factors.values():
        if series.dtype.is_numeric() or series.dtype == pl.Boolean:
            columns.append(series.cast(pl.Float64).fill_null(np.nan).to_numpy())
        else:
            values = series.cast(pl.String)
            order = {v: i for i, v in enumerate(sorted(values.drop_nulls().unique().to_list()))}
            columns.append(np.array([np.nan if v is None else order[v]
                                     for v in values.to_list()], dtype=np.float64))
    return np.column_stack(columns).astype(np.float64)


def forest(y: np.ndarray, factors: dict[str, pl.Series], seed: int = 0
           ) -> tuple[list[dict[str, Any]], float]:
    """Cross-validated permutation importance (see the module docs): one row per param
    (``term``, ``r2_drop``, ``sd``, ``note``), largest drop first, and the held-out R²."""
    try:
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.inspection import permutation_importance
        from sklearn.model_selection import KFold
    except ImportError:
        raise UsageError("--method forest needs scikit-learn: pip install 'xpcli[importance]' "
                         "(or bin continuous params, e.g. --params lr:log=5, for --method "
                         "anova)") from None
    if y.size < MIN_FOREST_RUNS:
        raise UsageError(f"--method forest: {y.size} runs with a value; it needs at least "
                         f"{MIN_FOREST_RUNS} (use --method anova)")
    features = _features(factors)
    folds = KFold(n_splits=FOREST_FOLDS, shuffle=True, random_state=seed)
    drops: list[np.ndarray] = []
    predicted = np.empty_like(y)
    for train, test in folds.split(features):
        model = RandomForestRegressor(n_estimators=FOREST_TREES, random_state=seed, n_jobs=1)
        model.fit(features[train], y[train])
        predicted[test] = model.predict(features[test])
        result = permutation_importance(model, features[test], y[test], scoring="r2",
                                        n_repeats=FOREST_REPEATS, random_state=seed)
        drops.append(result.importances)
    every = np.concatenate(drops, axis=1)  # params x (folds * repeats)
    total = float(((y - y.mean()) ** 2).sum())
    cv_r2 = 1.0 - float(((y - predicted) ** 2).sum()) / total if total > 0 else float("nan")
    rows: list[dict[str, Any]] = [
        {"term": name, "r2_drop": float(every[i].mean()), "sd": float(every[i].std()),
         "note": None} for i, name in enumerate(factors)]
    rows.sort(key=lambda r: -float(r["r2_drop"]))
    return rows, cv_r2


# --------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------


def _continuous(frame: pl.DataFrame, params: Sequence[str]) -> str | None:
    """The first param with more distinct values than half the runs, else None."""
    for name in params:
        if frame[name].n_unique() > frame.height / 2:
            return name
    return None


def choose_method(frame: pl.DataFrame, params: Sequence[str]) -> Literal["anova", "forest"]:
    """``forest`` when a param takes a different value in more than half of the runs (a
    continuous param of a random search), else ``anova`` (see the module docs)."""
    return "anova" if _continuous(frame, params) is None else "forest"


def importance_runs(frame: pl.DataFrame, metrics: Sequence[str], params: Sequence[str], *,
                    method: Method = "auto", interactions: bool = True,
                    seed: int = 0) -> ImportanceResult:
    """Importance of ``params`` for each ``metrics`` column of a runs frame (one row per
    run). ``method``: ``auto``, ``anova`` or ``forest`` (see the module docs)."""
    if method not in METHODS:
        raise UsageError(f"--method {method}: use one of {', '.join(METHODS)}")
    if not params:
        raise UsageError("--params: no param varies between the runs; nothing to explain")
    for name in (*params, *metrics):
        if name not in frame.columns:
            raise unknown_name("", "column", name, frame.columns)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    # One method for the whole table, so every metric's rows have the same columns.
    used = choose_method(frame, params) if method == "auto" else method
    balanced = True
    counted = 0
    for metric in metrics:
        present = frame.filter(pl.col(metric).is_not_null() & pl.col(metric).is_finite())
        if present.height < frame.height:
            notes.append(f"{metric}: {frame.height - present.height} of {frame.height} runs "
                         "have no value and are left out")
        if present.height < 2:
            raise UsageError(f"{metric}: {present.height} runs with a value; importance "
                             "needs at least 2")
        counted = max(counted, present.height)
        y = present[metric].to_numpy().astype(np.float64)
        factors = {name: present[name] for name in params}
        if used == "anova":
            part, is_bal = anova(y, factors, interactions)
            balanced = balanced and is_bal
        else:
            try:
                part, cv_r2 = forest(y, factors, seed)
            except UsageError as exc:
                if method != "auto":
                    raise
                raise UsageError(f"--method auto chose forest ({_continuous(frame, params)} "
                                 f"takes a different value in most runs): {exc}") from None
            for row in part:
                row["cv_r2"] = cv_r2
        rows += [{"metric": metric, **row} for row in part]
    schema = ANOVA_COLUMNS if used == "anova" else FOREST_COLUMNS
    table = pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema,
                         orient="row")
    return ImportanceResult(table, used, list(metrics), list(params), counted, balanced, notes)


def importance(
    dataset: Dataset,
    metrics: str | Sequence[str],
    params: str | Sequence[str] | None = None,
    *,
    where: str | None = None,
    method: Method = "auto",
    interactions: bool = True,
    seed: int = 0,
    x: XChoice = "auto",
    notes: Notes | None = None,
) -> ImportanceResult:
    """``xp importance``: reduce ``metrics`` per run, keep the runs matching ``where``,
    and explain each metric's variance by ``params`` (default: every param that varies,
    seeds included; ``lr:log=5`` uses bins of lr, :mod:`~xpcli.analysis.binning`)."""
    table = runs_with_metrics(dataset, metrics, "explain", where=where, x=x, notes=notes)
    param_list = list(dict.fromkeys(split_list(params)))
    if not param_list:
        param_list = varying_params(dataset.runs.collect(), table.params)
    frame, param_list = bin_params(table.frame, param_list, "--params")
    check_params(table, param_list, "--params")
    return importance_runs(frame, table.metrics, param_list, method=method,
                           interactions=interactions, seed=seed)

"""The benchmark's baselines as whole processes: one query, by pandas or by raw Polars.

Each reads one pre-flattened Parquet file of every point (context keys as columns, rows in
logging order) and one of params, answers one of the benchmark's queries and prints it as
CSV, as ``xp ... --format csv`` does, so every contender pays its own start-up, imports,
reading and printing.

Usage: python scripts/bench_baseline.py {floor,pandas} QUERY POINTS PARAMS [RUN]
QUERY: runs, median, best, series (RUN names the run), default, group.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def polars_queries(points: str, params: str, run: str) -> dict[str, Callable[[], Any]]:
    import polars as pl

    def f1() -> pl.LazyFrame:
        return pl.scan_parquet(points).filter(pl.col("name") == "f1")

    def runs() -> Any:
        best = f1().group_by("run", "lang").agg(pl.col("value").max()).collect()
        wide = best.pivot(on="lang", index="run", values="value")
        return pl.read_parquet(params).join(wide, on="run", how="left")

    def median() -> Any:
        return (f1().join(pl.scan_parquet(params), on="run")
                .group_by("lr", "lang", "epoch").agg(pl.col("value").median())
                .sort("lr", "lang", "epoch").collect())

    def best() -> Any:
        wide = (f1().group_by("run", "lang").agg(pl.col("value").max()).collect()
                .pivot(on="lang", index="run", values="value"))
        return wide.sort("en", descending=True, nulls_last=True).head(1)

    def series() -> Any:
        return f1().filter(pl.col("run") == run).sort("lang", "epoch").collect()

    def default() -> Any:
        # The last value (in logging order) of every metric in every context, per run.
        last = (pl.scan_parquet(points)
                .with_columns(pl.concat_str("name", "lang", "split", separator=":",
                                            ignore_nulls=True).alias("column"))
                .group_by("run", "column", maintain_order=True)
                .agg(pl.col("value").last()).collect())
        wide = last.pivot(on="column", index="run", values="value")
        return pl.read_parquet(params).join(wide, on="run", how="left")

    def group() -> Any:
        # Per lr: the number of runs, and the median, min and max over runs of each
        # language's best F1.
        best = (f1().group_by("run", "lang").agg(pl.col("value").max())
                .join(pl.scan_parquet(params), on="run")
                .group_by("lr", "lang")
                .agg(pl.len().alias("n"), pl.col("value").median().alias("median"),
                     pl.col("value").min().alias("min"), pl.col("value").max().alias("max"))
                .collect())
        return best.pivot(on="lang", index=["lr", "n"], values=["median", "min", "max"]
                          ).sort("lr")

    return {"runs": runs, "median": median, "best": best, "series": series,
            "default": default, "group": group}


def pandas_queries(points: str, params: str, run: str) -> dict[str, Callable[[], Any]]:
    import pandas as pd

    cols = ["run", "name", "lang", "epoch", "value"]

    def f1() -> Any:
        frame = pd.read_parquet(points, columns=cols)
        return frame[frame["name"] == "f1"]

    def runs() -> Any:
        wide = f1().pivot_table(index="run", columns="lang", values="value", aggfunc="max")
        return pd.read_parquet(params).merge(wide, left_on="run", right_index=True, how="left")

    def median() -> Any:
        frame = f1().merge(pd.read_parquet(params), on="run")
        return frame.groupby(["lr", "lang", "epoch"])["value"].median().reset_index()

    def best() -> Any:
        wide = f1().pivot_table(index="run", columns="lang", values="value", aggfunc="max")
        return wide.sort_values("en", ascending=False).head(1)

    def series() -> Any:
        frame = f1()
        return frame[frame["run"] == run].sort_values(["lang", "epoch"])

    def default() -> Any:
        frame = pd.read_parquet(points, columns=["run", "name", "lang", "split", "value"])
        column = frame["name"].str.cat(frame[["lang", "split"]].fillna(""), sep=":")
        frame = frame.assign(column=column.str.rstrip(":").str.replace("::", ":"))
        wide = frame.groupby(["run", "column"], sort=False)["value"].last().unstack()
        return pd.read_parquet(params).merge(wide, left_on="run", right_index=True, how="left")

    def group() -> Any:
        best = f1().groupby(["run", "lang"])["value"].max().reset_index()
        frame = best.merge(pd.read_parquet(params), on="run")
        stats = frame.groupby(["lr", "lang"])["value"].agg(["count", "median", "min", "max"])
        return stats.unstack("lang")

    return {"runs": runs, "median": median, "best": best, "series": series,
            "default": default, "group": group}


def main(argv: list[str]) -> None:
    if len(argv) not in (4, 5) or argv[0] not in ("floor", "pandas"):
        raise SystemExit(__doc__)
    kind, query, points, params = argv[:4]
    run = argv[4] if len(argv) == 5 else ""
    queries = (polars_queries if kind == "floor" else pandas_queries)(points, params, run)
    if query not in queries:
        raise SystemExit(f"unknown query {query!r}; one of {', '.join(queries)}")
    result = queries[query]()
    if kind == "floor":
        sys.stdout.write(result.write_csv())
    else:
        result.to_csv(sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])

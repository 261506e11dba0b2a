"""Benchmark: --engine spark (local) against the Polars engine, whole processes.

Over the reference story at 10,002 runs (``scripts/bench.py`` generates it as
``bench-data/runs-10000``), it times:

- ``xp compact --to``: writing the shared dataset, once;
- each query of :data:`QUERIES` as a whole ``xp`` process (Python start, the JVM and the
  Spark session for Spark; the xp cache already built for Polars), contenders
  interleaved (polars, spark, polars, spark, ...) after one warm-up round, median of
  ``--repeat`` rounds;
- the same queries inside one process whose Spark session is already up (what a query
  costs once the session is there, as in a notebook or a long-lived service).

Prints a Markdown table (docs/scale.md, "Spark") and the load average.

Usage: python scripts/bench_spark.py [--runs bench-data/runs-10000] [--repeat 2]
    [--out FOLDER] [--queries aggregate,aggregate ci95]

The dataset and the xp cache go beside the runs, or into ``--out`` (a runs folder that
must stay as it is).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
XP = [sys.executable, "-m", "xpcli"]

#: name -> arguments of the xp command (without --runs and the engine).
QUERIES: dict[str, list[str]] = {
    "select": ["select", "-m", "f1:lang=*@max", "--where", "lr <= 3e-5", "--sort",
               "-f1[lang=en]@max", "--top", "10"],
    "select median": ["select", "-m", "loss:split=train@median,f1:lang=en@median"],
    "group": ["group", "--by", "lr", "-m", "f1:lang=*@max", "--agg", "median,mean,std"],
    "selection": ["selection", "-s", "f1:lang=en@max,lms_score", "-t", "f1:lang=*",
                  "--exclude", "lang=en"],
    "aggregate": ["aggregate", "f1:lang=*", "--by", "lr"],
    "aggregate ci95": ["aggregate", "loss:split=train", "--by", "lr", "--band", "ci95"],
}


def run(args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one whole process."""
    start = time.perf_counter()
    done = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return wall


def in_session(dataset: Path, queries: dict[str, list[str]]) -> dict[str, float]:
    """Seconds per query inside one process, the Spark session already started."""
    from click.testing import CliRunner

    from xpcli.cli import cli

    runner = CliRunner()
    out = {}
    runner.invoke(cli, [*QUERIES["select"], "--runs", str(dataset), "--engine", "spark",
                        "--format", "csv"])  # starts the session
    for name, args in queries.items():
        start = time.perf_counter()
        result = runner.invoke(cli, [*args, "--runs", str(dataset), "--engine", "spark",
                                     "--format", "csv"])
        out[name] = time.perf_counter() - start
        assert result.exit_code == 0, result.output
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=str(ROOT / "bench-data" / "runs-10000"))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default=None,
                        help="where the dataset and the cache go (default: beside --runs)")
    parser.add_argument("--queries", default=",".join(QUERIES),
                        help="comma-separated names of QUERIES (default: all)")
    opts = parser.parse_args()
    runs = Path(opts.runs)
    out = Path(opts.out) if opts.out else runs.parent
    queries = {name: QUERIES[name] for name in opts.queries.split(",")}
    dataset = out / f"dataset-{runs.name}"
    env = {**os.environ, "XP_CACHE_DIR": str(out / "cache-spark-bench")}
    # The Polars engine reads the xp cache; build it first (not timed here).
    run(XP + ["runs", "--runs", str(runs), "--format", "csv", "-q"], env)
    compact_s = run(XP + ["compact", "--runs", str(runs), "--to", str(dataset), "-q"], env)
    print(f"xp compact --to: {compact_s:.1f} s", flush=True)
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(opts.repeat + 1):
        for name, args in queries.items():
            for engine in ("polars", "spark"):
                extra = ["--runs", str(runs)] if engine == "polars" else [
                    "--runs", str(dataset), "--engine", "spark"]
                wall = run(XP + args + extra + ["--format", "csv"], env)
                if round_:  # round 0 warms the page cache
                    times.setdefault((name, engine), []).append(wall)
                print(f"round {round_} {name} {engine}: {wall:.1f} s", flush=True)
    os.environ.update(env)
    session = in_session(dataset, queries)
    print("\n| query | Polars (whole process) | Spark local (whole process) | "
          "Spark, session already up |")
    print("|---|---:|---:|---:|")
    for name in queries:
        cells = []
        for engine in ("polars", "spark"):
            cells.append(f"{statistics.median(times[(name, engine)]):.1f} s")
        print(f"| {name} | {cells[0]} | {cells[1]} | {session[name]:.1f} s |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Benchmark: xp against a plain pandas script and the raw-Polars floor, at scale.

Generates the reference story (5 languages x 60 epochs of F1, 10 loss points per epoch)
at 240, 2,400 and 10,000 runs through the public writer, then times four queries:

- runs:   the runs table (lr, seed, max F1 per language)
- median: median F1 per lr per language per epoch
- best:   the run best on English (max F1) with its F1 on every language
- series: one run's F1 series

each measured as

- xp cold:  the command end to end on fresh JSONL (empty cache)
- xp warm:  the same command again (JSONL parsed once, served from xp's cache)
- library:  the same command in-process, imports done and cache warm
- pandas:   a plain pandas script over one Parquet file of all points
- floor:    raw Polars over that same Parquet file (the floor)

plus peak memory (max RSS) of each xp process, the cold JSONL parse rate, the
``Run.track`` rate, and ``xp --help``. Results go to ``docs/benchmarks.md``, with ratios
from this one run (machines are noisy; compare within a run, not across runs).

Usage: python scripts/bench.py [--sizes 240,2400,10000] [--data DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from reference_story import LEARNING_RATES, generate  # noqa: E402

XP = [sys.executable, "-m", "xpcli"]
REPEAT = 3


def queries(best_en: str) -> dict[str, list[str]]:
    """The xp command (arguments after ``xp``) for each query."""
    return {
        "runs": ["select", "-p", "lr,seed", "-m", "f1:lang=*@max", "--format", "csv"],
        "median": ["aggregate", "f1:lang=*", "--by", "lr", "--center", "median",
                   "--format", "csv"],
        "best": ["select", "--best", "f1:lang=en@max", "-m", "f1:lang=*@max", "-p", "lr,seed",
                 "--format", "csv"],
        "series": ["curves", "f1:lang=*", "--where", f"run == '{best_en}'", "--format", "csv"],
    }


# -- measuring -------------------------------------------------------------------------


TIME = shutil.which("time") or "/usr/bin/time"


def run_process(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and max RSS (MB) of one process; fails loudly on a non-zero exit.

    The RSS comes from GNU time's report on its child: ``ru_maxrss`` of a child started
    from this (large) process would include the memory it inherited at fork."""
    report = tempfile.NamedTemporaryFile(prefix="xp-bench-rss-", delete=False)
    report.close()
    wrapped = [TIME, "-f", "%M", "-o", report.name, *args] if os.path.exists(TIME) else args
    start = time.perf_counter()
    proc = subprocess.run(wrapped, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(args)}\n{err[-2000:]}")
    try:
        rss = int(Path(report.name).read_text().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        rss = float("nan")
    finally:
        os.unlink(report.name)
    return wall, rss


def best_of(func: Callable[[], Any], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def in_process(args: list[str]) -> None:
    from xpcli.cli import cli

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cli.main(args=args, prog_name="xp", standalone_mode=False)


# -- the baselines ---------------------------------------------------------------------


def flatten(runs_dir: Path, target: Path) -> tuple[Path, Path, int]:
    """One Parquet file of every point (context keys as columns) and one of params."""
    import polars as pl

    import xpcli

    ds = xpcli.load(runs_dir)
    points = target / "points.parquet"
    params = target / "params.parquet"
    ds.points.collect().write_parquet(points)
    ds.runs.select("run", "lr", "seed").collect().write_parquet(params)
    n = pl.scan_parquet(points).select(pl.len()).collect().item()
    return points, params, n


def polars_queries(points: Path, params: Path, run: str) -> dict[str, Callable[[], Any]]:
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

    return {"runs": runs, "median": median, "best": best, "series": series}


def pandas_queries(points: Path, params: Path, run: str) -> dict[str, Callable[[], Any]]:
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

    return {"runs": runs, "median": median, "best": best, "series": series}


# -- one size --------------------------------------------------------------------------


def seeds_for(n_runs: int) -> int:
    return max(1, round(n_runs / len(LEARNING_RATES)))


def bench_size(n_runs: int, data: Path) -> dict[str, Any]:
    import polars as pl

    import xpcli
    from xpcli.analysis.select import select_runs  # noqa: F401  (fails early if missing)

    seeds = seeds_for(n_runs)
    runs_dir = data / f"runs-{n_runs}"
    result: dict[str, Any] = {"runs": seeds * len(LEARNING_RATES)}
    if not runs_dir.exists():
        start = time.perf_counter()
        generate(runs_dir, seeds=seeds)
        result["generate_s"] = time.perf_counter() - start
    size = sum(p.stat().st_size for p in runs_dir.iterdir())
    result["jsonl_mb"] = size / 1e6
    cache_root = Path(tempfile.mkdtemp(prefix="xp-bench-cache-"))
    env = {**os.environ, "XP_RUNS": str(runs_dir)}
    try:
        # Cold parse rate, in-process: a fresh cache folder, then load and count.
        os.environ["XP_CACHE_DIR"] = str(cache_root / "parse")
        start = time.perf_counter()
        ds = xpcli.load(runs_dir)
        n_points = ds.points.select(pl.len()).collect().item()
        result["parse_s"] = time.perf_counter() - start
        result["points"] = n_points
        best_en = (ds.points.filter(pl.col("name") == "f1", pl.col("lang") == "en")
                   .group_by("run").agg(pl.col("value").max()).sort("value", "run",
                                                                    descending=[True, False])
                   .head(1).collect().item(0, "run"))
        os.environ["XP_CACHE_DIR"] = str(cache_root / "warm")
        xpcli.load(runs_dir)  # warm the cache used by the in-process calls
        flat = Path(tempfile.mkdtemp(prefix="xp-bench-flat-"))
        points, params, _ = flatten(runs_dir, flat)
        floors = polars_queries(points, params, best_en)
        pandas = pandas_queries(points, params, best_en)
        rows = {}
        for name, args in queries(best_en).items():
            cold_env = {**env, "XP_CACHE_DIR": str(cache_root / f"cold-{name}")}
            cold, cold_rss = run_process(XP + args, cold_env)
            warm_env = {**env, "XP_CACHE_DIR": str(cache_root / "warm")}
            warm, warm_rss = min(run_process(XP + args, warm_env) for _ in range(REPEAT))
            in_process(["--runs", str(runs_dir), *args])  # imports and first-call costs
            library = best_of(lambda a=args: in_process(["--runs", str(runs_dir), *a]))
            rows[name] = {
                "cold": cold, "cold_rss": cold_rss, "warm": warm, "warm_rss": warm_rss,
                "library": library, "pandas": best_of(pandas[name]),
                "floor": best_of(floors[name]),
            }
        result["queries"] = rows
        parcoords_args = ["parcoords", "--params", "lr,seed", "--metrics", "f1:lang=*",
                          "--highlight", "best:f1:lang=en"]
        result["parcoords"] = {}
        for suffix in ("png", "svg"):
            out = flat / f"p.{suffix}"
            warm_env = {**env, "XP_CACHE_DIR": str(cache_root / "warm")}
            wall, rss = run_process(XP + parcoords_args + ["-o", str(out)], warm_env)
            result["parcoords"][suffix] = (wall, rss)
        shutil.rmtree(flat, ignore_errors=True)
    finally:
        os.environ.pop("XP_CACHE_DIR", None)
        shutil.rmtree(cache_root, ignore_errors=True)
    return result


def bench_track(points: int = 1_000_000) -> float:
    """``Run.track`` points per second in one process (with a context, to a real file)."""
    from xpcli import Run

    folder = Path(tempfile.mkdtemp(prefix="xp-bench-track-"))
    try:
        run = Run(folder, "bench", params={"lr": 1e-4})
        start = time.perf_counter()
        for i in range(points):
            run.track(0.5, name="f1", step=i, epoch=i // 100, context={"lang": "de"})
        run.close()
        return points / (time.perf_counter() - start)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_help() -> float:
    return min(run_process(XP + ["--help"], dict(os.environ))[0] for _ in range(5))


# -- report ------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    import polars as pl

    return (f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores{mem}; "
            f"Python {platform.python_version()}, Polars {pl.__version__}")


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def report(results: dict[int, dict[str, Any]], track: float, help_s: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`scripts/bench.py`); every figure below comes from one run on",
        "the machine named here, so compare ratios within this page, not across machines.",
        "",
        f"Machine: {machine()}.",
        f"Date: {time.strftime('%Y-%m-%d')}.",
        "",
        "Data: the reference story (5 languages x 60 epochs of F1, 10 loss points per epoch, one",
        "`lms_score`), written as one JSONL file per run through `xpcli.Run`.",
        "",
        "- **xp cold**: the command end to end on fresh JSONL, empty cache (includes parsing",
        "  the JSONL and writing the cache).",
        "- **xp warm**: the same command again: JSONL parsed once, served from the cache.",
        "- **library**: the same command in-process (imports done, cache warm).",
        "- **pandas**: a plain pandas script over one Parquet file of all points.",
        "- **floor**: raw Polars over that same Parquet file.",
        "",
        f"`Run.track`: {track:,.0f} points/s in one process. `xp --help`: {fmt_s(help_s)}.",
        "",
    ]
    for res in results.values():
        lines += [
            f"## {res['runs']:,} runs ({res['points']:,} points, "
            f"{res['jsonl_mb']:.0f} MB of JSONL)",
            "",
            f"Cold parse of the JSONL (in-process `xpcli.load`, empty cache): "
            f"{fmt_s(res['parse_s'])}, {res['points'] / res['parse_s'] / 1e6:.2f} M points/s.",
            "",
            "| query | xp cold | xp warm | library | pandas | floor | warm / floor | "
            "pandas / warm | peak RSS warm (cold) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, q in res["queries"].items():
            lines.append(
                f"| {name} | {fmt_s(q['cold'])} | {fmt_s(q['warm'])} | {fmt_s(q['library'])} | "
                f"{fmt_s(q['pandas'])} | {fmt_s(q['floor'])} | "
                f"{q['warm'] / q['floor']:.1f}x | {q['pandas'] / q['warm']:.2f}x | "
                f"{q['warm_rss']:.0f} MB ({q['cold_rss']:.0f} MB) |"
            )
        pc = res["parcoords"]
        lines += [
            "",
            f"`xp parcoords --params lr,seed --metrics 'f1:lang=*' --highlight best:f1:lang=en`, "
            f"warm: PNG {fmt_s(pc['png'][0])} ({pc['png'][1]:.0f} MB), "
            f"SVG {fmt_s(pc['svg'][0])} ({pc['svg'][1]:.0f} MB).",
            "",
        ]
    lines += [
        "The xp commands: "
        + "; ".join(f"{k}: `xp {' '.join(v)}`" for k, v in queries("RUN").items()) + ".",
        "",
        "Aim and MLflow on the same queries: [benchmarks-peers.md](benchmarks-peers.md).\n",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="240,2400,10000")
    parser.add_argument("--data", default=os.environ.get("XP_BENCH_DATA", "bench-data"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    results = {}
    for n in (int(s) for s in args.sizes.split(",")):
        print(f"bench: {n} runs ...", file=sys.stderr, flush=True)
        results[n] = bench_size(n, data)
    track = bench_track()
    help_s = bench_help()
    text = report(results, track, help_s)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

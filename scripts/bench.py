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
``Run.track`` rate, ``xp --help``, the statistics commands (``xp compare`` with and
without pairing, ``xp importance``) warm and in-process, and ``xp import tensorboard`` on
a generated folder of Keras-shaped event files (1 M scalar points with HParams). Results
go to ``docs/benchmarks.md``, with ratios from this one run (machines are noisy; compare
within a run, not across runs).

The other importers (DVCLive, plain tables, Optuna, Aim) are timed on sources written
with each format's own layout or library (``--only interop`` runs them alone).

Usage: python scripts/bench.py [--sizes 240,2400,10000] [--data DIR] [--out FILE]
       python scripts/bench.py --only tensorboard   (that case alone; its section of
                                                     --out is replaced in place)
       python scripts/bench.py --only stats [--sizes 2400]   (the same for xp compare
                                                     and xp importance)
       python scripts/bench.py --only interop       (likewise)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
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


def stats_queries() -> dict[str, list[str]]:
    """The statistics commands: no pandas or Polars baseline does what they do."""
    compare = ["compare", "-m", "f1:lang=de@max", "--by", "lr", "--format", "csv"]
    return {
        "compare": compare,
        "compare --paired-by seed": [*compare, "--paired-by", "seed"],
        "importance": ["importance", "-m", "f1:lang=de@max", "--params", "lr,seed",
                       "--format", "csv"],
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


TB_RUNS, TB_EPOCHS = 100, 1000
TB_TAGS = ("epoch_loss", "epoch_accuracy", "epoch_auc", "epoch_precision", "epoch_recall")
TB_GRAPH_BYTES = 100_000


def make_tensorboard_logs(folder: Path, runs: int = TB_RUNS, epochs: int = TB_EPOCHS) -> int:
    """Keras-shaped TensorBoard logs, written with the tensorboard package's own writer.

    Per run, as Keras' TensorBoard and HParams callbacks write them: an HParams
    ``session_start_info`` event in the run folder, and ``train/`` and ``validation/``
    folders of TF2 tensor scalars (float32 ``tensor_content``, the scalars plugin's
    metadata on every value), one event per value; ``train/`` starts with the model graph.
    Returns the number of scalar points written.
    """
    import math
    import struct

    from tensorboard.compat.proto import (
        event_pb2,
        summary_pb2,
        tensor_pb2,
        tensor_shape_pb2,
        types_pb2,
    )
    from tensorboard.plugins.hparams import summary_v2 as hp
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    graph = bytes(range(256)) * (TB_GRAPH_BYTES // 256)
    points = 0
    for r in range(runs):
        run = folder / f"run_{r:03d}"
        writer = EventFileWriter(str(run))
        hparams = {"lr": (1e-4, 3e-4, 1e-3)[r % 3], "units": 64 * (1 + r % 4),
                   "optimizer": ("adam", "sgd")[r % 2]}
        writer.add_event(event_pb2.Event(summary=hp.hparams_pb(hparams), wall_time=1.7e9))
        writer.close()
        for split in ("train", "validation"):
            writer = EventFileWriter(str(run / split))
            if split == "train":
                writer.add_event(event_pb2.Event(graph_def=graph, wall_time=1.7e9))
            for epoch in range(epochs):
                for k, tag in enumerate(TB_TAGS):
                    value = math.exp(-epoch / epochs) + 0.001 * ((r * 7 + epoch + k) % 13)
                    tensor = tensor_pb2.TensorProto(
                        dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                        tensor_content=struct.pack("<f", value))
                    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
                        tag=tag, tensor=tensor, metadata=meta)])
                    writer.add_event(event_pb2.Event(summary=summary, step=epoch,
                                                     wall_time=1.7e9 + r * epochs + epoch))
                    points += 1
            writer.close()
    return points


def cpu_of_children() -> float:
    """User + system CPU seconds of every child process that has ended so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_stats(data: Path, sizes: list[int]) -> dict[str, Any]:
    """The statistics commands on each size's runs (written if missing), warm: the best
    of REPEAT processes (wall, its CPU time, peak RSS), and in-process."""
    rows = []
    cache = Path(tempfile.mkdtemp(prefix="xp-bench-stats-"))
    try:
        for n_runs in sizes:
            seeds = seeds_for(n_runs)
            runs_dir = data / f"runs-{n_runs}"
            if not runs_dir.exists():
                generate(runs_dir, seeds=seeds)
            env = {**os.environ, "XP_RUNS": str(runs_dir),
                   "XP_CACHE_DIR": str(cache / str(n_runs))}
            run_process(XP + ["metrics", "--format", "csv"], env)  # parse once: warm
            for name, args in stats_queries().items():
                best: tuple[float, float, float] | None = None
                for _ in range(REPEAT):
                    before = cpu_of_children()
                    wall, rss = run_process(XP + args, env)
                    measured = (wall, cpu_of_children() - before, rss)
                    best = measured if best is None or measured[0] < best[0] else best
                assert best is not None
                os.environ["XP_CACHE_DIR"] = env["XP_CACHE_DIR"]
                command = ["--runs", str(runs_dir), *args]
                try:
                    in_process(command)  # imports and first-call costs
                    library = best_of(lambda c=command: in_process(c))
                finally:
                    os.environ.pop("XP_CACHE_DIR", None)
                rows.append({"runs": seeds * len(LEARNING_RATES), "name": name,
                             "wall": best[0], "cpu": best[1], "rss": best[2],
                             "library": library})
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {"rows": rows, "date": time.strftime("%Y-%m-%d"),
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")}


STATS_HEADING = "## Statistics: xp compare and xp importance"


def stats_section(stats: dict[str, Any]) -> list[str]:
    lines = [
        STATS_HEADING,
        "",
        "Warm (the runs parsed once): the best of three processes end to end, with that "
        "process's CPU time (user + system; on a busy machine the wall time waits for a core, "
        "the CPU time does not), and the same command in-process (imports done). "
        "`compare` draws 10,000 bootstrap resamples per group (15 pairs of 6 learning rates); "
        "`importance` is the ANOVA of lr and seed.",
        "",
        "| runs | command | xp warm | CPU time | library | peak RSS |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in stats["rows"]:
        lines.append(f"| {row['runs']:,} | {row['name']} | {fmt_s(row['wall'])} | "
                     f"{fmt_s(row['cpu'])} | {fmt_s(row['library'])} | {row['rss']:.0f} MB |")
    lines += ["", f"Measured {stats['date']}, load average {stats['load']:.1f} at the end. "
              "The commands: " + "; ".join(f"{k}: `xp {' '.join(v)}`"
                                            for k, v in stats_queries().items()) + ".", ""]
    return lines


def bench_tensorboard(data: Path) -> dict[str, Any]:
    """``import_runs('tensorboard', ...)`` in-process on the generated folder, timed once."""
    from xpcli.importers import import_runs

    folder = data / f"tensorboard-{TB_RUNS}x{TB_EPOCHS}"
    done = folder / ".complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        print("bench: writing the TensorBoard logs (once) ...", file=sys.stderr, flush=True)
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(str(make_tensorboard_logs(folder)))
    size = sum(p.stat().st_size for p in folder.rglob("*tfevents*"))
    into = Path(tempfile.mkdtemp(prefix="xp-bench-tb-"))
    try:
        start, cpu = time.perf_counter(), time.process_time()
        summary = import_runs("tensorboard", str(folder), str(into))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        shutil.rmtree(into, ignore_errors=True)
    return {"runs": len(summary.runs), "points": summary.points, "seconds": seconds,
            "cpu": cpu, "mb": size / 1e6, "skipped": summary.skipped_text(),
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
            "date": time.strftime("%Y-%m-%d")}


TB_HEADING = "## Importing TensorBoard logs"


def tensorboard_section(tb: dict[str, Any]) -> list[str]:
    return [
        TB_HEADING,
        "",
        f"`import_runs('tensorboard', ...)` in-process, once, on {tb['runs']} Keras-shaped runs "
        f"({tb['mb']:.0f} MB of event files: `train/` and `validation/` folders of float32 "
        f"tensor scalars, HParams, a {TB_GRAPH_BYTES // 1000} KB graph per run; "
        "`scripts/bench.py` writes them once with the tensorboard package's writer): "
        f"{tb['points']:,} points in {fmt_s(tb['seconds'])}, "
        f"**{tb['points'] / tb['seconds']:,.0f} points/s** (skipped: {tb['skipped']}); "
        f"CPU time {fmt_s(tb['cpu'])}. Measured {tb['date']}, load average "
        f"{tb['load']:.1f} at the end.",
        "",
    ]


def replace_section(text: str, heading: str, section: list[str]) -> str:
    """``text`` with the section under ``heading`` replaced (or added before the footer)."""
    lines = text.splitlines()
    if heading in lines:
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")
                    or lines[i].startswith("The xp commands:")), len(lines))
        lines[start:end] = section
    else:
        at = next((i for i, line in enumerate(lines) if line.startswith("The xp commands:")),
                  len(lines))
        lines[at:at] = section
    return "\n".join(lines) + "\n"


INTEROP_HEADING = "## Importing DVCLive, tables, Optuna and Aim"


def make_interop_sources(folder: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """One source per importer case, written once: kind -> (source, options)."""
    import math

    import pandas as pd

    def value(run: int, k: int, step: int) -> float:
        return math.exp(-step / 400) + 0.001 * ((run * 7 + k + step) % 13)

    live = folder / "dvclive"
    for r in range(20):
        for split in ("train", "eval"):
            for k, name in enumerate(("loss", "acc", "f1", "precision", "recall")):
                path = live / f"exp{r}" / "dvclive" / "plots" / "metrics" / split / f"{name}.tsv"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("step\t" + name + "\n" + "".join(
                    f"{s}\t{value(r, k, s)}\n" for s in range(1000)))
        (live / f"exp{r}" / "dvclive" / "params.yaml").write_text(f"lr: {0.001 * (r + 1)}\n")
    metrics = [f"m{k}" for k in range(10)]
    wide = pd.DataFrame([{"run": f"r{r}", "epoch": s, "lr": 0.01,
                          **{m: value(r, k, s) for k, m in enumerate(metrics)}}
                         for r in range(20) for s in range(1000)])
    wide.to_csv(folder / "wide.csv", index=False)
    long = wide.melt(id_vars=["run", "epoch", "lr"], var_name="name", value_name="value")
    long.to_parquet(folder / "long.parquet")
    configs = folder / "configs"
    configs.mkdir(exist_ok=True)
    for c in range(100):
        (configs / f"config_{c}.json").write_text(json.dumps({
            "config": {"lr": 10 ** (-c / 50), "units": 64}, "final": value(c, 0, 999),
            "learning_curve": [value(c, 1, s) for s in range(1000)],
            "time_steps": [float(s) for s in range(1000)]}))
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    memory = optuna.create_study(study_name="bench")

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        for step in range(100):
            trial.report(value(trial.number, 0, step) + x, step)
        return x

    memory.optimize(objective, n_trials=100)
    optuna.copy_study(from_study_name="bench", from_storage=memory._storage,
                      to_storage=f"sqlite:///{folder / 'study.db'}")
    import aim

    for r in range(10):
        run = aim.Run(repo=str(folder / "aim"), experiment="bench",
                      system_tracking_interval=None)
        run["hparams"] = {"lr": 0.001 * (r + 1)}
        for s in range(5000):
            for k, subset in enumerate(("train", "val")):
                run.track(value(r, k, s), name="loss", step=s, epoch=s // 500,
                          context={"subset": subset})
        run.close()
    return {"dvclive": (str(live), {}), "table wide CSV": (str(folder / "wide.csv"), {}),
            "table long Parquet": (str(folder / "long.parquet"), {}),
            "table JSON per config": (str(configs), {}),
            "optuna": (str(folder / "study.db"), {}), "aim": (str(folder / "aim"), {})}


def bench_interop(data: Path) -> dict[str, Any]:
    """Each importer in-process, once, on its generated source: points/s."""
    from xpcli.importers import import_runs

    folder = data / "interop"
    done = folder / ".complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        print("bench: writing the DVCLive, table, Optuna and Aim sources (once) ...",
              file=sys.stderr, flush=True)
        sources = make_interop_sources(folder)
        done.write_text(json.dumps(sources))
    sources = json.loads(done.read_text())
    rows = []
    for case, (source, options) in sources.items():
        into = Path(tempfile.mkdtemp(prefix="xp-bench-interop-"))
        try:
            start = time.perf_counter()
            summary = import_runs(case.split()[0], source, str(into), **options)
            seconds = time.perf_counter() - start
        finally:
            shutil.rmtree(into, ignore_errors=True)
        rows.append((case, len(summary.runs), summary.points, seconds))
    return {"rows": rows, "date": time.strftime("%Y-%m-%d"),
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")}


def interop_section(res: dict[str, Any]) -> list[str]:
    lines = [
        INTEROP_HEADING,
        "",
        "`import_runs(kind, ...)` in-process, once, on sources `scripts/bench.py` writes once "
        "with each format's layout or library (DVCLive TSVs, pandas `to_csv`/`to_parquet`, "
        "JSON files, an Optuna study copied into SQLite, an Aim repository written by "
        "`aim.Run`). Optuna and Aim times include opening the storage (Aim: copying and "
        "reindexing the repository).",
        "",
        "| importer | runs | points | time | points/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for case, runs, points, seconds in res["rows"]:
        lines.append(f"| {case} | {runs:,} | {points:,} | {fmt_s(seconds)} | "
                     f"{points / seconds:,.0f} |")
    lines += ["", f"Measured {res['date']}, load average {res['load']:.1f} at the end.", ""]
    return lines


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


def report(results: dict[int, dict[str, Any]], track: float, help_s: float,
           stats: dict[str, Any], tb: dict[str, Any], interop: dict[str, Any]) -> str:
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
    lines += stats_section(stats)
    lines += tensorboard_section(tb)
    lines += interop_section(interop)
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
    parser.add_argument("--only", choices=["tensorboard", "stats", "interop"], default=None,
                        help="run one case and replace its section of --out (stats: at "
                        "--sizes, default 2400)")
    args = parser.parse_args()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.only is not None:
        if args.only == "tensorboard":
            heading, section = TB_HEADING, tensorboard_section(bench_tensorboard(data))
        elif args.only == "interop":
            heading, section = INTEROP_HEADING, interop_section(bench_interop(data))
        else:
            chosen = sizes if "--sizes" in sys.argv else [2400]
            heading, section = STATS_HEADING, stats_section(bench_stats(data, chosen))
        out = Path(args.out)
        old = out.read_text() if out.exists() else ""
        out.write_text(replace_section(old, heading, section))
        print("\n".join(section))
        return
    results = {}
    for n in sizes:
        print(f"bench: {n} runs ...", file=sys.stderr, flush=True)
        results[n] = bench_size(n, data)
    track = bench_track()
    help_s = bench_help()
    print("bench: statistics ...", file=sys.stderr, flush=True)
    stats = bench_stats(data, sizes)
    print("bench: TensorBoard import ...", file=sys.stderr, flush=True)
    tb = bench_tensorboard(data)
    print("bench: DVCLive, table, Optuna and Aim imports ...", file=sys.stderr, flush=True)
    interop = bench_interop(data)
    text = report(results, track, help_s, stats, tb, interop)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

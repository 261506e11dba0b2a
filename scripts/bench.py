"""Benchmark: xp against a plain pandas script and the raw-Polars floor, at scale.

Writes the reference story (5 languages x 60 epochs of F1, 10 loss points per epoch) at
2,400, 10,002 and 30,000 runs (once, in parallel processes, timed; reused from --data
after: the folder's ``.generated.json`` says how and how fast it was written) with the
bytes the public writer writes (``--generator fast``, the default, formats them directly;
``--generator writer`` goes through ``xpcli.Run`` point by point), then times six queries:

- Q1 runs:    the runs table (lr, seed, max F1 per language)
- Q2 median:  median F1 per lr per language per epoch
- Q3 best:    the run best on English (max F1) with its F1 on every language
- Q4 default: ``xp select`` with its default columns (the last value of every metric in
              every context, per run)
- Q5 series:  one run's F1 series
- Q6 group:   per lr, the median, min and max over runs of each language's max F1

Every contender is a whole process, started in turn (xp, pandas, floor, xp, ...) after
one warm-up round, each printing its answer as CSV:

- xp warm: the xp command, the JSONL parsed into xp's cache once before
- pandas:  a plain pandas script (``scripts/bench_baseline.py pandas``) over one Parquet
           file of all points (flattened once: context keys as columns)
- floor:   raw Polars over that same Parquet file (``scripts/bench_baseline.py floor``)

with the median wall time and peak RSS (GNU time's report on each process) of each, and
the ratios round by round, against issue #14's targets. Also: xp cold (Q1 on an empty
cache, which parses the JSONL: wall and CPU time), ``Run.track``'s rate, ``xp --help``,
the statistics commands (``xp compare`` with and without pairing, ``xp importance``) and
``xp import tensorboard`` on a generated folder of Keras-shaped event files (1 M scalar
points with HParams). Results go to ``docs/benchmarks.md`` with the load average at the
start and end of the run and of each size; ratios come from this one run (machines are
noisy; compare within a run, not across runs).

The other importers (DVCLive, plain tables, Optuna, Aim) are timed on sources written
with each format's own layout or library (``--only interop`` runs them alone).

Usage: python scripts/bench.py [--sizes 2400,10000,30000] [--data DIR] [--out FILE]
                               [--repeat 3]
       python scripts/bench.py --sizes 100000 --xp-only   (90 M points, written once:
                                  xp alone, cold and every query warm, wall and peak RSS;
                                  that size's section of --out is replaced in place)
       python scripts/bench.py --only tensorboard   (that case alone; its section of
                                                     --out is replaced in place)
       python scripts/bench.py --only stats [--stats-sizes 2400]   (the same for xp compare
                                                     and xp importance)
       python scripts/bench.py --only interop       (likewise)
       python scripts/bench.py --only live   (Run.track with and without its heartbeat,
                                              and --watch refreshes at 2,400 runs)
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from reference_story import LEARNING_RATES, write_run, write_run_fast  # noqa: E402

XP = [sys.executable, "-m", "xpcli"]
REPEAT = 3


def queries(best_en: str) -> dict[str, list[str]]:
    """The xp command (arguments after ``xp``) for each query, in the order Q1..Q6."""
    return {
        "runs": ["select", "-p", "lr,seed", "-m", "f1:lang=*@max", "--format", "csv"],
        "median": ["aggregate", "f1:lang=*", "--by", "lr", "--center", "median",
                   "--format", "csv"],
        "best": ["select", "--best", "f1:lang=en@max", "-m", "f1:lang=*@max", "-p", "lr,seed",
                 "--format", "csv"],
        "default": ["select", "--format", "csv"],
        "series": ["curves", "f1:lang=*", "--where", f"run == '{best_en}'", "--format", "csv"],
        "group": ["group", "--by", "lr", "-m", "f1:lang=*@max", "--format", "csv"],
    }


#: Each query's label and the most xp warm may take, as a multiple of the floor's time
#: (issue #14): a table from per-run reductions 1.5x, a query over points 2x.
LABELS = {"runs": "Q1", "median": "Q2", "best": "Q3", "default": "Q4", "series": "Q5",
          "group": "Q6"}
TARGETS = {"runs": 1.5, "median": 2.0, "best": 1.5, "default": 1.5, "series": 2.0,
           "group": 1.5}


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
    """Wall seconds and max RSS (MB) of one process; fails loudly on a non-zero exit."""
    wall, rss, _ = run_measured(args, env)
    return wall, rss


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, max RSS (MB) and CPU seconds (user + system) of one process.

    RSS and CPU come from GNU time's report on its child: ``ru_maxrss`` of a child
    started from this (large) process would include the memory it inherited at fork."""
    report = tempfile.NamedTemporaryFile(prefix="xp-bench-rss-", delete=False)
    report.close()
    wrapped = ([TIME, "-f", "%U %S %M", "-o", report.name, *args] if os.path.exists(TIME)
               else args)
    start = time.perf_counter()
    proc = subprocess.run(wrapped, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(args)}\n{err[-2000:]}")
    try:
        user, system, kb = Path(report.name).read_text().split()[-3:]
        rss, cpu = int(kb) / 1024, float(user) + float(system)
    except (OSError, ValueError, IndexError):
        rss = cpu = float("nan")
    finally:
        os.unlink(report.name)
    return wall, rss, cpu


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


BASELINE = [sys.executable, str(HERE / "bench_baseline.py")]


def flatten(runs_dir: Path, target: Path) -> tuple[Path, Path, int]:
    """One Parquet file of every point (context keys as columns, logging order) and one
    of params."""
    import polars as pl

    import xpcli

    ds = xpcli.load(runs_dir)
    points = target / "points.parquet"
    params = target / "params.parquet"
    ds.points.collect().write_parquet(points)
    ds.runs.select("run", "lr", "seed").collect().write_parquet(params)
    n = pl.scan_parquet(points).select(pl.len()).collect().item()
    return points, params, n


def side_by_side(commands: dict[str, list[str]], envs: dict[str, dict[str, str]],
                 repeat: int | None = None) -> dict[str, dict[str, Any]]:
    """Whole processes in turn (A B C A B C ...) after one warm-up round: per contender
    the median wall seconds, the median peak RSS and each round's wall seconds, so ratios
    can be taken round by round (a drift of the machine's speed hits both sides)."""
    for name, args in commands.items():
        run_process(args, envs[name])
    walls: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat or REPEAT):
        for name, args in commands.items():
            wall, peak, cpu = run_measured(args, envs[name])
            walls[name].append(wall)
            rss[name].append(peak)
            cpus[name].append(cpu)
    return {name: {"wall": statistics.median(walls[name]), "rss": statistics.median(rss[name]),
                   "cpu": statistics.median(cpus[name]), "rounds": walls[name]}
            for name in commands}


def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The median of the round-by-round ratios of wall seconds ``a / b``."""
    return statistics.median(x / y for x, y in zip(a["rounds"], b["rounds"], strict=True))


# -- one size --------------------------------------------------------------------------


def seeds_for(n_runs: int) -> int:
    return max(1, round(n_runs / len(LEARNING_RATES)))


#: The marker a finished generation leaves in a runs folder: what it holds and how long
#: writing it took (a hidden file, so xp does not read it).
GENERATED = ".generated.json"


#: How the runs are written: ``fast`` (:func:`reference_story.write_run_fast`, the same
#: bytes without the writer's per-point work) or ``writer`` (through ``xpcli.Run``).
GENERATORS = {"fast": write_run_fast, "writer": write_run}
#: What a marker says of each generator, for the report.
GENERATOR_TEXT = {"fast": "the reference story's fast writer (the bytes `xpcli.Run` writes)",
                  "writer": "`xpcli.Run`"}


def _write_seeds(runs_dir: str, seeds: list[int], generator: str = "fast") -> float:
    """Write the runs of ``seeds``; the CPU seconds this process took."""
    write = GENERATORS[generator]
    start = time.process_time()
    for seed in seeds:
        for k, lr in enumerate(LEARNING_RATES):
            write(Path(runs_dir), lr, seed, seed * len(LEARNING_RATES) + k)
    return time.process_time() - start


def runs_folder(data: Path, n_runs: int, jobs: int | None = None,
                generator: str = "fast") -> tuple[Path, dict[str, Any]]:
    """The reference story at ``n_runs`` runs under ``data``, written once (in ``jobs``
    processes, by seed) and reused after; and what the marker says (runs, how they were
    written, wall and CPU seconds taken, the load average before and after).

    The runs are the ones :func:`reference_story.generate` writes (same ids, same bytes),
    whichever process and ``generator`` writes them. A folder without the marker (an
    interrupted generation) is written again from scratch."""
    import multiprocessing

    runs_dir = data / f"runs-{n_runs}"
    marker = runs_dir / GENERATED
    if marker.exists():
        return runs_dir, json.loads(marker.read_text())
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs_dir.mkdir(parents=True)
    seeds = seeds_for(n_runs)
    jobs = jobs or os.cpu_count() or 1
    print(f"bench: writing {seeds * len(LEARNING_RATES):,} runs into {runs_dir} "
          f"({jobs} processes, {generator} generator, once) ...", file=sys.stderr, flush=True)
    load = os.getloadavg()
    start = time.perf_counter()
    parts = [list(range(j, seeds, jobs)) for j in range(jobs)]
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        cpu = pool.starmap(_write_seeds, [(str(runs_dir), part, generator)
                                          for part in parts if part])
    info = {"runs": seeds * len(LEARNING_RATES), "seconds": time.perf_counter() - start,
            "cpu_seconds": sum(cpu), "jobs": jobs, "generator": generator,
            "bytes": sum(p.stat().st_size for p in runs_dir.iterdir()),
            "date": time.strftime("%Y-%m-%d"), "load_start": load, "load_end": os.getloadavg()}
    marker.write_text(json.dumps(info))
    return runs_dir, info


def bench_size(n_runs: int, data: Path, xp_only: bool = False,
               pandas: bool = True, generator: str = "fast") -> dict[str, Any]:
    """One size: xp cold, then every query warm side by side with pandas and the floor
    (``xp_only``: xp alone, for sizes where flattening every point for the baselines
    would cost more than the answer)."""
    import polars as pl

    import xpcli

    runs_dir, made = runs_folder(data, n_runs, generator=generator)
    result: dict[str, Any] = {"runs": made["runs"], "generated": made,
                              "jsonl_mb": made["bytes"] / 1e6, "load_start": os.getloadavg(),
                              "xp_only": xp_only}
    cache_root = Path(tempfile.mkdtemp(prefix="xp-bench-cache-"))
    env = {**os.environ, "XP_RUNS": str(runs_dir)}
    warm_env = {**env, "XP_CACHE_DIR": str(cache_root / "warm")}
    flat = Path(tempfile.mkdtemp(prefix="xp-bench-flat-"))
    try:
        # Cold: the runs query as a whole process on an empty cache (parses the JSONL and
        # writes the cache); it also warms the cache every warm process reads.
        first = queries("")["runs"]
        print(f"bench: {n_runs} runs: cold ...", file=sys.stderr, flush=True)
        result["cold"] = run_measured(XP + first, warm_env)
        print(f"bench: {n_runs} runs: cold {result['cold'][0]:.1f} s wall, "
              f"{result['cold'][2]:.1f} s CPU, {result['cold'][1]:,.0f} MB", file=sys.stderr,
              flush=True)
        os.environ["XP_CACHE_DIR"] = warm_env["XP_CACHE_DIR"]
        ds = xpcli.load(runs_dir)
        result["points"] = ds.points.select(pl.len()).collect().item()
        best_en = (ds.points.filter(pl.col("name") == "f1", pl.col("lang") == "en")
                   .group_by("run").agg(pl.col("value").max()).sort("value", "run",
                                                                    descending=[True, False])
                   .head(1).collect().item(0, "run"))
        del ds
        if not xp_only:
            points, params, _ = flatten(runs_dir, flat)
        rows = {}
        for name, args in queries(best_en).items():
            print(f"bench: {n_runs} runs: {LABELS[name]} {name} ...", file=sys.stderr,
                  flush=True)
            base = [name, str(points), str(params), best_en] if not xp_only else []
            commands = {"xp": XP + args}
            if not xp_only:
                if pandas:
                    commands["pandas"] = [*BASELINE, "pandas", *base]
                commands["floor"] = [*BASELINE, "floor", *base]
            rows[name] = side_by_side(commands, {"xp": warm_env, "pandas": env, "floor": env})
            print(f"bench: {n_runs} runs: {LABELS[name]} " + "; ".join(
                f"{who} {got['wall']:.2f} s wall, {got['cpu']:.2f} s CPU, {got['rss']:,.0f} MB"
                for who, got in rows[name].items()), file=sys.stderr, flush=True)
        result["queries"] = rows
        parcoords_args = ["parcoords", "--params", "lr,seed", "--metrics", "f1:lang=*",
                          "--highlight", "best:f1:lang=en"]
        result["parcoords"] = {}
        for suffix in ("png", "svg") if not xp_only else ():
            out = flat / f"p.{suffix}"
            wall, rss = run_process(XP + parcoords_args + ["-o", str(out)], warm_env)
            result["parcoords"][suffix] = (wall, rss)
    finally:
        os.environ.pop("XP_CACHE_DIR", None)
        shutil.rmtree(flat, ignore_errors=True)
        shutil.rmtree(cache_root, ignore_errors=True)
    result["load"] = os.getloadavg()
    return result


def bench_track(points: int = 1_000_000, **options: Any) -> tuple[float, float]:
    """``Run.track`` points per wall and per CPU second in one process (with a context,
    to a real file), the best of REPEAT."""
    rates = [track_rates(points, **options) for _ in range(REPEAT)]
    return max(r[0] for r in rates), max(r[1] for r in rates)


def track_rates(points: int = 1_000_000, **options: Any) -> tuple[float, float]:
    """``Run.track`` points per wall second and per CPU second of this process (its flush
    thread included); ``options`` go to ``Run`` (``heartbeat_seconds=0``)."""
    from xpcli import Run

    folder = Path(tempfile.mkdtemp(prefix="xp-bench-track-"))
    try:
        run = Run(folder, "bench", params={"lr": 1e-4}, **options)
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(points):
            run.track(0.5, name="f1", step=i, epoch=i // 100, context={"lang": "de"})
        run.close()
        return points / (time.perf_counter() - start), points / (time.process_time() - cpu)
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
            runs_dir, made = runs_folder(data, n_runs)
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
                rows.append({"runs": made["runs"], "name": name,
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


LIVE_HEADING = "## Live runs: the heartbeat, and --watch"
LIVE_QUERIES = {
    "runs": ["runs"],
    "select": ["select", "-p", "lr,seed", "-m", "f1:lang=*@max"],
}


def bench_live(data: Path, n_runs: int = 2400, refreshes: int = 7) -> dict[str, Any]:
    """``Run.track`` with and without its heartbeat (best of REPEAT, wall and CPU), and
    what a ``--watch`` refresh costs on ``n_runs`` runs (see :func:`watch_refreshes`)."""
    cases: dict[str, dict[str, Any]] = {"heartbeat": {},
                                         "no heartbeat": {"heartbeat_seconds": 0}}
    rates: dict[str, list[tuple[float, float]]] = {label: [] for label in cases}
    for _ in range(REPEAT):  # interleaved: a busy moment of the machine hits both
        for label, options in cases.items():
            rates[label].append(track_rates(**options))
    track = {label: (max(r[0] for r in got), max(r[1] for r in got))
             for label, got in rates.items()}
    runs_dir, _ = runs_folder(data, n_runs)
    cache = Path(tempfile.mkdtemp(prefix="xp-bench-live-"))
    try:
        rows = [{"query": name, "format": fmt,
                 **watch_refreshes(runs_dir, args, fmt, cache / f"{name}-{fmt}", refreshes)}
                for name, args in LIVE_QUERIES.items() for fmt in ("table", "csv")]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {"track": track, "rows": rows, "runs": seeds_for(n_runs) * len(LEARNING_RATES),
            "date": time.strftime("%Y-%m-%d"),
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")}


def watch_refreshes(runs_dir: Path, args: list[str], fmt: str, cache: Path,
                    refreshes: int) -> dict[str, float]:
    """``xp ARGS --watch`` in-process on ``runs_dir`` plus one live run, driven by a
    Control: the first refresh reads a cold cache, then the live run appends 100 points
    after every odd refresh. Wall and CPU seconds: the first refresh, and the medians of
    the refreshes after new points and of those with nothing new."""
    from click.testing import CliRunner

    from xpcli import Run
    from xpcli.cli import cli
    from xpcli.watch import Control

    live = Run(runs_dir, "bench-live", params={"lr": 1e-4, "seed": 999}, flush_seconds=0,
               flush_bytes=0)
    live.track(0.5, "f1", epoch=0, context={"lang": "en"})
    ends: list[float] = []
    cpus: list[float] = []
    hooks: list[float] = []

    def after(count: int) -> None:
        ends.append(time.perf_counter())
        cpus.append(time.process_time())
        start = time.perf_counter()
        if count % 2 == 1:
            for epoch in range(count * 100, count * 100 + 100):
                live.track(0.5, "f1", epoch=epoch, context={"lang": "en"})
        hooks.append(time.perf_counter() - start)

    env = {"XP_CACHE_DIR": str(cache), "XP_FORCE_TTY": "1" if fmt == "table" else "0",
           "COLUMNS": "200"}
    try:
        with mock.patch.dict(os.environ, env):
            start, cpu0 = time.perf_counter(), time.process_time()
            result = CliRunner().invoke(
                cli, ["--runs", str(runs_dir), *args, "--watch", "0.001", "--format", fmt],
                obj={"watch_control": Control(refreshes=refreshes, after_refresh=after)})
        assert result.exit_code == 0, result.output
    finally:
        live.close()
        (runs_dir / "bench-live.jsonl").unlink()
    walls = [ends[0] - start] + [ends[i] - ends[i - 1] - hooks[i - 1] - 0.001
                                 for i in range(1, len(ends))]
    cpu = [cpus[0] - cpu0] + [cpus[i] - cpus[i - 1] for i in range(1, len(cpus))]
    appended, unchanged = range(1, len(walls), 2), range(2, len(walls), 2)
    return {"cold": walls[0], "cold_cpu": cpu[0],
            "appended": statistics.median(walls[i] for i in appended),
            "unchanged": statistics.median(walls[i] for i in unchanged),
            "appended_cpu": statistics.median(cpu[i] for i in appended),
            "unchanged_cpu": statistics.median(cpu[i] for i in unchanged)}


def live_section(live: dict[str, Any]) -> list[str]:
    (hb_wall, hb_cpu), (no_wall, no_cpu) = live["track"]["heartbeat"], \
        live["track"]["no heartbeat"]
    lines = [
        LIVE_HEADING,
        "",
        f"`Run.track` (1 M points, best of {REPEAT}): {hb_wall:,.0f} points/s with the "
        f"heartbeat ({hb_cpu:,.0f} per CPU second), {no_wall:,.0f} points/s with "
        f"`heartbeat_seconds=0` ({no_cpu:,.0f} per CPU second). The heartbeat adds nothing "
        "to `track`: the flush thread, which wakes every second anyway, compares two "
        "clock readings and touches the file (one `futimens`) only when nothing was "
        "written for a heartbeat interval (10 s).",
        "",
        f"`--watch` on {live['runs']:,} runs plus one live run, in-process (the median "
        "refresh; CPU time of the process beside it). The first refresh reads a cold cache "
        "(the first row's also pays the imports); then the live run appends 100 points "
        "before every other refresh. The table is the live region of a 24-line terminal "
        "(the 19 rows that fit are drawn); CSV writes every row when the output changed.",
        "",
        "| command | output | first (cold) | after 100 new points | nothing new |",
        "|---|---|---:|---:|---:|",
    ]
    for row in live["rows"]:
        lines.append(
            f"| `xp {' '.join(LIVE_QUERIES[row['query']])}` | {row['format']} | "
            f"{fmt_s(row['cold'])} ({fmt_s(row['cold_cpu'])} CPU) | {fmt_s(row['appended'])} "
            f"({fmt_s(row['appended_cpu'])} CPU) | {fmt_s(row['unchanged'])} "
            f"({fmt_s(row['unchanged_cpu'])} CPU) |")
    lines += ["", f"Measured {live['date']}, load average {live['load']:.1f} at the end "
              "(the machine is shared).", ""]
    return lines


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


def bench_help() -> tuple[float, float]:
    """``xp --help``: the fastest wall time and the least CPU time of 5 processes."""
    runs = [run_measured(XP + ["--help"], dict(os.environ)) for _ in range(5)]
    return min(r[0] for r in runs), min(r[2] for r in runs)


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


def fmt_x(ratio: float) -> str:
    return "-" if ratio != ratio else f"{ratio:.2f}x"


def fmt_mb(mb: float) -> str:
    return "-" if mb != mb else f"{mb:,.0f} MB"


def fmt_s(seconds: float) -> str:
    if seconds != seconds:  # not measured (NaN)
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def old_section(path: Path, heading: str) -> list[str]:
    """The section under ``heading`` in the report at ``path`` as it stands (kept when its
    case is not run again); empty when there is none."""
    lines = path.read_text().splitlines() if path.exists() else []
    if heading not in lines:
        return []
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")
                or lines[i].startswith("The xp commands:")), len(lines))
    return lines[start:end]


def fmt_load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{x:.1f}" for x in load)


def size_heading(res: dict[str, Any]) -> str:
    """A size's heading, the same whatever was measured (``--xp-only`` replaces it)."""
    return f"## {res['runs']:,} runs" + (", xp alone" if res["xp_only"] else "")


def size_section(res: dict[str, Any]) -> list[str]:
    """One size's section: generation, load, cold read, and the query table."""
    made = res["generated"]
    cold, cold_rss, cold_cpu = res["cold"]
    lines = [
        size_heading(res),
        "",
        f"{res['points']:,} points, {res['jsonl_mb']:,.0f} MB of JSONL, "
        f"generated once by `scripts/bench.py` ({made['jobs']} processes through "
        f"{GENERATOR_TEXT[made.get('generator', 'writer')]}) in {fmt_s(made['seconds'])}"
        + (f" ({fmt_s(made['cpu_seconds'])} CPU)" if "cpu_seconds" in made else "")
        + f" on {made['date']}, then reused. "
        f"Load average (1, 5, 15 min) at the start of this size: {fmt_load(res['load_start'])}; "
        f"at its end: {fmt_load(res['load'])}.",
        "",
        f"xp cold (Q1 on an empty cache: parses the JSONL, writes the cache, answers): "
        f"{fmt_s(cold)} wall, {fmt_s(cold_cpu)} CPU (user + system), {cold_rss:,.0f} MB peak; "
        f"{res['points'] / cold / 1e6:.2f} M points/s wall, "
        f"{res['points'] / cold_cpu / 1e6:.2f} M points per CPU second.",
        "",
    ]
    if res["xp_only"]:
        lines += ["| query | xp warm (median) | fastest | CPU | peak RSS |",
                  "|---|---:|---:|---:|---:|"]
        for name, q in res["queries"].items():
            xp = q["xp"]
            lines.append(f"| {LABELS[name]} {name} | {fmt_s(xp['wall'])} | "
                         f"{fmt_s(min(xp['rounds']))} | {fmt_s(xp['cpu'])} | "
                         f"{xp['rss']:,.0f} MB |")
        return lines + [""]
    lines += [
        "| query | xp warm | pandas | floor | xp / floor | target | pandas / floor | "
        "CPU xp | pandas | floor | xp / floor CPU | peak RSS xp | pandas | floor |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    nan = {"wall": float("nan"), "cpu": float("nan"), "rss": float("nan"),
           "rounds": [float("nan")] * len(next(iter(res["queries"].values()))["xp"]["rounds"])}
    for name, q in res["queries"].items():
        xp, pd_, fl = q["xp"], q.get("pandas", nan), q["floor"]
        r = ratio(xp, fl)
        met = "met" if r <= TARGETS[name] else "**missed**"
        lines.append(
            f"| {LABELS[name]} {name} | {fmt_s(xp['wall'])} | {fmt_s(pd_['wall'])} | "
            f"{fmt_s(fl['wall'])} | {r:.2f}x | {TARGETS[name]}x: {met} | "
            f"{fmt_x(ratio(pd_, fl))} | {fmt_s(xp['cpu'])} | {fmt_s(pd_['cpu'])} | "
            f"{fmt_s(fl['cpu'])} | {xp['cpu'] / fl['cpu']:.2f}x | {xp['rss']:,.0f} MB | "
            f"{fmt_mb(pd_['rss'])} | "
            f"{fl['rss']:,.0f} MB |"
        )
    lines += ["", "CPU: the median user + system seconds of each contender's processes (all "
              "threads), and xp's over the floor's: on a loaded machine a process waits for "
              "a core, and its wall time grows while its CPU time does not (the floor's "
              "use of both cores shows in its wall time, not in its CPU time)."]
    pc = res["parcoords"]
    lines += [
        "",
        f"`xp parcoords --params lr,seed --metrics 'f1:lang=*' --highlight best:f1:lang=en`, "
        f"warm, one process each: PNG {fmt_s(pc['png'][0])} ({pc['png'][1]:.0f} MB), "
        f"SVG {fmt_s(pc['svg'][0])} ({pc['svg'][1]:.0f} MB).",
        "",
    ]
    return lines


def report(results: dict[int, dict[str, Any]], track: tuple[float, float],
           help_s: tuple[float, float],
           stats: list[str], tb: list[str], interop: list[str], live: list[str],
           load_start: tuple[float, float, float]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`scripts/bench.py`); every figure below comes from one run on",
        "the machine named here, so compare ratios within this page, not across machines.",
        "",
        f"Machine: {machine()}.",
        f"Date: {time.strftime('%Y-%m-%d')}. Load average (1, 5, 15 min) when the run "
        f"began: {fmt_load(load_start)}; when it ended: {fmt_load(os.getloadavg())} "
        f"(on {os.cpu_count()} cores; the machine is shared, so a wall time is only "
        "comparable with the others of its own row, taken in the same rounds).",
        "",
        "Data: the reference story (5 languages x 60 epochs of F1, 10 loss points per epoch, one",
        "`lms_score`), written as one JSONL file per run with the bytes `xpcli.Run` writes.",
        "",
        "Every figure is a whole process (start-up, imports, reading, printing CSV), the",
        "contenders started in turn (xp, pandas, floor, xp, ...) after one warm-up round;",
        f"the median of {REPEAT} rounds, and each ratio the median of the round-by-round",
        "ratios. Peak RSS is GNU time's maximum resident set of each process. The targets",
        "are issue #14's: xp warm within 1.5x of the floor for tables of per-run reductions",
        "(Q1, Q3, Q4, Q6), 2x for queries over points (Q2, Q5).",
        "",
        "- **xp warm**: the xp command; the JSONL was parsed into xp's cache once before.",
        "- **pandas**: a plain pandas script over one Parquet file of all points (context keys",
        "  as columns), `scripts/bench_baseline.py pandas`.",
        "- **floor**: raw Polars over that same Parquet file, `scripts/bench_baseline.py floor`.",
        "- **xp cold**: Q1 on an empty cache (parses the JSONL, writes the cache).",
        "",
        f"`Run.track` (1 M points with a context, best of {REPEAT}): {track[0]:,.0f} "
        f"points/s, {track[1]:,.0f} per CPU second (target 250,000/s). `xp --help`: "
        f"{fmt_s(help_s[0])} wall, {fmt_s(help_s[1])} CPU (the least of 5 processes; "
        "target 150 ms).",
        "",
    ]
    for res in results.values():
        lines += size_section(res)
    lines += stats
    lines += live
    lines += tb
    lines += interop
    lines += [
        "The xp commands: "
        + "; ".join(f"{LABELS[k]} {k}: `xp {' '.join(v)}`" for k, v in queries("RUN").items())
        + ".",
        "",
        "Aim and MLflow on the same queries: [benchmarks-peers.md](benchmarks-peers.md).\n",
    ]
    return "\n".join(lines)


def main() -> None:
    global REPEAT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2400,10000,30000",
                        help="runs at each size, comma-separated (written once under --data; "
                        "100000 writes 90 M points, about 12 GB)")
    parser.add_argument("--repeat", type=int, default=REPEAT,
                        help=f"rounds of each query after the warm-up round (default {REPEAT})")
    parser.add_argument("--xp-only", action="store_true",
                        help="xp alone at --sizes (cold, then each query warm: wall and peak "
                        "RSS), each size's section of --out replaced in place; for sizes "
                        "where flattening every point for the baselines costs too much")
    parser.add_argument("--no-pandas", action="store_true",
                        help="leave the pandas script out (its column reads nan)")
    parser.add_argument("--stats-sizes", default="2400",
                        help="sizes of the statistics case (default 2400)")
    parser.add_argument("--data", default=os.environ.get("XP_BENCH_DATA", "bench-data"))
    parser.add_argument("--generator", choices=sorted(GENERATORS), default="fast",
                        help="how missing runs folders are written: fast (the same bytes "
                        "as xpcli.Run, formatted directly; default) or writer (through "
                        "xpcli.Run, point by point)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--only", choices=["tensorboard", "stats", "interop", "live"],
                        default=None,
                        help="run one case and replace its section of --out (stats: at "
                        "--sizes, default 2400; live: Run.track's heartbeat and --watch "
                        "refreshes at 2,400 runs)")
    parser.add_argument("--keep", default="",
                        help="comma-separated cases (stats, tensorboard, interop, live) not "
                        "run again: their sections of --out are kept as they stand")
    args = parser.parse_args()
    REPEAT = args.repeat
    # xp's bytecode, as an installed package has it: under PYTHONDONTWRITEBYTECODE every
    # xp process would compile its modules again (0.1-0.3 s CPU), the scripts would not.
    compileall.compile_dir(ROOT / "xpcli", quiet=1)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    load_start = os.getloadavg()
    if args.xp_only:
        out = Path(args.out)
        for n in sizes:
            res = bench_size(n, data, xp_only=True, generator=args.generator)
            section = size_section(res)
            old = out.read_text() if out.exists() else ""
            out.write_text(replace_section(old, section[0], section))
            print("\n".join(section))
        return
    if args.only is not None:
        if args.only == "tensorboard":
            heading, section = TB_HEADING, tensorboard_section(bench_tensorboard(data))
        elif args.only == "interop":
            heading, section = INTEROP_HEADING, interop_section(bench_interop(data))
        elif args.only == "live":
            heading, section = LIVE_HEADING, live_section(bench_live(data))
        else:
            chosen = [int(n) for n in args.stats_sizes.split(",")]
            heading, section = STATS_HEADING, stats_section(bench_stats(data, chosen))
        out = Path(args.out)
        old = out.read_text() if out.exists() else ""
        out.write_text(replace_section(old, heading, section))
        print("\n".join(section))
        return
    results = {}
    for n in sizes:
        print(f"bench: {n} runs ...", file=sys.stderr, flush=True)
        results[n] = bench_size(n, data, pandas=not args.no_pandas, generator=args.generator)
    track = bench_track()
    help_s = bench_help()
    keep = {k.strip() for k in args.keep.split(",") if k.strip()}
    if keep - {"stats", "tensorboard", "interop", "live"}:
        raise SystemExit(f"--keep: unknown case(s) {', '.join(sorted(keep))}; "
                         "stats, tensorboard, interop or live")
    out = Path(args.out)
    if "stats" in keep:
        stats = old_section(out, STATS_HEADING)
    else:
        print("bench: statistics ...", file=sys.stderr, flush=True)
        stats = stats_section(bench_stats(data, [int(n) for n in args.stats_sizes.split(",")]))
    if "live" in keep:
        live = old_section(out, LIVE_HEADING)
    else:
        print("bench: live runs ...", file=sys.stderr, flush=True)
        live = live_section(bench_live(data))
    if "tensorboard" in keep:
        tb = old_section(out, TB_HEADING)
    else:
        print("bench: TensorBoard import ...", file=sys.stderr, flush=True)
        tb = tensorboard_section(bench_tensorboard(data))
    if "interop" in keep:
        interop = old_section(out, INTEROP_HEADING)
    else:
        print("bench: DVCLive, table, Optuna and Aim imports ...", file=sys.stderr, flush=True)
        interop = interop_section(bench_interop(data))
    text = report(results, track, help_s, stats, tb, interop, live, load_start)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""Benchmark peers: the four benchmark queries through Aim's and MLflow's own APIs.

The optional part of the benchmark (``make bench-peers``). It keeps the peers in their own
virtual environment (``bench-data/peers-venv`` by default, created and filled on first use
with ``aim==3.29.1`` and ``mlflow-skinny``), so the project's environment never depends
on them. For each size (240 and 2,400 runs by default) it

1. writes the reference story (``scripts/reference_story.py``: the same functions, so the
   same numbers) into each peer's own store through the peer's own logging API: Aim
   ``Run.track`` with ``context={"lang": ...}``; MLflow's file store with ``log_batch``
   (metric names ``f1_de``, ``loss_train``: MLflow has no contexts; F1 logged with
   ``step = epoch``, as per-epoch evaluation usually is). It records the logging speed,
   plus MLflow ``log_metric`` on a sample;
2. times the queries of ``scripts/bench.py`` through each peer's SDK, each in a fresh
   process of the peers' environment, best of a few repetitions:

   - runs:   params (lr, seed) + max F1 per language per run
   - median: median F1 per lr per language per epoch
   - best:   the run best on English (max F1) and its F1 on the other languages
   - series: one run's F1 series (each peer is handed its own run id, its fastest path)

   Aim: ``Repo.query_metrics`` and ``Run.get_metric``; MLflow: ``MlflowClient.search_runs``
   and ``get_metric_history``;
3. times xp's warm end-to-end command for the same query on the same story written by
   ``xpcli.Run`` (``bench-data/runs-N``, shared with ``scripts/bench.py``), in the same run.

It writes ``docs/benchmarks-peers.md``. Peer stores live in ``bench-data/peers/`` and are
reused by later runs (delete them to measure logging again).

Usage: python scripts/bench_peers.py [--sizes 240,2400] [--peers aim,mlflow] [--data DIR]
       [--venv DIR] [--repeat 3] [--out FILE]

This file is also the worker run inside the peers' environment
(``bench_peers.py worker ...``); it imports only the standard library at module level.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PEERS = {"aim": "aim==3.29.1", "mlflow": "mlflow-skinny"}
QUERIES = ("runs", "median", "best", "series")
LONG_QUERY_S = 30.0  # a query slower than this is not repeated (keeps a full run reasonable)
MLFLOW_ENV = {"MLFLOW_ALLOW_FILE_STORE": "true"}  # MLflow 3 keeps the file store opt-in


# == worker: runs inside the peers' venv ================================================


class _Counter:
    points = 0


def _story_with(run_class: type) -> types.ModuleType:
    """``reference_story`` with its writer replaced by a peer adapter (same numbers)."""
    stub = types.ModuleType("xpcli")
    stub.Run = run_class  # type: ignore[attr-defined]
    sys.modules["xpcli"] = stub
    sys.path.insert(0, str(HERE))
    import reference_story

    return reference_story


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _make_aim_run(repo: str) -> type:
    from aim import Run as AimRun

    class Run:
        """The part of ``xpcli.Run`` the story uses, logging through ``aim.Run.track``."""

        ids: dict[str, str] = {}

        def __init__(self, runs_dir: Path, run: str, params: dict[str, Any],
                     **_: Any) -> None:
            self._run = AimRun(repo=repo, experiment="reference", system_tracking_interval=None,
                               capture_terminal_logs=False)
            self._run.name = run
            self._run["hparams"] = params
            Run.ids[run] = self._run.hash

        def track(self, value: float, name: str, step: int, epoch: float,
                  context: dict[str, str] | None = None, **_: Any) -> None:
            self._run.track(value, name=name, step=step, epoch=epoch, context=context or {})
            _Counter.points += 1

        def close(self, **_: Any) -> None:
            if self._run is not None:
                self._run.close()
                self._run = None

        def __enter__(self) -> Run:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    return Run


def _mlflow_key(name: str, context: dict[str, str] | None) -> str:
    return "_".join([name, *(context or {}).values()])


def _make_mlflow_run(client: Any, experiment: str) -> type:
    from mlflow.entities import Metric, Param

    class Run:
        """The part of ``xpcli.Run`` the story uses, logging through ``log_batch``."""

        ids: dict[str, str] = {}

        def __init__(self, runs_dir: Path, run: str, params: dict[str, Any],
                     time: float = 0.0, **_: Any) -> None:
            info = client.create_run(experiment, run_name=run, start_time=int(time * 1000)).info
            self._id = info.run_id
            self._params = [Param(k, str(v)) for k, v in _flatten(params).items()]
            self._metrics: list[Any] = []
            Run.ids[run] = self._id

        def track(self, value: float, name: str, step: int, epoch: float,
                  context: dict[str, str] | None = None, time: float = 0.0, **_: Any) -> None:
            step = int(epoch) if name == "f1" else step
            self._metrics.append(Metric(_mlflow_key(name, context), value, int(time * 1000), step))
            _Counter.points += 1
            if len(self._metrics) >= 1000:  # log_batch takes at most 1,000 metrics
                self._flush()

        def _flush(self) -> None:
            client.log_batch(self._id, metrics=self._metrics, params=self._params)
            self._metrics, self._params = [], []

        def close(self, time: float | None = None, **_: Any) -> None:
            if self._id is None:
                return
            if self._metrics or self._params:
                self._flush()
            end = int(time * 1000) if time is not None else None
            client.set_terminated(self._id, end_time=end)
            self._id = None

        def __enter__(self) -> Run:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    return Run


def _mlflow_client(store: Path) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store.resolve().as_uri())


def _mlflow_log_metric_rate(points: int = 3000) -> float:
    """``log_metric`` points/s: one call per point, to a scratch file store."""
    with tempfile.TemporaryDirectory(prefix="xp-bench-mlflow-") as tmp:
        client = _mlflow_client(Path(tmp) / "mlruns")
        run_id = client.create_run(client.create_experiment("speed")).info.run_id
        start = time.perf_counter()
        for i in range(points):
            client.log_metric(run_id, "f1_de", 0.5, timestamp=i, step=i)
        return points / (time.perf_counter() - start)


def worker_log(peer: str, store: Path, seeds: int) -> dict[str, Any]:
    """Write the story into a peer's store; return the logging figures."""
    from importlib.metadata import version

    result: dict[str, Any] = {"version": version(PEERS[peer].split("=")[0])}
    if peer == "aim":
        run_class = _make_aim_run(str(store))
    else:
        result["log_metric_per_s"] = _mlflow_log_metric_rate()
        client = _mlflow_client(store)
        run_class = _make_mlflow_run(client, client.create_experiment("reference"))
    story = _story_with(run_class)
    start = time.perf_counter()
    ids = story.generate(store, seeds=seeds)
    seconds = time.perf_counter() - start
    result.update(runs=len(ids), points=_Counter.points, seconds=seconds,
                  per_s=_Counter.points / seconds, ids=run_class.ids)
    return result


# -- the queries, per peer ----------------------------------------------------------------


def _aim_f1(repo: Any, query: str) -> Any:
    """Yield (run, name, hparams, lang, epochs, values) for each series matching query."""
    for run_metrics in repo.query_metrics(query, report_mode=0).iter_runs():
        name = hparams = None
        for metric in run_metrics:
            if name is None:
                name, hparams = metric.run.name, metric.run["hparams"]
            _, (values, epochs, _) = metric.data.numpy()
            yield metric.run, name, hparams, metric.context.to_dict().get("lang"), epochs, values


def aim_query(which: str, store: Path, run_hash: str) -> Any:
    import numpy as np
    from aim import Repo
    from aim.storage.context import Context

    repo = Repo(str(store))
    if which == "runs":
        rows: dict[str, dict[str, Any]] = {}
        for _, name, hp, lang, _, values in _aim_f1(repo, "metric.name == 'f1'"):
            row = rows.setdefault(name, {"lr": hp["lr"], "seed": hp["seed"]})
            row[lang] = float(values.max())
        return {"rows": len(rows), "sum": round(sum(v for r in rows.values() for k, v in r.items()
                                                    if k not in ("lr", "seed")), 3)}
    if which == "median":
        groups: dict[tuple[float, str], list[Any]] = {}
        for _, _, hp, lang, epochs, values in _aim_f1(repo, "metric.name == 'f1'"):
            groups.setdefault((hp["lr"], lang), []).append((epochs, values))
        table = {}
        for key, series in groups.items():
            epochs = np.concatenate([e for e, _ in series])
            values = np.concatenate([v for _, v in series])
            for epoch in np.unique(epochs):
                table[(*key, float(epoch))] = float(np.median(values[epochs == epoch]))
        return {"rows": len(table), "sum": round(sum(table.values()), 3)}
    if which == "best":
        query = "metric.name == 'f1' and metric.context.lang == 'en'"
        scored = [(-float(v.max()), name, run) for run, name, _, _, _, v in _aim_f1(repo, query)]
        best = min(scored, key=lambda t: t[:2])
        run = best[2]
        others = {lang: float(run.get_metric("f1", Context({"lang": lang})).data.numpy()[1][0]
                              .max()) for lang in ("de", "es", "nl", "zh")}
        return {"run": best[1], "en": -best[0], **others}
    run = repo.get_run(run_hash)
    points = 0
    for lang in ("en", "de", "es", "nl", "zh"):
        _, (values, epochs, _) = run.get_metric("f1", Context({"lang": lang})).data.numpy()
        points += len(values)
    return {"points": points}


def mlflow_query(which: str, store: Path, run_id: str) -> Any:
    from statistics import median

    client = _mlflow_client(store)
    langs = ("en", "de", "es", "nl", "zh")

    def all_runs() -> list[Any]:
        experiment = client.get_experiment_by_name("reference").experiment_id
        runs, token = [], None
        while True:
            page = client.search_runs([experiment], max_results=1000, page_token=token)
            runs += page
            token = page.token
            if not token:
                return runs

    if which == "runs":
        rows = {}
        for run in all_runs():
            row = {"lr": run.data.params["lr"], "seed": run.data.params["seed"]}
            for lang in langs:
                row[lang] = max(m.value for m in client.get_metric_history(run.info.run_id,
                                                                           f"f1_{lang}"))
            rows[run.info.run_name] = row
        return {"rows": len(rows), "sum": round(sum(v for r in rows.values() for k, v in r.items()
                                                    if k not in ("lr", "seed")), 3)}
    if which == "median":
        groups: dict[tuple[str, str, int], list[float]] = {}
        for run in all_runs():
            lr = run.data.params["lr"]
            for lang in langs:
                for m in client.get_metric_history(run.info.run_id, f"f1_{lang}"):
                    groups.setdefault((lr, lang, m.step), []).append(m.value)
        table = {key: median(values) for key, values in groups.items()}
        return {"rows": len(table), "sum": round(sum(table.values()), 3)}
    if which == "best":
        scored = []
        for run in all_runs():
            en = max(m.value for m in client.get_metric_history(run.info.run_id, "f1_en"))
            scored.append((-en, run.info.run_name, run.info.run_id))
        en, name, best_id = min(scored)
        others = {lang: max(m.value for m in client.get_metric_history(best_id, f"f1_{lang}"))
                  for lang in langs[1:]}
        return {"run": name, "en": -en, **others}
    points = sum(len(client.get_metric_history(run_id, f"f1_{lang}")) for lang in langs)
    return {"points": points}


def worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_peers.py worker")
    parser.add_argument("action", choices=["log", "query"])
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("store", type=Path)
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--query", choices=QUERIES)
    parser.add_argument("--run-id", default="")
    args = parser.parse_args(argv)
    if args.action == "log":
        print(json.dumps(worker_log(args.peer, args.store, args.seeds)))
        return
    if args.peer == "aim":  # imports are not part of the query's own time
        import aim.storage.context  # noqa: F401
        import numpy  # noqa: F401

        func = aim_query
    else:
        import mlflow.tracking  # noqa: F401

        func = mlflow_query
    start = time.perf_counter()
    answer = func(args.query, args.store, args.run_id)
    print(json.dumps({"seconds": time.perf_counter() - start, "answer": answer}))


# == driver: runs in the project's venv =================================================


def ensure_venv(venv: Path, peers: list[str]) -> dict[str, str]:
    """Create the peers' venv and install each peer; return an outcome per peer."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                       check=True)
    outcome = {}
    for peer in peers:
        module = "aim" if peer == "aim" else "mlflow"
        check = [str(python), "-c", f"import {module}, importlib.metadata as m; "
                 f"print(m.version({PEERS[peer].split('=')[0]!r}))"]
        done = subprocess.run(check, capture_output=True, text=True)
        if done.returncode != 0:
            pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", PEERS[peer]],
                                 capture_output=True, text=True)
            if pip.returncode != 0:
                outcome[peer] = "install failed: " + (pip.stderr.strip().splitlines() or ["?"])[-1]
                continue
            done = subprocess.run(check, capture_output=True, text=True)
        if done.returncode != 0:
            outcome[peer] = "import failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
        else:
            outcome[peer] = f"ok ({module} {done.stdout.strip()})"
    return outcome


def call_worker(venv: Path, args: list[str]) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one fresh worker process in the peers' venv, and what it printed."""
    env = {**os.environ, **MLFLOW_ENV, "PYTHONWARNINGS": "ignore"}
    cmd = [str(venv / "bin" / "python"), str(Path(__file__).resolve()), "worker", *args]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return wall, json.loads(done.stdout.strip().splitlines()[-1])


def ensure_store(peer: str, n_runs: int, seeds: int, data: Path, venv: Path) -> dict[str, Any]:
    """The peer's store for this size, written once; its logging figures."""
    store = data / "peers" / f"{peer}-{n_runs}"
    stats_file = data / "peers" / f"{peer}-{n_runs}.json"
    if stats_file.exists():
        return {**json.loads(stats_file.read_text()), "store": store}
    if store.exists():
        raise SystemExit(f"{store} exists without {stats_file.name} (an interrupted write?): "
                         "delete it and run again")
    store.parent.mkdir(parents=True, exist_ok=True)
    print(f"bench-peers: writing {n_runs} runs through {peer} ...", file=sys.stderr, flush=True)
    wall, stats = call_worker(venv, ["log", peer, str(store), "--seeds", str(seeds)])
    stats["process_s"] = wall
    stats["loadavg"] = os.getloadavg()[0]  # was the machine busy with something else?
    if peer == "aim":
        # Aim 3.29 indexes runs from its UI server; without one, `aim storage reindex`
        # makes finished runs visible to Repo.query_metrics.
        start = time.perf_counter()
        subprocess.run([str(venv / "bin" / "aim"), "storage", "--repo", str(store), "reindex",
                        "--yes"], check=True, capture_output=True)
        stats["index_s"] = time.perf_counter() - start
    stats_file.write_text(json.dumps(stats))
    return {**stats, "store": store}


def time_peer(peer: str, store: Path, query: str, run_id: str, venv: Path,
              repeat: int) -> dict[str, Any]:
    best: dict[str, Any] | None = None
    for _ in range(repeat):
        wall, out = call_worker(venv, ["query", peer, str(store), "--query", query,
                                       "--run-id", run_id])
        if best is None or wall < best["wall"]:
            best = {"wall": wall, "query": out["seconds"], "answer": out["answer"]}
        if wall > LONG_QUERY_S:
            break
    assert best is not None
    return best


def xp_side(n_runs: int, data: Path, repeat: int) -> dict[str, Any]:
    """xp's warm end-to-end time per query on the story written by xpcli.Run."""
    import shutil

    import bench
    import polars as pl
    from reference_story import generate

    import xpcli

    runs_dir = data / f"runs-{n_runs}"
    if not runs_dir.exists():
        print(f"bench-peers: writing {n_runs} runs through xpcli.Run ...", file=sys.stderr,
              flush=True)
        generate(runs_dir, seeds=bench.seeds_for(n_runs))
    cache = Path(tempfile.mkdtemp(prefix="xp-bench-peers-cache-"))
    try:
        os.environ["XP_CACHE_DIR"] = str(cache)
        dataset = xpcli.load(runs_dir)
        f1 = dataset.points.filter(pl.col("name") == "f1")
        maxima = f1.group_by("run", "lang").agg(pl.col("value").max())
        medians = (f1.join(dataset.runs.select("run", "lr"), on="run")
                   .group_by("lr", "lang", "epoch").agg(pl.col("value").median()))
        sums = {"runs": maxima.select(pl.col("value").sum()).collect().item(),
                "median": medians.select(pl.col("value").sum()).collect().item()}
        best_en = (f1.filter(pl.col("lang") == "en").group_by("run").agg(pl.col("value").max())
                   .sort("value", "run", descending=[True, False]).head(1).collect())
        env = {**os.environ, "XP_RUNS": str(runs_dir)}
        warm = {}
        for name, args in bench.queries(best_en.item(0, "run")).items():
            bench.run_process(bench.XP + args, env)  # fills the cache if anything is missing
            warm[name] = min(bench.run_process(bench.XP + args, env)[0] for _ in range(repeat))
    finally:
        os.environ.pop("XP_CACHE_DIR", None)
        shutil.rmtree(cache, ignore_errors=True)
    return {"warm": warm, "best_en": best_en.item(0, "run"), "best_value": best_en.item(0, "value"),
            "sums": sums}


def check(peer: dict[str, Any], xp: dict[str, Any], query: str, n_runs: int) -> str:
    """Whether a peer's answer agrees with xp's (row count and sum, or the best run)."""
    answer = peer["answer"]
    expected = {"runs": ("rows", n_runs), "median": ("rows", 6 * 5 * 60),
                "series": ("points", 5 * 60)}
    if query == "best":
        ok = answer["run"] == xp["best_en"] and abs(answer["en"] - xp["best_value"]) < 1e-9
        return "same run" if ok else f"differs ({answer['run']})"
    key, value = expected[query]
    if answer[key] != value:
        return f"{key} {answer[key]} != {value}"
    if query in xp["sums"] and abs(answer["sum"] - xp["sums"][query]) > 0.01:
        return f"{answer[key]} {key}, sum {answer['sum']} != {xp['sums'][query]:.3f}"
    return f"{answer[key]} {key}" + (", same sum" if query in xp["sums"] else "")


# -- report ------------------------------------------------------------------------------


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def ratio(value: float) -> str:
    return f"{value:.1f}x" if value < 10 else f"{value:.0f}x"


def report(outcome: dict[str, str], results: dict[int, dict[str, Any]], repeat: int) -> str:
    import bench

    names = {"aim": "Aim", "mlflow": "MLflow (file store)"}
    lines = [
        "# Benchmarks: xp against Aim and MLflow",
        "",
        "Written by `make bench-peers` (`scripts/bench_peers.py`); every figure comes from one",
        "run on the machine named here. The peers live in their own virtual environment",
        "(`bench-data/peers-venv`), never in the project's.",
        "",
        f"Machine: {bench.machine()}.",
        f"Date: {time.strftime('%Y-%m-%d')}.",
        "",
        "Install outcome: " + "; ".join(f"{names.get(p, p)} (`{PEERS[p]}`): {o}"
                                         for p, o in outcome.items()) + ".",
        "",
        "Data: the reference story of `docs/benchmarks.md` (5 languages x 60 epochs of F1,",
        "10 loss points per epoch, one `lms_score`), the same numbers written three ways: by",
        "`xpcli.Run` for xp, by Aim's `Run.track` (F1 with `context={\"lang\": ...}`) and by",
        "MLflow's `log_batch` to its file store (`f1_de`, ..., since MLflow has no contexts;",
        "F1 logged with `step = epoch`). MLflow 3 keeps the file store behind",
        "`MLFLOW_ALLOW_FILE_STORE=true`, which the benchmark sets.",
        "",
        "- **peer process**: a fresh Python process in the peers' environment running the",
        "  query through the peer's SDK (imports included), best of "
        f"{repeat} (one when a run takes over {LONG_QUERY_S:.0f} s).",
        "- **in SDK**: the part of that process spent in the query itself (imports excluded).",
        "- **xp warm**: `xp ...` end to end, as in `docs/benchmarks.md` (cache warm), best of "
        f"{repeat}.",
        "- **ratio**: peer process / xp warm, for the same query in this run.",
        "- **check**: the peer's answer against xp's on its own data: row count and the sum",
        "  of every value in the table (runs, median), the same best run (best), the point",
        "  count (series).",
        "",
        "Aim: `Repo.query_metrics(\"metric.name == 'f1'\")` iterated per run "
        "(`metric.data.numpy()`),",
        "the best run's other languages through `Run.get_metric`, one run's series through",
        "`Repo.get_run(hash)`. MLflow: `MlflowClient.search_runs` (all pages) and",
        "`get_metric_history` per run and language (the runs' latest values that `search_runs`",
        "returns cannot give a maximum or a per-epoch median). Medians and maxima are computed",
        "with numpy (Aim) or the standard library (MLflow). For the one-run series each peer",
        "is given its own run id, its fastest path.",
        "",
    ]
    for n_runs, res in results.items():
        lines += [f"## {n_runs:,} runs", "", f"On disk: xp's JSONL {res['disk']['xp']:,.0f} MB, "
                  + ", ".join(f"{names[p]} {res['disk'][p]:,.0f} MB" for p in res["logging"])
                  + ".", ""]
        for peer, log in res["logging"].items():
            text = (f"{names[peer]} logging: {log['points']:,} points in {fmt_s(log['seconds'])}, "
                    f"{log['per_s']:,.0f} points/s")
            if peer == "aim":
                text += (f" through `Run.track` (plus {fmt_s(log['index_s'])} for "
                         "`aim storage reindex`, without which `query_metrics` finds no run)")
            else:
                text += (f" through `log_batch`; `log_metric` (one call per point): "
                         f"{log['log_metric_per_s']:,.0f} points/s")
            lines += [f"{text} (1-minute load average when it ended: {log['loadavg']:.1f}).", ""]
        peers = list(res["queries"])
        head = "| query | xp warm |" + "".join(
            f" {names[p]} process | in SDK | ratio | check |" for p in peers)
        lines += [head, "|---|---:|" + "---:|---:|---:|---|" * len(peers)]
        for query in QUERIES:
            xp_s = res["xp"]["warm"][query]
            cells = [f"| {query} | {fmt_s(xp_s)} |"]
            for peer in peers:
                q = res["queries"][peer][query]
                cells.append(f" {fmt_s(q['wall'])} | {fmt_s(q['query'])} | "
                             f"{ratio(q['wall'] / xp_s)} | {q['check']} |")
            lines.append("".join(cells))
        lines += ["", "1-minute load average when the timing began and ended: "
                  f"{res['load'][0]:.1f}, {res['load'][1]:.1f} (on {os.cpu_count()} cores).", ""]
    lines += [
        "The xp commands: "
        + "; ".join(f"{k}: `xp {' '.join(v)}`" for k, v in bench.queries("RUN").items()) + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="240,2400")
    parser.add_argument("--peers", default="aim,mlflow")
    parser.add_argument("--data", default=os.environ.get("XP_BENCH_DATA", "bench-data"))
    parser.add_argument("--venv", default=None, help="default: DATA/peers-venv")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks-peers.md"))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    import bench

    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    venv = Path(args.venv).resolve() if args.venv else data / "peers-venv"
    wanted = [p for p in args.peers.split(",") if p]
    outcome = ensure_venv(venv, wanted)
    peers = [p for p in wanted if outcome[p].startswith("ok")]
    results: dict[int, dict[str, Any]] = {}
    for n_runs in (int(s) for s in args.sizes.split(",")):
        seeds = bench.seeds_for(n_runs)
        logging = {p: ensure_store(p, n_runs, seeds, data, venv) for p in peers}
        print(f"bench-peers: {n_runs} runs: timing ...", file=sys.stderr, flush=True)
        load = [os.getloadavg()[0]]
        xp = xp_side(n_runs, data, args.repeat)
        queries: dict[str, dict[str, Any]] = {}
        for peer in peers:
            queries[peer] = {}
            for query in QUERIES:
                run_id = logging[peer]["ids"][xp["best_en"]]
                timed = time_peer(peer, logging[peer]["store"], query, run_id, venv, args.repeat)
                timed["check"] = check(timed, xp, query, n_runs)
                queries[peer][query] = timed
                print(f"  {peer} {query}: {fmt_s(timed['wall'])} ({timed['check']})",
                      file=sys.stderr, flush=True)
        load.append(os.getloadavg()[0])
        disk = {"xp": disk_mb(data / f"runs-{n_runs}"),
                **{p: disk_mb(logging[p]["store"]) for p in peers}}
        results[n_runs] = {"logging": logging, "queries": queries, "xp": xp, "load": load,
                           "disk": disk}
    text = report(outcome, results, args.repeat)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

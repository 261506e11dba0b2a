"""Fault scenarios shared by the reliability tests (small counts) and ``scripts/soak.py``
(large counts): concurrent writers, SIGKILLed writers, killed compactions and cache updates.

Each scenario builds its runs directory, runs child processes, checks every property it
promises with ``assert``, and returns its numbers as a dict (what the soak report shows).
The expected records are computed from the scenario's own recipe (value = writer * 1e6 +
step), never from what xp read.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
T0 = 1767225600.0


def scale(ci: int, soak: int) -> int:
    """``ci`` normally, ``soak`` when ``XP_SOAK=1`` (the long run of ``make soak``)."""
    return soak if os.environ.get("XP_SOAK", "") not in ("", "0") else ci


def env_with(cache: Path | None, **extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    if cache is None:
        env["XP_NO_CACHE"] = "1"
    else:
        env.pop("XP_NO_CACHE", None)
        env["XP_CACHE_DIR"] = str(cache)
    return env


def load_points(runs: Path, cache: Path | None) -> tuple[pl.DataFrame, Any]:
    """All points of ``runs`` with the cache in ``cache`` (None: without a cache)."""
    from xpcli import load

    saved = {k: os.environ.get(k) for k in ("XP_CACHE_DIR", "XP_NO_CACHE")}
    os.environ.update({k: v for k, v in env_with(cache).items() if k in saved})
    if cache is not None:
        os.environ.pop("XP_NO_CACHE", None)
    try:
        ds = load(runs)
        return ds.points.collect(), ds
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def xp(args: list[str], cache: Path | None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real ``xp`` command (``python -m xpcli``) and return the finished process."""
    return subprocess.run([PYTHON, "-m", "xpcli", *args], capture_output=True, text=True,
                          env=env_with(cache), timeout=timeout, cwd=ROOT)


# -- 1. many writers at once -------------------------------------------------------------

WRITER = r"""
import sys
from xpcli import Run
runs, index, records = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
run_id = "shared" if index % 4 == 3 else f"w{index:02d}"
with Run(runs, run_id, params={"writer": index}, flush_bytes=int(sys.argv[4]),
         flush_seconds=0.01) as run:
    for i in range(records):
        run.track(index * 1e6 + i, "m", step=i, context={"w": f"{index:02d}"},
                  time=1767225600.0 + i)
"""

READER = r"""
import os, sys, time
import polars as pl
import xpcli
runs, stop = sys.argv[1], sys.argv[2]
reads = 0
while not os.path.exists(stop):
    try:
        ds = xpcli.load(runs)
    except xpcli.errors.DataError:
        continue  # no file yet
    pts = ds.points.select("w", "step", "value").collect()
    for (w,), group in pts.group_by("w"):
        steps = sorted(group["step"].to_list())
        assert steps == list(range(len(steps))), (w, steps[:10])
        expected = [int(w) * 1e6 + s for s in group.sort("step")["step"].to_list()]
        assert group.sort("step")["value"].to_list() == expected, w
    bad = [d for d in ds.diagnostics.items if d.kind != "torn"]
    assert not bad, [str(d) for d in bad]
    reads += 1
print(reads)
"""


#: What an ``xp`` command may answer before the first writer has written anything.
NOTHING_YET = ("no run files", "no records in", "no metric points")


def concurrent_writers(base: Path, writers: int, records: int, readers: int = 2,
                       flush_bytes: int = 2048) -> dict[str, Any]:
    """``writers`` processes append ``records`` points each to one runs directory (every
    fourth writer shares the run ``shared``) while ``readers`` processes load it in a loop
    and the parent runs ``xp runs``, ``xp metrics`` and ``xp select``. Afterwards every
    record is read back exactly once, with and without the cache."""
    runs, cache, stop = base / "runs", base / "cache", base / "stop"
    runs.mkdir(parents=True)
    env = env_with(cache)
    readers_p = [subprocess.Popen([PYTHON, "-c", READER, str(runs), str(stop)], env=env,
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(readers)]
    writers_p = [subprocess.Popen([PYTHON, "-c", WRITER, str(runs), str(i), str(records),
                                   str(flush_bytes)], env=env, cwd=ROOT,
                                  stderr=subprocess.PIPE, text=True) for i in range(writers)]
    commands = 0
    try:
        while any(p.poll() is None for p in writers_p) or commands < 3:
            for args in (["runs", "--format", "csv"], ["metrics", "--format", "csv"],
                         ["select", "-m", "m:w=*@max", "--format", "csv"]):
                proc = xp([*args, "--runs", str(runs)], cache)
                assert proc.returncode == 0 or any(m in proc.stderr for m in NOTHING_YET), (
                    args, proc.stderr[-2000:])
                assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
                commands += 1
        for proc in writers_p:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-2000:]
    finally:
        stop.touch()
        for proc in writers_p:
            if proc.poll() is None:
                proc.kill()
    reads = 0
    for proc in readers_p:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        reads += int(out.strip() or 0)
    total = writers * records
    expected = pl.DataFrame({
        "w": [f"{i:02d}" for i in range(writers) for _ in range(records)],
        "step": [s for _ in range(writers) for s in range(records)],
        "value": [i * 1e6 + s for i in range(writers) for s in range(records)],
    })
    for where in (cache, None):
        points, ds = load_points(runs, where)
        got = points.select("w", "step", "value").sort("w", "step")
        assert got.height == total, (got.height, total)
        assert got.equals(expected.sort("w", "step"))
        assert not len(ds.diagnostics), ds.diagnostics.summary()
        statuses = ds.runs.collect()["status"].to_list()
        assert statuses == ["finished"] * len(statuses)
    return {"writers": writers, "records_per_writer": records, "records": total,
            "reader_loads": reads, "xp_commands": commands, "lost": 0, "duplicated": 0}


# -- 2. writers killed at random moments -------------------------------------------------

KILLED_WRITER = r"""
import os, sys, time
from xpcli import Run
runs, run_id, round_, progress = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
run = Run(runs, run_id, flush_bytes=int(sys.argv[5]), flush_seconds=0.005)
fd = os.open(progress, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
i = 0
while True:
    run.track(i * 0.5, "m", step=i, context={"round": round_})
    i += 1
    if i % 37 == 0:
        run.flush()
        os.write(fd, f"{i}\n".encode())  # steps 0..i-1 are on disk
        time.sleep(0.002)  # a steady pace, so files stay a soak-sized size
"""


def killed_writers(base: Path, rounds: int, parallel: int = 4, seed: int = 1,
                   tear: float = 0.25) -> dict[str, Any]:
    """``rounds`` times: start ``parallel`` writers (the same run ids each round, so every
    run is resumed after a kill) and SIGKILL them at random moments while the parent
    reads. Every step flushed before a kill is there, in order; torn lines are counted,
    never fatal.

    A SIGKILL rarely lands inside a ``write`` of a few KiB, so after a share ``tear`` of
    the kills the file also gets what a kill inside a write leaves: a cut line."""
    rng = random.Random(seed)
    runs, cache, progress_dir = base / "runs", base / "cache", base / "progress"
    runs.mkdir(parents=True)
    progress_dir.mkdir()
    env = env_with(cache)
    flushed: dict[tuple[str, str], int] = {}
    kills = loads = tears = 0
    for r in range(rounds):
        procs = []
        for j in range(parallel):
            progress = progress_dir / f"{r}-{j}"
            procs.append((f"k{j}", progress, subprocess.Popen(
                [PYTHON, "-c", KILLED_WRITER, str(runs), f"k{j}", str(r), str(progress),
                 str(rng.choice([0, 300, 4096]))], env=env, cwd=ROOT)))
        # Wait for an event, not a time: every writer has flushed at least once (its
        # progress file has a whole line). Only then do the kills start, each after a
        # random extra number of flushes, so kills land at random moments of the work
        # however loaded the machine is.
        for _, progress, proc in procs:
            _wait_for_lines(progress, proc, 1)
        loads += 1
        load_points(runs, cache)  # readers never fail meanwhile
        for run_id, progress, proc in procs:
            _wait_for_lines(progress, proc, rng.randrange(1, 80))
            load_points(runs, cache)
            loads += 1
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            text = progress.read_text() if progress.exists() else ""
            done = text[: text.rfind("\n") + 1].split()
            flushed[(run_id, str(r))] = int(done[-1]) if done else 0
            if rng.random() < tear:
                _tear(runs / f"{run_id}.jsonl", rng)
                tears += 1
        points, ds = load_points(runs, cache)
        loads += 1
        _check_prefixes(points, flushed)
    points, ds = load_points(runs, cache)
    plain, plain_ds = load_points(runs, None)
    assert points.sort("run", "round", "step").equals(plain.sort("run", "round", "step"))
    counts = ds.diagnostics.counts()
    assert set(counts) <= {"torn", "malformed"}, counts
    # Each kill can tear one line; a resumed run ends it, after which it reads as malformed.
    torn = counts.get("torn", 0) + counts.get("malformed", 0)
    assert tears <= torn <= kills + tears, (tears, torn)
    for item in ds.diagnostics.items:
        assert item.path.endswith(".jsonl") and item.line > 0, str(item)
    beyond = points.height - sum(flushed.values())
    return {"kills": kills, "rounds": rounds, "records_read": points.height,
            "records_flushed_before_kill": sum(flushed.values()),
            "records_from_background_flush": beyond, "lost_flushed": 0,
            "torn_lines_reported": torn, "of_them_cut_by_the_test": tears,
            "reader_loads": loads}


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait_for_lines(progress: Path, proc: subprocess.Popen, lines: int,
                    timeout: float = 300) -> None:
    """Block until ``progress`` holds ``lines`` whole lines (each one a flush the writer
    has finished). The timeout only turns a writer that died or hung into a clear failure;
    it is not what the test waits for."""
    end = time.monotonic() + timeout
    while _lines(progress) < lines:
        assert proc.poll() is None, f"writer exited with {proc.returncode} before flushing"
        assert time.monotonic() < end, f"no flush {lines} from the writer in {timeout}s"
        time.sleep(0.005)


def _tear(path: Path, rng: random.Random) -> None:
    """Append part of a record line, as a writer killed inside ``write`` leaves it."""
    line = (b'{"kind":"point","run":"' + path.stem.encode() + b'","name":"m",'
            b'"context":{"round":"torn"},"value":1.5,"step":999999,"time":1.0}')
    with open(path, "ab") as fh:
        fh.write(line[: rng.randrange(1, len(line) - 1)])


def _check_prefixes(points: pl.DataFrame, flushed: dict[tuple[str, str], int]) -> None:
    seen = {(run, rnd): steps for run, rnd, steps in
            points.group_by("run", "round").agg(pl.col("step").sort()).iter_rows()}
    for key, need in flushed.items():
        steps = seen.get(key, [])
        assert steps == list(range(len(steps))), (key, steps[:10])
        assert len(steps) >= need, (key, len(steps), need)


# -- 3. compaction and cache updates killed at random moments ----------------------------

COMPACT = r"""
import sys
import polars, pyarrow.parquet, xpcli.records
from xpcli.compact import compact
print("ready", flush=True)
compact(sys.argv[1], min_age=0)
"""

CACHE_READ = r"""
import sys, xpcli
import polars, xpcli.dataset, xpcli.cache, xpcli.compact
print("ready", flush=True)
xpcli.load(sys.argv[1]).points.collect()
"""


def _timed(code: str, args: list[str], env: dict[str, str]) -> float:
    """Seconds from "ready" to the end of one uninterrupted run of ``code``."""
    proc = subprocess.Popen([PYTHON, "-c", code, *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    start = time.monotonic()
    assert proc.wait(timeout=300) == 0
    return time.monotonic() - start


def _kill_during(code: str, args: list[str], env: dict[str, str], delay: float) -> bool:
    """Run ``code`` and SIGKILL it ``delay`` seconds into its work; True if it was killed."""
    proc = subprocess.Popen([PYTHON, "-c", code, *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed


def make_finished_runs(runs: Path, n: int, points: int, tag: str = "") -> None:
    from xpcli import Run

    for r in range(n):
        run = Run(runs, f"r{tag}{r}", params={"lr": 10.0 ** -(r % 6), "label": f"<{r}>"},
                  time=T0, flush_bytes=1 << 20, flush_seconds=0)
        for i in range(points):
            run.track(r + i / 1000, "m", step=i, context={"k": str(i % 3)}, time=T0 + i)
        run.close(time=T0 + points)


def snapshot(runs: Path, cache: Path | None) -> tuple[list, list]:
    points, ds = load_points(runs, cache)
    meta = ds.runs.select("run", "lr", "label", "status", "points").sort("run").collect().rows()
    return points.sort("run", "step").rows(), meta


def killed_compactions(base: Path, attempts: int, runs_n: int = 12, points: int = 300,
                       seed: int = 2) -> dict[str, Any]:
    """Compaction SIGKILLed at random moments, then killed again while it recovers, with
    readers (through the cache) after every kill: the records stay exactly the same."""
    rng = random.Random(seed)
    template, cache = base / "template", base / "cache"
    make_finished_runs(template, runs_n, points)
    expected = snapshot(template, None)
    env = env_with(cache)
    probe = base / "probe"
    shutil.copytree(template, probe)
    span = _timed(COMPACT, [str(probe)], env)
    kills = completed = 0
    for attempt in range(attempts):
        runs = base / f"runs{attempt}"
        shutil.copytree(template, runs)
        for _ in range(2):  # killed, then killed again while it recovers
            if _kill_during(COMPACT, [str(runs)], env, rng.uniform(0, span * 1.1)):
                kills += 1
            else:
                completed += 1
            assert snapshot(runs, cache) == expected, f"attempt {attempt}"
            assert snapshot(runs, None) == expected, f"attempt {attempt} (no cache)"
        from xpcli.compact import compact

        compact(str(runs), min_age=0)  # the next run completes it
        assert snapshot(runs, cache) == expected
        assert [p.name for p in runs.iterdir() if p.suffix == ".jsonl"] == []
        shutil.rmtree(runs)
    return {"attempts": attempts, "kills": kills, "finished_before_kill": completed,
            "work_seconds": round(span, 2), "records": len(expected[0]), "lost": 0,
            "duplicated": 0}


def killed_cache_updates(base: Path, attempts: int, runs_n: int = 40, points: int = 2000,
                         seed: int = 3) -> dict[str, Any]:
    """A big directory's cache update SIGKILLed at random moments (first build, appends,
    merges): the next read is exact, compared with a read without the cache."""
    from xpcli import Run

    rng = random.Random(seed)
    runs, cache = base / "runs", base / "cache"
    make_finished_runs(runs, runs_n, points)
    env = env_with(cache)
    span = _timed(CACHE_READ, [str(runs)], env)  # the first build: the longest update
    shutil.rmtree(cache)
    kills = completed = appended = 0
    for attempt in range(attempts):
        if _kill_during(CACHE_READ, [str(runs)], env, rng.uniform(0, span * 1.1)):
            kills += 1
        else:
            completed += 1
        cached = snapshot(runs, cache)
        assert cached == snapshot(runs, None), f"attempt {attempt}"
        # Change the directory so the next update has work: appends, a new file, a rewrite.
        choice = rng.choice(["append", "new", "rewrite", "clear"])
        if choice == "append":
            run = Run(runs, f"r{rng.randrange(runs_n)}", flush_seconds=0)
            for i in range(points, points + 50):
                run.track(float(i), "m", step=i + attempt * 100, time=T0 + i)
            run.close(time=T0 + 2 * points)
            appended += 50
        elif choice == "new":
            make_finished_runs(runs, 1, points // 4, tag=f"n{attempt}-")
        elif choice == "rewrite":
            victim = runs / f"r{rng.randrange(runs_n)}.jsonl"
            victim.write_bytes(victim.read_bytes())  # same bytes, new mtime
        else:
            shutil.rmtree(cache, ignore_errors=True)
    assert snapshot(runs, cache) == snapshot(runs, None)
    return {"attempts": attempts, "kills": kills, "finished_before_kill": completed,
            "work_seconds": round(span, 2), "files": len(list(runs.iterdir())),
            "appended_points": appended, "lost": 0, "duplicated": 0}


# -- 4. writers that fork --------------------------------------------------------------

FORKING_WRITER = r"""
import os, random, sys
from xpcli import Run
from xpcli.errors import UsageError
runs, index, points, forks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(index)
run = Run(runs, f"f{index}", params={"writer": index}, flush_bytes=rng.choice([0, 300, 4096]),
          flush_seconds=0.002)  # the background flusher may hold the lock at a fork
at = sorted(rng.sample(range(points), forks))
kinds = ["exit", "raise", "_exit", "track", "own"]
children = []
for i in range(points):
    run.track(index * 1e6 + i, "m", step=i)
    while at and at[0] == i:
        at.pop(0)
        kind = kinds[len(children) % len(kinds)]
        pid = os.fork()
        if pid == 0:  # the child: every way out of a forked child
            if kind == "_exit":
                os._exit(0)
            if kind == "raise":
                raise SystemExit(3)
            if kind == "track":
                try:
                    run.track(-1.0, "m", step=-1)
                except UsageError:
                    sys.exit(0)
                sys.exit(5)  # writing to the parent's run must be refused
            if kind == "own":
                own = Run(runs, f"c{index}-{len(children)}", flush_seconds=0)
                own.track(1.0, "c", step=0)
            sys.exit(0)  # the exit handlers run in the child
        children.append((pid, 3 if kind == "raise" else 0, kind))
for pid, expected, kind in children:
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == expected, (kind, status)
run.close()
print(len(children), sum(kind == "own" for *_, kind in children))
"""


def forking_writers(base: Path, writers: int, points: int, forks: int) -> dict[str, Any]:
    """``writers`` processes track ``points`` points each and fork ``forks`` children at
    random moments, with a background flush every 2 ms; the children leave every way there
    is (a normal exit, an uncaught exception, ``os._exit``, a refused ``track`` on the
    parent's run, a run of their own). Every parent's record is read back exactly once and
    its status goes ``running`` -> ``finished`` only; the children's runs are their own."""
    runs = base / "runs"
    runs.mkdir(parents=True)
    env = env_with(None)
    procs = [subprocess.Popen([PYTHON, "-c", FORKING_WRITER, str(runs), str(i), str(points),
                               str(forks)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(writers)]
    children = own = 0
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        made, mine = map(int, out.split())
        children += made
        own += mine
    from xpcli.format import parse_line

    for i in range(writers):
        recs = [parse_line(line) for line in (runs / f"f{i}.jsonl").read_bytes().splitlines()]
        steps = [r["step"] for r in recs if r["kind"] == "point"]
        assert steps == list(range(points)), (i, len(steps), points)
        values = [r["value"] for r in recs if r["kind"] == "point"]
        assert values == [i * 1e6 + s for s in range(points)], i
        statuses = [r["meta"]["status"] for r in recs
                    if r["kind"] == "run" and "status" in r["meta"]]
        assert statuses == ["running", "finished"], (i, statuses)
    points_read, ds = load_points(runs, None)
    assert not len(ds.diagnostics), ds.diagnostics.summary()
    child_runs = ds.runs.filter(pl.col("run").str.starts_with("c")).collect()
    assert child_runs.height == own
    assert child_runs["status"].to_list() == ["finished"] * own
    assert points_read.filter(pl.col("name") == "c").height == own
    return {"writers": writers, "points_per_writer": points, "forks": children,
            "child_runs": own, "records": writers * points, "lost": 0, "duplicated": 0}


# -- 5. text that cannot be written, among good points -----------------------------------

HOSTILE_WRITER = r"""
import os, random, sys
from xpcli import Run
from xpcli.errors import UsageError
runs, names_dir, index, points = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(index)
# Real non-UTF-8 file names, as a job finds them: os.listdir gives lone surrogates.
bad = sorted(n for n in os.listdir(names_dir) if n != os.fsencode(n).decode("utf-8", "replace"))
assert bad, "no surrogate names"
calls = [
    lambda run, n: run.track(1.0, n),
    lambda run, n: run.track(1.0, "m", context={"file": n}),
    lambda run, n: run.track(1.0, "m", context={"k": [n]}),
    lambda run, n: run.log_params({"path": n}),
    lambda run, n: run.log_params({n: 1}),
    lambda run, n: run.log_params({"cfg": {"files": [n]}}),
    lambda run, n: run.set_meta(tags=["ok", n]),
    lambda run, n: run.track(10**400, "m"),
    lambda run, n: run.log_params({1: "a", "1": "b"}),
]
run = Run(runs, f"h{index}", params={"writer": index}, flush_bytes=rng.choice([0, 300, 4096]),
          flush_seconds=0.002)
refused = 0
for i in range(points):
    run.track(index * 1e6 + i, "m", step=i, context={"w": str(index)})
    if rng.random() < 0.2:
        try:
            rng.choice(calls)(run, rng.choice(bad))
        except UsageError:
            refused += 1
        else:
            raise SystemExit("accepted text that cannot be written")
    if i % 97 == 0:
        run.log_params({"seen": i})
run.close()
print(refused)
"""


def hostile_text_writers(base: Path, writers: int, points: int) -> dict[str, Any]:
    """``writers`` processes track ``points`` good points each and, between them, text that
    cannot be written (real non-UTF-8 file names, as ``os.listdir`` decodes them) and
    other bad input, with a background flush every 2 ms. Every bad call is refused at once
    with a UsageError; every good point reads back exactly once; the status is finished."""
    runs, names = base / "runs", base / "names"
    runs.mkdir(parents=True)
    names.mkdir()
    for raw in (b"caf\xe9.txt", b"\xff\xfe", b"ok-\x80", b"\xed\xa0\x80"):
        try:
            (names / os.fsdecode(raw)).touch()
        except OSError:  # a filesystem that takes UTF-8 names only
            pass
    if not os.listdir(names):
        raise AssertionError("this filesystem takes no non-UTF-8 names")
    env = env_with(None)
    procs = [subprocess.Popen([PYTHON, "-c", HOSTILE_WRITER, str(runs), str(names), str(i),
                               str(points)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(writers)]
    refused = 0
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        refused += int(out)
    points_read, ds = load_points(runs, None)
    assert not len(ds.diagnostics), ds.diagnostics.summary()
    got = points_read.select("w", "step", "value").sort("w", "step")
    expected = pl.DataFrame({
        "w": [str(i) for i in range(writers) for _ in range(points)],
        "step": [s for _ in range(writers) for s in range(points)],
        "value": [i * 1e6 + s for i in range(writers) for s in range(points)],
    }).sort("w", "step")
    assert got.equals(expected)
    runs_table = ds.runs.collect()
    assert runs_table["status"].to_list() == ["finished"] * writers
    assert runs_table["seen"].to_list() == [97 * ((points - 1) // 97)] * writers
    assert not {"path", "tags", "cfg.files"} & set(runs_table.columns)
    return {"writers": writers, "points_per_writer": points, "refused_calls": refused,
            "records": writers * points, "lost": 0, "duplicated": 0}


# -- 6. run files edited in place ---------------------------------------------------------

_VALUE = re.compile(rb'"value":(-?[0-9.e+-]+)')


def _edit_in_place(path: Path, step: int, rng: random.Random) -> float:
    """Change one digit of the value of ``step`` in ``path``, in place (same inode, same
    size); return the new value."""
    data = bytearray(path.read_bytes())
    at = data.index(b'"step":%d,' % step)
    start = data.rindex(b"\n", 0, at) + 1
    found = _VALUE.search(bytes(data), start)
    assert found is not None and found.start() < at
    text = bytearray(found.group(1))
    digits = [i for i, c in enumerate(text) if chr(c).isdigit()]
    i = rng.choice(digits[1:] or digits)  # not the leading digit: no "0" in front
    text[i] = ord(rng.choice([d for d in "0123456789" if d != chr(text[i])]))
    with open(path, "r+b") as fh:
        fh.seek(found.start(1))
        fh.write(bytes(text))
    return float(text)


def in_place_edits(base: Path, rounds: int, runs_n: int = 6, points: int = 300,
                   seed: int = 4) -> dict[str, Any]:
    """``rounds`` times: read through the cache, then edit values in the middle of run
    files in place (one digit, same size), in turn putting the old mtime back, appending
    points after the edit, or rewriting the whole file to the same size. After every round
    the cached read gives exactly the values of the recipe with the edits applied (and the
    read without the cache agrees): never a stale value. Every other round runs without
    the cache's 2 s window for files read just after they changed, so the ctime alone must
    show the edits."""
    from xpcli import cache as cache_module

    rng = random.Random(seed)
    runs, cache = base / "runs", base / "cache"
    make_finished_runs(runs, runs_n, points)
    # The recipe of make_finished_runs: run r, step i -> r + i / 1000.
    expected = {(f"r{r}", i): r + i / 1000 for r in range(runs_n) for i in range(points)}
    counts = dict.fromkeys(("edits", "restore-mtime", "append", "rewrite", "none"), 0)
    window = cache_module.RACY_NS
    try:
        for round_ in range(rounds):
            cache_module.RACY_NS = window if round_ % 2 else 0
            points_read, ds = load_points(runs, cache)
            _check_values(points_read, expected)
            _check_summary(ds)
            for _ in range(rng.randint(1, 3)):
                _edit_one(runs, expected, rng, runs_n, points, counts)
    finally:
        cache_module.RACY_NS = window
    points_read, ds = load_points(runs, cache)
    _check_values(points_read, expected)
    _check_summary(ds)
    plain, _ = load_points(runs, None)
    _check_values(plain, expected)
    return {"rounds": rounds, "rounds_without_the_2s_window": (rounds + 1) // 2,
            "files": runs_n, "edits": counts["edits"],
            "with_the_old_mtime_put_back": counts["restore-mtime"],
            "followed_by_an_append": counts["append"], "rewritten_whole": counts["rewrite"],
            "stale_values_served": 0}


def _check_summary(ds: Any) -> None:
    """The series summary the cache keeps answers every plain reduce exactly as the points
    do (the points themselves are checked against the recipe)."""
    from xpcli.analysis.reduce import reduce_runs
    from xpcli.spec.metric import expand, parse_metric_spec

    specs = [parse_metric_spec(f"m:k=*@{r}") for r in ("first", "last", "min", "max", "mean")]
    columns = expand(specs, ds.series_keys())
    by_summary = reduce_runs(ds.points, columns, summary=ds.series)
    assert by_summary.equals(reduce_runs(ds.points, columns)), "a stale series summary"


def _edit_one(runs: Path, expected: dict[tuple[str, int], float], rng: random.Random,
              runs_n: int, points: int, counts: dict[str, int]) -> None:
    """One edit of :func:`in_place_edits`, then the next action in turn; ``expected``
    and ``counts`` follow."""
    from xpcli import Run

    r = rng.randrange(runs_n)
    path = runs / f"r{r}.jsonl"
    before = os.stat(path)
    step = rng.randrange(points)
    expected[(f"r{r}", step)] = _edit_in_place(path, step, rng)
    action = ["restore-mtime", "append", "rewrite", "none"][counts["edits"] % 4]
    counts["edits"] += 1
    counts[action] += 1
    if action == "restore-mtime":
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif action == "append":
        run = Run(runs, f"r{r}", flush_seconds=0)
        new = points + counts["append"]
        run.track(-1.0 - new, "m", step=new, context={"k": "x"}, time=T0 + new)
        run.close(time=T0 + new)
        expected[(f"r{r}", new)] = -1.0 - new
    elif action == "rewrite":  # a new file of the same size under the same name
        data = path.read_bytes()
        path.unlink()
        path.write_bytes(data)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _check_values(points: pl.DataFrame, expected: dict[tuple[str, int], float]) -> None:
    got = {(run, step): value for run, step, value in
           points.select("run", "step", "value").iter_rows()}
    assert len(got) == points.height, "a point read twice"
    stale = [(key, got.get(key), value) for key, value in expected.items()
             if got.get(key) != value]
    assert not stale and len(got) == len(expected), stale[:5]

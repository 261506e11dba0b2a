"""Benchmark: the same runs read from a local folder and from a local S3-compatible server.

Takes a runs folder of the reference story (``scripts/bench.py`` writes one; default
2,400 runs), starts moto's standalone S3 server on the loopback interface (the dev
extra), uploads the runs twice (one object per run file, as a folder copied up; and
each run file cut into ``--segments`` objects ``<run>/<writer>-<seq>.jsonl``, as
``Run`` writes on object storage), then times the runs query as a whole process:

- cold: an empty cache (and an empty mirror: every object downloaded and parsed);
- warm: the same query again (every object listed, none downloaded or parsed);
- +1 segment: one new object in one run, then the query (one downloaded and parsed).

The best of ``--repeat`` rounds of each is printed as a Markdown table for
docs/scale.md. The S3 server runs in this process, in Python: its cost per request
is far above a real store's, and its network is the loopback.

Usage: python scripts/bench_remote.py [--runs DIR] [--segments 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from s3_helpers import BUCKET, moto_server, s3_env  # noqa: E402

XP = [sys.executable, "-m", "xpcli"]
QUERY = ["select", "-p", "lr,seed", "-m", "f1:lang=*@max", "--format", "csv"]


def timed(runs: str, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([*XP, "--runs", runs, *QUERY], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"xp failed on {runs}: {proc.stderr[-2000:]}")
    return wall, proc.stdout


def upload(store: object, items: list[tuple[str, bytes]]) -> None:
    import obstore

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda item: obstore.put(store, item[0], item[1]), items))


def segments_of(path: Path, count: int) -> list[bytes]:
    lines = path.read_bytes().splitlines(keepends=True)
    size = max(1, -(-len(lines) // count))
    return [b"".join(lines[i:i + size]) for i in range(0, len(lines), size)]


def measure(url: str, base_env: dict[str, str], add: tuple[object, str, bytes],
            repeat: int) -> dict[str, float]:
    """Cold, warm and +1 segment for one runs directory or URL (best of ``repeat``)."""
    import obstore

    best: dict[str, float] = {}
    answers = set()
    for _ in range(repeat):
        cache = tempfile.mkdtemp(prefix="xp-bench-remote-")
        env = {**base_env, "XP_CACHE_DIR": cache}
        try:
            cold, out = timed(url, env)
            warm, out2 = timed(url, env)
            answers |= {out, out2}
            store, key, data = add
            if store is None:
                Path(key).write_bytes(data)
            else:
                obstore.put(store, key, data)
            grown, _ = timed(url, env)
            if store is None:
                os.unlink(key)
            else:
                obstore.delete(store, key)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        for name, value in (("cold", cold), ("warm", warm), ("+1 segment", grown)):
            best[name] = min(value, best.get(name, value))
    assert len(answers) == 1, "the answer changed between rounds"
    best["answer"] = hash(answers.pop())
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="bench-data/runs-2400")
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = Path(args.runs)
    files = sorted(runs.rglob("*.jsonl"))
    if not files:
        raise SystemExit(f"no runs under {runs}: python scripts/bench.py --sizes 2400 writes "
                         "them (bench-data/runs-2400)")
    size = sum(p.stat().st_size for p in files)
    extra = (b'{"kind":"point","run":"%s","name":"loss","value":0.5,"step":999999,'
             b'"time":1767225600.0}\n' % files[0].stem.encode())
    rows = {}
    with moto_server() as endpoint:
        env = {**os.environ, **s3_env(endpoint)}
        os.environ.update(s3_env(endpoint))
        from xpcli import remote

        local_extra = str(runs / "zz-extra.jsonl")
        rows["local folder"] = measure(str(runs), env, (None, local_extra, extra), args.repeat)
        flat = f"s3://{BUCKET}/flat"
        store = remote.open_store(flat)
        start = time.perf_counter()
        upload(store, [(str(p.relative_to(runs)), p.read_bytes()) for p in files])
        upload_flat = time.perf_counter() - start
        rows[f"S3, {len(files):,} objects (a file each)"] = measure(
            flat, env, (store, "zz-extra.jsonl", extra), args.repeat)
        cut = f"s3://{BUCKET}/segments"
        store = remote.open_store(cut)
        items = []
        for path in files:
            for seq, data in enumerate(segments_of(path, args.segments)):
                items.append((f"{path.stem}/01JXBENCHWRITER00000000000-{seq:08d}.jsonl", data))
        upload(store, items)
        rows[f"S3, {len(items):,} objects ({args.segments} segments a run)"] = measure(
            cut, env, (store, f"{files[0].stem}/01JXBENCHWRITER00000000001-00000000.jsonl",
                       extra), args.repeat)
    answers = {row.pop("answer") for row in rows.values()}
    print(f"{len(files):,} run files, {size / 1e6:.0f} MB of JSONL; uploading the "
          f"file-per-run copy took {upload_flat:.1f} s; same answer everywhere: "
          f"{len(answers) == 1}; load average {os.getloadavg()[0]:.1f}\n")
    print("| runs directory | cold | warm | +1 segment |")
    print("| --- | ---: | ---: | ---: |")
    for name, row in rows.items():
        print(f"| {name} | {row['cold']:.2f} s | {row['warm']:.2f} s | "
              f"{row['+1 segment']:.2f} s |")


if __name__ == "__main__":
    main()

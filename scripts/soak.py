"""The long reliability run behind ``make soak``: the CI scenarios at full size.

Runs, each in a fresh temporary folder: 32 writers appending at once while readers and
``xp`` commands run; writers SIGKILLed at random moments; compactions and cache updates
SIGKILLed at random moments; writers that fork children at random moments; writers fed
text that cannot be written (non-UTF-8 file names) between good points; run files edited
in place between cached reads; then the fuzz tests with ``XP_SOAK=1`` (many more
examples).
Prints the numbers (writers x records, kills, fuzz cases per target, what was lost) and
exits non-zero when any property fails.

    python scripts/soak.py [--quick]   # --quick: the CI sizes, for trying the script
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

FUZZ_FILES = ["tests/test_fuzz_reader.py", "tests/test_fuzz_spec.py",
              "tests/test_fuzz_importers.py"]


def scenarios(quick: bool) -> dict[str, dict]:
    from reliability_helpers import (
        concurrent_writers,
        forking_writers,
        hostile_text_writers,
        in_place_edits,
        killed_cache_updates,
        killed_compactions,
        killed_writers,
    )

    big = not quick
    plan = {
        "concurrent_writers": lambda base: concurrent_writers(
            base, writers=32, records=30000 if big else 150, readers=3 if big else 1),
        "killed_writers": lambda base: killed_writers(base, rounds=60 if big else 3),
        "killed_compactions": lambda base: killed_compactions(
            base, attempts=30 if big else 2, runs_n=24 if big else 12,
            points=1000 if big else 300),
        "killed_cache_updates": lambda base: killed_cache_updates(
            base, attempts=60 if big else 3, runs_n=60 if big else 20,
            points=3000 if big else 1000),
        "forking_writers": lambda base: forking_writers(
            base, writers=8 if big else 2, points=20000 if big else 2000,
            forks=200 if big else 10),
        "hostile_text_writers": lambda base: hostile_text_writers(
            base, writers=8 if big else 2, points=20000 if big else 2000),
        "in_place_edits": lambda base: in_place_edits(
            base, rounds=200 if big else 6, runs_n=24 if big else 4,
            points=3000 if big else 200),
    }
    results = {}
    for name, run in plan.items():
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"xp-soak-{name}-") as base:
            try:
                numbers = run(Path(base))
            except AssertionError as exc:
                numbers = {"FAILED": str(exc)[:2000]}
        numbers["seconds"] = round(time.monotonic() - started, 1)
        results[name] = numbers
        print(f"{name}: {json.dumps(numbers)}", flush=True)
    return results


_STATS = re.compile(r"^(tests/\S+::\S+):\s*$")
_CASES = re.compile(r"(\d+) passing, (\d+) failing, and (\d+) invalid")


def fuzz(quick: bool) -> tuple[dict[str, int], int, str]:
    """Run the fuzz tests (XP_SOAK=1 unless quick); cases per target from hypothesis."""
    env = {**os.environ}
    if not quick:
        env["XP_SOAK"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *FUZZ_FILES, "-q", "-p", "no:cacheprovider",
         "--hypothesis-show-statistics"],
        cwd=ROOT, env=env, capture_output=True, text=True)
    cases: dict[str, int] = {}
    target = None
    for line in proc.stdout.splitlines():
        head = _STATS.match(line)
        if head:
            target = head.group(1).split("::", 1)[1]
            continue
        found = _CASES.search(line)
        if found and target:
            cases[target] = cases.get(target, 0) + int(found.group(1)) + int(found.group(2))
    lines = proc.stdout.strip().splitlines()
    if proc.returncode:  # the failures in full, for the report
        first = next((i for i, line in enumerate(lines) if "= FAILURES =" in line), 0)
        lines = [line[:500] for line in lines[first:]]
    tail = "\n".join(lines if proc.returncode else lines[-3:])
    return cases, proc.returncode, tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI sizes (a quick try)")
    parser.add_argument("--no-fuzz", action="store_true", help="skip the fuzz tests")
    args = parser.parse_args()
    os.environ.setdefault("XP_CACHE_DIR", tempfile.mkdtemp(prefix="xp-soak-cache-"))
    started = time.monotonic()
    results = scenarios(args.quick)
    failed = [name for name, numbers in results.items() if "FAILED" in numbers]
    fuzz_rc = 0
    if not args.no_fuzz:
        cases, fuzz_rc, tail = fuzz(args.quick)
        print("\nfuzz cases per target (examples run, incl. shrinking):")
        for target, n in sorted(cases.items()):
            print(f"  {target}: {n}")
        print(tail)
    w = results["concurrent_writers"]
    k = results["killed_writers"]
    c = results["killed_compactions"]
    u = results["killed_cache_updates"]
    f = results["forking_writers"]
    h = results["hostile_text_writers"]
    e = results["in_place_edits"]
    print("\nsummary")
    if not failed:
        print(f"  {w['writers']} writers x {w['records_per_writer']} records = {w['records']} "
              f"records, {w['reader_loads']} reader loads and {w['xp_commands']} xp commands "
              f"meanwhile: lost {w['lost']}, duplicated {w['duplicated']}")
        print(f"  {k['kills']} writer kills: {k['records_flushed_before_kill']} records flushed "
              f"before the kills, all read back ({k['records_read']} read, "
              f"{k['records_from_background_flush']} more from background flushes); "
              f"{k['torn_lines_reported']} torn lines reported ({k['of_them_cut_by_the_test']} "
              f"cut by the test), none fatal; lost {k['lost_flushed']}")
        print(f"  {c['kills']} compaction kills in {c['attempts']} attempts "
              f"({c['records']} records): lost {c['lost']}, duplicated {c['duplicated']}")
        print(f"  {u['kills']} cache-update kills in {u['attempts']} attempts "
              f"({u['files']} files): every next read exact")
        print(f"  {f['forks']} forked children of {f['writers']} writers "
              f"({f['records']} records, {f['child_runs']} runs of the children's own): "
              f"lost {f['lost']}, duplicated {f['duplicated']}, no status from a child")
        print(f"  {h['refused_calls']} calls with unwritable text refused among "
              f"{h['records']} good records of {h['writers']} writers: lost {h['lost']}")
        print(f"  {e['edits']} in-place edits of {e['files']} run files in {e['rounds']} "
              f"rounds ({e['rounds_without_the_2s_window']} without the 2 s window; "
              f"{e['with_the_old_mtime_put_back']} with the old mtime put back, "
              f"{e['followed_by_an_append']} followed by an append, {e['rewritten_whole']} "
              f"rewritten whole): {e['stale_values_served']} stale values served")
    for name in failed:
        print(f"  FAILED {name}: {results[name]['FAILED']}")
    print(f"  total {time.monotonic() - started:.0f}s")
    return 1 if failed or fuzz_rc else 0


if __name__ == "__main__":
    sys.exit(main())

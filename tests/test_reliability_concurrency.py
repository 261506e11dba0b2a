"""Many writers, readers and ``xp`` commands on one runs directory at once.

Counts are small here (CI); ``XP_SOAK=1`` (``make soak``) runs the same scenario at full
size. Every record written is read back exactly once, with and without the cache.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from reliability_helpers import T0, concurrent_writers, forking_writers, scale

pytestmark = pytest.mark.slow  # the whole module: make test-fast leaves it out


def test_32_writers_readers_and_commands_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    numbers = concurrent_writers(tmp_path, writers=32, records=scale(150, 5000),
                                 readers=scale(1, 3))
    assert numbers["records"] == 32 * scale(150, 5000)
    assert numbers["xp_commands"] >= 3


def _resume(runs: Path) -> None:
    from xpcli import Run

    run = Run(runs, "r0", time=T0 + 100, flush_seconds=0)
    run.track(99.0, "m", step=99, time=T0 + 100)
    run.close(time=T0 + 200)


def _blocked_on(path: Path) -> bool:
    """True when some process waits for a ``flock`` on ``path`` (``/proc/locks`` lists a
    blocked waiter as ``N: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE ...``)."""
    try:
        inode = path.stat().st_ino
    except FileNotFoundError:
        return False
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[1] == "->" and fields[6].endswith(f":{inode}"):
            return True
    return False


def _wait_until_blocked(path: Path, thread: threading.Thread, timeout: float = 300) -> None:
    """Wait for an event, never a time: the resuming thread is blocked on the compaction's
    lock of ``path`` (or has finished, if it never needed it)."""
    if not Path("/proc/locks").exists():
        pytest.skip("needs /proc/locks to see a writer waiting for the lock")
    end = time.monotonic() + timeout
    while thread.is_alive() and not _blocked_on(path):
        assert time.monotonic() < end, "the resumed run neither blocked nor finished"
        time.sleep(0.002)


@pytest.mark.parametrize("window", ["after-read", "before-unlink"])
def test_a_run_resumed_during_compaction_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: str
) -> None:
    """A finished run resumed (``Run(dir, same_id)``) while ``xp compact`` works on its
    file: the new records are kept, in the file or the Parquet, never dropped."""
    import xpcli.compact as compact_mod
    from xpcli import Run, load

    runs = tmp_path / "runs"
    run = Run(runs, "r0", time=T0, flush_seconds=0)
    for i in range(10):
        run.track(float(i), "m", step=i, time=T0 + i)
    run.close(time=T0 + 20)
    hook_at = "_final_status" if window == "after-read" else "_write_with_sources"
    real = getattr(compact_mod, hook_at)

    resumed: list[threading.Thread] = []

    def hooked(*args):  # noqa: ANN002, ANN202
        out = real(*args)
        # Another job resumes the run now: its appends wait for the compaction's lock.
        thread = threading.Thread(target=_resume, args=(runs,))
        thread.start()
        resumed.append(thread)
        _wait_until_blocked(runs / "r0.jsonl", thread)  # it waits for the lock now
        return out

    monkeypatch.setattr(compact_mod, hook_at, hooked)
    compact_mod.compact(str(runs), min_age=0)
    for thread in resumed:
        thread.join(timeout=300)
        assert not thread.is_alive()
    for cache in ("1", ""):
        monkeypatch.setenv("XP_NO_CACHE", cache)
        steps = sorted(load(runs).points.collect()["step"].to_list())
        assert steps == [*range(10), 99]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_children_of_writers_duplicate_nothing_and_leave_the_status_alone(
        tmp_path: Path) -> None:
    numbers = forking_writers(tmp_path, writers=scale(2, 8), points=scale(2000, 20000),
                              forks=scale(10, 200))
    assert numbers["forks"] == scale(2, 8) * scale(10, 200)

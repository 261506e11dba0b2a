"""The benchmark's fast generator writes exactly the bytes the public writer writes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import reference_story as story  # noqa: E402


@pytest.mark.parametrize("seed", [0, 7])
def test_fast_writer_writes_the_writers_bytes(tmp_path: Path, seed: int) -> None:
    """Every learning rate (each has its own shared curves), two seeds and indexes that
    move the host name and times: the files are equal byte for byte."""
    slow, fast = tmp_path / "writer", tmp_path / "fast"
    slow.mkdir()
    fast.mkdir()
    for k, lr in enumerate(story.LEARNING_RATES):
        index = seed * len(story.LEARNING_RATES) + k
        story.write_run(slow, lr, seed, index)
        story.write_run_fast(fast, lr, seed, index)
    names = sorted(p.name for p in slow.iterdir())
    assert names == sorted(p.name for p in fast.iterdir())
    assert len(names) == len(story.LEARNING_RATES)
    for name in names:
        want = (slow / name).read_bytes()
        got = (fast / name).read_bytes()
        assert got.count(b"\n") == 1 + 60 * 15 + 2
        assert got == want, name


def test_fast_writer_time_text_without_whole_seconds() -> None:
    """The time text falls back to write_run's rounding where a time is not whole."""
    t = 1_767_225_600.25 + 90.0
    assert story._times(t) == [f"{round(t - 90 + step * 9.0, 3)!r}}}\n" for step in range(10)]
    assert story._times(1_767_225_690.0)[1] == "1767225609.0}\n"

"""Many writers, readers and ``xp`` commands on one runs directory at once.

Counts are small here (CI); ``XP_SOAK=1`` (``make soak``) runs the same scenario at full
size. Every record written is read back exactly once, with and without the cache.
"""

from __future__ import annotations

from pathlib import Path

from reliability_helpers import concurrent_writers, scale


def test_32_writers_readers_and_commands_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    numbers = concurrent_writers(tmp_path, writers=32, records=scale(150, 5000),
                                 readers=scale(1, 3))
    assert numbers["records"] == 32 * scale(150, 5000)
    assert numbers["xp_commands"] >= 3

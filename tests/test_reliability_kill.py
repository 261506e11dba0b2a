"""SIGKILL at random moments: writers, compaction, cache updates.

Small counts here; ``XP_SOAK=1`` scales them up. Readers never fail, what was flushed is
there, a torn line is counted, and a killed compaction or cache update is completed by
the next run with nothing lost or duplicated.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_helpers import killed_cache_updates, killed_compactions, killed_writers, scale

pytestmark = pytest.mark.slow  # the whole module: make test-fast leaves it out


def test_writers_killed_at_random_keep_everything_flushed(tmp_path: Path) -> None:
    numbers = killed_writers(tmp_path, rounds=scale(3, 60))
    assert numbers["kills"] == 4 * scale(3, 60)


def test_compaction_killed_at_random_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    numbers = killed_compactions(tmp_path, attempts=scale(2, 40))
    assert numbers["attempts"] == scale(2, 40)


def test_cache_update_killed_at_random_is_exact_on_the_next_read(tmp_path: Path) -> None:
    numbers = killed_cache_updates(tmp_path, attempts=scale(3, 60), runs_n=scale(20, 60),
                                   points=scale(1000, 3000))
    assert numbers["attempts"] == scale(3, 60)

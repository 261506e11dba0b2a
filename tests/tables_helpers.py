"""Small runs directories with hand-picked values, for the select/group/selection tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

T0 = 1767225600.0  # 2026-01-01T00:00:00Z

#: (metric, context, epoch, value)
Point = tuple[str, Mapping[str, str], float, float]


def write_runs(root: Path, runs: Sequence[tuple[str, Mapping[str, Any], Sequence[Point]]]
               ) -> Path:
    """Write each (run id, params, points) through the public writer; created in order."""
    from xpcli import Run

    for index, (run_id, params, points) in enumerate(runs):
        created = T0 + 3600 * index
        with Run(root, run_id, params=params, time=created, flush_seconds=0) as run:
            for i, (name, context, epoch, value) in enumerate(points):
                run.track(value, name, epoch=epoch, context=dict(context) or None,
                          time=created + 1 + i)
            run.close(time=created + 1000)
    return root


def f1(epoch: float, **values: float) -> list[Point]:
    """f1 points at one epoch, one per language: f1(1, de=0.5, en=0.7)."""
    return [("f1", {"lang": lang}, epoch, value) for lang, value in values.items()]

"""Progress bars for long work (a cold cache build, a compaction), on stderr only.

Library code takes a :data:`Progress` callback and knows nothing of terminals; the CLI
passes one made by :func:`progress_bar`, which draws a rich bar on stderr when stderr is
a terminal, the work has lasted :data:`DELAY` seconds (quick work shows nothing), and the
command was not given ``-q``. Otherwise it passes None and nothing is drawn.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

#: ``progress(files_done, files_total, bytes_done, bytes_total, what)``: a step of long
#: work over files; ``what`` names the step ("reading", "parsing", "writing").
Progress = Callable[[int, int, int, int, str], None]

#: Seconds of work before a bar appears.
DELAY = 0.5


class _Bar:
    """A rich Progress started on the first update after :data:`DELAY` seconds."""

    def __init__(self, label: str, stream: IO[str]) -> None:
        self.label = label
        self.stream = stream
        self.start = time.monotonic()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, files_done: int, files_total: int, bytes_done: int,
                 bytes_total: int, what: str = "") -> None:
        if self.bar is None:
            if time.monotonic() - self.start < DELAY:
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(),
                                TextColumn("{task.fields[counts]}", markup=False),
                                TimeElapsedColumn(),
                                console=Console(file=self.stream, markup=False,
                                                highlight=False),
                                transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=None, counts="")
        counts = (f"{files_done:,}/{files_total:,} files, "
                  f"{bytes_done / 1e6:,.0f}/{bytes_total / 1e6:,.0f} MB")
        self.bar.update(self.task, completed=bytes_done, total=max(bytes_total, 1),
                        description=what or self.label, counts=counts)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def wanted(enabled: bool = True, stream: IO[str] | None = None) -> bool:
    """Whether a bar may be drawn: ``enabled`` (not ``-q``) and ``stream`` (stderr) a
    terminal."""
    stream = stream if stream is not None else sys.stderr
    return enabled and bool(getattr(stream, "isatty", lambda: False)())


@contextlib.contextmanager
def progress_bar(label: str, enabled: bool = True,
                 stream: IO[str] | None = None) -> Iterator[Progress | None]:
    """A :data:`Progress` drawing on ``stream`` (stderr) while the block runs, or None
    when no bar is wanted (:func:`wanted`). The bar is removed when the block ends."""
    stream = stream if stream is not None else sys.stderr
    if not wanted(enabled, stream):
        yield None
        return
    bar = _Bar(label, stream)
    try:
        yield bar
    finally:
        bar.stop()

"""``--watch``: a command's answer computed again every few seconds, until Ctrl-C.

Each refresh reads the runs directory again; the cache (:mod:`xpcli.cache`) parses only
what was appended since the last one, so a refresh costs about what a warm command does.
Shown three ways:

- on a terminal, a rich ``Live`` region redrawn in place (the table, then a line saying
  when it was refreshed). A table taller than the terminal shows the rows that fit and
  says how many more there are: a region taller than the screen cannot be redrawn in
  place, and drawing thousands of rows every refresh would cost seconds;
- in a pipe, the whole output again each time it changes (nothing when it does not);
- a figure (``-o FILE``) is written again, atomically, each time its bytes change, so an
  image viewer or a notebook showing the file sees it update.

:func:`loop` is the loop itself, with no clock of its own but ``interval``: tests drive it
by a :class:`Control` (a number of refreshes, a stop event, a hook after each refresh)
instead of by time.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from .output import Terminal, View, console, emit, table_renderable


@dataclass
class Control:
    """What ends a watch besides Ctrl-C, and a hook: ``refreshes`` (stop after that
    many), ``stop`` (an event that ends the wait between refreshes) and
    ``after_refresh(count)``, called after each refresh is shown."""

    refreshes: int | None = None
    stop: threading.Event | None = None
    after_refresh: Callable[[int], None] | None = None


#: Lines of the terminal a watched table leaves to its title, header, rule and footer.
RESERVED_LINES = 5


def loop(step: Callable[[], None], interval: float, control: Control | None = None) -> int:
    """Call ``step`` now and then every ``interval`` seconds until Ctrl-C or ``control``
    says stop; return how many refreshes were made. Ctrl-C is the normal way out: it ends
    the loop quietly (the caller exits 0)."""
    control = control or Control()
    stop = control.stop or threading.Event()
    count = 0
    try:
        while True:
            step()
            count += 1
            if control.after_refresh is not None:
                control.after_refresh(count)
            if control.refreshes is not None and count >= control.refreshes:
                break
            if stop.wait(interval):
                break
    except KeyboardInterrupt:
        pass
    return count


def rendered(frame: Any, format_: str, title: str | None, keys: Any = (),
             view: View | None = None) -> str:
    """The text ``emit`` would write for ``frame`` (any format but parquet)."""
    out = io.StringIO()
    emit(frame, format_, out, title=title, keys=keys, view=view)
    return out.getvalue()


class Screen:
    """Where a watched table goes: a ``Live`` region on a terminal, else the output
    stream, written again only when the output changed."""

    def __init__(self, out: IO[str], term: Terminal, interval: float) -> None:
        self.out = out
        self.term = term
        self.interval = interval
        self.live: Any = None
        self.last: str | None = None

    def __enter__(self) -> "Screen":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.stop()

    def show(self, frame: Any, format_: str, title: str | None, keys: Any = (),
             view: View | None = None) -> list[str]:
        """Show one refresh: ``format_`` is resolved (table, csv, ...); ``keys`` and
        ``view`` as for :func:`~xpcli.output.emit`. Returns the columns left out to fit."""
        if not self.term.is_tty:
            out = io.StringIO()
            dropped = emit(frame, format_, out, title=title, keys=keys, view=view)
            text = out.getvalue()
            if text == self.last:
                return []
            self.out.write(text)
            self.out.flush()
            self.last = text
            return dropped
        from rich.console import Group
        from rich.text import Text

        room = max(1, self.term.height - RESERVED_LINES)
        more = ""
        if format_ == "table":
            if frame.height > room:
                more = (f"{frame.height - room} more rows below (a pipe gets them all; "
                        "--where narrows them); ")
                frame = frame.head(room)
            shown = table_renderable(frame, title, self.term, keys, view)
            body, width = shown.table, shown.width
            if shown.dropped:
                more += (f"{len(shown.dropped)} columns left out to fit (--columns "
                         "chooses); ")
        else:
            lines = rendered(frame, format_, title, keys, view).rstrip("\n").split("\n")
            if len(lines) > room + 2:
                more = f"{len(lines) - room - 2} more lines below; "
                lines = lines[:room + 2]
            body = Text("\n".join(lines))
            width = self.term.width
        footer = Text(f"{more}every {self.interval:g}s, last at {time.strftime('%H:%M:%S')}; "
                      "Ctrl-C ends", style="dim")
        region = Group(body, footer)
        if self.live is None:
            from rich.live import Live

            self.live = Live(region, console=console(self.out, self.term, width, live=True),
                             auto_refresh=False, redirect_stderr=False,
                             vertical_overflow="visible")
            self.live.start(refresh=True)
        else:
            self.live.console.width = width
            self.live.update(region, refresh=True)
        return []

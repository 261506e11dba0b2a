"""``xp tail``: the points of one run, printed as they are logged."""

from __future__ import annotations

import threading

import click

from ..completion import complete_runs, complete_specs
from ._common import WATCH_CONTROL, Choice, command, find_obj, info, runs_dir, runs_option


@command("tail")
@click.argument("run", metavar="RUN", shell_complete=complete_runs)
@click.argument("specs", metavar="[SPEC]...", nargs=-1, shell_complete=complete_specs)
@runs_option
@click.option("-n", "--lines", "lines", type=click.IntRange(min=0), default=10,
              show_default=True, help="Print the last N points already logged first.")
@click.option("--interval", "interval", type=click.FloatRange(min=0, min_open=True),
              default=0.5, show_default=True, metavar="SECONDS",
              help="How often to look for new points.")
@click.option("--format", "format_", type=Choice(("auto", "lines", "jsonl")),
              default="auto", show_default=True,
              help="lines for people, jsonl for programs; auto = lines on a terminal, "
              "jsonl in a pipe.")
def tail_cmd(run: str, specs: tuple[str, ...], runs: str | None, lines: int, interval: float,
             format_: str) -> None:
    """Follow one run: print its points as they are logged, like tail -f.

    RUN is a run id; its file RUN.jsonl (anywhere under the runs directory), or its
    writers' files in a RUN/ folder (on a shared file system, or the objects of a runs
    URL), are read from the end, the last -n points first. SPECs keep only the points
    they name (f1:lang=*, loss). Ends when the run ends (a final status is written),
    or with Ctrl-C (exit 0).

    \b
    Examples:
      xp tail lr1e-4-s00 --runs sample_runs -n 3
      xp tail lr1e-4-s00 'f1:lang=*' --runs sample_runs --format jsonl | head -2
    """
    import sys

    from ..follow import Tail, tail_specs
    from ..output import point_json, point_text, terminal
    from ..watch import Control, loop

    chosen = format_ if format_ != "auto" else (
        "lines" if terminal(sys.stdout).is_tty else "jsonl")
    show = point_text if chosen == "lines" else point_json
    follow = Tail(runs_dir(runs), run, tail_specs(specs))

    def write(points: list[dict]) -> None:
        for point in points:
            sys.stdout.write(show(point) + "\n")
        sys.stdout.flush()

    write(follow.start(lines))
    if follow.ended:
        info(f"xp: run {run} is {follow.status}")
        return
    info(f"xp: following {run} (Ctrl-C ends)")
    given = find_obj(WATCH_CONTROL)
    control = given if isinstance(given, Control) else Control()
    stop = control.stop = control.stop or threading.Event()

    def step() -> None:
        write(follow.poll())
        if follow.ended or not follow.files:
            stop.set()

    loop(step, interval, control)
    if follow.ended:
        info(f"xp: run {run} is {follow.status}")

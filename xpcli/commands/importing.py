"""``xp import``: bring in runs logged by other tools."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..importers import REGISTRY
from ..text import visible
from ._common import (
    MAX_WARNINGS,
    Choice,
    command,
    emit,
    format_option,
    info,
    quiet_option,
    runs_dir,
)

#: Every KIND and its aliases (tb for tensorboard): import_runs resolves an alias.
KIND_CHOICES = tuple(REGISTRY) + tuple(a for r in REGISTRY.values() for a in r.aliases)


def _one_of(words: list[str]) -> str:
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else "".join(words)


# The docstring names every registered importer, so it is built from the registry.
IMPORT_HELP = f"""Import runs from {_one_of([r.title for r in REGISTRY.values()])} logs.

    KIND is {_one_of([f"{r.kind} ({r.help})" for r in REGISTRY.values()])}. Each source run
    becomes one Parquet file under INTO/imported/KIND/; importing again replaces those
    files. Prints the imported runs; skipped input is reported on stderr and counted.

    \b
    Examples:
      xp import tensorboard logs/ --into runs --params-from-name 'lr(?P<lr>[0-9e_]+)'
      xp import hf outputs/ --into runs && xp runs --runs runs
    """


@command("import", help=IMPORT_HELP)
@click.argument("kind", metavar="KIND", type=Choice(KIND_CHOICES, case_sensitive=False))
@click.argument("source", metavar="SOURCE")
@click.option("--into", "into", metavar="DIR", default=None,
              help="Runs directory to write to (default: --runs, $XP_RUNS, else ./runs); "
                   "files go to DIR/imported/KIND/RUN.parquet.")
@click.option("--params-from-name", "params_from_name", metavar="REGEX", default=None,
              help="Params from run names by named groups, e.g. 'lr(?P<lr>[0-9e_.-]+)'; "
                   "a group name ending in __str, __int, __float or __dec forces the type.")
@click.option("--context-from-name", "context_from_name", metavar="REGEX", default=None,
              help="Split metric names: group 'name' is the new name, the other groups "
                   "context, e.g. '(?P<split>train|val)_(?P<name>.+)'.")
@click.option("--system", is_flag=True,
              help="aim: import Aim's system metrics (__system__*) too.")
@click.option("--study", metavar="NAME", default=None,
              help="optuna: import this study only (default: every study in the storage).")
@click.option("--run-column", metavar="COL", default=None,
              help="table: the column naming the run (default run, run_id or run_name; "
                   "else one run per file).")
@click.option("--step-column", metavar="COL", default=None,
              help="table: the step column (default step, global_step or _step).")
@click.option("--epoch-column", metavar="COL", default=None,
              help="table: the epoch column (default epoch).")
@click.option("--name-column", metavar="COL", default=None,
              help="table: long layout, the column of metric names (default name or metric).")
@click.option("--value-column", metavar="COL", default=None,
              help="table: long layout, the column of values (default value).")
@click.option("--param-column", metavar="COL", multiple=True,
              help="table: a column (or JSON key) that is a param; repeatable.")
@click.option("--dry-run", "dry_run", is_flag=True,
              help="Read and count everything, report what is skipped; write nothing.")
@format_option
@quiet_option
def import_cmd(kind: str, source: str, into: str | None, params_from_name: str | None,
               context_from_name: str | None, system: bool, study: str | None,
               run_column: str | None,
               step_column: str | None, epoch_column: str | None, name_column: str | None,
               value_column: str | None, param_column: tuple[str, ...], dry_run: bool,
               format_: str, quiet: bool) -> None:
    import polars as pl

    from ..importers import import_runs

    target = into or runs_dir(None)
    if "://" in target:  # importers write Parquet files into a folder
        raise click.UsageError(f"--into {target}: xp import writes to a local folder; import "
                               "there, then copy the folder to object storage")
    with _progress_bar(enabled=not quiet) as progress:
        summary = import_runs(kind, source, target, params_from_name=params_from_name,
                              context_from_name=context_from_name, progress=progress,
                              dry_run=dry_run, system=system, study=study,
                              run_column=run_column,
                              step_column=step_column, epoch_column=epoch_column,
                              name_column=name_column, value_column=value_column,
                              param_column=param_column)
    if not quiet:
        for problem in summary.problems[:MAX_WARNINGS]:
            info(f"xp: warning: {problem}")
        if len(summary.problems) > MAX_WARNINGS:
            info(f"xp: warning: {len(summary.problems) - MAX_WARNINGS} more problems")
    table = pl.DataFrame(
        {
            "run": [r.run for r in summary.runs],
            "name": [r.name for r in summary.runs],
            "points": [r.points for r in summary.runs],
            "file": [r.path for r in summary.runs],
        },
        schema={"run": pl.String, "name": pl.String, "points": pl.Int64, "file": pl.String},
    )
    verb = "would be imported (dry run)" if dry_run else "imported"
    emit(table, format_, title=f"{len(summary.runs)} runs {verb}")
    skipped = f"; skipped {summary.skipped_text()}" if summary.skipped else ""
    rate = summary.points / summary.seconds if summary.seconds > 0 else 0.0
    info(f"{'dry run, nothing written: would import' if dry_run else 'imported'} "
         f"{len(summary.runs)} runs, {summary.points} points from {source} into {target} "
         f"in {summary.seconds:.1f} s ({rate:,.0f} points/s){skipped}")


class _progress_bar:
    """A rich progress bar on stderr when it is a terminal and ``enabled`` (not ``-q``);
    otherwise no callback."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def __enter__(self) -> Any:
        if not self.enabled or not sys.stderr.isatty():
            self._bar = None
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._bar = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.description}", markup=False),
                             console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("", total=None)

        bar, task = self._bar, self._task

        def update(done: int, total: int, name: str) -> None:
            # A run name from the source: escaped first, so the cut splits no sequence.
            bar.update(task, completed=done, total=total, description=visible(name)[:40])

        return update

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()

"""Housekeeping: ``xp compact`` and ``xp cache``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

from ._common import XpCommand, command, info, load_dataset, runs_dir, runs_option, say


@command("compact")
@runs_option
@click.option("--min-age", "min_age", type=click.FloatRange(min=0), default=60.0,
              show_default=True, metavar="SECONDS",
              help="Leave files modified less than SECONDS ago alone.")
@click.option("--dry-run", is_flag=True, help="Say what would be compacted; change nothing.")
@click.option("--quiet", "-q", is_flag=True,
              help="No progress bar and no note per file kept; the summary stays.")
@click.option("--to", "to", metavar="DIR|URL", default=None,
              help="Instead, write every run as the shared dataset in DIR, or under an "
              "s3://, gs:// or az:// URL (Hive-partitioned Parquet: points, series "
              "summary, runs; docs/format.md) for Spark, DuckDB, Trino or Polars; the runs "
              "directory is left as it is.")
def compact_cmd(runs: str | None, min_age: float, dry_run: bool, quiet: bool,
                to: str | None) -> None:
    """Turn the JSONL of finished runs into one Parquet file, atomically.

    Files whose runs all have a final status (finished, failed or interrupted) and
    that have not changed for --min-age seconds are written to
    DIR/compacted-<id>.parquet, then deleted. A crash at any point loses and
    duplicates nothing; running it again completes an interrupted compaction (see
    docs/guarantees.md).

    With --to DIR, every run is written to DIR as a dataset that other engines read
    (and `--engine spark` queries); an xp dataset already in DIR is replaced whole.
    A URL gets the same objects, the manifest uploaded last.

    \b
    Examples:
      xp compact --runs runs --dry-run
      xp compact --runs runs --min-age 0
      xp compact --runs sample_runs --to /tmp/sample-dataset
    """
    if to is not None:
        _export(runs, to, dry_run, quiet)
        return
    from ..remote import is_url

    given = runs_dir(runs)
    if is_url(given):  # object storage: no file is ever rewritten
        raise click.UsageError(f"--runs {given}: xp compact rewrites the files of a local "
                               "runs directory; on object storage each flush is already one "
                               "immutable object (docs/guarantees.md)")
    from ..compact import compact
    from ..progress import progress_bar

    with progress_bar("compacting", enabled=not quiet) as progress:
        result = compact(runs_dir(runs), min_age=min_age, dry_run=dry_run, progress=progress)
    verb = "would" if dry_run else ""
    for path in result.removed_leftovers:
        info(f"{'would remove' if dry_run else 'removed'} leftover {path} (already compacted)")
    for path, why in sorted(result.skipped.items()) if not quiet else ():
        info(f"kept {path}: {why}")
    if result.output is None:
        info("nothing to compact")
        return
    info(f"{verb + ' ' if verb else ''}compact{'' if verb else 'ed'} {len(result.sources)} "
         f"files ({result.runs} runs, {result.records} records) into {result.output}")


def _size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) \
        if folder.exists() else 0


@click.group("cache")
def cache_cmd() -> None:
    """Show or clear the columnar cache that makes repeated reads fast.

    JSONL is parsed once and kept as Parquet outside the runs directory
    ($XP_CACHE_DIR, else $XDG_CACHE_HOME/xp, else ~/.cache/xp). It is safe to delete at
    any time; XP_NO_CACHE=1 bypasses it.

    \b
    Examples:
      xp cache info --runs sample_runs
      xp cache clear --all
    """


@cache_cmd.command("info", cls=XpCommand)
@runs_option
def cache_info_cmd(runs: str | None) -> None:
    """Where the cache of a runs directory is, and its size."""
    from ..cache import cache_dir_for, cache_home
    from ..remote import is_url, mirror_home

    home = cache_home()
    if home is None:
        info("the cache is off (XP_NO_CACHE is set)")
        return
    where = runs_dir(runs)
    say(f"cache home: {home}")
    if is_url(where):  # the objects' local mirror, then that folder's own cache
        mirror = mirror_home(where, home)
        say(f"mirror of {where}: {mirror} ({_size(mirror) / 1e6:.1f} MB"
            f"{'' if mirror.exists() else ', not made yet'})")
        where = str(mirror / "mirror")
    folder = cache_dir_for(where, home)
    size = _size(folder) if folder else 0
    say(f"runs directory cache: {folder} ({size / 1e6:.1f} MB"
        f"{'' if folder and folder.exists() else ', not built yet'})")


@cache_cmd.command("clear", cls=XpCommand)
@runs_option
@click.option("--all", "all_", is_flag=True, help="Clear the caches of every runs directory.")
def cache_clear_cmd(runs: str | None, all_: bool) -> None:
    """Delete the cache of a runs directory (or all caches with --all).

    Only cache folders xp made are removed, whatever else $XP_CACHE_DIR holds."""
    from ..cache import cache_home, clear, is_cache_folder
    from ..remote import is_url, mirror_home

    home = cache_home()
    if home is None:
        info("the cache is off (XP_NO_CACHE is set); nothing to clear")
        return
    where = runs_dir(runs)
    if is_url(where) and not all_:  # the mirror of the objects, and its cache
        mirror = mirror_home(where, home)
        where = str(mirror / "mirror")
        removed = clear(where)
        if is_cache_folder(mirror):
            shutil.rmtree(mirror)
            removed.append(mirror)
    else:
        removed = clear(None if all_ else where)
    for folder in removed:
        info(f"removed {folder}")
    if not removed:
        info("no cache to clear")


def _export(runs: str | None, to: str, dry_run: bool, quiet: bool) -> None:
    from ..export import export

    if dry_run:
        info(f"would write every run under {runs_dir(runs)} to the dataset {to}")
        return
    dataset = load_dataset(runs, quiet)
    from ..remote import is_url

    given = runs_dir(runs)
    result = export(dataset, to, source=given if is_url(given) else os.path.abspath(given))
    info(f"wrote {result.runs} runs, {result.series} series, {result.points} points "
         f"in {result.buckets} bucket{'s' if result.buckets > 1 else ''} to {result.folder}")

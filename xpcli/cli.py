"""The ``xp`` command: a click group whose commands load on first use.

Only click and the standard library are imported here, so ``xp --help`` stays fast; each
command module imports polars, matplotlib and the analysis code inside its body.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from . import __version__
from .errors import XpError
from .text import visible

#: command name -> "module:attribute", in the order ``xp --help`` lists them.
COMMANDS: dict[str, str] = {
    "runs": "xpcli.commands.discover:runs_cmd",
    "metrics": "xpcli.commands.discover:metrics_cmd",
    "select": "xpcli.commands.tables:select_cmd",
    "group": "xpcli.commands.tables:group_cmd",
    "aggregate": "xpcli.commands.series:aggregate_cmd",
    "curves": "xpcli.commands.series:curves_cmd",
    "selection": "xpcli.commands.tables:selection_cmd",
    "diff": "xpcli.commands.tables:diff_cmd",
    "parcoords": "xpcli.commands.parcoords:parcoords_cmd",
    "import": "xpcli.commands.importing:import_cmd",
    "forgetting": "xpcli.commands.forgetting:forgetting_cmd",
    "compare": "xpcli.commands.stats:compare_cmd",
    "importance": "xpcli.commands.stats:importance_cmd",
    "scatter": "xpcli.commands.stats:scatter_cmd",
    "report": "xpcli.commands.report:report_cmd",
    "tail": "xpcli.commands.tail:tail_cmd",
    "compact": "xpcli.commands.maintenance:compact_cmd",
    "cache": "xpcli.commands.maintenance:cache_cmd",
}


#: Each command's summary (its help's first paragraph), which ``xp --help`` lists: the
#: listing imports no command module (each loads its own dependencies, the importers'
#: among them). tests/test_cli_imports.py checks them against the commands.
SUMMARIES: dict[str, str] = {
    "runs": ("List runs: params, status and why it ended, point counts, start, last "
             "activity, elapsed."),
    "metrics": "List metrics: context keys and values, runs, points, step and epoch ranges.",
    "select": "Runs table: one row per run, chosen params and reduced metrics.",
    "group": "Group runs by params and aggregate each reduced metric over the group.",
    "aggregate": "Aggregate metric series across runs: centre line and band per group, at each x.",
    "curves": "Draw every run's metric series as its own line, one panel per metric column.",
    "selection": "Model selection: what each selector picks and what it costs on the targets.",
    "diff": "Runs side by side: params and reduced metrics, the rows that differ first.",
    "parcoords": "Parallel coordinates: every run as a line across params and metrics.",
    "import": ("Import runs from Aim, DVCLive, HF Trainer, Lightning CSV, MLflow, "
               "Optuna, plain table, TensorBoard or W&B logs."),
    "forgetting": ("Forgetting per context: peak, its epoch, final value, drop and decline "
                   "after the peak."),
    "compare": "Is a difference between groups real? Pairwise tests, bootstrap CIs, effect sizes.",
    "importance": "Which params matter: the share of a metric's variance each param explains.",
    "scatter": "Scatter: one point per run, X and Y each a param or a reduced metric spec.",
    "report": "Run the xp commands listed in a report file and write one document.",
    "tail": "Follow one run: print its points as they are logged, like tail -f.",
    "compact": "Turn the JSONL of finished runs into one Parquet file, atomically.",
    "cache": "Show or clear the columnar cache that makes repeated reads fast.",
}


class XpClickError(click.ClickException):
    """An :class:`XpError` shown the click way: one line on stderr, its exit code."""

    def __init__(self, error: XpError) -> None:
        # Messages quote file names, run ids and params: control characters as escapes.
        super().__init__(visible(str(error)))
        # click types exit_code as a ClassVar but reads it from the instance (e.exit_code),
        # so a per-error code set here is what click exits with.
        self.exit_code = error.exit_code  # type: ignore[misc]


def _is_polars_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] == "polars"


class XpGroup(click.Group):
    """Loads command modules lazily and turns library errors into one-line messages."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`SUMMARIES`, as click words it from each command
        (a command missing there is loaded for its help)."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = []
        for name in COMMANDS:
            command = (click.Command(name, help=SUMMARIES[name]) if name in SUMMARIES
                       else self.get_command(ctx, name))  # click's wording, from a stand-in
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:
            # The commands load lazily, so click has none to suggest: the hint is ours.
            from .errors import did_you_mean

            name = str(args[0]) if args else ""
            hint = did_you_mean(name, COMMANDS)
            if not hint.startswith("did you mean"):
                hint = "'xp --help' lists the commands"
            raise click.UsageError(f"no such command {name!r}; {hint}", ctx) from exc

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as exc:
            # click marks message Final but formats it when shown: escaped, as typed.
            exc.message = visible(exc.message)  # type: ignore[misc]
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            exc.message = visible(exc.message)  # type: ignore[misc]  # as in make_context
            raise
        except XpError as exc:
            if os.environ.get("XP_DEBUG") == "1":
                raise
            raise XpClickError(exc) from None
        except BrokenPipeError:
            # `xp select | head`: the reader left. Not an error of ours: exit 0, quietly
            # (stdout is pointed at /dev/null so the flush at exit cannot fail again).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise click.exceptions.Exit(0) from None
        except KeyboardInterrupt:
            click.echo("xp: interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except (click.exceptions.Exit, click.Abort):
            raise
        except OSError as exc:
            # Mostly writing the output failed (disk full, /dev/full): one line, no trace.
            if os.environ.get("XP_DEBUG") == "1":
                raise
            what = exc.strerror or type(exc).__name__
            where = f": {exc.filename}" if exc.filename else " (writing the output)"
            raise XpClickError(XpError(f"I/O error{where}: {what}")) from None
        except Exception as exc:
            if os.environ.get("XP_DEBUG") == "1" or not _is_polars_error(exc):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise XpClickError(XpError(f"query failed: {first}")) from None
        except BaseException as exc:
            # A Rust panic in Polars derives from BaseException. Files are checked as they
            # are read (a damaged one is reported and skipped), but a cache segment is
            # scanned lazily, after that.
            if os.environ.get("XP_DEBUG") == "1" or type(exc).__name__ != "PanicException":
                raise
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "panic"
            raise XpClickError(XpError(
                f"query failed: Polars panicked ({first}): a damaged file? "
                "`xp cache clear` rebuilds the cache")) from None


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=XpGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--runs",
    "runs",
    metavar="DIR",
    default=None,
    help="Runs directory or URL to read (s3://BUCKET/PREFIX, gs://, az://; default: "
    "$XP_RUNS, else ./runs). Commands accept it too.",
)
@click.version_option(__version__, "--version", prog_name="xp")
@click.pass_context
def cli(ctx: click.Context, runs: str | None) -> None:
    """Analyse ML training-run logs: tables, CSV/JSON/Markdown and figures.

    Reads the JSONL/Parquet records that training jobs append to a runs directory
    (see docs/format.md) and answers from the shell.

    \b
    Examples:
      xp --runs sample_runs runs
      xp --runs sample_runs metrics
    """
    ctx.ensure_object(dict)
    ctx.obj["runs"] = runs


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the group, ends quietly on a closed pipe."""
    try:
        cli.main(args=argv, prog_name="xp")
    except BrokenPipeError:
        # `xp select | head`: the reader left; silence the flush at interpreter exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except KeyboardInterrupt:  # before a command runs (while click parses arguments)
        click.echo("xp: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()

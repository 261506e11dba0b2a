"""Option bundles and helpers shared by every command, so a flag means the same everywhere.

Only click and the standard library at module level; heavy imports happen in the helpers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..analysis import X_CHOICES
from ..completion import complete_columns, complete_params, complete_specs
from ..report import REPORT_SINK  # ctx.obj: a report's Collector (xp report runs us)
from ..text import visible

if TYPE_CHECKING:
    import polars as pl

    from ..analysis.series_model import Notes
    from ..dataset import Dataset
    from ..errors import XpError

F = TypeVar("F", bound=Callable[..., Any])

FORMAT_CHOICES = ("auto", "table", "csv", "tsv", "json", "jsonl", "markdown", "parquet")
MAX_WARNINGS = 10


#: Names people reach for that are not formats, and the format that does the job.
FORMAT_INSTEAD = {"xlsx": "csv", "xls": "csv", "ods": "csv", "excel": "csv", "md": "markdown",
                  "ndjson": "jsonl", "txt": "table", "text": "table", "pq": "parquet"}


class Choice(click.Choice):
    """click's Choice whose error, still one line, ends with a hint: the closest choice
    (``did you mean 'csv'?``) or, for a known stand-in (``xlsx``), what to use."""

    def __init__(self, choices: Any, case_sensitive: bool = True,
                 instead: dict[str, str] | None = None) -> None:
        super().__init__(choices, case_sensitive=case_sensitive)
        self.instead = instead or {}

    def get_invalid_choice_message(self, value: Any, ctx: click.Context | None) -> str:
        from ..errors import did_you_mean

        message = super().get_invalid_choice_message(value, ctx).rstrip(".")
        text = str(value)
        if text.lower() in self.instead:
            return f"{message}; for {text} use {self.instead[text.lower()]!r}"
        hint = did_you_mean(text, [str(c) for c in self.choices])
        return f"{message}; {hint}" if hint.startswith("did you mean") else message


def _is_single_valued(param: click.Parameter) -> bool:
    """An option that keeps one value: giving it twice would silently keep the last."""
    return (isinstance(param, click.Option) and not param.multiple and not param.count
            and not param.is_flag and not param.is_eager)


def option_name(param: click.Parameter) -> str:
    """The option as people type it: its long form (``--runs``), else its short one."""
    opts = getattr(param, "opts", []) or [str(param.name)]
    return max(opts, key=len)


class XpCommand(click.Command):
    """A command whose single-valued options may be given once: ``--runs A --runs B`` is a
    usage error naming the option, not a silent "last one wins". Options that take several
    values say so in their help (repeat or comma-separate)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:
            # A dry run of click's own parser: it lists every occurrence of every option.
            _, _, order = self.make_parser(ctx).parse_args(args=list(args))
            seen: set[str | None] = set()
            for param in order:
                if not _is_single_valued(param):
                    continue
                if param.name in seen:
                    raise click.UsageError(
                        f"option {option_name(param)} given more than once; it takes one "
                        "value, give it once", ctx)
                seen.add(param.name)
        return super().parse_args(ctx, args)


def command(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], XpCommand]:
    """``@command("select")``: a click command of class :class:`XpCommand`."""
    return click.command(name, cls=XpCommand, **kwargs)


def by_option(help: str) -> Callable[[F], F]:
    """``--by/-b LIST``: params to group by, comma-separated or repeated (every command
    with --by combines ``--by lr --by seed`` and ``--by lr,seed`` the same way)."""
    return click.option("--by", "-b", "by", metavar="LIST", multiple=True, help=help,
                        shell_complete=complete_params)


def metrics_option(help: str, required: bool = False) -> Callable[[F], F]:
    """``--metrics/-m LIST``: metric specs, comma-separated or repeated."""
    return click.option("--metrics", "-m", "metrics", metavar="LIST", multiple=True,
                        required=required, help=help, shell_complete=complete_specs)


def params_option(help: str) -> Callable[[F], F]:
    """``--params/-p LIST``: params or meta columns, comma-separated or repeated."""
    return click.option("--params", "-p", "params", metavar="LIST", multiple=True, help=help,
                        shell_complete=complete_columns)


def param_list(values: tuple[str, ...]) -> list[str] | None:
    """A --params value: None when not given (the command's default), else its items."""
    from ..spec import split_list  # polars: loaded when a command runs, not for --help

    return split_list(values) if values else None


def wants_table(output: str | None, format_: str) -> bool:
    """Plot commands: without -o the table is printed; with -o only the figure, unless
    --format is given explicitly, then both."""
    return output is None or format_ != "auto"


def runs_option(func: F) -> F:
    """``--runs DIR``: the runs directory (default: the group's --runs, $XP_RUNS, ./runs)."""
    return click.option(
        "--runs",
        "runs",
        metavar="DIR",
        default=None,
        help="Runs directory or URL (s3://BUCKET/PREFIX, gs://, az://; default: $XP_RUNS, "
        "else ./runs).",
    )(func)


CSV_RAW = "xp.csv_raw"  # where --csv-raw is kept for emit(), in the click context's meta


def _remember_csv_raw(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    ctx.meta[CSV_RAW] = value
    return value


VIEW = "xp.view"  # ctx.meta: --columns, --transpose and --precision, for emit()


def _remember_view(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta.setdefault(VIEW, {})[param.name] = value
    return value


def view_options(func: F) -> F:
    """``--columns``, ``--transpose`` and ``--precision``: how a table is shown, read
    only by :func:`emit` (not parameters of the command)."""
    func = click.option(
        "--precision",
        "precision",
        type=click.IntRange(1, 17),
        default=None,
        metavar="N",
        expose_value=False,
        callback=_remember_view,
        help="Floats to N significant digits: in tables (default 4, for the largest value "
        "of each column), in CSV, TSV and JSON (default 15; 17 writes every float exactly) "
        "and in Parquet (default: exact).",
    )(func)
    func = click.option(
        "--transpose",
        "transpose",
        is_flag=True,
        expose_value=False,
        callback=_remember_view,
        help="Table/markdown: one line per column, one column per row (automatic for a "
        "one-row table too wide for the terminal, such as select --best).",
    )(func)
    return click.option(
        "--columns",
        "columns",
        metavar="LIST",
        multiple=True,
        expose_value=False,
        callback=_remember_view,
        help="Show only these output columns, in this order, comma-separated or repeated, "
        "e.g. run,lr,f1[lang=de]. A terminal table too wide for the screen leaves columns "
        "out and says which.",
    )(func)


def format_option(func: F) -> F:
    """``--format`` (table on a terminal, CSV in a pipe, or what is asked for),
    ``--csv-raw`` and the :func:`view_options`, which only :func:`emit` reads (they are
    not parameters of the command)."""
    func = view_options(func)
    func = click.option(
        "--csv-raw",
        "csv_raw",
        is_flag=True,
        expose_value=False,
        callback=_remember_csv_raw,
        help="CSV/TSV: write cells starting with = + - @ (or a tab or CR) as they are. By "
        "default such a cell, unless it is a number like -0.5, gets a leading ' so a "
        "spreadsheet shows it instead of running it as a formula.",
    )(func)
    return click.option(
        "--format",
        "format_",
        type=Choice(FORMAT_CHOICES, instead=FORMAT_INSTEAD),
        default="auto",
        show_default=True,
        help="Output format; auto = table on a terminal, csv in a pipe.",
    )(func)


def where_option(func: F) -> F:
    """``--where EXPR``: filter runs by params and meta (``lr < 1e-4 and seed in (1,2)``)."""
    return click.option(
        "--where",
        "where",
        metavar="EXPR",
        default=None,
        help="Keep runs matching EXPR over params/meta, e.g. \"lr < 1e-4 and seed in (1, 2)\".",
    )(func)


def max_columns_option(func: F) -> F:
    """``--max-columns N``: the most columns the metric specs may name (a wildcard over a
    key with a million values is an error, not a million columns)."""

    def limit(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
        if value is None:
            return
        from ..spec.metric import MAX_COLUMNS

        token = MAX_COLUMNS.set(value)
        ctx.call_on_close(lambda: MAX_COLUMNS.reset(token))

    return click.option(
        "--max-columns",
        "max_columns",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        expose_value=False,
        callback=limit,
        help="Most columns the metric specs may expand to (default: 1000); "
        "f1:lang=* over more values is an error.",
    )(func)


ENGINE = "xp.engine"  # (engine, --spark-master) in the click context's meta


def engine_option(func: F) -> F:
    """``--engine polars|spark`` and ``--spark-master URL``: where the table is computed
    (:mod:`xpcli.spark`); read back by :func:`load_with_engine`."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        engine, master = ctx.meta.get(ENGINE, ("polars", None))
        ctx.meta[ENGINE] = (value, master) if param.name == "engine" else (engine, value)

    func = click.option(
        "--spark-master", "spark_master", metavar="URL", default=None, expose_value=False,
        callback=remember,
        help="With --engine spark: the Spark master (default: local[*]; "
        "spark://host:7077 for a cluster).")(func)
    return click.option(
        "--engine", "engine", type=Choice(["polars", "spark"]), default="polars",
        show_default=True, expose_value=False, callback=remember, is_eager=True,
        help="Where the table is computed. spark: on a Spark session, over --runs DIR "
        "written by `xp compact --to DIR` (pip install 'xpcli[spark]', Java 17).")(func)


def load_with_engine(runs: str | None, quiet: bool = False) -> "tuple[Dataset, Any]":
    """The dataset a command plans with and the engine that computes (None: Polars)."""
    ctx = click.get_current_context(silent=True)
    engine, master = ctx.meta.get(ENGINE, ("polars", None)) if ctx else ("polars", None)
    if engine == "polars" and master is None:  # the Spark module (and pyarrow) unloaded
        return load_dataset(runs, quiet), None
    from ..spark import engine_for

    spark = engine_for(engine, runs_dir(runs), master)
    if spark is None:
        return load_dataset(runs, quiet), None
    return spark.dataset(), spark


def quiet_option(func: F) -> F:
    """``--quiet``: no warnings on stderr (skipped lines are still counted)."""
    return click.option("--quiet", "-q", is_flag=True,
                        help="Do not print warnings on stderr (skipped lines, x axis "
                             "notes).")(func)


def x_option(func: F) -> F:
    """``--x``: the x view of every series (the one definition every command shares)."""
    return click.option(
        "--x",
        "x",
        type=Choice(X_CHOICES),
        default="auto",
        show_default=True,
        help="x axis: epoch, step, time (seconds since the run's first point) or order "
             "(index in logging order). auto: per column, epoch if it never goes "
             "backwards, else step, else order (stderr says when it is not epoch).",
    )(func)


def runs_dir(runs: str | None) -> str:
    """The runs directory: the command's --runs, the group's --runs, $XP_RUNS, ./runs."""
    if runs:
        return runs
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, dict) and ctx.obj.get("runs"):
            return str(ctx.obj["runs"])
        ctx = ctx.parent
    return os.environ.get("XP_RUNS") or "runs"


def load_dataset(runs: str | None, quiet: bool = False) -> "Dataset":
    """Load the runs directory and report what was skipped on stderr; a long cold read
    shows a progress bar on a terminal (not with ``-q``)."""
    from ..dataset import load
    from ..progress import progress_bar

    ctx = click.get_current_context(silent=True)
    live = ctx is not None and bool(ctx.meta.get(LIVE))  # a watch is drawing: no bar
    with progress_bar("reading", enabled=not quiet and not live) as progress:
        dataset = load(runs_dir(runs), progress=progress)
    report_diagnostics(dataset, quiet)
    return dataset


def report_diagnostics(dataset: "Dataset", quiet: bool = False) -> None:
    """``xp: warning: file:line: message`` for the first few problems, then a count.

    While a command is watched, each problem is reported once, and a torn last line (a
    job writing at that moment) not at all after the first refresh."""
    diags = dataset.diagnostics
    if not len(diags) or quiet:
        return
    items = diags.items
    ctx = click.get_current_context(silent=True)
    seen: set[str] | None = ctx.meta.get(SEEN) if ctx is not None else None
    if seen is not None:
        items = [d for d in items if str(d) not in seen and d.kind != "torn"]
        seen.update(str(d) for d in diags.items)
        if not items:
            return
    for item in items[:MAX_WARNINGS]:
        info(f"xp: warning: {item}")
    if len(items) > MAX_WARNINGS:
        info(f"xp: warning: {len(items) - MAX_WARNINGS} more problems ({diags.summary()})")


def report_notes(notes: "Notes", quiet: bool = False) -> None:
    """What the analysis noted about the series it read, on stderr (``xp: ...``); while
    a command is watched, each note once."""
    if quiet:
        return
    ctx = click.get_current_context(silent=True)
    seen: set[str] | None = ctx.meta.get(SEEN) if ctx is not None else None
    for line in notes.lines(MAX_WARNINGS):
        if seen is not None:
            if line in seen:
                continue
            seen.add(line)
        info(f"xp: {line}")


def info(message: str) -> None:
    """A message for people, on stderr (data goes to stdout). Control and bidi characters
    (from file names, run ids, params) are shown as escapes, never sent raw."""
    click.echo(visible(message), err=True)


def say(message: str) -> None:
    """A line for people on stdout (``xp cache info``), escaped like :func:`info`."""
    click.echo(visible(message))


def view() -> Any:
    """The command's :class:`~xpcli.output.View` (``--columns``, ``--transpose``,
    ``--precision``)."""
    from ..output import View
    from ..spec import split_list

    ctx = click.get_current_context(silent=True)
    given = ctx.meta.get(VIEW, {}) if ctx is not None else {}
    columns = split_list(given.get("columns") or ())
    return View(columns=tuple(columns) or None, transpose=bool(given.get("transpose")),
                precision=given.get("precision"))


def emit(frame: "pl.DataFrame", format_: str, title: str | None = None,
         keys: Any = ()) -> None:
    """Hand a table to the output module (stdout), with the command's ``--csv-raw`` and
    view; ``keys`` are identifying columns (group keys) besides run, selector, target.
    Columns a terminal table left out to fit are named on stderr."""
    from ..output import emit as _emit

    sink = find_obj(REPORT_SINK)
    if sink is not None:  # xp report runs this command: the report shows the table
        sink.table(frame, title)
        return
    ctx = click.get_current_context(silent=True)
    csv_raw = bool(ctx.meta.get(CSV_RAW)) if ctx is not None else False
    dropped = _emit(frame, format_, sys.stdout, title=title, csv_raw=csv_raw, keys=keys,
                    view=view())
    if dropped:
        info(dropped_note(dropped))


def dropped_note(dropped: list[str]) -> str:
    """The one line saying which columns a table left out to fit, and how to see them."""
    names = ", ".join(dropped[:4]) + (f" and {len(dropped) - 4} more" if len(dropped) > 4
                                      else "")
    what = "column" if len(dropped) == 1 else "columns"
    return (f"xp: {len(dropped)} {what} left out to fit the terminal: {names}; "
            "choose with --columns, or see all with --format csv")


def _output(help: str) -> Callable[[F], F]:
    return click.option("-o", "--output", "output", metavar="FILE", default=None, help=help)


def output_option(func: F) -> F:
    """``-o FILE``: write a figure; the suffix picks PNG, SVG or PDF."""
    return _output("Write a figure to FILE (.png, .svg or .pdf) instead of a table.")(func)


def html_output_option(func: F) -> F:
    """``-o FILE``: as :func:`output_option`, and .html gives an interactive page."""
    return _output("Write a figure to FILE (.png, .svg or .pdf), or an interactive, "
                   "self-contained page (.html: hover, zoom, brushing; no network), instead "
                   "of a table.")(func)


def save(fig: Any, path: str) -> None:
    """Save a Figure reproducibly and say where it went (stderr)."""
    from ..plots.common import save_figure

    sink = find_obj(REPORT_SINK)
    if sink is not None:  # xp report runs this command: the report places the figure
        sink.figure(fig, path)
        return
    save_figure(fig, path)
    info(f"wrote {path}")


LIVE = "xp.live"  # ctx.meta: a watch is drawing on the terminal
SEEN = "xp.seen"  # ctx.meta: diagnostics already reported by an earlier refresh
WATCH_CONTROL = "watch_control"  # ctx.obj: a xpcli.watch.Control (tests drive --watch)


def watch_option(func: F) -> F:
    """``--watch [SECONDS]``: compute the answer again every SECONDS (2) until Ctrl-C."""
    return click.option(
        "--watch",
        "watch",
        type=click.FloatRange(min=0, min_open=True),
        is_flag=False,
        flag_value=2.0,
        default=None,
        metavar="[SECONDS]",
        help="Refresh every SECONDS (default 2) until Ctrl-C: a live table on a terminal, "
        "the output again when it changes in a pipe, the figure rewritten atomically with "
        "-o. Put it after SPEC or write --watch=SECONDS.",
    )(func)


@dataclass
class Table:
    """A command's answer as a table: ``frame`` in ``format_`` (``auto`` allowed) under
    ``title``; ``display`` is shown instead when given (group's compact cells); ``gate``
    is raised once it is printed (``--fail-if`` held); ``keys`` are identifying columns
    besides run, selector and target (group keys)."""

    frame: "pl.DataFrame"
    format_: str
    title: str | None = None
    display: "pl.DataFrame | None" = None
    gate: "XpError | None" = None
    keys: tuple[str, ...] = ()


@dataclass
class Figure:
    """A command's answer as a figure to save at ``path``, and ``table`` when the table
    is printed too (``-o`` with an explicit ``--format``)."""

    figure: Any
    path: str
    table: Table | None = None


def show(refresh: Callable[[], Table | Figure], watch: float | None) -> None:
    """Show what ``refresh`` computes: once, or with ``--watch`` again every ``watch``
    seconds until Ctrl-C (exit 0); see :mod:`xpcli.watch`."""
    if watch is None:
        _show_once(refresh())
        return
    from ..output import resolve_format, terminal
    from ..plots.common import save_figure
    from ..watch import Control, Screen, loop

    ctx = click.get_current_context()
    given = find_obj(WATCH_CONTROL)
    control = given if isinstance(given, Control) else None
    ctx.meta[SEEN] = set()
    term = terminal(sys.stdout)
    pending: list[Table | Figure] = [refresh()]  # outside the live region: a cold read
    first = pending[0]                           # may show a progress bar
    if isinstance(first, Figure):
        info(f"writing {first.path} every {watch:g}s (Ctrl-C ends)")
    table = first.table if isinstance(first, Figure) else first
    if table is None:
        def redraw() -> None:
            result = pending.pop() if pending else refresh()
            assert isinstance(result, Figure)
            save_figure(result.figure, result.path, only_if_changed=True)

        loop(redraw, watch, control)
        return
    if resolve_format(table.format_, term) == "parquet":
        raise click.UsageError("--format parquet is one file, written once: drop --watch, "
                               "or watch another format")
    with Screen(sys.stdout, term, watch) as screen:
        def step() -> None:
            result = pending.pop() if pending else refresh()
            shown = result.table if isinstance(result, Figure) else result
            assert shown is not None
            if isinstance(result, Figure):
                save_figure(result.figure, result.path, only_if_changed=True)
            frame = shown.frame if shown.display is None else shown.display
            dropped = screen.show(frame, resolve_format(shown.format_, term), shown.title,
                                  shown.keys, view())
            if dropped and not ctx.meta.get(LIVE):
                info(dropped_note(dropped))
            ctx.meta[LIVE] = term.is_tty

        loop(step, watch, control)


def _show_once(result: Table | Figure) -> None:
    if isinstance(result, Figure):
        if result.table is not None:
            _show_once(result.table)
        save(result.figure, result.path)
        return
    emit(result.frame if result.display is None else result.display, result.format_,
         title=result.title, keys=result.keys)
    if result.gate is not None:
        raise result.gate


def find_obj(key: str) -> Any:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, dict) and key in ctx.obj:
            return ctx.obj[key]
        ctx = ctx.parent
    return None

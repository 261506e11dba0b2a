"""Table output never pays for matplotlib: it is imported only when a figure is drawn."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, run_python

pytestmark = pytest.mark.slow  # one interpreter per command: make test-fast leaves it out

TABLE_COMMANDS = [
    ["runs"],
    ["metrics"],
    ["select", "-m", "f1:lang=*@max"],
    ["group", "--by", "lr", "-m", "f1:lang=de"],
    ["selection", "-s", "f1:lang=en", "-t", "f1:lang=de"],
    ["aggregate", "f1:lang=*", "--by", "lr"],
    ["curves", "f1:lang=de"],
    ["parcoords", "--params", "lr", "--metrics", "f1:lang=*"],
    ["forgetting", "f1:lang=*", "--run", "best:f1:lang=en"],
    ["compare", "-m", "f1:lang=de", "--by", "lr", "--resamples", "200"],
    ["importance", "-m", "f1:lang=de", "--params", "lr,seed"],
    ["scatter", "f1:lang=en", "f1:lang=de", "--color", "lr"],
]

CODE = """
import contextlib, io, json, sys
from xpcli.cli import cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    cli.main(args=sys.argv[1:], prog_name="xp", standalone_mode=False)
print(json.dumps("matplotlib" in sys.modules))
"""


@pytest.mark.parametrize("args", TABLE_COMMANDS, ids=[a[0] for a in TABLE_COMMANDS])
def test_table_output_does_not_import_matplotlib(args: list[str]) -> None:
    proc = run_python(CODE, "--runs", str(ROOT / "sample_runs"), *args, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) is False


def test_help_lists_the_commands_without_loading_them() -> None:
    """``xp --help`` imports no command module, the writer or the importers."""
    code = """
import contextlib, sys
from xpcli.cli import cli
with contextlib.suppress(SystemExit):
    cli.main(args=["--help"], prog_name="xp")
print(sorted(m for m in sys.modules if m.startswith("xpcli")), file=sys.stderr)
"""
    proc = run_python(code)
    assert proc.returncode == 0 and "Usage: xp" in proc.stdout, proc.stderr
    loaded = proc.stderr.strip().splitlines()[-1]
    assert loaded == "['xpcli', 'xpcli.cli', 'xpcli.errors', 'xpcli.text']"


@pytest.mark.parametrize("width", [60, 100])
def test_help_summaries_match_the_commands(width: int) -> None:
    """The listing from SUMMARIES reads exactly as click words it from the commands."""
    import click

    from xpcli.cli import COMMANDS, SUMMARIES, cli

    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        first = (command.help or "").strip().split("\n\n")[0].strip()
        assert SUMMARIES.get(name) == first, f"xpcli.cli.SUMMARIES[{name!r}] should be {first!r}"
    ours = click.HelpFormatter(width=width)
    cli.format_commands(ctx, ours)
    theirs = click.HelpFormatter(width=width)
    click.Group.format_commands(cli, ctx, theirs)
    assert ours.getvalue() == theirs.getvalue()


def test_reading_commands_do_not_load_the_writer() -> None:
    """``Run`` loads with its first use: a query never imports the writer."""
    code = """
import contextlib, io, json, sys
from xpcli.cli import cli
with contextlib.redirect_stdout(io.StringIO()):
    cli.main(args=sys.argv[1:], prog_name="xp", standalone_mode=False)
before = "xpcli.writer" in sys.modules
from xpcli import Run
print(json.dumps([before, Run.__module__]))
"""
    proc = run_python(code, "--runs", str(ROOT / "sample_runs"), "select", "-m", "f1:lang=de",
                      "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [False, "xpcli.writer"]


#: The queries answered from the series summary: none loads what it does not use.
SUMMARY_COMMANDS = [
    ["select", "-p", "lr,seed", "-m", "f1:lang=*@max"],
    ["select", "--best", "f1:lang=en@max", "-m", "f1:lang=*@max"],
    ["group", "--by", "lr", "-m", "f1:lang=*@max"],
    ["selection", "-s", "f1:lang=en", "-t", "f1:lang=de"],
]


@pytest.mark.parametrize("args", SUMMARY_COMMANDS, ids=[" ".join(a[:2]) for a in SUMMARY_COMMANDS])
def test_summary_queries_load_neither_spark_nor_pyarrow_nor_numpy(args: list[str]) -> None:
    """CSV from the Polars engine: the Spark engine's module (with pyarrow) and numpy
    are imported only by the commands and options that need them."""
    code = """
import contextlib, io, json, sys
from xpcli.cli import cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    cli.main(args=sys.argv[1:], prog_name="xp", standalone_mode=False)
print(json.dumps(sorted(m for m in ("numpy", "pyarrow", "xpcli.spark", "xpcli.export")
                        if m in sys.modules)))
"""
    proc = run_python(code, "--runs", str(ROOT / "sample_runs"), *args, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []

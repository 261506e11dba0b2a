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

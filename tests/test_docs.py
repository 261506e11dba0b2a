"""The docs hold: the read-without-xp snippets of docs/format.md run, and help stays light."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_python

from xpcli import Run
from xpcli.records import Diagnostics, read_records, write_parquet

FORMAT_MD = ROOT / "docs" / "format.md"
RUNS_LINE = 'runs = "runs"  # the runs directory'


def snippets() -> dict[str, str]:
    """The python blocks of docs/format.md that read a runs directory, by library."""
    blocks = re.findall(r"```python\n(.*?)```", FORMAT_MD.read_text(), flags=re.S)
    found = {}
    for block in blocks:
        assert RUNS_LINE in block, "each example names the runs directory the same way"
        found["duckdb" if "import duckdb" in block else "pandas"] = block
    assert sorted(found) == ["duckdb", "pandas"]
    return found


def run_snippet(library: str, runs: Path) -> tuple[list[float], Any, dict[str, Any]]:
    """Execute a documented snippet on ``runs``: point values, points frame, its variables."""
    code = snippets()[library].replace(RUNS_LINE, f"runs = {str(runs)!r}")
    scope: dict[str, Any] = {}
    exec(compile(code, f"docs/format.md:{library}", "exec"), scope)  # our own docs
    points = scope["points"]
    frame = points.df() if hasattr(points, "df") else points  # duckdb relation or pandas
    frame = frame.sort_values(["run", "name", "step"], na_position="first")
    return frame["value"].tolist(), frame, scope


@pytest.mark.slow
@pytest.mark.parametrize("library", ["duckdb", "pandas"])
def test_snippet_reads_sample_runs(library: str, sample_runs: Path) -> None:
    values, frame, scope = run_snippet(library, sample_runs)
    assert len(values) == 216240  # 240 runs x (600 loss + 300 f1 + 1 lms_score)
    assert frame["run"].nunique() == 240
    f1 = frame[frame["name"] == "f1"]
    assert len(f1) == 72000
    if library == "duckdb":
        assert len(scope["f1_de"]) == 14400
    else:
        assert (f1["lang"] == "de").sum() == 14400


@pytest.mark.parametrize("library", ["duckdb", "pandas"])
def test_snippet_non_finite_values_torn_line_and_parquet(library: str, tmp_path: Path) -> None:
    with Run(tmp_path, "r", flush_seconds=0) as run:
        for step, value in enumerate([math.nan, math.inf, -math.inf, 0.5]):
            run.track(value, "x", step=step, context={"lang": "de"})
    with open(tmp_path / "r.jsonl", "a") as fh:
        fh.write('{"kind":"point","run":"r","na')  # a job writing right now
    with Run(tmp_path, "q", flush_seconds=0) as run:
        run.track(2.0, "x", step=0, context={"lang": "en"})
    write_parquet(read_records([str(tmp_path / "q.jsonl")], Diagnostics()),
                  tmp_path / "archive" / "q.parquet")
    (tmp_path / "q.jsonl").unlink()
    values, _, _ = run_snippet(library, tmp_path)
    assert values[0] == 2.0  # run q
    assert math.isnan(values[1]) and values[2:] == [math.inf, -math.inf, 0.5]


def test_help_imports_neither_polars_nor_matplotlib() -> None:
    code = (
        "import sys\n"
        "import xpcli.cli\n"
        "try:\n"
        "    xpcli.cli.main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'polars', 'matplotlib', 'pyarrow', 'numpy', 'pandas', 'scipy', 'sklearn'})\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: xp" in proc.stdout
    assert "HEAVY []" in proc.stderr


def test_every_command_documented_in_help() -> None:
    proc = run_python("import xpcli.cli\nxpcli.cli.main(['--help'])")
    from xpcli.cli import COMMANDS

    for name in COMMANDS:
        line = next((x for x in proc.stdout.splitlines() if x.strip().startswith(name + " ")),
                    None)
        assert line is not None and len(line.split()) > 1, f"{name} has no summary in xp --help"


def test_docs_exist_and_name_the_version() -> None:
    assert "version 1" in FORMAT_MD.read_text()
    guarantees = (ROOT / "docs" / "guarantees.md").read_text()
    for code in ("| 0 ", "| 1 ", "| 2 ", "| 3 "):
        assert code in guarantees


def test_the_readme_opens_with_the_command_ci_runs() -> None:
    """The newcomer's check command is the one .ci/run runs, and that target exists."""
    ci = (ROOT / ".ci" / "run").read_text()
    targets = re.findall(r"^make (\S+)", ci, flags=re.M)
    assert targets, ".ci/run runs no make target"
    opening = (ROOT / "README.md").read_text().split("\n## ")[0]
    for target in targets:
        assert f"\n    make {target} " in opening, f"README does not open with make {target}"
        assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), flags=re.M)


def test_the_readme_names_every_reducer() -> None:
    from xpcli.spec.metric import REDUCERS

    readme = (ROOT / "README.md").read_text()
    missing = [kind for kind in REDUCERS
               if not re.search(rf"[`@]{re.escape(kind)}[`=(]", readme)]
    assert not missing, f"README's list of reducers lacks {missing} (docs/specs.md has all)"


def test_the_version_is_written_in_one_place() -> None:
    import tomllib

    import xpcli

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "xpcli.__version__"}
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(xpcli.__version__)}\b", changelog, flags=re.M)

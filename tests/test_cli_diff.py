"""xp diff: runs side by side, params and reduced metrics, differing rows first."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from xpcli.cli import cli


def _xp(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "80", "NO_COLOR": "1"})


def _last_points(runs: Path, run: str) -> dict[str, float]:
    """Each (metric, context)'s last logged value, read with json alone."""
    last: dict[str, float] = {}
    for line in (runs / f"{run}.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "point":
            context = ",".join(f"{k}={v}" for k, v in sorted(record.get("context", {}).items()))
            last[record["name"] + (f"[{context}]" if context else "")] = record["value"]
    return last


def test_diff_two_runs_params_and_metrics_differences_first(sample_runs: Path) -> None:
    a, b = "lr1e-5-s00", "lr3e-5-s00"
    result = _xp("--runs", str(sample_runs), "diff", a, b, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["field", "kind", "differs", a, b]
    differs = [row["differs"] for row in rows]
    assert differs == sorted(differs, reverse=True)  # every "true" before every "false"
    by_field = {row["field"]: row for row in rows}
    assert by_field["lr"]["differs"] == "true" and (by_field["lr"][a], by_field["lr"][b]) == (
        "1e-5", "3e-5")
    assert by_field["model"]["differs"] == "false"
    for run in (a, b):  # the last value of each series, as the JSONL files hold it
        for name, value in _last_points(sample_runs, run).items():
            assert float(by_field[name][run]) == value, (run, name)


def test_diff_metric_specs_three_runs_and_formats(sample_runs: Path) -> None:
    runs = ["lr1e-5-s00", "lr3e-5-s00", "lr1e-4-s00"]
    base = ["--runs", str(sample_runs), "diff", *runs, "-m", "f1:lang=en@max"]
    rows = json.loads(_xp(*base, "--format", "json").stdout)
    (f1,) = [row for row in rows if row["field"] == "f1[lang=en]@max"]
    for run in runs:
        records = map(json.loads, (sample_runs / f"{run}.jsonl").read_text().splitlines())
        expected = max(v["value"] for v in records if v.get("kind") == "point"
                       and v["name"] == "f1" and v.get("context", {}).get("lang") == "en")
        assert float(f1[run]) == expected
    markdown = _xp(*base, "--format", "markdown").stdout
    assert markdown.splitlines()[2] == "| field | kind | differs | " + " | ".join(runs) + " |"
    table = _xp(*base, "--format", "table").stdout
    assert "3 runs:" in table and "f1[lang=en]@max" in table


@pytest.mark.parametrize("args, message", [
    (["lr1e-5-s00", "lr1e-5-s300"], "unknown run 'lr1e-5-s300'; did you mean"),
    (["lr1e-5-s00"], "xp diff compares two or more runs; name at least two"),
    (["lr1e-5-s00", "lr1e-5-s00"], "run 'lr1e-5-s00' is named twice; name each run once"),
])
def test_diff_errors(sample_runs: Path, args: list[str], message: str) -> None:
    result = _xp("--runs", str(sample_runs), "diff", *args)
    assert result.exit_code == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and message in last, last

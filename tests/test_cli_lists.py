"""Every comma-separated option splits the same way: commas inside () and [] stay.

Each case stubs the library function the command hands its options to and checks the
list it received, so what is tested is the command's splitting alone.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

import xpcli.analysis.discover
import xpcli.analysis.forgetting
import xpcli.analysis.parcoords
import xpcli.analysis.select
import xpcli.analysis.selection
import xpcli.analysis.series
from xpcli.cli import cli

SPEC = "f1:lang=de@at-max(f1[lang=en,split=dev])"
TEXT = f"{SPEC}, lms_score,,lr "
ITEMS = [SPEC, "lms_score", "lr"]


class Captured(Exception):
    """Raised by a stub once it has the arguments: the command stops there."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__("captured")
        self.args_ = args
        self.kwargs = kwargs


def stub(*args: Any, **kwargs: Any) -> Any:
    raise Captured(args, kwargs)


def captured(args: list[str], runs: Path) -> Captured:
    result = CliRunner().invoke(cli, [*args, "--runs", str(runs)])
    assert isinstance(result.exception, Captured), (result.output, result.exception)
    return result.exception


def test_runs_params(monkeypatch: pytest.MonkeyPatch, tiny_runs: Path) -> None:
    monkeypatch.setattr(xpcli.analysis.discover, "runs_table", stub)
    got = captured(["runs", "--params", TEXT], tiny_runs)
    assert got.args_[1] == ITEMS


def test_select_params(monkeypatch: pytest.MonkeyPatch, tiny_runs: Path) -> None:
    monkeypatch.setattr(xpcli.analysis.select, "select_runs", stub)
    got = captured(["select", "--params", TEXT], tiny_runs)
    assert got.kwargs["params"] == ITEMS


def test_parcoords_params_and_axis_words(monkeypatch: pytest.MonkeyPatch,
                                         tiny_runs: Path) -> None:
    monkeypatch.setattr(xpcli.analysis.parcoords, "parcoords_table", stub)
    got = captured(["parcoords", "--params", TEXT, "--log", TEXT, "--log", "seed",
                    "--linear", TEXT, "--invert", TEXT], tiny_runs)
    assert got.kwargs["params"] == ITEMS
    assert got.kwargs["log"] == [*ITEMS, "seed"]
    assert got.kwargs["linear"] == ITEMS and got.kwargs["invert"] == ITEMS


def test_aggregate_by(monkeypatch: pytest.MonkeyPatch, tiny_runs: Path) -> None:
    monkeypatch.setattr(xpcli.analysis.series, "load_series",
                        lambda *a, **k: SimpleNamespace(runs=pl.DataFrame({"run": []})))
    monkeypatch.setattr(xpcli.analysis.series, "check_run_columns", stub)
    got = captured(["aggregate", "f1:lang=*", "--by", TEXT], tiny_runs)
    assert got.args_[1] == ITEMS


def test_forgetting_by(monkeypatch: pytest.MonkeyPatch, tiny_runs: Path) -> None:
    monkeypatch.setattr(xpcli.analysis.forgetting, "analyse", stub)
    got = captured(["forgetting", "f1:lang=*", "--by", TEXT], tiny_runs)
    assert got.kwargs["by"] == ITEMS


def test_selection_by(monkeypatch: pytest.MonkeyPatch, tiny_runs: Path) -> None:
    monkeypatch.setattr(xpcli.analysis.selection, "selection", stub)
    got = captured(["selection", "-s", "f1:lang=en", "-t", "f1:lang=de", "--by", TEXT,
                    "--by", "lr,seed"], tiny_runs)
    assert got.kwargs["by"] == [*ITEMS, "seed"]

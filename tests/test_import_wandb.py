"""W&B importer: run folders written by hand in wandb's layout, and by wandb itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from xpcli.cli import cli
from xpcli.dataset import load
from xpcli.importers import import_runs
from xpcli.importers.wandb import records

CONFIG = """\
wandb_version: 1

_wandb:
  desc: null
  value:
    python_version: 3.11.4
lr:
  desc: null
  value: 0.001
optimizer:
  desc: null
  value:
    name: adam
    betas: [0.9, 0.999]
"""


def _run_folder(root: Path, name: str, summary: dict, config: str = CONFIG,
                history: list[dict] | None = None) -> Path:
    folder = root / "wandb" / name
    files = folder / "files"
    files.mkdir(parents=True)
    (files / "config.yaml").write_text(config)
    (files / "wandb-summary.json").write_text(json.dumps(summary))
    (files / "wandb-metadata.json").write_text(json.dumps(
        {"host": "gpu7", "startedAt": "2024-03-01T10:00:00.000000Z"}))
    if history is not None:
        (files / "wandb-history.jsonl").write_text(
            "".join(json.dumps(row) + "\n" for row in history) + "{torn")
    return folder


def test_config_and_summary_natively(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # the native path needs no wandb
    summary = {"train/loss": 0.25, "eval": {"f1": 0.8}, "_step": 99, "_timestamp": 1709290000.5,
               "_runtime": 12, "_wandb": {"runtime": 12}, "note": "text",
               "samples": {"_type": "image-file", "path": "media/x.png"}}
    _run_folder(tmp_path, "run-20240301_100000-abc123", summary)
    os.symlink(tmp_path / "wandb" / "run-20240301_100000-abc123",
               tmp_path / "wandb" / "latest-run")
    result = import_runs("wandb", str(tmp_path), str(tmp_path / "runs"))
    assert [r.run for r in result.runs] == ["abc123"]
    assert result.skipped == {"image-file summaries": 1, "non-numeric values": 1}
    dataset = load(tmp_path / "runs")
    runs = dataset.runs.collect()
    row = runs.row(0, named=True)
    assert (row["lr"], row["optimizer.name"], json.loads(row["optimizer.betas"])) == (
        0.001, "adam", [0.9, 0.999])
    assert "python_version" not in " ".join(runs.columns)
    assert row["host"] == "gpu7" and row["created"].isoformat() == "2024-03-01T10:00:00+00:00"
    points = dataset.points.collect().sort("name")
    assert points.select("name", "step", "time", "value").rows() == [
        ("eval.f1", 99, 1709290000.5, 0.8), ("train/loss", 99, 1709290000.5, 0.25)]


def test_history_jsonl_gives_every_point(tmp_path):
    history = [{"loss": 1.0 / (i + 1), "epoch": i, "_step": i, "_timestamp": 100.0 + i}
               for i in range(4)]
    _run_folder(tmp_path, "run-x-h1", {"loss": 0.25, "_step": 3}, history=history)
    result = import_runs("wandb", str(tmp_path / "wandb"), str(tmp_path / "runs"),
                         context_from_name=r"(?P<split>train|eval)/(?P<name>.+)")
    assert result.skipped == {"malformed lines": 1}
    points = load(tmp_path / "runs").points.collect().filter(pl.col("name") == "loss")
    assert points.sort("step").select("step", "epoch", "value").rows() == [
        (i, float(i), 1.0 / (i + 1)) for i in range(4)]


def test_unsafe_config_value_is_refused_and_the_rest_kept(tmp_path):
    marker = tmp_path / "pwned"
    config = (f"lr:\n  value: !!python/object/apply:os.system ['touch {marker}']\n"
              "bs:\n  desc: null\n  value: 16\n")
    _run_folder(tmp_path, "run-x-bad", {"loss": 1.0, "_step": 0}, config=config)
    result = CliRunner().invoke(cli, ["import", "wandb", str(tmp_path), "--into",
                                      str(tmp_path / "runs"), "--format", "csv"])
    assert result.exit_code == 0
    config_path = tmp_path / "wandb" / "run-x-bad" / "files" / "config.yaml"
    assert (f"{config_path}: 'lr.value' holds a Python object "
            "(tag:yaml.org,2002:python/object/apply:os.system)") in result.stderr
    assert not marker.exists()
    runs = load(tmp_path / "runs").runs.collect()
    assert runs["bs"].to_list() == [16] and "lr" not in runs.columns


_OFFLINE_RUN = textwrap.dedent("""
    import wandb
    run = wandb.init(project="p", name="UNet lr 0.01", config={"lr": 0.01, "bs": 16},
                     mode="offline")
    for i in range(6):
        run.log({"train/loss": 1.0 / (i + 1), "eval/f1": i / 10, "epoch": i})
    run.finish()
""")


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    root = tmp_path_factory.mktemp("wb")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "WANDB_DIR": str(root), "WANDB_DISABLE_GIT": "true"}
    subprocess.run([sys.executable, "-c", _OFFLINE_RUN], cwd=root, env=env, check=True,
                   timeout=300, capture_output=True)
    return root


def test_binary_history_of_an_offline_run(offline_run, tmp_path):
    into = tmp_path / "runs"
    result = CliRunner().invoke(cli, [
        "import", "wandb", str(offline_run), "--into", str(into), "--format", "csv",
        "--params-from-name", r"lr (?P<lr_from_name>[0-9.]+)",
        "--context-from-name", r"(?P<split>train|eval)/(?P<name>.+)",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    dataset = load(into)
    runs = dataset.runs.collect()
    row = runs.row(0, named=True)
    assert (row["lr"], row["bs"], row["lr_from_name"]) == (0.01, 16, 0.01)
    assert row["display_name"] == "UNet lr 0.01" and row["status"] == "finished"
    points = dataset.points.collect()
    loss = points.filter(pl.col("name") == "loss", pl.col("split") == "train").sort("step")
    assert loss.select("step", "epoch", "value").rows() == [
        (i, float(i), 1.0 / (i + 1)) for i in range(6)]
    f1 = points.filter(pl.col("name") == "f1", pl.col("split") == "eval").sort("step")
    assert f1["value"].to_list() == [i / 10 for i in range(6)]


def test_truncated_binary_keeps_the_records_before_the_cut(offline_run, tmp_path):
    (source,) = list(offline_run.glob("wandb/offline-run-*/*.wandb"))
    whole, problem = records(str(source))
    assert problem is None and len(whole) > 6
    copy = tmp_path / "wandb" / source.parent.name
    copy.mkdir(parents=True)
    data = source.read_bytes()
    (copy / source.name).write_bytes(data[: len(data) * 2 // 3])
    cut, problem = records(str(copy / source.name))
    assert problem.startswith("truncated") and 0 < len(cut) < len(whole)
    assert cut == whole[: len(cut)]
    summary = import_runs("wandb", str(tmp_path), str(tmp_path / "runs"))
    assert summary.skipped["truncated .wandb files"] == 1
    assert 0 < summary.points < 18

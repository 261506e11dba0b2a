"""W&B importer: run folders written by hand in wandb's layout, and by wandb itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
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


def _write_offline(root: Path, script: str) -> Path:
    """Run ``script`` (a training run logging to W&B) offline in ``root``; returns root."""
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "WANDB_DIR": str(root), "WANDB_DISABLE_GIT": "true"}
    subprocess.run([sys.executable, "-c", script], cwd=root, env=env, check=True,
                   timeout=300, capture_output=True)
    return root


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    return _write_offline(tmp_path_factory.mktemp("wb"), _OFFLINE_RUN)


@pytest.mark.slow
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


@pytest.mark.slow
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


# -- a truncated history: the summary's final values are kept -------------------------------

EPOCHS = 40
_SWEEP_RUN = textwrap.dedent(f"""
    import wandb
    run = wandb.init(project="sweep", config={{"lr": 0.01}}, mode="offline")
    for epoch in range({EPOCHS}):
        run.log({{"train_loss": 1.0 / (epoch + 1), "val_acc": epoch / 100, "epoch": epoch}})
    run.log({{"test_acc_epoch": 0.8125, "epoch": {EPOCHS - 1}}})
    run.finish()
""")
#: wandb-summary.json as W&B writes it for that run (last value of each key, the run's
#: last step; its time is set when the run folder is made, after the history's) with a
#: value set in the summary only (``run.summary["best_val_acc"]``).
SUMMARY = {"train_loss": 1.0 / EPOCHS, "val_acc": (EPOCHS - 1) / 100, "epoch": EPOCHS - 1,
           "test_acc_epoch": 0.8125, "best_val_acc": 0.39, "_step": EPOCHS,
           "_runtime": 12.5, "_wandb": {"runtime": 12}}


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    """A run's binary history, written by wandb itself (offline)."""
    root = _write_offline(tmp_path_factory.mktemp("sweep"), _SWEEP_RUN)
    (source,) = root.glob("wandb/offline-run-*/*.wandb")
    return source.read_bytes()


def _synced_run(root: Path, wandb_bytes: bytes) -> Path:
    """A run folder as a synced sweep leaves it: files/ with the summary beside the .wandb."""
    folder = _run_folder(root, "run-20240301_100000-swp1",
                         {**SUMMARY, "_timestamp": time.time()})
    (folder / "run-swp1.wandb").write_bytes(wandb_bytes)
    return folder


@pytest.mark.slow
def test_truncated_history_keeps_the_summarys_final_values(sweep_run, tmp_path):
    folder = _synced_run(tmp_path, sweep_run[: len(sweep_run) * 2 // 3])
    into = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["import", "wandb", str(tmp_path), "--into", str(into),
                                      "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary_path = folder / "files" / "wandb-summary.json"
    assert (f"{summary_path}: the history is cut (truncated .wandb file); 5 final values "
            f"it lacks taken from the summary at step {EPOCHS}") in result.stderr
    dataset = load(into)
    points = dataset.points.collect()

    def series(name: str) -> pl.DataFrame:
        return points.filter(pl.col("name") == name).sort("step")

    assert series("test_acc_epoch").select("step", "value").rows() == [(EPOCHS, 0.8125)]
    assert series("best_val_acc")["value"].to_list() == [0.39]
    loss = series("train_loss")
    kept = loss.height - 1  # the history before the cut, then the summary's final value
    assert 0 < kept < EPOCHS
    assert loss["value"].to_list() == [1.0 / (e + 1) for e in range(kept)] + [1.0 / EPOCHS]
    assert loss["step"].to_list()[-1] == EPOCHS and loss["epoch"][-1] == EPOCHS - 1
    assert loss["time"][-1] >= loss["time"][:-1].max()  # the summary's time is the last
    assert series("val_acc")["value"][-1] == (EPOCHS - 1) / 100
    meta = dataset.runs.collect().row(0, named=True)
    assert json.loads(meta["from_summary"]) == ["best_val_acc", "epoch", "test_acc_epoch",
                                                "train_loss", "val_acc"]
    selected = CliRunner().invoke(cli, ["select", "--runs", str(into), "-m",
                                        "test_acc_epoch@last,train_loss@last", "--format",
                                        "csv"], catch_exceptions=False)
    assert selected.stdout.splitlines()[1].endswith(f",0.8125,{1.0 / EPOCHS}")


@pytest.mark.slow
def test_complete_history_is_not_doubled_by_the_summary(sweep_run, tmp_path):
    _synced_run(tmp_path, sweep_run)
    summary = import_runs("wandb", str(tmp_path), str(tmp_path / "runs"))
    assert not summary.problems
    dataset = load(tmp_path / "runs")
    points = dataset.points.collect()
    counts = dict(points.group_by("name").len().rows())
    assert counts == {"train_loss": EPOCHS, "val_acc": EPOCHS, "epoch": EPOCHS + 1,
                      "test_acc_epoch": 1, "best_val_acc": 1}  # only the summary-only key
    assert json.loads(dataset.runs.collect()["from_summary"][0]) == ["best_val_acc"]

"""Plain-table importer: Keras CSVLogger, pandas dumps (wide and long), JSON per config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from click.testing import CliRunner

from xpcli.cli import cli
from xpcli.dataset import load
from xpcli.errors import UsageError
from xpcli.importers import import_runs

REAL = Path(__file__).parents[2] / "shared" / "realdata" / "learning_curves_cifar10_cnn"
real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real logs not present at {REAL}")


def _points(into: Path) -> pl.DataFrame:
    return load(into).points.collect()


@real
def test_real_learning_curves_every_config_and_point(tmp_path):
    summary = import_runs("table", str(REAL), str(tmp_path), param_column=("config_id",))
    files = sorted((REAL / "data" / "final_project").glob("config_*.json"))
    assert len(files) == 265 and len(summary.runs) == 265 and not summary.skipped
    dataset = load(tmp_path)
    points = dataset.points.collect()
    runs = dataset.runs.collect()
    expected_total = 0
    for path in files:
        doc = json.loads(path.read_text())
        run = "data-final_project-" + path.stem
        got = points.filter(pl.col("run") == run)
        series = {k: v for k, v in doc.items() if isinstance(v, list)}
        finals = {k: v for k, v in doc.items()
                  if isinstance(v, (int, float)) and k != "config_id"}
        expected_total += sum(map(len, series.values())) + len(finals)
        for name, values in series.items():
            one = got.filter(pl.col("name") == name).sort("step")
            assert one["step"].to_list() == list(range(len(values)))
            np.testing.assert_array_equal(one["value"].to_numpy(), np.array(values))
        last = max(len(v) for v in series.values()) - 1
        for name, value in finals.items():
            assert got.filter(pl.col("name") == name).select("step", "value").rows() == [
                (last, value)]
        row = runs.filter(pl.col("run") == run).row(0, named=True)
        assert row["config_id"] == doc.get("config_id")
        for key, value in doc["config"].items():
            assert row[f"config.{key}"] == value
    assert points.height == summary.points == expected_total
    # the schema switch at file 256: train/valid losses beside the learning curve
    assert points.filter(pl.col("run") == "data-final_project-config_260")["name"].unique(
    ).sort().to_list() == ["learning_curve", "runtime", "time_steps", "train_loss",
                           "valid_loss"]


def test_keras_csvlogger_epoch_is_the_step_and_a_constant_lr_a_param(tmp_path):
    log = tmp_path / "training.log.csv"
    log.write_text("epoch,accuracy,loss,lr,val_accuracy,val_loss\n"
                   "0,0.5,1.2,0.001,0.55,1.1\n1,0.7,0.8,0.001,0.65,nan\n")
    summary = import_runs("table", str(log), str(tmp_path / "runs"))
    assert [(r.run, r.points) for r in summary.runs] == [("training.log", 8)]
    points = _points(tmp_path / "runs").sort("name", "step")
    assert points.select("name", "step", "epoch").rows() == [
        (n, s, float(s)) for n in ("accuracy", "loss", "val_accuracy", "val_loss")
        for s in (0, 1)]
    values = dict(zip(zip(points["name"], points["step"]), points["value"]))
    assert values[("loss", 1)] == 0.8 and np.isnan(values[("val_loss", 1)])
    assert load(tmp_path / "runs").runs.collect()["lr"].to_list() == [0.001]


def _long_frame() -> pd.DataFrame:
    rows = [dict(run=run, step=step, name=name, value=(step + 1) * 0.1 + lr, split=split,
                 lr=lr, optimizer="adam")
            for run, lr in (("a", 0.5), ("b", 0.25)) for step in range(3)
            for name in ("loss", "acc") for split in ("train", "val")]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl", "json"])
def test_pandas_long_dump_point_by_point(tmp_path, suffix):
    frame = _long_frame()
    path = tmp_path / f"dump.{suffix}"
    if suffix == "csv":
        frame.to_csv(path)  # with pandas' unnamed index column
    elif suffix == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=suffix == "jsonl")
    summary = import_runs("table", str(path), str(tmp_path / "runs"))
    assert sorted(r.run for r in summary.runs) == ["a", "b"] and not summary.skipped
    dataset = load(tmp_path / "runs")
    got = dataset.points.collect().select("run", "name", "split", "step", "value").sort(
        "run", "name", "split", "step").rows()
    want = sorted(frame[["run", "name", "split", "step", "value"]].itertuples(
        index=False, name=None))
    assert got == [tuple(r) for r in want]
    runs = dataset.runs.collect().sort("run")
    assert runs.select("run", "lr", "optimizer").rows() == [("a", 0.5, "adam"),
                                                             ("b", 0.25, "adam")]
    assert "Unnamed: 0" not in runs.columns


def test_wide_table_with_a_run_column_and_sparse_cells(tmp_path):
    path = tmp_path / "results.tsv"
    path.write_text("run_id\tglobal_step\ttrain_loss\tval_loss\tseed\n"
                    "r1\t10\t0.9\t\t1\nr1\t20\t0.7\t0.8\t1\nr2\t10\t1.1\toops\t2\n"
                    "\t30\t0.1\t\t3\nr2\t15.5\t1.0\t\t2\n")
    summary = import_runs("table", str(path), str(tmp_path / "runs"))
    assert sorted(r.run for r in summary.runs) == ["r1", "r2"]
    assert summary.skipped == {"rows without a run": 1, "non-numeric values": 1,
                               "malformed rows": 1}
    assert any("(lines 6)" in p.message for p in summary.problems)  # the step 15.5
    dataset = load(tmp_path / "runs")
    assert dataset.points.collect().sort("run", "name", "step").select(
        "run", "name", "step", "value").rows() == [
        ("r1", "train_loss", 10, 0.9), ("r1", "train_loss", 20, 0.7),
        ("r1", "val_loss", 20, 0.8), ("r2", "train_loss", 10, 1.1)]
    assert dataset.runs.collect().sort("run")["seed"].to_list() == [1, 2]


def test_options_name_columns_and_ambiguity_is_an_error(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("trial,step,global_step,m,v\nt1,1,100,loss,0.5\nt1,2,200,loss,0.4\n")
    with pytest.raises(UsageError, match="'step' and 'global_step' could both be the step "
                                         "column; pass --step-column"):
        import_runs("table", str(path), str(tmp_path / "runs"))
    summary = import_runs("table", str(path), str(tmp_path / "runs"), run_column="trial",
                          step_column="global_step", name_column="m", value_column="v",
                          param_column=("step",))
    assert [r.run for r in summary.runs] == ["t1"]
    points = _points(tmp_path / "runs")
    assert points.select("name", "step", "value").sort("step").rows() == [
        ("loss", 100, 0.5), ("loss", 200, 0.4)]
    result = CliRunner().invoke(cli, ["import", "table", str(path), "--into",
                                      str(tmp_path / "r2"), "--run-column", "nope"])
    assert result.exit_code != 0
    assert "--run-column 'nope' is not a column of this file" in result.stderr
    assert "Traceback" not in result.output
    other = CliRunner().invoke(cli, ["import", "lightning", str(tmp_path), "--into",
                                     str(tmp_path / "r3"), "--run-column", "trial"])
    assert other.exit_code != 0
    assert "--run-column: not an option of `xp import lightning`" in other.stderr


def test_a_folder_of_json_configs_with_step_lists(tmp_path):
    for i, lr in enumerate((0.1, 0.01)):
        (tmp_path / "src").mkdir(exist_ok=True)
        (tmp_path / "src" / f"config_{i}.json").write_text(json.dumps({
            "config": {"lr": lr, "opt": {"name": "sgd"}}, "tag": "v1",
            "epoch": [1, 2, 4], "val_error": [0.5, 0.4, None], "final": 0.3}))
    (tmp_path / "src" / "broken.json").write_text("{not json")
    summary = import_runs("table", str(tmp_path / "src"), str(tmp_path / "runs"),
                          params_from_name=r"config_(?P<index>\d+)")
    assert [r.run for r in summary.runs] == ["config_0", "config_1"]
    assert summary.skipped == {"unreadable files": 1, "non-numeric values": 2}
    dataset = load(tmp_path / "runs")
    one = dataset.points.collect().filter(pl.col("run") == "config_0").sort("name", "step")
    # the epoch list is the x of the other lists (and, integral, the step); the final
    # value at the last step a series reached
    assert one.select("name", "step", "epoch", "value").rows() == [
        ("final", 2, None, 0.3), ("val_error", 1, 1.0, 0.5), ("val_error", 2, 2.0, 0.4)]
    runs = dataset.runs.collect().sort("run")
    assert runs.select("config.lr", "config.opt.name", "tag", "index").rows() == [
        (0.1, "sgd", "v1", 0), (0.01, "sgd", "v1", 1)]


def test_reimport_is_idempotent_and_unreadable_parquet_is_skipped(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.csv").write_text("step,loss\n1,0.5\n2,0.25\n")
    (src / "b.parquet").write_bytes(b"PAR1 not really")
    into = tmp_path / "runs"
    first = import_runs("table", str(src), str(into))
    again = import_runs("table", str(src), str(into))
    assert [r.run for r in first.runs] == [r.run for r in again.runs] == ["a"]
    assert again.skipped == {"unreadable files": 1}
    assert "b.parquet: not a readable Parquet file" in str(again.problems[0])
    assert _points(into).select("step", "value").sort("step").rows() == [(1, 0.5), (2, 0.25)]

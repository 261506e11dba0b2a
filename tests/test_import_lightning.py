"""Lightning CSVLogger importer: real metrics.csv/hparams.yaml and synthetic quirks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from xpcli.cli import cli
from xpcli.dataset import load
from xpcli.importers import import_runs

REAL = Path(__file__).parents[2] / "shared" / "realdata" / "lightning_csv_forestcover"
real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real logs not present at {REAL}")


@pytest.fixture(scope="module")
def real_dataset(tmp_path_factory):
    into = tmp_path_factory.mktemp("runs")
    summary = import_runs("lightning", str(REAL), str(into))
    return summary, load(into)


def _cells(path: Path, column: str) -> list[tuple[int, float]]:
    with open(path, newline="") as fh:
        return [(int(row["step"]), float(row[column]))
                for row in csv.DictReader(fh) if row.get(column)]


@real
def test_real_every_version_is_a_run(real_dataset):
    summary, dataset = real_dataset
    versions = sorted(p.parent.name for p in (REAL / "lightning_logs").glob("*/metrics.csv"))
    assert len(summary.runs) == len(versions) == 45
    assert sorted(r.name.split("/")[-1] for r in summary.runs) == versions
    assert not summary.skipped


@real
def test_real_sparse_rows_merge_into_series(real_dataset):
    _, dataset = real_dataset
    path = REAL / "lightning_logs" / "version_10" / "metrics.csv"
    points = dataset.points.collect().filter(pl.col("run") == "lightning_logs-version_10")
    for column in ("valid_loss", "train_loss", "valid_accuracy"):
        expected = _cells(path, column)
        got = points.filter(pl.col("name") == column).select("step", "value").rows()
        assert got == expected
    with open(path, newline="") as fh:
        cells = sum(1 for row in csv.DictReader(fh) for k, v in row.items()
                    if k not in ("epoch", "step") and v)
    assert points.height == cells


@real
def test_real_one_row_run_and_list_param(real_dataset):
    _, dataset = real_dataset
    points = dataset.points.collect().filter(pl.col("run") == "lightning_logs-version_13")
    assert points.select("name", "step", "epoch", "value").rows() == [
        ("train_loss", 49, 0.0, 0.9056214690208435)]
    runs = dataset.runs.collect()
    row = runs.filter(pl.col("run") == "lightning_logs-version_13")
    assert json.loads(row["continuous_cols"][0])[0] == "Wilderness_Area1"
    assert row["learning_rate"][0] == 0.001 and row["head_config.layers"][0] == ""


# -- synthetic ---------------------------------------------------------------------------


def _version(root: Path, name: str, csv_text: str | None, yaml_text: str | None) -> Path:
    folder = root / "lightning_logs" / name
    folder.mkdir(parents=True)
    if csv_text is not None:
        (folder / "metrics.csv").write_text(csv_text)
    if yaml_text is not None:
        (folder / "hparams.yaml").write_text(yaml_text)
    return folder


#: What ``save_hyperparameters()`` writes when a model is passed to ``__init__``: PyYAML's
#: dump of the module object beside the plain hyperparameters.
SAVED_HPARAMS = """\
batch_size: 64
lr: 0.001
model: !!python/object:__main__.Net
  _backward_hooks: !!python/object/apply:collections.OrderedDict
  - []
  _modules: !!python/object/apply:collections.OrderedDict
  - - - fc
      - !!python/object:torch.nn.modules.linear.Linear
        in_features: 784
        out_features: 10
  training: true
optimizer:
  name: adam
  betas: !!python/tuple
  - 0.9
  - 0.999
  factory: !!python/name:torch.optim.Adam ''
schedule: [1, !!python/object/apply:os.system ['touch {marker}'], 3]
"""


def test_python_objects_in_hparams_are_refused_and_the_plain_keys_kept(tmp_path):
    marker = tmp_path / "pwned"
    src = tmp_path / "src"
    folder = _version(src, "version_0", "epoch,step,val_loss\n0,9,0.5\n",
                      SAVED_HPARAMS.format(marker=marker))
    result = CliRunner().invoke(cli, ["import", "lightning", str(src), "--into",
                                      str(tmp_path / "runs"), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    hparams = folder / "hparams.yaml"
    for key, tag in (("model", "python/object:__main__.Net"),
                     ("optimizer.factory", "python/name:torch.optim.Adam"),
                     ("schedule[1]", "python/object/apply:os.system")):
        assert (f"{hparams}: '{key}' holds a Python object (tag:yaml.org,2002:{tag}); "
                "refused, never loaded") in result.stderr, result.stderr
    assert "3 unsafe YAML values" in result.stderr
    dataset = load(tmp_path / "runs")
    row = dataset.runs.collect().row(0, named=True)
    assert (row["lr"], row["batch_size"], row["optimizer.name"]) == (0.001, 64, "adam")
    assert json.loads(row["optimizer.betas"]) == [0.9, 0.999]  # a tuple is plain data
    assert not any(c.startswith(("model", "schedule", "optimizer.factory"))
                   for c in dataset.runs.collect().columns)
    assert dataset.points.collect()["value"].to_list() == [0.5]


def test_a_whole_hparams_file_that_is_an_object_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    src = tmp_path / "src"
    _version(src, "version_0", "epoch,step,val_loss\n0,9,0.5\n",
             f"!!python/object/apply:os.system ['touch {marker}']\n")
    summary = import_runs("lightning", str(src), str(tmp_path / "runs"))
    assert not marker.exists() and summary.points == 1
    assert summary.skipped == {"unsafe YAML values": 1}
    assert "the whole file holds a Python object" in str(summary.problems[0])


def test_malformed_rows_and_missing_files_are_skipped(tmp_path):
    src = tmp_path / "src"
    _version(src, "version_0",
             "epoch,step,train_loss,val_loss\n0,1,0.9,\n0,2,oops,\n0,3,0.7\n0,4,0.6,0.8\n",
             "lr: 0.01\n")
    _version(src, "version_1", None, "lr: 0.02\n")
    _version(src, "version_2", "", None)
    summary = import_runs("lightning", str(src), str(tmp_path / "runs"))
    assert [r.name for r in summary.runs] == ["lightning_logs/version_0"]
    assert summary.skipped == {"malformed rows": 1, "non-numeric values": 1,
                               "missing files": 1, "empty runs": 1}
    points = load(tmp_path / "runs").points.collect().sort("step", "name")
    assert points.select("name", "step", "value").rows() == [
        ("train_loss", 1, 0.9), ("train_loss", 4, 0.6), ("val_loss", 4, 0.8)]


def test_context_from_name_and_params_from_name(tmp_path):
    src = tmp_path / "feats_a_lr1e_3"
    _version(src, "version_0", "epoch,step,train_loss,valid_loss\n0,5,0.9,\n0,5,,0.8\n", None)
    into = tmp_path / "runs"
    result = CliRunner().invoke(cli, [
        "import", "lightning", str(src / "lightning_logs" / "version_0"), "--into", str(into),
        "--context-from-name", "(?P<split>train|valid)_(?P<name>.+)",
        "--params-from-name", r"version_(?P<version>\d+)", "--format", "csv",
    ], catch_exceptions=False)
    assert result.exit_code == 0
    dataset = load(into)
    assert dataset.points.collect().sort("split").select("name", "split", "value").rows() == [
        ("loss", "train", 0.9), ("loss", "valid", 0.8)]
    assert dataset.runs.collect()["version"].to_list() == [0]
    metrics = CliRunner().invoke(cli, ["metrics", "--runs", str(into), "--format", "csv"])
    assert metrics.stdout.splitlines()[1].startswith("loss,split=train|valid,1,2,")

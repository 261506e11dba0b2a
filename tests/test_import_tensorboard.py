"""TensorBoard importer: the real event files and files written with tensorboard's writer."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from xpcli.cli import cli
from xpcli.dataset import load
from xpcli.importers import import_runs

REAL = Path(__file__).parents[2] / "shared" / "realdata" / "tensorboard_pets_segmentation"
real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real logs not present at {REAL}")

NAME_REGEX = (r"(?P<model>UNet|DeepLabV3ResNet)(?:_dr(?P<dropout__dec>\d+))?"
              r"(?:_bs(?P<batch_size>\d+))?(?:_lr(?P<lr>[0-9e_]+))?")


@pytest.fixture(scope="module")
def real_dataset(tmp_path_factory):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    if not REAL.is_dir():
        pytest.skip(f"real logs not present at {REAL}")
    into = tmp_path_factory.mktemp("runs")
    summary = import_runs("tensorboard", str(REAL / "unet" / "runs"), str(into),
                          params_from_name=NAME_REGEX)
    return summary, load(into)


def _authors_best(path: Path) -> dict[str, dict[str, float]]:
    """Per run, the authors' own best-epoch summary from best_res_*run.txt."""
    out: dict[str, dict[str, float]] = {}
    for block in path.read_text().split("Namespace(")[1:]:
        name = re.search(r"run_name='([^']+)'", block).group(1)
        out[name] = {
            "epoch": float(re.search(r"Epoch (\d+), test data", block).group(1)),
            "epochs": float(re.search(r"epochs=(\d+)", block).group(1)),
            "iou": float(re.search(r"Avg IoU: ([0-9.]+)", block).group(1)),
            "train_loss": float(re.search(r"training loss ([0-9.]+)", block).group(1)),
        }
    return out


@real
def test_real_runs_and_skipped_text(real_dataset):
    summary, dataset = real_dataset
    folders = sorted(p.name for p in (REAL / "unet" / "runs").iterdir() if p.is_dir())
    assert sorted(r.run for r in summary.runs) == folders
    assert set(summary.skipped) == {"text events"}
    metrics = set(dataset.points.collect()["name"].unique().to_list())
    assert metrics == {"Training_loss", "Test_loss_avg_on_test", "IoU_avg_on_test",
                       "L1_Distance_avg_on_test", "Epoch_time"}


@real
def test_real_values_match_the_authors_summary(real_dataset):
    _, dataset = real_dataset
    best = _authors_best(REAL / "unet" / "runs" / "best_res_2run.txt")
    points = dataset.points.collect()
    run = "UNet_dr015_bs16_lr2e_4"
    assert best[run]["epoch"] == best[run]["epochs"] == 50  # best epoch is the last one
    mine = points.filter(pl.col("run") == run)
    for name in ("Training_loss", "IoU_avg_on_test"):
        assert mine.filter(pl.col("name") == name).height == 50
    iou = mine.filter(pl.col("name") == "IoU_avg_on_test").sort("step")["value"]
    assert iou[-1] == pytest.approx(best[run]["iou"], abs=5e-5)
    train = mine.filter(pl.col("name") == "Training_loss").sort("step")["value"]
    assert train[-1] == pytest.approx(best[run]["train_loss"], rel=1e-6)  # float32 in file
    for name, row in best.items():  # every run of that summary: best IoU = max IoU
        series = points.filter(pl.col("run") == name, pl.col("name") == "IoU_avg_on_test")
        assert series["value"].max() == pytest.approx(row["iou"], abs=5e-5), name


@real
def test_real_params_from_names(real_dataset):
    _, dataset = real_dataset
    runs = dataset.runs.collect()
    row = runs.filter(pl.col("run") == "UNet_dr015_bs16_lr2e_4").row(0, named=True)
    assert (row["model"], row["dropout"], row["batch_size"], row["lr"]) == (
        "UNet", 0.15, 16, 2e-4)
    assert row["name"] == "UNet_dr015_bs16_lr2e_4"
    adam = runs.filter(pl.col("run") == "UNet_Adam_CE").row(0, named=True)
    assert adam["model"] == "UNet" and adam["lr"] is None


@real
def test_real_cli_then_runs_and_metrics(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    runner = CliRunner()
    into = tmp_path / "runs"
    result = runner.invoke(cli, ["import", "tensorboard", str(REAL), "--into", str(into),
                                 "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "imported 25 runs" in result.stderr and "text events" in result.stderr
    listed = runner.invoke(cli, ["runs", "--runs", str(into), "--format", "csv"],
                           catch_exceptions=False)
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 26
    assert "unet-runs-UNet_Adam_CE" in listed.stdout


# -- synthetic, written with tensorboard's own writers -------------------------------------


def _write_run(folder: Path) -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp
    from tensorboard.plugins.text import metadata as text_metadata
    from tensorboard.summary import Writer
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    for split, values in (("train", [0.875, 0.625, 0.5]), ("validation", [1.0, 0.8125, 0.75])):
        writer = Writer(str(folder / split))  # tensor-encoded scalars
        for step, value in enumerate(values):
            writer.add_scalar("epoch loss", value, step, wall_time=1000.0 + step)
        writer.close()
    legacy = EventFileWriter(str(folder))
    legacy.add_event(event_pb2.Event(summary=hp.hparams_pb({"lr": 0.01, "opt": "sgd",
                                                             "layers": 3}), step=0,
                                     wall_time=999.0))
    for step, value in enumerate([0.125, 0.0625]):  # legacy simple_value scalars
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
            tag="lr", simple_value=value)])
        legacy.add_event(event_pb2.Event(summary=summary, step=step, wall_time=1000.0 + step))
    text = summary_pb2.Summary.Value(
        tag="note", metadata=text_metadata.create_summary_metadata("note", ""),
        tensor=tensor_util.make_tensor_proto(np.array([b"hello"])))
    histo = summary_pb2.Summary.Value(tag="weights", histo=summary_pb2.HistogramProto(
        min=0, max=1, num=3, sum=1, sum_squares=1, bucket_limit=[1], bucket=[3]))
    image = summary_pb2.Summary.Value(tag="sample", image=summary_pb2.Summary.Image(
        height=1, width=1, colorspace=1, encoded_image_string=b"x"))
    for value in (text, histo, image, histo):
        legacy.add_event(event_pb2.Event(summary=summary_pb2.Summary(value=[value]), step=1,
                                         wall_time=1001.0))
    legacy.close()


def test_synthetic_splits_legacy_scalars_hparams_and_skips(tmp_path):
    _write_run(tmp_path / "logs" / "run (1)")
    into = tmp_path / "runs"
    summary = import_runs("tensorboard", str(tmp_path / "logs"), str(into))
    assert [r.run for r in summary.runs] == ["run_1"]
    assert summary.skipped == {"text events": 1, "histogram events": 2, "image events": 1}
    dataset = load(into)
    runs = dataset.runs.collect()
    assert runs.select("lr", "opt", "layers", "name").row(0) == (0.01, "sgd", 3, "run (1)")
    assert runs["created"][0].timestamp() == 999.0
    points = dataset.points.collect().sort("name", "split", "step")
    assert points.select("name", "split", "step", "time", "value").rows() == [
        ("epoch_loss", "train", 0, 1000.0, 0.875),  # float32-exact values
        ("epoch_loss", "train", 1, 1001.0, 0.625),
        ("epoch_loss", "train", 2, 1002.0, 0.5),
        ("epoch_loss", "validation", 0, 1000.0, 1.0),
        ("epoch_loss", "validation", 1, 1001.0, 0.8125),
        ("epoch_loss", "validation", 2, 1002.0, 0.75),
        ("lr", None, 0, 1000.0, 0.125),
        ("lr", None, 1, 1001.0, 0.0625),
    ]


def test_truncated_file_keeps_what_was_read(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.summary import Writer

    folder = tmp_path / "logs" / "cut"
    writer = Writer(str(folder))
    for step in range(10):
        writer.add_scalar("loss", 1.0 / (step + 1), step, wall_time=100.0 + step)
    writer.close()
    (path,) = folder.iterdir()
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    good = tmp_path / "logs" / "good"
    writer = Writer(str(good))
    writer.add_scalar("loss", 0.5, 0, wall_time=1.0)
    writer.close()
    result = CliRunner().invoke(cli, ["import", "tensorboard", str(tmp_path / "logs"),
                                      "--into", str(tmp_path / "runs"), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:3] == [
        f"cut,cut,9,{tmp_path / 'runs' / 'imported' / 'tensorboard' / 'cut.parquet'}",
        f"good,good,1,{tmp_path / 'runs' / 'imported' / 'tensorboard' / 'good.parquet'}",
    ]
    assert "truncated" in result.stderr and str(path) in result.stderr
    assert "1 truncated event files" in result.stderr


def test_missing_tensorboard_names_the_extra(tmp_path, monkeypatch):
    for name in ("tensorboard", "tensorboard.backend.event_processing.event_file_loader"):
        monkeypatch.setitem(sys.modules, name, None)
    (tmp_path / "logs").mkdir()
    result = CliRunner().invoke(cli, ["import", "tensorboard", str(tmp_path / "logs"),
                                      "--into", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].endswith("pip install 'xpcli[tensorboard]'")

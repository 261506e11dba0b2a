"""TensorBoard importer: the real event files and files written with tensorboard's writer."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from fuzz_helpers import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

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
    for name in [m for m in sys.modules if m.split(".")[0] == "tensorboard"] + ["tensorboard"]:
        monkeypatch.setitem(sys.modules, name, None)
    (tmp_path / "logs").mkdir()
    result = CliRunner().invoke(cli, ["import", "tensorboard", str(tmp_path / "logs"),
                                      "--into", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].endswith("pip install 'xpcli[tensorboard]'")


# -- the column-wise reader gives what tensorboard's own loader gives -----------------------


def _reference(path: Path) -> tuple[list[tuple[str, int, float, str]], dict]:
    """Scalars and hparams of one file as the importer read them before the column-wise
    reader: tensorboard's EventFileLoader (it stops at the first record that fails its
    checksum), data_compat, the plugin of a tag's first value, make_ndarray."""
    from tensorboard import data_compat
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata as hp_metadata
    from tensorboard.util import tensor_util

    points, params, plugin_of = [], {}, {}
    try:
        for event in EventFileLoader(str(path)).Load():
            if event.WhichOneof("what") != "summary":
                continue
            for raw in event.summary.value:
                value = data_compat.migrate_value(raw)
                plugin = value.metadata.plugin_data.plugin_name
                if plugin:
                    plugin_of.setdefault(value.tag, plugin)
                else:
                    plugin = plugin_of.get(value.tag, "")
                if plugin == "scalars":
                    try:
                        number = float(tensor_util.make_ndarray(value.tensor))
                    except (TypeError, ValueError):
                        continue
                    points.append((value.tag, event.step, event.wall_time, repr(number)))
                elif plugin == "hparams" and value.tag.endswith("session_start_info"):
                    info = hp_metadata.parse_session_start_info_plugin_data(
                        value.metadata.plugin_data.content)
                    for key, hp in info.hparams.items():
                        params[key] = getattr(hp, hp.WhichOneof("kind"))
    except Exception:  # noqa: BLE001 - a record that does not decode ends the file
        pass
    return points, params


def _fast(path: Path) -> tuple[list[tuple[str, int, float, str]], dict]:
    from xpcli.importers.tensorboard import read_file

    result = read_file(str(path))
    tags = [result.tags[c] for c in result.codes.tolist()]
    points = list(zip(tags, result.steps.tolist(), result.times.tolist(),
                      map(repr, result.values.tolist())))
    return points, {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                    for k, v in result.params.items()}


def _same(path: Path) -> list:
    points, params = _reference(path)
    fast_points, fast_params = _fast(path)
    assert fast_points == points, path
    assert fast_params == {k: float(v) if isinstance(v, int) and not isinstance(v, bool)
                           else v for k, v in params.items()}, path
    return points


def _event(tag: str, step: int, wall: float, encoding: str, value: float,
           metadata: bool = True) -> Any:
    """An event with one scalar value, in one of the encodings writers use."""
    import struct

    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
    from tensorboard.plugins.scalar import metadata as scalar_metadata

    if encoding == "simple":
        summary_value = summary_pb2.Summary.Value(tag=tag, simple_value=value)
    else:
        dtype, field, pack = {"f32content": (types_pb2.DT_FLOAT, "tensor_content", "<f"),
                              "f32val": (types_pb2.DT_FLOAT, "float_val", None),
                              "f64content": (types_pb2.DT_DOUBLE, "tensor_content", "<d"),
                              "f64val": (types_pb2.DT_DOUBLE, "double_val", None),
                              "i64val": (types_pb2.DT_INT64, "int64_val", None)}[encoding]
        tensor = tensor_pb2.TensorProto(dtype=dtype)
        tensor.tensor_shape.SetInParent()
        if pack:
            tensor.tensor_content = struct.pack(pack, value)
        else:
            if encoding == "i64val":  # an integer scalar (only finite values have one)
                value = int(value) if value == value and abs(value) != float("inf") else 7
            getattr(tensor, field).append(value)
        summary_value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
        if metadata:
            summary_value.metadata.CopyFrom(scalar_metadata.create_summary_metadata("", ""))
    return event_pb2.Event(step=step, wall_time=wall,
                           summary=summary_pb2.Summary(value=[summary_value]))


def _write_varied(folder: Path) -> None:
    """One file with every encoding and quirk the column-wise reader must agree on."""
    import math

    np = pytest.importorskip("numpy")
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp
    from tensorboard.plugins.text import metadata as text_metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    writer = EventFileWriter(str(folder))
    writer.add_event(event_pb2.Event(summary=hp.hparams_pb({"lr": 0.5, "opt": "adam",
                                                             "deep": True}), wall_time=5.0))
    writer.add_event(event_pb2.Event(graph_def=b"\x01" * 70_000, wall_time=5.0))
    encodings = ("simple", "f32content", "f32val", "f64content", "f64val", "i64val")
    values = [0.1, -2.5, 1e-30, 3.0, math.nan, math.inf, -math.inf, -0.0, 123456.789]
    steps = [0, 1, 127, 128, 16383, 16384, 2**40, -1, -(2**63)]
    for i, encoding in enumerate(encodings * 3):
        for j, (step, value) in enumerate(zip(steps, values)):
            # metadata on a tag's first value only (as TF1 writes), and none at all for
            # "bare" tensors (no plugin: TensorBoard does not take them as scalars)
            tag = "bare" if i >= 12 and encoding != "simple" else f"m{i % 4}/{encoding}"
            writer.add_event(_event(tag, step, 1000.0 + i + j / 8, encoding, value,
                                    metadata=(j == 0 and tag != "bare")))
    writer.add_event(_event("zero wall", 3, 0.0, "f32val", 2.0))
    several = summary_pb2.Summary(value=[  # several values in one event (TF1)
        summary_pb2.Summary.Value(tag="a", simple_value=1.5),
        summary_pb2.Summary.Value(tag="b", simple_value=2.5)])
    writer.add_event(event_pb2.Event(step=7, wall_time=2000.0, summary=several))
    vector = _event("vector", 8, 2001.0, "f32val", 1.0)  # a scalars value that is not one
    vector.summary.value[0].tensor.float_val.append(2.0)
    vector.summary.value[0].tensor.tensor_shape.dim.add(size=2)
    writer.add_event(vector)
    text = summary_pb2.Summary.Value(
        tag="note", metadata=text_metadata.create_summary_metadata("note", ""),
        tensor=tensor_util.make_tensor_proto(np.array([b"hello"])))
    writer.add_event(event_pb2.Event(summary=summary_pb2.Summary(value=[text]), step=9,
                                     wall_time=2002.0))
    writer.close()


def test_column_wise_reader_matches_tensorboards_loader(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    _write_varied(tmp_path / "varied")
    _write_run(tmp_path / "run")
    sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
    try:
        from bench import make_tensorboard_logs
    finally:
        sys.path.pop(0)
    written = make_tensorboard_logs(tmp_path / "keras", runs=2, epochs=30)
    files = sorted(p for p in tmp_path.rglob("*") if "tfevents" in p.name)
    assert len(files) == 1 + 3 + 2 * 3
    total = sum(len(_same(path)) for path in files)
    (varied,) = (tmp_path / "varied").glob("*tfevents*")
    points, params = _reference(varied)
    assert params == {"lr": 0.5, "opt": "adam", "deep": True}
    # 13 rounds of 9 values (5 'bare' rounds are not scalars), 'zero wall', a and b
    assert len(points) == 13 * 9 + 3
    assert total == written + len(points) + 8


@real
def test_column_wise_reader_matches_on_the_real_logs():
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    files = sorted(p for p in REAL.rglob("*") if "tfevents" in p.name)
    assert files and sum(len(_same(path)) for path in files) > 0


def test_a_damaged_record_ends_the_file_where_tensorboard_stops(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(tmp_path / "logs" / "run"))
    for step in range(20):
        writer.add_event(_event("loss", step, 100.0 + step, "f32content", 1.0 / (step + 1)))
    writer.close()
    (path,) = (tmp_path / "logs" / "run").iterdir()
    whole = path.read_bytes()
    # record 11 (file_version is record 0): a bit of its data, of its length (one more
    # byte: within the file), of its length (far beyond the end: the framing stops there)
    start = 0
    for _ in range(11):
        start += 16 + int.from_bytes(whole[start:start + 8], "little")
    for where, bit, reason, message in (
            (start + 12 + 30, 0x40, "damaged event files", "record 12 of 21 fails its checksum"),
            (start, 0x01, "damaged event files", "the length of record 12 of"),
            (start + 1, 0x40, "truncated event files", "truncated: the last")):
        data = bytearray(whole)
        data[where] ^= bit
        path.write_bytes(bytes(data))
        points = _same(path)
        assert [p[1] for p in points] == list(range(10))
        summary = import_runs("tensorboard", str(tmp_path / "logs"), str(tmp_path / "runs"))
        assert summary.points == 10 and summary.skipped[reason] == 1
        assert any(p.path == str(path) and message in p.message for p in summary.problems)


@pytest.mark.parametrize("length", [0, 1, 3, 4, 7, 8, 63, 64, 65, 1000])
def test_masked_crc32c_matches_tensorboards(length):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    import numpy as np
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as reference

    from xpcli.importers.tensorboard import masked_crc32c

    rng = np.random.default_rng(length)
    buf = rng.integers(0, 256, 5000, dtype=np.uint8)
    starts = np.array([0, 17, 1000, 3999 - length], dtype=np.int64)
    got = masked_crc32c(buf, starts, np.full(len(starts), length, dtype=np.int64))
    assert got.tolist() == [reference(buf[s:s + length].tobytes()) for s in starts]


@fuzz_settings(ci=15, soak=600)
@given(events=st.lists(st.tuples(st.sampled_from(["loss", "acc", "l/r"]),
                                 st.integers(-(2**63), 2**63 - 1),
                                 st.floats(0, 2e9),
                                 st.sampled_from(["simple", "f32content", "f32val",
                                                  "f64content", "f64val"]),
                                 st.floats(allow_nan=True, allow_infinity=True, width=32),
                                 st.booleans()), max_size=25),
       damage=st.one_of(st.none(), st.tuples(st.sampled_from(["flip", "cut"]),
                                             st.floats(0, 1), st.integers(0, 7))))
def test_column_wise_reader_agrees_on_random_and_damaged_files(events, damage):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder = Path(tempfile.mkdtemp(prefix="xp-tb-fuzz-"))
    try:
        writer = EventFileWriter(str(folder))
        for tag, step, wall, encoding, value, metadata in events:
            writer.add_event(_event(tag, step, wall, encoding, value, metadata))
        writer.close()
        (path,) = folder.iterdir()
        if damage is not None:
            data = bytearray(path.read_bytes())
            where = int(damage[1] * (len(data) - 1))
            if damage[0] == "flip":
                data[where] ^= 1 << damage[2]
            else:
                del data[where:]
            path.write_bytes(bytes(data))
        _same(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- PyTorch's add_scalars ---------------------------------------------------------------

CLASSES = ("Sandal", "Ankle boot", "Bag")


def _write_add_scalars(logdir: Path, epochs: int = 4) -> None:
    """What PyTorch's SummaryWriter writes for add_scalar and add_scalars: the run's own
    event file, and per dict key a folder ``<main_tag>_<key>`` (``/`` in the main tag
    written as ``_``) of legacy scalars tagged with the main tag."""
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    own = EventFileWriter(str(logdir))
    subs: dict[str, Any] = {}
    for epoch in range(epochs):
        own.add_event(_event("Loss/train", epoch, 100.0 + epoch, "simple", 1.0 / (epoch + 1)))
        for main_tag, values in (
                ("Accuracy per class", {c: (i + 1) / 8 + epoch / 16
                                        for i, c in enumerate(CLASSES)}),
                ("loss/split", {"train": 2.0 - epoch / 4, "valid": 2.5 - epoch / 8})):
            for key, value in values.items():
                folder = logdir / f"{main_tag.replace('/', '_')}_{key}"
                if folder not in subs:
                    subs[folder] = EventFileWriter(str(folder))
                subs[folder].add_event(_event(main_tag, epoch, 100.0 + epoch, "simple", value))
    for writer in (own, *subs.values()):
        writer.close()


def test_add_scalars_folders_are_a_context_of_their_run(tmp_path):
    _write_add_scalars(tmp_path / "runs" / "fashion lr 0.01")
    into = tmp_path / "out"
    result = CliRunner().invoke(cli, ["import", "tensorboard", str(tmp_path / "runs"),
                                      "--into", str(into), "--format", "csv"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        f"fashion_lr_0.01,fashion lr 0.01,{4 + 4 * 3 + 4 * 2},"
        f"{into / 'imported' / 'tensorboard' / 'fashion_lr_0.01.parquet'}"]
    points = load(into).points.collect()
    boot = points.filter(pl.col("name") == "Accuracy_per_class", pl.col("tag") == "Ankle boot")
    assert boot.sort("step").select("step", "value").rows() == [
        (e, 2 / 8 + e / 16) for e in range(4)]
    valid = points.filter(pl.col("name") == "loss/split", pl.col("tag") == "valid")
    assert valid.sort("step")["value"].to_list() == [2.5 - e / 8 for e in range(4)]
    assert points.filter(pl.col("name") == "Loss/train")["tag"].is_null().all()
    metrics = CliRunner().invoke(cli, ["metrics", "--runs", str(into), "--format", "csv"],
                                 catch_exceptions=False)
    assert any(line.startswith("Accuracy_per_class,tag=Ankle boot|Bag|Sandal,")
               for line in metrics.stdout.splitlines()), metrics.stdout


def test_folders_named_like_their_tag_are_runs_when_the_parent_has_no_events(tmp_path):
    """Runs ``loss_a`` and ``loss_b`` logging ``loss`` under a folder of runs stay runs."""
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    for name in ("loss_a", "loss_b"):
        writer = EventFileWriter(str(tmp_path / "runs" / name))
        writer.add_event(_event("loss", 1, 10.0, "simple", 0.5))
        writer.close()
    summary = import_runs("tensorboard", str(tmp_path / "runs"), str(tmp_path / "out"))
    assert sorted(r.run for r in summary.runs) == ["loss_a", "loss_b"]


def test_repeated_fields_are_read_as_protobuf_reads_them(tmp_path):
    """Serialized messages concatenate into one (the last scalar field wins, messages
    merge): records a writer built that way are decoded as protobuf decodes them."""
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    def value(**fields: Any) -> bytes:
        return summary_pb2.Summary.Value(**fields).SerializeToString()

    def event(step: int, *values: bytes) -> bytes:
        head = event_pb2.Event(step=step, wall_time=50.0 + step).SerializeToString()
        summary = b"".join(b"\x0a" + bytes([len(v)]) + v for v in values)
        return head + b"\x2a" + bytes([len(summary)]) + summary

    records = [
        event(1, value(tag="twice", simple_value=1.0) + value(simple_value=2.0)),
        event(2, value(tag="name", simple_value=3.0) + value(node_name="n")),
        event(3, value(tag="x", simple_value=4.0) + value(tag="renamed")),
        event(4, value(tag="y", simple_value=5.0)) + event(5, value(tag="z", simple_value=6.0)),
    ]
    path = tmp_path / "events.out.tfevents.1.host"
    with open(path, "wb") as fh:
        writer = RecordWriter(fh)
        for record in records:
            writer.write(record)
    assert _same(path) == [("twice", 1, 51.0, "2.0"), ("name", 2, 52.0, "3.0"),
                           ("renamed", 3, 53.0, "4.0"), ("y", 5, 55.0, "5.0"),
                           ("z", 5, 55.0, "6.0")]

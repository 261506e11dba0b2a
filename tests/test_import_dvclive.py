"""DVCLive importer: real DVC experiments and DVCLive history, and synthetic quirks."""

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

REALDATA = Path(__file__).parents[2] / "shared" / "realdata"
MUSICNET = REALDATA / "dvc_experiments_musicnet"
LANGUAGE = REALDATA / "dvclive_language_transfer"
musicnet = pytest.mark.skipif(not MUSICNET.is_dir(), reason=f"real logs not present at {MUSICNET}")
language = pytest.mark.skipif(not LANGUAGE.is_dir(), reason=f"real logs not present at {LANGUAGE}")


def _tsv_points(live: Path) -> list[tuple[str, str | None, int, float]]:
    """(name, split, step, value) of every TSV row, read with the csv module."""
    out = []
    root = live / "plots" / "metrics"
    for path in sorted(root.rglob("*.tsv")):
        parts = path.relative_to(root).with_suffix("").parts
        name, split = ("/".join(parts[1:]), parts[0]) if len(parts) > 1 else (parts[0], None)
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                column = next(k for k in row if k not in ("step", "timestamp"))
                out.append((name, split, int(row["step"]), float(row[column])))
    return out


def _leaves(obj: dict, parts: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    out: list[tuple[tuple[str, ...], object]] = []
    for key, value in obj.items():
        if isinstance(value, dict):
            out.extend(_leaves(value, (*parts, key)))
        else:
            out.append(((*parts, key), value))
    return out


def _expected(live: Path) -> list[tuple[str, str | None, int | None, float]]:
    """Every TSV row, plus each metrics.json leaf that has no TSV, at metrics.json's step."""
    points: list[tuple[str, str | None, int | None, float]] = list(_tsv_points(live))
    plotted = {p.relative_to(live / "plots" / "metrics").with_suffix("").parts
               for p in (live / "plots" / "metrics").rglob("*.tsv")}
    metrics = json.loads((live / "metrics.json").read_text())
    for parts, value in _leaves(metrics):
        if parts == ("step",) or parts in plotted:
            continue
        name, split = ("/".join(parts[1:]), parts[0]) if len(parts) > 1 else (parts[0], None)
        points.append((name, split, metrics.get("step"), float(value)))
    return sorted(points, key=repr)


def _got(dataset, run: str) -> list[tuple[str, str | None, int | None, float]]:
    points = dataset.points.collect().filter(pl.col("run") == run)
    split = points["split"] if "split" in points.columns else [None] * points.height
    rows = zip(points["name"], split, points["step"], points["value"])
    return sorted(((n, s, st, v) for n, s, st, v in rows), key=repr)


@pytest.fixture(scope="module")
def musicnet_import(tmp_path_factory):
    into = tmp_path_factory.mktemp("runs")
    summary = import_runs("dvclive", str(MUSICNET), str(into))
    return summary, load(into)


@musicnet
def test_real_musicnet_every_experiment_and_point(musicnet_import):
    summary, dataset = musicnet_import
    exps = sorted(p.name for p in (MUSICNET / "exps").iterdir())
    assert sorted(r.name for r in summary.runs) == [f"exps/{e}" for e in exps]
    assert len(exps) == 7 and not summary.skipped
    for exp in exps:
        expected = _expected(MUSICNET / "exps" / exp / "dvclive")
        assert _got(dataset, f"exps-{exp}") == expected, exp
    assert summary.points == sum(len(_expected(MUSICNET / "exps" / e / "dvclive")) for e in exps)


@musicnet
def test_real_musicnet_broken_test_evaluation_and_nested_params(musicnet_import):
    _, dataset = musicnet_import
    points = dataset.points.collect()
    test_f1 = points.filter((pl.col("name") == "f1_global") & (pl.col("split") == "test"))
    broken = test_f1.filter(pl.col("value") == 0.0)["run"].sort().to_list()
    assert test_f1.height == 7  # the broken evaluation (F1 0.0) of five, kept as logged
    assert broken == ["exps-ahull-love", "exps-loony-milo", "exps-massy-acne",
                      "exps-myoid-sham", "exps-sheen-joss"]
    runs = dataset.runs.collect().sort("run")
    import yaml

    params = yaml.safe_load((MUSICNET / "exps" / "gamer-mays" / "dvclive" / "params.yaml")
                            .read_text())
    row = runs.filter(pl.col("run") == "exps-gamer-mays").row(0, named=True)
    assert row["model.n_layers"] == params["model"]["n_layers"]
    assert row["dataset.default.preprocessor.params.spectogram.n_fft"] == (
        params["dataset"]["default"]["preprocessor"]["params"]["spectogram"]["n_fft"])
    assert sorted(runs["lr"].unique().to_list()) == [0.0025, 0.01, 0.025]


@language
def test_real_language_transfer_every_commit_and_point(tmp_path):
    summary = import_runs("dvclive", str(LANGUAGE), str(tmp_path),
                          params_from_name=r"commits/[0-9a-f]+_(?P<subject>.+)")
    dataset = load(tmp_path)
    commits = sorted(p.name for p in (LANGUAGE / "commits").iterdir())
    assert len(commits) == 11 and not summary.skipped
    assert sorted(r.name for r in summary.runs) == [f"commits/{c}" for c in commits]
    for commit in commits:
        assert _got(dataset, f"commits-{commit}") == _expected(
            LANGUAGE / "commits" / commit / "dvclive"), commit
    runs = dataset.runs.collect()
    assert "Nested_-_english_fine-tuning" in runs["subject"].to_list()
    # train/loss.tsv and loss.tsv are one name in two contexts, not merged
    one = dataset.points.collect().filter(pl.col("run") == "commits-" + commits[0])
    assert set(one.filter(pl.col("name") == "loss")["split"].to_list()) == {None, "train"}


# -- synthetic ---------------------------------------------------------------------------


def _live(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_documented_layout_point_by_point(tmp_path):
    """The layout DVCLive 3 writes: step + value columns, sub-folders, metrics.json."""
    src = tmp_path / "src"
    _live(src / "exp-a" / "dvclive", {
        "params.yaml": "optimizer:\n  lr: 0.01\n  betas: [0.9, 0.99]\nepochs: 3\n",
        "metrics.json": json.dumps({"step": 2, "train": {"loss": 0.4},
                                    "test": {"acc": 0.91, "note": "ok"}, "best": 7}),
        "plots/metrics/train/loss.tsv": "step\tloss\n0\t0.9\n1\t0.6\n2\t0.4\n",
        "plots/metrics/eval/acc.tsv": "step\tacc\n0\t0.5\n2\t0.8\n",
        "plots/metrics/lr.tsv": "timestamp\tstep\tlr\n1700000000000\t0\t0.01\n",
        "plots/custom/cm.json": "[1, 2]",
    })
    (src / "exp-a" / "params.yaml").write_text("data:\n  seed: 1\nepochs: 1\n")
    summary = import_runs("dvclive", str(src), str(tmp_path / "runs"))
    assert [r.name for r in summary.runs] == ["exp-a"]
    assert summary.skipped == {"non-numeric values": 1}  # test.note
    dataset = load(tmp_path / "runs")
    points = dataset.points.collect().sort("name", "split", "step")
    assert points.select("name", "split", "step", "value").rows() == [
        ("acc", "eval", 0, 0.5), ("acc", "eval", 2, 0.8), ("acc", "test", 2, 0.91),
        ("best", None, 2, 7.0),
        ("loss", "train", 0, 0.9), ("loss", "train", 1, 0.6), ("loss", "train", 2, 0.4),
        ("lr", None, 0, 0.01)]
    assert points.filter(pl.col("name") == "lr")["time"].to_list() == [1700000000.0]
    row = dataset.runs.collect().row(0, named=True)
    # DVCLive's own params.yaml wins over the DVC one beside it, key by key
    assert (row["optimizer.lr"], row["epochs"], row["data.seed"]) == (0.01, 3, 1)
    assert json.loads(row["optimizer.betas"]) == [0.9, 0.99]


def test_a_dvclive_folder_itself_is_named_after_its_parent(tmp_path):
    live = _live(tmp_path / "my-exp" / "dvclive",
                 {"plots/metrics/loss.tsv": "step\tloss\n3\t1.5\n"})
    summary = import_runs("dvclive", str(live), str(tmp_path / "runs"))
    assert [(r.run, r.name, r.points) for r in summary.runs] == [("my-exp", "my-exp", 1)]


def test_reimport_replaces_and_unsafe_yaml_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    src = tmp_path / "src"
    _live(src / "e1" / "dvclive", {
        "params.yaml": f"lr: 0.1\nhook: !!python/object/apply:os.system ['touch {marker}']\n",
        "plots/metrics/loss.tsv": "step\tloss\n0\t1.0\n1\tnot-a-number\n2\n3\t0.5\n",
    })
    into = tmp_path / "runs"
    first = import_runs("dvclive", str(src), str(into))
    again = import_runs("dvclive", str(src), str(into))
    assert not marker.exists()
    assert [r.run for r in first.runs] == [r.run for r in again.runs] == ["e1"]
    assert again.skipped == {"unsafe YAML values": 1, "malformed rows": 2}
    assert any("'hook' holds a Python object" in str(p) for p in again.problems)
    dataset = load(into)
    assert dataset.points.collect().sort("step").select("step", "value").rows() == [
        (0, 1.0), (3, 0.5)]
    assert dataset.runs.collect()["lr"].to_list() == [0.1]


def test_broken_files_are_skipped_per_file(tmp_path):
    src = tmp_path / "src"
    _live(src / "good" / "dvclive", {"metrics.json": '{"acc": 0.5}'})
    _live(src / "bad-json" / "dvclive", {"metrics.json": "{oops",
                                         "plots/metrics/loss.tsv": "step\tloss\n1\t2.0\n"})
    _live(src / "bad-tsv" / "dvclive", {"plots/metrics/loss.tsv": "loss\n1\n",
                                        "metrics.json": "[1]"})
    result = CliRunner().invoke(cli, ["import", "dvclive", str(src), "--into",
                                      str(tmp_path / "runs"), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "imported 2 runs, 2 points" in result.stderr
    assert "metrics.json: not JSON" in result.stderr
    assert "not DVCLive's 'step' and one value column; series skipped" in result.stderr
    assert "bad-tsv/dvclive: no series and no numeric metrics; run skipped" in result.stderr


def test_nothing_found_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["import", "dvclive", str(tmp_path / "empty"), "--into",
                                      str(tmp_path / "runs")])
    assert result.exit_code != 0
    assert "no dvclive runs found" in result.stderr and "Traceback" not in result.output


def test_dry_run_counts_everything_and_writes_nothing(tmp_path):
    src = tmp_path / "src"
    _live(src / "e1" / "dvclive", {"plots/metrics/loss.tsv": "step\tloss\n0\t1.0\n1\t0.5\n",
                                   "metrics.json": '{"step": 1, "test": {"acc": 0.7}}'})
    into = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["import", "dvclive", str(src), "--into", str(into),
                                      "--dry-run", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "dry run, nothing written: would import 1 runs, 3 points" in result.stderr
    assert result.stdout.splitlines()[1].startswith("e1,e1,3,")
    assert not into.exists()
    done = CliRunner().invoke(cli, ["import", "dvclive", str(src), "--into", str(into)])
    assert done.exit_code == 0 and load(into).points.collect().height == 3


def test_what_dvclive_live_writes_point_by_point(tmp_path, monkeypatch):
    """A run written by DVCLive itself: params, a series in a sub-folder, a summary value."""
    dvclive = pytest.importorskip("dvclive")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.chdir(tmp_path)
    losses, accs = [1.0, 0.5, 0.25], [0.5, 0.625, 0.75]
    with dvclive.Live("exp-1/dvclive", save_dvc_exp=False) as live:
        live.log_params({"optimizer": {"lr": 0.01, "name": "adam"}, "epochs": 3})
        for loss, acc in zip(losses, accs):
            live.log_metric("train/loss", loss)
            live.log_metric("acc", acc)
            live.next_step()
        live.summary["test/acc"] = 0.77
    summary = import_runs("dvclive", str(tmp_path / "exp-1"), str(tmp_path / "runs"))
    assert [r.name for r in summary.runs] == ["exp-1"] and not summary.skipped
    dataset = load(tmp_path / "runs")
    points = dataset.points.collect().sort("name", "split", "step")
    last = json.loads((tmp_path / "exp-1" / "dvclive" / "metrics.json").read_text())["step"]
    assert points.select("name", "split", "step", "value").rows() == [
        *(("acc", None, s, v) for s, v in enumerate(accs)),
        ("acc", "test", last, 0.77),
        *(("loss", "train", s, v) for s, v in enumerate(losses))]
    row = dataset.runs.collect().row(0, named=True)
    assert (row["optimizer.lr"], row["optimizer.name"], row["epochs"]) == (0.01, "adam", 3)

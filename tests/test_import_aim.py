"""Aim importer: a repository written by ``aim.Run``, read back point by point."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from xpcli.cli import cli
from xpcli.dataset import load
from xpcli.errors import UsageError
from xpcli.importers import import_runs

aim = pytest.importorskip("aim")

pytestmark = pytest.mark.slow  # Aim starts slowly; make test-fast leaves it out

#: (run name or None, experiment, hparams, tags, archived, series) of what is written;
#: series: (name, context, [(step, value, epoch or None)]).
WRITTEN = [
    ("base-lr3", "finetune", {"lr": 0.001, "optimizer": {"name": "adam", "beta": 0.9}},
     ["baseline"], False, [
         ("loss", {"subset": "train"}, [(0, 2.5, 0), (1, 1.5, 0), (2, 1.0, 1)]),
         ("f1", {"lang": "de", "subset": "test"}, [(0, 0.4, None), (5, 0.6, None)]),
         ("f1", {"lang": "en", "subset": "test"}, [(0, 0.5, None)]),
     ]),
    (None, "pretrain", {"lr": 0.01}, [], True, [
        ("loss", {}, [(10, 3.0, 1), (20, 2.0, 2)]),
    ]),
]


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def aim_repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("aimrepo")
    hashes = []
    for name, experiment, hparams, tags, archived, series in WRITTEN:
        run = aim.Run(repo=str(root), experiment=experiment, system_tracking_interval=None)
        if name:
            run.name = name
        run["hparams"] = hparams
        for tag in tags:
            run.add_tag(tag)
        for metric, context, points in series:
            for step, value, epoch in points:
                run.track(value, name=metric, step=step, epoch=epoch, context=context)
        run.archived = archived
        hashes.append(run.hash)
        run.close()
    return root, hashes


def test_every_run_param_and_point_of_a_written_repository(tmp_path, aim_repo):
    root, hashes = aim_repo
    before = _tree_digest(root / ".aim")
    summary = import_runs("aim", str(root), str(tmp_path / "runs"))
    assert _tree_digest(root / ".aim") == before  # the repository is never touched
    assert sorted(r.name for r in summary.runs) == sorted(["base-lr3", hashes[1]])
    dataset = load(tmp_path / "runs")
    runs = dataset.runs.collect()
    points = dataset.points.collect()
    for (name, experiment, hparams, tags, archived, series), run_hash in zip(WRITTEN, hashes):
        run_id = next(r.run for r in summary.runs if r.name == (name or run_hash))
        row = runs.filter(pl.col("run") == run_id).row(0, named=True)
        assert row["lr"] == hparams["lr"]
        if "optimizer" in hparams:
            assert (row["optimizer.name"], row["optimizer.beta"]) == ("adam", 0.9)
        assert (row["experiment"], row["archived"], row["aim_hash"]) == (
            experiment, archived, run_hash)
        assert json.loads(row["tags"]) == tags
        mine = points.filter(pl.col("run") == run_id)
        got = sorted((r["name"], tuple(sorted((k, r[k]) for k in ("subset", "lang")
                                               if k in r and r[k] is not None)),
                      r["step"], r["value"], r["epoch"])
                     for r in mine.iter_rows(named=True))
        want = sorted((metric, tuple(sorted(context.items())), step, value,
                       None if epoch is None else float(epoch))
                      for metric, context, pts in series for step, value, epoch in pts)
        assert got == want
        assert mine["time"].null_count() == 0
    assert summary.skipped == {}  # system tracking was off: nothing to leave out


def test_missing_epochs_are_absent_not_nan(tmp_path, aim_repo):
    root, _ = aim_repo
    import_runs("aim", str(root / ".aim"), str(tmp_path / "runs"))
    epochs = load(tmp_path / "runs").points.collect().filter(pl.col("name") == "f1")["epoch"]
    assert epochs.null_count() == len(epochs) == 3
    assert not any(isinstance(e, float) and math.isnan(e) for e in epochs.to_list())


def test_system_metrics_only_with_the_option(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    run = aim.Run(repo=str(root), system_tracking_interval=None)
    run.track(1.0, name="loss", step=0)
    run.track(55.0, name="__system__cpu", step=0)  # as Aim's tracker names them
    run.close()
    without = import_runs("aim", str(root), str(tmp_path / "a"))
    assert without.points == 1
    assert without.skipped == {"system metric sequences (import them with --system)": 1}
    with_system = import_runs("aim", str(root), str(tmp_path / "b"), system=True)
    assert with_system.points == 2


def test_clear_errors(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no .aim/ folder"):
        import_runs("aim", str(tmp_path / "empty"), str(tmp_path / "runs"))
    monkeypatch.setitem(sys.modules, "aim", None)
    (tmp_path / "empty" / ".aim").mkdir()
    result = CliRunner().invoke(cli, ["import", "aim", str(tmp_path / "empty"), "--into",
                                      str(tmp_path / "runs")])
    assert result.exit_code != 0
    assert "needs the aim package: pip install 'xpcli[aim]'" in result.stderr

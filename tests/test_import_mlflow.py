"""MLflow importer: the real mlruns/ file store, stores written by MLflow's own client."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from xpcli.cli import cli
from xpcli.dataset import load
from xpcli.importers import import_runs

REAL = Path(__file__).parents[2] / "shared" / "realdata" / "mlflow_diplodatos_meli"
real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real logs not present at {REAL}")


def _real_run_folders():
    for meta in sorted((REAL / "mlruns").glob("*/*/meta.yaml")):
        yield meta.parent, meta.read_text()


@pytest.fixture(scope="module")
def real_dataset(tmp_path_factory):
    into = tmp_path_factory.mktemp("runs")
    summary = import_runs("mlflow", str(REAL), str(into))
    return summary, load(into)


@real
def test_real_active_runs_imported_deleted_skipped(real_dataset):
    summary, dataset = real_dataset
    folders = list(_real_run_folders())
    deleted = [f for f, text in folders if "lifecycle_stage: deleted" in text]
    assert len(summary.runs) == len(folders) - len(deleted)
    assert summary.skipped == {"deleted runs": len(deleted)}
    runs = dataset.runs.collect()
    assert set(runs["mlflow_run_id"].to_list()) == {
        f.name for f, text in folders if "lifecycle_stage: deleted" not in text}
    assert set(runs["experiment"].to_list()) == {"Práctico MLP", "Práctico CNN Notebook",
                                                 "Práctico CNN"}
    assert set(runs["status"].to_list()) == {"finished"}


@real
def test_real_metric_values_steps_and_times(real_dataset):
    _, dataset = real_dataset
    folder = next(f for f, text in _real_run_folders() if "lifecycle_stage: active" in text)
    points = dataset.points.collect()
    runs = dataset.runs.collect()
    run = runs.filter(pl.col("mlflow_run_id") == folder.name)["run"][0]
    mine = points.filter(pl.col("run") == run)
    total = 0
    for metric in sorted((folder / "metrics").iterdir()):
        rows = [line.split() for line in metric.read_text().splitlines() if line.strip()]
        total += len(rows)
        rows.sort(key=lambda r: (int(r[2]), int(r[0])))
        got = mine.filter(pl.col("name") == metric.name).sort("step", "time")
        assert got["value"].to_list() == [float(r[1]) for r in rows]
        assert got["step"].to_list() == [int(r[2]) for r in rows]
        assert got["time"].to_list() == [int(r[0]) / 1000 for r in rows]
    assert mine.height == total


@real
def test_real_params_are_typed(real_dataset):
    _, dataset = real_dataset
    folder = next(f for f, text in _real_run_folders() if "lifecycle_stage: active" in text)
    row = dataset.runs.collect().filter(pl.col("mlflow_run_id") == folder.name)
    dropout = (folder / "params" / "dropout").read_text()
    assert row["dropout"][0] == float(dropout)
    layers = (folder / "params" / "hidden_layers").read_text()
    assert json.loads(row["hidden_layers"][0]) == json.loads(layers)
    assert row["model_type"][0] == (folder / "params" / "model_type").read_text()


@real
def test_real_commands_after_import(tmp_path):
    runner = CliRunner()
    into = tmp_path / "runs"
    result = runner.invoke(cli, ["import", "mlflow", str(REAL / "mlruns"), "--into", str(into),
                                 "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "skipped 1 deleted runs" in result.stderr
    metrics = runner.invoke(cli, ["metrics", "--runs", str(into), "--format", "csv"],
                            catch_exceptions=False)
    assert metrics.exit_code == 0
    assert "validation_loss" in metrics.stdout


# -- synthetic ---------------------------------------------------------------------------


def _write_store(root: Path) -> Path:
    """A tiny file store laid out by hand, exactly as MLflow writes it."""
    exp = root / "mlruns" / "7"
    exp.mkdir(parents=True)
    (exp / "meta.yaml").write_text("experiment_id: '7'\nlifecycle_stage: active\nname: sweep\n")
    (exp / "tags").mkdir()
    for uuid, name, parent in (("a" * 32, "base run", None), ("b" * 32, "child", "a" * 32)):
        run = exp / uuid
        for sub in ("params", "metrics", "tags"):
            (run / sub).mkdir(parents=True)
        (run / "meta.yaml").write_text(
            f"run_id: {uuid}\nrun_uuid: {uuid}\nexperiment_id: '7'\nlifecycle_stage: active\n"
            "status: 4\nstart_time: 1600000000000\nend_time: 1600000100000\nname: ''\n")
        (run / "tags" / "mlflow.runName").write_text(name)
        (run / "tags" / "team").write_text("nlp")
        if parent:
            (run / "tags" / "mlflow.parentRunId").write_text(parent)
        (run / "params" / "lr").write_text("3e-05")
        (run / "params" / "opt").mkdir()
        (run / "params" / "opt" / "name").write_text("adam")
        # all points at step 0: the order is the timestamps'
        (run / "metrics" / "loss").write_text(
            "1600000000300 0.7 0\n1600000000100 0.9 0\nbroken line here too\n1600000000200 0.8 0\n")
    return root


def test_synthetic_store_nested_runs_and_shared_step(tmp_path):
    src = _write_store(tmp_path / "src")
    into = tmp_path / "runs"
    summary = import_runs("mlflow", str(src), str(into))
    assert [r.run for r in summary.runs] == ["base_run", "child"]
    assert summary.skipped == {"malformed lines": 2}
    dataset = load(into)
    runs = dataset.runs.collect().sort("run")
    assert runs["lr"].to_list() == [3e-5, 3e-5]
    assert runs["opt/name"].to_list() == ["adam", "adam"]
    assert runs["parent"].to_list() == [None, "base_run"]
    assert runs["status"].to_list() == ["failed", "failed"]
    assert runs["experiment"].to_list() == ["sweep", "sweep"]
    assert json.loads(runs["tags"][0]) == {"team": "nlp"}
    assert runs["created"][0].timestamp() == 1600000000.0
    points = dataset.points.collect().filter(pl.col("run") == "base_run")
    assert points["value"].to_list() == [0.9, 0.8, 0.7]
    # `last` is the latest timestamp when every point shares one step
    from xpcli.analysis.reduce import reduce_runs
    from xpcli.spec import parse_metric_specs

    table = reduce_runs(dataset.points, [c for s in parse_metric_specs("loss")
                                         for c in _expand(s, dataset.points)])
    assert table.sort("run")["loss"].to_list() == [0.7, 0.7]


def _expand(spec, points):
    from xpcli.spec import expand

    return expand([spec], points)


def test_missing_mlflow_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    result = CliRunner().invoke(cli, ["import", "mlflow", "http://localhost:5000",
                                      "--into", str(tmp_path)])
    assert result.exit_code == 1
    assert "pip install 'xpcli[mlflow]'" in result.stderr


def test_missing_folder_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["import", "mlflow", str(tmp_path / "nope"),
                                      "--into", str(tmp_path)])
    assert result.exit_code == 2 and "does not exist" in result.stderr


@pytest.mark.slow
def test_store_written_by_mlflow_client_native_and_via_uri(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = tmp_path / "mlruns"
    uri = store.as_uri()
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("exp one")
    parent = client.create_run(exp, run_name="parent run")
    pid = parent.info.run_id
    client.log_param(pid, "lr", "0.001")
    client.log_param(pid, "layers", "[64, 32]")
    for step, (ts, value) in enumerate([(1000, 1.5), (2000, 1.2), (3000, 0.9)]):
        client.log_metric(pid, "val_loss", value, step=step, timestamp=ts)
    child = client.create_run(exp, run_name="child", tags={"mlflow.parentRunId": pid})
    client.log_metric(child.info.run_id, "val_loss", 2.0, step=0, timestamp=4000)
    client.set_terminated(pid)

    native = tmp_path / "native"
    via_uri = tmp_path / "uri"
    import_runs("mlflow", str(store), str(native))
    import_runs("mlflow", uri, str(via_uri))
    for into in (native, via_uri):
        dataset = load(into)
        runs = dataset.runs.collect().sort("run")
        assert runs["run"].to_list() == ["child", "parent_run"]
        assert runs["parent"].to_list() == ["parent_run", None]
        assert runs.filter(pl.col("run") == "parent_run")["lr"][0] == 0.001
        assert runs.filter(pl.col("run") == "parent_run")["status"][0] == "finished"
        points = dataset.points.collect().sort("run", "step")
        assert points.select("run", "step", "time", "value").rows() == [
            ("child", 0, 4.0, 2.0), ("parent_run", 0, 1.0, 1.5), ("parent_run", 1, 2.0, 1.2),
            ("parent_run", 2, 3.0, 0.9)]


def _nested_store(root: Path) -> dict[str, list[float]]:
    """A hyperparameter search as MLflow's file store holds it: a parent run with tags
    only (no params, no metrics) and three nested trials naming it in
    ``mlflow.parentRunId``. Returns each trial's val_acc values."""
    exp = root / "mlruns" / "3"
    exp.mkdir(parents=True)
    (exp / "meta.yaml").write_text("experiment_id: '3'\nlifecycle_stage: active\nname: tuning\n")
    parent = "5f0c" * 8
    values = {f"trial-{i}": [0.5 + e / 10 - i / 20 for e in range(3)] for i in range(3)}
    for uuid, name, tags in [(parent, "search", {"team": "nlp"})] + [
            (f"a{i}b{i}" * 8, f"trial-{i}", {"mlflow.parentRunId": parent}) for i in range(3)]:
        run = exp / uuid
        for sub in ("params", "metrics", "tags"):
            (run / sub).mkdir(parents=True)
        (run / "meta.yaml").write_text(
            f"run_id: {uuid}\nrun_uuid: {uuid}\nexperiment_id: '3'\nlifecycle_stage: active\n"
            f"status: 3\nstart_time: 1700000000000\nend_time: 1700000090000\nrun_name: {name}\n")
        for key, text in {"mlflow.runName": name, "mlflow.user": "ana", **tags}.items():
            (run / "tags" / key).write_text(text)
        if name in values:
            (run / "params" / "lr").write_text(str(10.0 ** -(3 - int(name[-1]))))
            (run / "metrics" / "val_acc").write_text("".join(
                f"{1700000001000 + e} {v} {e}\n" for e, v in enumerate(values[name])))
    return values


def test_parent_without_metrics_is_imported_so_parent_resolves(tmp_path):
    values = _nested_store(tmp_path / "src")
    into = tmp_path / "runs"
    summary = import_runs("mlflow", str(tmp_path / "src"), str(into))
    assert not summary.skipped
    assert {r.run: r.points for r in summary.runs} == {"search": 0, "trial-0": 3,
                                                        "trial-1": 3, "trial-2": 3}
    runs = load(into).runs.collect().sort("run")
    assert set(runs["parent"].drop_nulls().to_list()) == {"search"} <= set(runs["run"])
    parent = runs.row(0, named=True)
    assert (parent["run"], parent["status"], parent["experiment"], parent["points"]) == (
        "search", "finished", "tuning", 0)
    assert json.loads(parent["tags"]) == {"team": "nlp"}
    # the commands take a run of no points: no value where it has none
    runner = CliRunner()
    selected = runner.invoke(cli, ["select", "--runs", str(into), "-p", "lr", "-m",
                                   "val_acc@max", "--format", "csv"], catch_exceptions=False)
    assert selected.exit_code == 0, selected.output
    assert selected.stdout.splitlines() == ["run,lr,val_acc@max", "search,,"] + [
        f"{name},{10.0 ** -(3 - i)},{_digits15(max(values[name]))}"
        for i, name in enumerate(values)]
    grouped = runner.invoke(cli, ["group", "--runs", str(into), "--by", "parent", "-m",
                                  "val_acc@max", "--where", "points > 0", "--format", "csv"],
                            catch_exceptions=False)
    best = sorted(max(v) for v in values.values())
    assert grouped.stdout.splitlines()[1] == "search,3," + ",".join(
        _digits15(v) for v in (best[1], best[0], best[2]))


def _digits15(value: float) -> str:
    """A float as CSV writes it: rounded to 15 significant digits (docs/format.md)."""
    return repr(float(f"{value:.15g}"))

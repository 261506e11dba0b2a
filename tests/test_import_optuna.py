"""Optuna importer: studies written by Optuna itself into SQLite and journal storages."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest
from click.testing import CliRunner

from xpcli.cli import cli
from xpcli.dataset import load
from xpcli.errors import UsageError, XpError
from xpcli.importers import import_runs

optuna = pytest.importorskip("optuna")


def _objective(trial):  # noqa: ANN001, ANN202
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    opt = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    trial.set_user_attr("note", f"t{trial.number}")
    if trial.number == 3:
        raise ValueError("diverged")
    loss = 1.0
    for step in range(4):
        loss = loss * (0.5 if opt == "adam" else 0.8) + lr
        trial.report(loss, step * 10)
        if trial.number == 2 and step == 1:
            raise optuna.TrialPruned()
    return loss


@pytest.fixture()
def study_db(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = tmp_path / "study.db"
    study = optuna.create_study(study_name="search", storage=f"sqlite:///{path}",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_objective, n_trials=5, catch=(ValueError,))
    multi = optuna.create_study(study_name="pareto", storage=f"sqlite:///{path}",
                                directions=["minimize", "maximize"])
    multi.set_metric_names(["loss", "accuracy"])
    multi.enqueue_trial({"x": 1.0})
    multi.optimize(lambda t: (t.suggest_float("x", 0, 2) ** 2, 1 - t.params["x"] / 4),
                   n_trials=1)
    return path, study


def test_every_trial_param_state_and_point(tmp_path, study_db):
    path, study = study_db
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    into = tmp_path / "runs"
    summary = import_runs("optuna", str(path), str(into), study="search")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # never modified
    assert [r.name for r in summary.runs] == [f"search/trial_{i}" for i in range(5)]
    dataset = load(into)
    runs = dataset.runs.collect()
    points = dataset.points.collect()
    for trial in study.trials:
        run = summary.runs[trial.number].run
        row = runs.filter(pl.col("run") == run).row(0, named=True)
        assert (row["lr"], row["optimizer"]) == (trial.params["lr"], trial.params["optimizer"])
        mine = points.filter(pl.col("run") == run)
        series = mine.filter(pl.col("name") == "intermediate_value").sort("step")
        assert series.select("step", "value").rows() == sorted(
            trial.intermediate_values.items())
        final = mine.filter(pl.col("name") == "value")
        # a pruned trial keeps its last reported value as its value (Optuna's rule)
        last = max(trial.intermediate_values, default=None)
        assert final.select("step", "value").rows() == (
            [(last, trial.value)] if trial.values else [])
    states = dict(zip(runs["run"], runs["status"]))
    assert [states[r.run] for r in summary.runs] == [
        "finished", "finished", "pruned", "failed", "finished"]
    pruned = points.filter(pl.col("run") == summary.runs[2].run)
    assert pruned.select("name", "step").sort("name", "step").rows() == [
        ("intermediate_value", 0), ("intermediate_value", 10), ("value", 10)]
    first = runs.filter(pl.col("run") == summary.runs[0].run).row(0, named=True)
    assert first["user_attrs.note"] == "t0" and first["study"] == "search"
    assert first["created"].timestamp() == pytest.approx(
        study.trials[0].datetime_start.timestamp(), abs=1e-3)


def test_multi_objective_names_and_every_study(tmp_path, study_db):
    path, _ = study_db
    summary = import_runs("optuna", f"sqlite:///{path}", str(tmp_path / "runs"))
    assert sorted(r.name for r in summary.runs) == ["pareto/trial_0", *(
        f"search/trial_{i}" for i in range(5))]
    points = load(tmp_path / "runs").points.collect()
    pareto = points.filter(pl.col("run") == "pareto-trial_0").sort("name")
    assert pareto.select("name", "step", "value").rows() == [
        ("accuracy", None, 0.75), ("loss", None, 1.0)]


def test_reimport_is_idempotent_and_journal_files_work(tmp_path):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    log = tmp_path / "journal.log"
    storage = JournalStorage(JournalFileBackend(str(log)))
    study = optuna.create_study(study_name="j", storage=storage)
    study.optimize(lambda t: t.suggest_int("n", 1, 3) * 1.5, n_trials=3)
    into = tmp_path / "runs"
    first = import_runs("optuna", str(log), str(into))
    again = import_runs("optuna", str(log), str(into))
    assert [r.run for r in first.runs] == [r.run for r in again.runs]
    dataset = load(into)
    got = dict(zip(dataset.runs.collect().sort("run")["n"],
                   dataset.points.collect().sort("run")["value"]))
    assert got == {t.params["n"]: t.value for t in study.trials}


def test_clear_errors(tmp_path, study_db):
    path, _ = study_db
    with pytest.raises(UsageError, match=r"no study 'nope' in .*\(studies: "):
        import_runs("optuna", str(path), str(tmp_path / "r"), study="nope")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 10)
    with pytest.raises(XpError, match="cannot open .*junk.db as an Optuna storage"):
        import_runs("optuna", str(junk), str(tmp_path / "r"))
    assert junk.read_bytes() == b"not a database at all" * 10
    result = CliRunner().invoke(cli, ["import", "optuna", str(path), "--into",
                                      str(tmp_path / "r"), "--study", "search", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would import 5 runs" in result.stderr and not (tmp_path / "r").exists()


def test_missing_optuna_is_one_clear_line(tmp_path, study_db, monkeypatch):
    import sys

    path, _ = study_db
    monkeypatch.setitem(sys.modules, "optuna", None)
    result = CliRunner().invoke(cli, ["import", "optuna", str(path), "--into",
                                      str(tmp_path / "r")])
    assert result.exit_code != 0
    assert "needs the optuna package: pip install 'xpcli[optuna]'" in result.stderr
    assert "Traceback" not in result.output

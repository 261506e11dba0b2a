"""Hugging Face Trainer importer: real trainer_state.json files and small synthetic ones."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from xpcli.cli import cli
from xpcli.dataset import load
from xpcli.importers import import_runs

REAL = Path(__file__).parents[2] / "shared" / "realdata" / "hf_trainer_medmentions_ner"
real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real logs not present at {REAL}")


@pytest.fixture(scope="module")
def real_import(tmp_path_factory):
    into = tmp_path_factory.mktemp("runs")
    summary = import_runs("hf", str(REAL), str(into))
    return summary, load(into)


def _series(points, run, name, **context):
    frame = points.filter(pl.col("run") == run, pl.col("name") == name)
    for key in ("split", "entity"):
        value = context.get(key)
        frame = frame.filter(pl.col(key).is_null() if value is None else pl.col(key) == value)
    return frame.sort("step")


@real
def test_real_runs_are_all_found(real_import):
    summary, dataset = real_import
    states = sorted(REAL.rglob("trainer_state.json"))
    assert len(summary.runs) == len(states) == 10
    runs = dataset.runs.collect()
    assert runs.height == 10
    names = set(runs["name"].to_list())
    assert "ResultsEtape1/default (learning rate 5e-5)" in names


@real
def test_real_eval_and_train_series_match_the_file(real_import):
    _, dataset = real_import
    folder = REAL / "ResultsEtape1" / "default (learning rate 5e-5)"
    history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
    points = dataset.points.collect()
    runs = dataset.runs.collect()
    run = runs.filter(pl.col("name") == "ResultsEtape1/default (learning rate 5e-5)")["run"][0]
    assert run == "ResultsEtape1-default_learning_rate_5e-5"

    evals = [e for e in history if "eval_overall_f1" in e]
    f1 = _series(points, run, "f1", split="eval")
    assert f1["value"].to_list() == [e["eval_overall_f1"] for e in evals]
    assert f1["epoch"].to_list() == [float(e["epoch"]) for e in evals]
    assert len(evals) == 10 and f1["value"][-1] == pytest.approx(0.6551302072342041)

    entity = _series(points, run, "f1", split="eval", entity="T038")
    assert entity["value"].to_list() == [e["eval_T038_f1"] for e in evals]

    train = [e for e in history if "loss" in e]
    loss = _series(points, run, "loss", split="train")
    assert loss.height == len(train)
    assert loss["value"][-1] == train[-1]["loss"]
    assert loss["step"].to_list() == [e["step"] for e in train]

    # The final summary entry keeps its name: the mean training loss is not a step's loss.
    summary_loss = _series(points, run, "train_loss")
    assert summary_loss["value"].to_list() == [history[-1]["train_loss"]]


@real
def test_real_predict_results_come_from_all_results(real_import):
    _, dataset = real_import
    folder = REAL / "ResultsEtape1" / "default (learning rate 5e-5)"
    results = json.loads((folder / "all_results.json").read_text())
    state = json.loads((folder / "trainer_state.json").read_text())
    points = dataset.points.collect()
    run = "ResultsEtape1-default_learning_rate_5e-5"
    predict = _series(points, run, "f1", split="predict")
    assert predict["value"].to_list() == [results["predict_overall_f1"]]
    assert predict["step"].to_list() == [state["global_step"]]
    # eval values that are in log_history already are not added twice
    assert _series(points, run, "f1", split="eval")["step"].is_duplicated().sum() == 0


@real
def test_real_training_only_state_gets_final_eval_from_results(real_import):
    _, dataset = real_import
    name = "ResultsEtape4/OptunaEtWeightedLossSurDonneesCureesEtMedMentionResultatsAAmeliorer"
    results = json.loads((REAL / name / "all_results.json").read_text())
    state = json.loads((REAL / name / "trainer_state.json").read_text())
    runs = dataset.runs.collect()
    row = runs.filter(pl.col("name") == name)
    run = row["run"][0]
    points = dataset.points.collect()
    assert _series(points, run, "f1", split="eval")["value"].to_list() == [results["eval_f1"]]
    assert row["num_train_epochs"][0] == state["num_train_epochs"]
    assert row["train_batch_size"][0] == state["train_batch_size"]


@real
def test_real_commands_work_on_the_import(real_import, tmp_path):
    runner = CliRunner()
    into = tmp_path / "runs"
    result = runner.invoke(cli, ["import", "hf", str(REAL), "--into", str(into),
                                 "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "run,name,points,file"
    assert "imported 10 runs" in result.stderr
    listed = runner.invoke(cli, ["runs", "--runs", str(into), "--format", "csv"],
                           catch_exceptions=False)
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 11
    metrics = runner.invoke(cli, ["metrics", "--runs", str(into), "--format", "csv"],
                            catch_exceptions=False)
    assert metrics.exit_code == 0
    assert any(line.startswith("f1,") for line in metrics.stdout.splitlines())


# -- synthetic ---------------------------------------------------------------------------


def _state(history, **extra):
    return json.dumps({"log_history": history, "global_step": 4, "epoch": 2.0, **extra})


def test_synthetic_plain_eval_prefix_and_params(tmp_path):
    out = tmp_path / "src" / "my run (lr 1e-4)"
    out.mkdir(parents=True)
    history = [
        {"loss": 0.9, "learning_rate": 1e-4, "grad_norm": 2.0, "step": 2, "epoch": 1.0},
        {"eval_f1": 0.5, "eval_loss": 0.7, "step": 2, "epoch": 1.0},
        {"loss": 0.6, "learning_rate": 5e-5, "step": 4, "epoch": 2.0},
        {"eval_f1": 0.6, "eval_loss": 0.65, "step": 4, "epoch": 2.0},
        {"train_loss": 0.75, "train_runtime": 12.5, "step": 4, "epoch": 2.0},
    ]
    (out / "trainer_state.json").write_text(
        _state(history, train_batch_size=8, trial_params={"learning_rate": 1e-4}))
    (out / "training_args.json").write_text(json.dumps({"seed": 3, "warmup_ratio": 0.1}))
    (out / "config.json").write_text(json.dumps(
        {"hidden_size": 768, "id2label": {"0": "O"}, "label2id": {"O": 0}}))
    (out / "all_results.json").write_text(json.dumps({"eval_f1": 0.6, "test_f1": 0.58}))
    into = tmp_path / "runs"
    summary = import_runs("hf", str(tmp_path / "src"), str(into))
    assert [r.run for r in summary.runs] == ["my_run_lr_1e-4"]
    dataset = load(into)
    runs = dataset.runs.collect()
    assert runs["name"][0] == "my run (lr 1e-4)"
    assert runs["train_batch_size"][0] == 8 and runs["learning_rate"][0] == 1e-4
    assert runs["seed"][0] == 3 and runs["model.hidden_size"][0] == 768
    assert not any(c.startswith("model.id2label") for c in runs.columns)
    points = dataset.points.collect()
    got = {
        (n, s): v for n, s, v in points.sort("step")
        .group_by("name", "split", maintain_order=True).agg(pl.col("value"))
        .select("name", "split", "value").rows()
    }
    assert got[("f1", "eval")] == [0.5, 0.6]  # all_results' eval_f1 is not added again
    assert got[("f1", "test")] == [0.58]
    assert got[("loss", "train")] == [0.9, 0.6]
    assert got[("loss", "eval")] == [0.7, 0.65]
    assert got[("learning_rate", None)] == [1e-4, 5e-5]
    assert got[("train_loss", None)] == [0.75]
    assert points.filter(pl.col("name") == "f1")["epoch"].to_list()[:2] == [1.0, 2.0]


def test_checkpoints_are_not_separate_runs(tmp_path):
    out = tmp_path / "out"
    for folder in (out, out / "checkpoint-2", out / "checkpoint-4"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "trainer_state.json").write_text(_state([{"loss": 1.0, "step": 2}]))
    only_ckpt = tmp_path / "crashed"
    for n in (2, 10):
        (only_ckpt / f"checkpoint-{n}").mkdir(parents=True)
        (only_ckpt / f"checkpoint-{n}" / "trainer_state.json").write_text(
            _state([{"loss": float(n), "step": n}]))
    summary = import_runs("hf", str(tmp_path), str(tmp_path / "runs"))
    assert sorted(r.name for r in summary.runs) == ["crashed/checkpoint-10", "out"]
    assert summary.skipped["checkpoint states"] == 3


def test_broken_files_are_reported_and_the_rest_imported(tmp_path):
    src = tmp_path / "src"
    (src / "good").mkdir(parents=True)
    (src / "good" / "trainer_state.json").write_text(_state([{"loss": 1.0, "step": 1}]))
    (src / "torn").mkdir()
    (src / "torn" / "trainer_state.json").write_text(_state([{"loss": 1.0, "step": 1}])[:-9])
    (src / "latin1").mkdir()
    (src / "latin1" / "trainer_state.json").write_bytes("{\"é\": 1}\r\n".encode("latin-1"))
    # A pickle next to a state is never loaded (it would create the marker file).
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    (src / "good" / "training_args.bin").write_bytes(pickle.dumps(Boom()))
    runner = CliRunner()
    result = runner.invoke(cli, ["import", "hf", str(src), "--into", str(tmp_path / "runs"),
                                 "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith("good,good,1,")
    assert "torn/trainer_state.json: not JSON" in result.stderr
    assert "latin1/trainer_state.json: not UTF-8 text" in result.stderr
    assert "skipped 2 unreadable files" in result.stderr
    assert not marker.exists()


def test_missing_source_and_empty_source(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["import", "hf", str(tmp_path / "nope"), "--into",
                                 str(tmp_path / "runs")])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    result = runner.invoke(cli, ["import", "hf", str(tmp_path), "--into",
                                 str(tmp_path / "runs")])
    assert result.exit_code == 1 and "no hf runs found" in result.stderr


def test_same_name_from_two_sources_does_not_merge(tmp_path):
    into = tmp_path / "runs"
    for project in ("a", "b"):
        out = tmp_path / project / "out"
        out.mkdir(parents=True)
        (out / "trainer_state.json").write_text(_state([{"loss": 1.0, "step": 1}]))
        import_runs("hf", str(tmp_path / project), str(into))
    import_runs("hf", str(tmp_path / "a"), str(into))  # again: same ids as the first time
    runs = load(into).runs.collect()
    assert runs.height == 2
    assert sorted(runs["run"].to_list())[0] == "out"
    assert sorted(runs["run"].to_list())[1].startswith("out-")


def test_last_checkpoint_is_a_copy_not_a_second_run(tmp_path):
    """``hub_strategy="checkpoint"`` leaves ``last-checkpoint/`` beside the final state."""
    history = [{"loss": 1.0 - i / 10, "learning_rate": 5e-5, "step": 10 * (i + 1),
                "epoch": (i + 1) / 2} for i in range(6)]
    history.append({"eval_loss": 0.4, "eval_f1": 0.7, "step": 60, "epoch": 3.0})
    out = tmp_path / "src" / "bert lr 5e-5"
    for folder in (out, out / "last-checkpoint", out / "checkpoint-60"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "trainer_state.json").write_text(
            json.dumps({"log_history": history, "global_step": 60, "epoch": 3.0}))
    into = tmp_path / "runs"
    summary = import_runs("hf", str(tmp_path / "src"), str(into))
    assert [r.name for r in summary.runs] == ["bert lr 5e-5"]
    assert summary.skipped == {"checkpoint states": 2}
    points = load(into).points.collect()
    loss = points.filter(pl.col("name") == "loss", pl.col("split") == "train").sort("step")
    assert loss["value"].to_list() == [1.0 - i / 10 for i in range(6)]
    assert points.height == 6 * 2 + 2  # loss and learning_rate per step, one eval


def test_only_checkpoints_the_latest_is_read_last_checkpoint_by_its_step(tmp_path):
    def state(folder: Path, step: int) -> None:
        folder.mkdir(parents=True)
        (folder / "trainer_state.json").write_text(
            json.dumps({"log_history": [{"loss": step / 100, "step": step}],
                        "global_step": step}))

    state(tmp_path / "src" / "pushed" / "checkpoint-40", 40)
    state(tmp_path / "src" / "pushed" / "last-checkpoint", 80)  # newer than checkpoint-40
    state(tmp_path / "src" / "local" / "checkpoint-80", 80)
    state(tmp_path / "src" / "local" / "last-checkpoint", 80)  # a copy: the named one wins
    summary = import_runs("hf", str(tmp_path / "src"), str(tmp_path / "runs"))
    assert sorted(r.name for r in summary.runs) == ["local/checkpoint-80",
                                                     "pushed/last-checkpoint"]
    assert summary.skipped == {"checkpoint states": 2}
    assert sorted(load(tmp_path / "runs").points.collect()["value"].to_list()) == [0.8, 0.8]

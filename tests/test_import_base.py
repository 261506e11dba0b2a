"""The shared importer pieces: names, run ids, params from names, re-import, safety."""

from __future__ import annotations

import json
import os
import re

import polars as pl
import pytest

from xpcli import format as fmt
from xpcli.errors import UsageError
from xpcli.importers import _base
from xpcli.importers._base import (
    SourceRun,
    assign_ids,
    context_from_name,
    convert,
    load_yaml,
    metric_name,
    params_from_name,
    safe_id,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16", 16),
        ("07", 7),
        ("-3", -3),
        ("2e_4", 2e-4),
        ("3e-5", 3e-5),
        ("1e_3", 1e-3),
        ("0.5", 0.5),
        ("0p25", 0.25),
        ("true", True),
        ("None", None),
        ("Adam", "Adam"),
        ("RSMprop_CE", "RSMprop_CE"),
    ],
)
def test_convert_guesses_the_type(text, expected):
    value = convert(text)
    assert value == expected and type(value) is type(expected)


def test_convert_forced_types():
    assert convert("015", "dec") == 0.15
    assert convert("01", "dec") == 0.1
    assert convert("015", "str") == "015"
    assert convert("16", "float") == 16.0 and isinstance(convert("16", "float"), float)
    with pytest.raises(ValueError):
        convert("x", "int")


def test_params_from_name_with_groups_and_type_suffixes():
    regex = re.compile(r"dr(?P<dropout__dec>\d+)_bs(?P<batch_size>\d+)_lr(?P<lr>[0-9e_]+)")
    assert params_from_name(regex, "UNet_dr015_bs16_lr2e_4") == {
        "dropout": 0.15, "batch_size": 16, "lr": 2e-4}
    assert params_from_name(regex, "UNet_Adam_CE") == {}
    optional = re.compile(r"(?P<model>[A-Za-z]+)(?:_lr(?P<lr>[0-9e_]+))?")
    assert params_from_name(optional, "UNet") == {"model": "UNet"}


def test_bad_regexes_are_usage_errors():
    with pytest.raises(UsageError, match="no named group"):
        _base.compile_name_regex("lr([0-9]+)", "--params-from-name")
    with pytest.raises(UsageError, match="bad regular expression"):
        _base.compile_name_regex("lr(?P<lr>", "--params-from-name")


def test_context_from_name():
    regex = re.compile(r"(?P<split>train|val)_(?P<name>.+)")
    assert context_from_name(regex, "val_loss") == ("loss", {"split": "val"})
    assert context_from_name(regex, "lr") == ("lr", {})


def test_metric_names_become_spec_safe():
    assert metric_name("IoU (avg on test)") == "IoU_avg_on_test"
    assert metric_name("train/loss") == "train/loss"
    assert metric_name("a:b@c,d=e") == "a_b_c_d_e"
    assert metric_name("()") == "metric"


def test_safe_ids_pass_the_format_check():
    for name in ["default (learning rate 5e-5)", "../../etc/passwd", "ResultsEtape1/x y",
                 ".hidden", "Práctico MLP/0cebc9e3", "a" * 300, "-", "trial 9 (é)"]:
        run = safe_id(name)
        assert fmt.check_run_id(run) == run
        assert "/" not in run and ".." not in run.split("-")


def test_ids_add_a_hash_only_when_names_collide(tmp_path):
    runs = [SourceRun("a b", "/x/a b"), SourceRun("a_b", "/x/a_b"), SourceRun("c", "/x/c")]
    ids = assign_ids(runs, "hf", {})
    assert ids[2] == "c"
    assert ids[0] != ids[1] and ids[0].startswith("a_b-") and ids[1].startswith("a_b-")
    assert assign_ids(runs, "hf", {}) == ids  # stable
    # The id is taken by a run imported from another source: add the hash.
    taken = {"c": "hf:/elsewhere/c"}
    assert assign_ids(runs, "hf", taken)[2].startswith("c-")
    # ...but not when it is this very source (a re-import).
    assert assign_ids(runs, "hf", {"c": "hf:/x/c"})[2] == "c"


def test_safe_yaml_refuses_python_tags_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    payload = tmp_path / "hparams.yaml"
    payload.write_text(
        "lr: 0.1\n"
        "boom: !!python/object/apply:os.system\n"
        f"  - touch {marker}\n"
    )
    with pytest.raises(ValueError, match="Python object tags"):
        load_yaml(str(payload))
    assert not marker.exists()
    good = tmp_path / "good.yaml"
    good.write_text("lr: 0.1\nlayers: [1, 2]\n")
    assert load_yaml(str(good)) == {"lr": 0.1, "layers": [1, 2]}


def test_write_and_reimport_replace_files(tmp_path):
    """Importing the same source twice leaves one file per run, and no temp files."""
    from xpcli.importers import import_runs

    src = tmp_path / "src" / "out"
    src.mkdir(parents=True)
    state = {"log_history": [{"loss": 1.0, "step": 1, "epoch": 0.5},
                             {"eval_f1": 0.5, "step": 2, "epoch": 1.0}]}
    (src / "trainer_state.json").write_text(json.dumps(state))
    into = tmp_path / "runs"
    first = import_runs("hf", str(tmp_path / "src"), str(into))
    second = import_runs("hf", str(tmp_path / "src"), str(into))
    assert [r.run for r in first.runs] == [r.run for r in second.runs] == ["out"]
    files = sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file())
    assert files == ["imported/hf/out.parquet"]
    frame = pl.read_parquet(into / "imported" / "hf" / "out.parquet")
    assert frame.filter(pl.col("kind") == "point").height == 2
    meta = json.loads(frame.filter(pl.col("kind") == "run")["meta"][0])
    assert meta["name"] == "out" and meta["source_kind"] == "hf"
    assert meta["source"] == os.path.join(str(src), "trainer_state.json")


def test_the_registry_names_real_extras_and_unambiguous_kinds() -> None:
    import tomllib

    from conftest import ROOT

    from xpcli.importers import ALIASES, REGISTRY, importer

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for kind, registration in REGISTRY.items():
        assert registration.importer.KIND == kind
        assert registration.layout and all(not p.startswith("/") for p in registration.layout)
        for _, extra in registration.reads:
            assert extra is None or extra in extras, (kind, extra)
    assert not set(ALIASES) & set(REGISTRY)
    assert importer("TB") is REGISTRY["tensorboard"].importer
    with pytest.raises(UsageError,
                       match="unknown import kind 'nope'; use one of aim, dvclive, hf"):
        importer("nope")

"""--engine spark: the same tables as the Polars engine, on a Spark session (local[2]).

One Spark session serves every test (starting one takes most of the time). The Polars
engine reads the runs directory, the Spark engine the dataset `xp compact --to` wrote from
it. Values agree exactly, except means, standard deviations and standard errors, which
a distributed sum adds in another order: those agree to a relative 1e-12.
"""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from conftest import SAMPLE_RUNS
from polars.testing import assert_frame_equal
from test_export import _records

from xpcli.analysis.group import group_table
from xpcli.analysis.select import select_runs
from xpcli.analysis.selection import selection
from xpcli.cli import cli
from xpcli.dataset import load
from xpcli.errors import SpecError, UsageError, XpError
from xpcli.export import export

HAVE_PYSPARK = importlib.util.find_spec("pyspark") is not None
HAVE_JAVA = shutil.which("java") is not None
needs_spark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("spark"),  # one worker, so one Spark session (make test)
    pytest.mark.skipif(not HAVE_PYSPARK, reason="pyspark is not installed (the spark extra)"),
    pytest.mark.skipif(not HAVE_JAVA, reason="no java on PATH: Spark needs Java 17+"),
]
MASTER = "local[2]"


def spark_test(func: Any) -> Any:
    """Slow, and skipped with the reason where pyspark or Java is missing."""
    for mark in needs_spark:
        func = mark(func)
    return func

#: Statistics a distributed sum computes in another order.
SUMMED = ("mean(", "std(", "sem(")


@pytest.fixture(scope="session")
def spark() -> Any:
    from xpcli.spark import spark_session

    return spark_session(MASTER)


@pytest.fixture(scope="session")
def quirky_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NaN-only series, a run without points, runs missing metrics, an infinity."""
    folder = tmp_path_factory.mktemp("quirky") / "runs"
    folder.mkdir()
    with open(folder / "all.jsonl", "w") as fh:
        for record in _records():
            fh.write(json.dumps(record) + "\n")
    return folder


@pytest.fixture(scope="session")
def engines(spark: Any, quirky_runs: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, tuple[Any, Any, Any]]:
    """Per data set: (Polars dataset, Spark engine, its planning dataset)."""
    from xpcli.spark import SparkEngine

    out = {}
    for name, runs in (("sample", SAMPLE_RUNS), ("quirky", quirky_runs)):
        folder = tmp_path_factory.mktemp(f"dataset-{name}") / "ds"
        export(load(str(runs)), str(folder), buckets=3)
        engine = SparkEngine(str(folder), MASTER)
        out[name] = (load(str(runs)), engine, engine.dataset())
    return out


def assert_same(polars: pl.DataFrame, spark: pl.DataFrame) -> None:
    """Equal frames: exact, but for sums in another order (relative 1e-12)."""
    assert polars.columns == spark.columns
    summed = [c for c in polars.columns if c.startswith(SUMMED) or c.endswith("@mean")]
    exact = [c for c in polars.columns if c not in summed]
    assert_frame_equal(polars.select(exact), spark.select(exact), check_exact=True)
    if summed:
        assert_frame_equal(polars.select(summed), spark.select(summed), check_exact=False,
                           rel_tol=1e-12, abs_tol=0.0)


def both(engines: dict[str, tuple[Any, Any, Any]], name: str, func: Any, *args: Any,
         **kwargs: Any) -> tuple[Any, Any]:
    dataset, engine, planned = engines[name]
    return (func(dataset, *args, **kwargs),
            func(planned, *args, engine=engine, **kwargs))


# -- the reference story ------------------------------------------------------------------

STORY_SELECTS = [
    dict(metrics="f1:lang=*@max", sort="-f1[lang=en]@max", top=5),
    dict(metrics=None, where="lr <= 3e-5 and `f1:lang=en@max` > 0.9"),
    dict(metrics="f1:lang=de", best="f1:lang=en@max"),
    dict(metrics="lms_score,f1:lang=zh@mean,loss:split=train@median,loss:split=train@first",
         where='seed in (1, 2, 3) or model != "xlm-r"'),
    dict(metrics="f1:lang=en@min", where='created >= "2026-01-01" and elapsed > 0 and '
         'status is not null'),
]


@spark_test
@pytest.mark.parametrize("case", STORY_SELECTS, ids=str)
def test_select_on_sample_runs(case: dict[str, Any],
                               engines: dict[str, tuple[Any, Any, Any]]) -> None:
    polars, spark = both(engines, "sample", select_runs, **case)
    assert polars.height > 0
    assert_same(polars, spark)


@spark_test
@pytest.mark.parametrize("aggs", ["median,min,max", "mean,std,sem,q10,q90,count"])
def test_group_on_sample_runs(aggs: str, engines: dict[str, tuple[Any, Any, Any]]) -> None:
    polars, spark = both(engines, "sample", group_table, by="lr",
                         metrics="f1:lang=*@max,lms_score", aggs=aggs)
    assert polars.wide.height == 6
    assert_same(polars.wide, spark.wide)
    assert polars.compact()[0].equals(spark.compact()[0]) or "mean" in aggs


@spark_test
def test_selection_on_sample_runs(engines: dict[str, tuple[Any, Any, Any]]) -> None:
    polars, spark = both(engines, "sample", selection, ["f1:lang=en@max", "lms_score"],
                         ["f1:lang=*"], exclude=["lang=en"])
    assert polars.height == 10  # 2 selectors x (4 targets + their mean)
    assert_same(polars, spark)
    by_lr = both(engines, "sample", selection, ["lms_score"], ["f1:lang=de@max"], by=["lr"],
                 where="seed < 20")
    assert_same(*by_lr)


@spark_test
def test_nan_and_missing_metrics(engines: dict[str, tuple[Any, Any, Any]]) -> None:
    specs = ("f1:lang=*@last,f1:lang=*@first,f1:lang=*@mean,f1:lang=*@median,"
             "f1:lang=de@max,loss@min,loss:split=@max")
    polars, spark = both(engines, "quirky", select_runs, specs)
    assert polars["f1[lang=de]"].to_list()[:2] == [0.4, None]  # run b: only NaN
    assert polars.height == 8  # run c has no point: null everywhere, still listed
    assert_same(polars, spark)
    grouped = both(engines, "quirky", group_table, by="lr", metrics="f1:lang=*",
                   aggs="median,mean,std,count,q25")
    assert_same(grouped[0].wide, grouped[1].wide)
    filtered = both(engines, "quirky", select_runs, "f1:lang=en",
                    where="`f1:lang=de@max` > 0.1 or lr is null or not seed >= 2")
    assert_same(*filtered)


def _random_case(rng: random.Random) -> dict[str, Any]:
    reduce = lambda: rng.choice(["", "@last", "@first", "@min", "@max", "@mean",  # noqa: E731
                                 "@median"])
    metric = lambda: rng.choice(["f1:lang=*", "f1:lang=" + rng.choice(  # noqa: E731
        ["de", "en", "zh"]), "loss:split=train", "lms_score"]) + reduce()
    value = lambda: rng.choice([0.3, 0.5, 0.7, 0.9])  # noqa: E731
    tests = [
        lambda: f"lr {rng.choice(['<', '<=', '>', '>=', '==', '!='])} "
                f"{rng.choice(['1e-6', '3e-5', '1e-4'])}",
        lambda: f"seed in ({', '.join(str(rng.randrange(40)) for _ in range(5))})",
        lambda: f"seed not in ({rng.randrange(40)}, {rng.randrange(40)})",
        lambda: f"`f1:lang={rng.choice(['de', 'en'])}{reduce()}` > {value()}",
        lambda: f"`loss:split=train{reduce()}` < {value() / 2}",
        lambda: 'status == "finished"',
        lambda: "lr is not null",
    ]
    parts = [rng.choice(tests)() for _ in range(rng.randint(1, 3))]
    where = parts[0]
    for part in parts[1:]:
        where = f"{where} {rng.choice(['and', 'or'])} {'not ' if rng.random() < 0.3 else ''}" \
                f"({part})"
    return {"metrics": ",".join(dict.fromkeys(metric() for _ in range(rng.randint(1, 3)))),
            "where": where if rng.random() < 0.8 else None,
            "aggs": ",".join(rng.sample(["median", "mean", "std", "sem", "min", "max", "count",
                                         "q10", "q75"], 3)),
            "by": rng.choice(["lr", "seed", "lr,seed"])}


@spark_test
@pytest.mark.parametrize("seed", range(4))
def test_random_specs(seed: int, engines: dict[str, tuple[Any, Any, Any]]) -> None:
    case = _random_case(random.Random(seed))
    polars, spark = both(engines, "sample", select_runs, case["metrics"], where=case["where"])
    assert_same(polars, spark)
    grouped = both(engines, "sample", group_table, by=case["by"], metrics=case["metrics"],
                   aggs=case["aggs"], where=case["where"])
    assert_same(grouped[0].wide, grouped[1].wide)


# -- what the Spark engine refuses, and the command line -----------------------------------


@spark_test
def test_refuses_what_it_cannot_do(engines: dict[str, tuple[Any, Any, Any]]) -> None:
    _, engine, planned = engines["sample"]
    with pytest.raises(SpecError, match=r"f1:lang=de@at=10: --engine spark cannot reduce "
                                        r"@at .*use --engine polars"):
        select_runs(planned, "f1:lang=de@at=10", engine=engine)
    with pytest.raises(UsageError, match="--by lr:log=5: --engine spark cannot bin params"):
        group_table(planned, by="lr:log=5", engine=engine)
    with pytest.raises(SpecError, match="--engine spark cannot test list membership"):
        select_runs(planned, "f1:lang=de", where="'ner' in tags", engine=engine)


@spark_test
def test_cli_select_and_group_print_what_polars_prints(
        engines: dict[str, tuple[Any, Any, Any]]) -> None:
    folder = engines["sample"][1].folder
    runner = CliRunner()
    for args in (["select", "-m", "f1:lang=*@max", "--where", "lr >= 1e-5", "--sort",
                  "-f1[lang=de]@max", "--top", "3"],
                 ["group", "--by", "lr", "-m", "f1:lang=de@median", "--format", "table"]):
        polars = runner.invoke(cli, [*args, "--runs", str(SAMPLE_RUNS), "--format", "csv"]
                               if "table" not in args else [*args, "--runs", str(SAMPLE_RUNS)],
                               catch_exceptions=False)
        spark = runner.invoke(cli, [*args, "--runs", folder, "--engine", "spark",
                                    "--spark-master", MASTER]
                              + (["--format", "csv"] if "table" not in args else []),
                              catch_exceptions=False)
        assert polars.exit_code == spark.exit_code == 0, spark.output
        assert spark.stdout == polars.stdout


def test_cli_errors_without_a_dataset_or_with_a_master_alone(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["select", "--runs", str(SAMPLE_RUNS), "--spark-master",
                                      "local[2]"])
    assert result.exit_code == 2 and "--spark-master goes with --engine spark" in result.stderr
    result = CliRunner().invoke(cli, ["select", "--runs", str(tmp_path), "--engine", "spark"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"Error: {tmp_path} is not an xp dataset (no "
                                     f"_xp_dataset.json); write one with `xp compact --runs "
                                     f"RUNS --to {tmp_path}`")
    result = CliRunner().invoke(cli, ["aggregate", "f1", "--runs", "s3://b/ds", "--engine",
                                      "spark"])
    assert result.exit_code == 2
    assert "--runs s3://b/ds: --engine spark reads a dataset in a folder" in result.stderr


def test_missing_pyspark_or_java_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from xpcli.spark import spark_session

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(XpError, match=r"^--engine spark needs pyspark: pip install "
                                      r"'xpcli\[spark\]'$"):
        spark_session()
    if not HAVE_PYSPARK:
        return
    monkeypatch.delitem(sys.modules, "pyspark.sql")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(XpError, match="--engine spark needs Java 17 or newer"):
        spark_session()


# -- xp aggregate ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def resumed(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Any]:
    """Series whose x repeats (a resumed job), goes backwards, or is missing on some
    points; a metric with steps only and one with neither epoch nor step."""
    from xpcli.spark import SparkEngine

    folder = tmp_path_factory.mktemp("resumed") / "runs"
    folder.mkdir()
    rng = random.Random(7)
    t0 = 1_767_225_600.0
    with open(folder / "all.jsonl", "w") as fh:
        for i in range(6):
            run = f"r{i}"
            fh.write(json.dumps({"kind": "run", "run": run, "time": t0,
                                 "params": {"lr": [0.1, 0.01, None][i % 3], "seed": i}}) + "\n")
            epochs = [1, 2, 3, 2, 3, 4] if i in (1, 4) else [1, 2, 3, 4][: 2 + i % 3]
            t = t0 + i
            for k, epoch in enumerate(epochs):
                t += 1
                for lang in ("de", "en"):
                    value = round(rng.random(), 3) if (i, k) != (2, 1) else float("nan")
                    fh.write(json.dumps({"kind": "point", "run": run, "name": "f1",
                                         "value": value, "epoch": epoch, "time": t,
                                         "context": {"lang": lang}}) + "\n")
            for step in ([10, 20, 20, 30] if i % 2 else [10, 20, 30, 40, 50][: 3 + i % 3]):
                t += 0.5
                fh.write(json.dumps({"kind": "point", "run": run, "name": "loss",
                                     "value": round(rng.random(), 3), "step": step,
                                     "time": t}) + "\n")
            for _ in range(3):  # neither epoch nor step: the order x
                fh.write(json.dumps({"kind": "point", "run": run, "name": "acc",
                                     "value": round(rng.random(), 3),
                                     "time": t}) + "\n")
    dataset_folder = tmp_path_factory.mktemp("dataset-resumed") / "ds"
    export(load(str(folder)), str(dataset_folder), buckets=2)
    engine = SparkEngine(str(dataset_folder), MASTER)
    return load(str(folder)), engine, engine.dataset()


#: Aggregate statistics summed in another order on Spark (the mean, std, sem, ci95).
def assert_same_aggregate(polars: pl.DataFrame, spark: pl.DataFrame, summed: bool) -> None:
    assert polars.columns == spark.columns
    assert polars.schema == spark.schema
    inexact = [c for c in ("center", "low", "high") if summed and c in polars.columns]
    exact = [c for c in polars.columns if c not in inexact]
    assert_frame_equal(polars.select(exact), spark.select(exact), check_exact=True)
    if inexact:
        assert_frame_equal(polars.select(inexact), spark.select(inexact), check_exact=False,
                           rel_tol=1e-12, abs_tol=1e-15)


def aggregate_both(sources: tuple[Any, Any, Any], specs: str, *, x: str = "auto",
                   where: str | None = None, by: str = "", **options: Any
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The aggregate table of both engines; the notes, run counts and x descriptions
    (what the command prints on stderr) must agree too."""
    from xpcli.analysis.aggregate import aggregate, runs_per_group
    from xpcli.analysis.binning import bin_params
    from xpcli.analysis.series import load_series
    from xpcli.analysis.series_model import Notes

    dataset, engine, planned = sources
    by_items = [b for b in by.split(",") if b]
    notes = Notes(), Notes()
    data = load_series(dataset, specs, x=x, where=where, notes=notes[0])  # type: ignore[arg-type]
    frame, keys = bin_params(data.runs, by_items)
    polars = aggregate(data.series, data.keys, data.x, runs=frame, by=keys, **options)
    remote = engine.series(planned, [specs], x=x, where=where, notes=notes[1])
    remote_frame, remote_keys = bin_params(remote.runs, by_items)
    spark = engine.aggregate(remote, runs=remote_frame, by=remote_keys, **options)
    assert notes[0].lines() == notes[1].lines()
    assert (data.n_runs, data.describe_x(), data.x) == (remote.n_runs, remote.describe_x(),
                                                         remote.x)
    assert runs_per_group(data.series, frame, keys) == runs_per_group(remote.present,
                                                                      remote_frame, keys)
    return polars, spark


STORY_AGGREGATES = [
    dict(specs="f1:lang=*", by="lr"),
    dict(specs="f1:lang=zh", by="lr", band="ci95", center="mean"),
    dict(specs="f1:lang=de", by="lr", band="q25-q75", center="median"),
    dict(specs="loss:split=train", by="lr", x="time", band="std", center="mean"),
    dict(specs="f1:lang=en", by="lr:log=5", band="sem", center="max", min_runs=2),
    dict(specs="f1:lang=*", where="lr >= 1e-5 and `f1:lang=en@max` > 0.5", x="step",
         center="min", band="q10-q90"),
    dict(specs="f1:lang=de,loss:split=train", x="order", by="seed"),
    dict(specs="loss:split=train", by="lr", x="time", align="interp"),
    dict(specs="f1:lang=*", by="lr:log=5", align="interp", grid=7, band="q10-q90"),
]


@spark_test
@pytest.mark.parametrize("case", STORY_AGGREGATES, ids=str)
def test_aggregate_on_sample_runs(case: dict[str, Any],
                                  engines: dict[str, tuple[Any, Any, Any]]) -> None:
    options = {k: v for k, v in case.items()
               if k in ("band", "center", "min_runs", "align", "grid")}
    polars, spark = aggregate_both(engines["sample"], case["specs"], x=case.get("x", "auto"),
                                   where=case.get("where"), by=case.get("by", ""), **options)
    assert polars.height > 10
    summed = options.get("center") == "mean" or options.get("band") in ("std", "sem", "ci95")
    assert_same_aggregate(polars, spark, summed)


@spark_test
@pytest.mark.parametrize("x", ["auto", "epoch", "step", "time", "order"])
def test_aggregate_follows_the_series_model(x: str, resumed: tuple[Any, Any, Any]) -> None:
    """Repeated and backward x, points without an x, a NaN, params missing from some
    runs: the same table, and the same notes on what alignment discarded."""
    specs = "f1:lang=*,loss,acc" if x in ("auto", "order", "time") else (
        "f1:lang=*" if x == "epoch" else "loss")
    for band, center, align in (("minmax", "median", "exact"), ("ci95", "mean", "exact"),
                                ("std", "max", "interp")):
        polars, spark = aggregate_both(resumed, specs, x=x, by="lr", band=band, center=center,
                                       align=align, grid=5)
        assert polars.height > 5
        assert_same_aggregate(polars, spark, summed=band != "minmax")
    if x == "auto":  # acc has neither epoch nor step; f1's epochs repeat, loss's steps too
        assert "x" in polars.columns and "x_axis" in polars.columns


@spark_test
def test_aggregate_nan_only_and_missing_series(engines: dict[str, tuple[Any, Any, Any]]) -> None:
    polars, spark = aggregate_both(engines["quirky"], "f1:lang=*", by="lr", band="std",
                                   center="mean")
    # de: run a at epochs 1, 2 and 4 (its epoch 3 is NaN); run b has only NaN
    assert polars.filter(pl.col("lang") == "de")["epoch"].to_list() == [1.0, 2.0, 4.0]
    assert_same_aggregate(polars, spark, summed=True)
    polars, spark = aggregate_both(engines["quirky"], "loss", x="step")
    assert_same_aggregate(polars, spark, summed=False)


@spark_test
@pytest.mark.parametrize("seed", range(4))
def test_aggregate_random_specs(seed: int, engines: dict[str, tuple[Any, Any, Any]],
                                resumed: tuple[Any, Any, Any]) -> None:
    rng = random.Random(100 + seed)
    case = _random_case(rng)
    metrics = ",".join(dict.fromkeys(m.split("@")[0] for m in case["metrics"].split(",")))
    band = rng.choice(["minmax", "std", "sem", "ci95", "q25-q75", "q5-q95"])
    center = rng.choice(["mean", "median", "min", "max"])
    options = dict(band=band, center=center, min_runs=rng.choice([1, 1, 2]),
                   align=rng.choice(["exact", "interp"]), grid=rng.choice([4, 30, 200]))
    x = rng.choice(["auto", "epoch", "time", "order"])
    polars, spark = aggregate_both(engines["sample"], metrics, x=x, where=case["where"],
                                   by=rng.choice(["", "lr", "seed", "lr,seed", "lr:log=2"]),
                                   **options)
    summed = center == "mean" or band in ("std", "sem", "ci95")
    assert_same_aggregate(polars, spark, summed)
    specs = rng.choice(["f1:lang=*", "f1:lang=en,loss", "acc,loss", "f1:lang=de,acc"])
    polars, spark = aggregate_both(resumed, specs, by=rng.choice(["", "lr", "seed"]),
                                   where=rng.choice([None, "seed > 1", "lr is null"]),
                                   **options)
    assert_same_aggregate(polars, spark, summed)


@spark_test
def test_cli_aggregate_prints_what_polars_prints(
        engines: dict[str, tuple[Any, Any, Any]], tmp_path: Path) -> None:
    folder = engines["sample"][1].folder
    runner = CliRunner()
    args = ["aggregate", "f1:lang=*", "--by", "lr", "--band", "q25-q75", "--format", "csv"]
    polars = runner.invoke(cli, [*args, "--runs", str(SAMPLE_RUNS)], catch_exceptions=False)
    spark = runner.invoke(cli, [*args, "--runs", folder, "--engine", "spark", "--spark-master",
                                MASTER, "-o", str(tmp_path / "agg.png")],
                          catch_exceptions=False)
    assert polars.exit_code == spark.exit_code == 0, spark.output
    assert spark.stdout == polars.stdout
    assert spark.stderr == polars.stderr + f"wrote {tmp_path / 'agg.png'}\n"
    assert (tmp_path / "agg.png").stat().st_size > 0
    result = runner.invoke(cli, [*args, "--smooth", "ema:0.5", "--runs", folder, "--engine",
                                 "spark", "--spark-master", MASTER])
    assert result.exit_code == 2
    assert "--smooth: --engine spark does not smooth series" in result.stderr

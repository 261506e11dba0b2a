"""The series summary: plain reduces answered from it equal the points' answers, always.

Three independent checks: the summary path against the points path on random specs over
runs with resets, step-0 series, NaN/inf values, points without a time and without a
context; both against numpy on the files' own lines; and the summary after random
appends, truncations and rewrites of the files (nothing lost, nothing stale).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from series_cases import CASES, T0
from test_cache import own_cache  # noqa: F401 - each test its own cache folder (autouse)

from xpcli import cache, load
from xpcli.analysis.group import group_table
from xpcli.analysis.parcoords import parcoords_table
from xpcli.analysis.reduce import reduce_runs
from xpcli.analysis.select import select_runs
from xpcli.analysis.selection import selection
from xpcli.dataset import Dataset
from xpcli.errors import SpecError
from xpcli.spec.metric import Column, expand, parse_metric_spec

REDUCES = ("first", "last", "min", "max", "mean")


def point(run: str, name: str, value: Any, **fields: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        value = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return json.dumps({"kind": "point", "run": run, "name": name, "value": value, **fields})


def odd_lines(rng: random.Random, run: str, count: int) -> list[str]:
    """Points of ``run`` with everything the series model must get right: NaN and inf
    values, a missing time on some points of some series, equal times, contexts in
    another key order, an empty value beside a missing key, no context at all."""
    lines = [json.dumps({"kind": "run", "run": run, "params": {"lr": rng.choice([0.1, 0.2])}})]
    untimed = rng.random() < 0.5
    for i in range(count):
        name = rng.choice(["acc", "loss", "f1"])
        value: Any = rng.choice([rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(-2, 2),
                                 math.nan, math.inf, -math.inf, 0.5])
        fields: dict[str, Any] = {"step": rng.choice([0, i, i // 3])}
        if not (untimed and name == "loss" and rng.random() < 0.3):
            fields["time"] = T0 + rng.choice([i, i // 2, 100 - i])  # ties, going back
        if rng.random() < 0.5:
            fields["epoch"] = rng.choice([1.0, i / 10])
        shape = rng.random()
        if name == "f1":
            lang = rng.choice(["de", "en"])
            fields["context"] = ({"lang": lang, "split": "eval"} if shape < 0.5
                                 else {"split": "eval", "lang": lang})
        elif name == "loss" and shape < 0.3:
            fields["context"] = {"split": "train"}
        elif name == "loss" and shape < 0.5:
            fields["context"] = {"split": ""}  # the same series as no split
        lines.append(point(run, name, value, **fields))
    return lines


def write_fixture(runs: Path, seed: int = 0) -> Path:
    for write in CASES.values():
        write(runs)
    rng = random.Random(seed)
    for k in range(6):
        (runs / f"odd{k}.jsonl").write_text("\n".join(odd_lines(rng, f"odd{k}", 60)) + "\n")
    # One run spread over two files: a series over both, in file order.
    lines = odd_lines(rng, "split", 40)
    (runs / "split-a.jsonl").write_text("\n".join(lines[:20]) + "\n")
    (runs / "split-b.jsonl").write_text("\n".join(lines[20:]) + "\n")
    return runs


def random_columns(rng: random.Random, keys: pl.DataFrame, count: int) -> list[Column]:
    """Columns of random specs that expand (the rest are errors the two paths share)."""
    names = sorted(keys.get_column("name").unique().to_list())
    context = [c for c in keys.columns if c not in ("run", "name")]
    out: list[Column] = []
    while len(out) < count:
        name = rng.choice(names)
        parts = ""
        for key in rng.sample(context, k=rng.randint(0, len(context))):
            values = keys.filter(pl.col("name") == name).get_column(key).drop_nulls()
            choices = ["*", ""] + sorted(set(values.to_list()))
            parts += f":{key}={rng.choice(choices)}"
        text = f"{name}{parts}@{rng.choice([*REDUCES, 'median'])}"
        try:
            out += expand([parse_metric_spec(text)], keys)
        except SpecError:
            continue
    return out


def without_summary(ds: Dataset) -> Dataset:
    return dataclasses.replace(ds, series=None)


@pytest.mark.parametrize("use_cache", [True, False])
def test_summary_path_equals_points_path_on_random_specs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_cache: bool) -> None:
    if not use_cache:
        monkeypatch.setenv("XP_NO_CACHE", "1")
    ds = load(write_fixture(tmp_path / "runs"))
    assert ds.series is not None
    keys = ds.series_keys()
    rng = random.Random(1)
    for _ in range(40):
        columns = random_columns(rng, keys, rng.randint(1, 4))
        by_summary = reduce_runs(ds.points, columns, summary=ds.series)
        by_points = reduce_runs(ds.points, columns)
        assert by_summary.height > 0
        assert_frame_equal(by_summary, by_points, check_exact=True)
        # With an at-reduce asked for too, the plain ones are the same (from the summary
        # and from the points) and the at-reduce is the one it is asked for alone.
        first = columns[0]
        at = expand([parse_metric_spec(
            first.spec.name + "".join(f":{k}={v}" for k, v in first.context) + "@at=0")], keys)
        alone = reduce_runs(ds.points, at, x="order")
        for summary in (ds.series, None):
            with_at = reduce_runs(ds.points, [*columns, *at], x="order", summary=summary)
            assert with_at.columns == ["run", *dict.fromkeys(c.label for c in [*columns, *at])]
            assert_frame_equal(with_at.drop(at[0].label).filter(
                pl.col("run").is_in(by_points["run"].implode())), by_points, check_exact=True)
            assert_frame_equal(with_at.select("run", at[0].label).filter(
                pl.col("run").is_in(alone["run"].implode())), alone, check_exact=True)
            assert set(with_at["run"]) == set(by_points["run"]) | set(alone["run"])


def test_select_answers_the_same_with_and_without_the_summary(tmp_path: Path) -> None:
    ds = load(write_fixture(tmp_path / "runs", seed=3))
    for metrics in (None, ["f1:lang=*@max", "loss:split=*@first"], ["acc@mean", "loss@min"]):
        try:
            expected = select_runs(without_summary(ds), metrics)
        except SpecError as exc:
            with pytest.raises(SpecError, match=str(exc)[:20]):
                select_runs(ds, metrics)
            continue
        assert_frame_equal(select_runs(ds, metrics), expected, check_exact=True)


def test_group_selection_and_parcoords_answer_the_same_with_and_without_the_summary(
        sample_runs: Path) -> None:
    ds = load(sample_runs)
    plain = without_summary(ds)
    for where in (None, "`f1:lang=en@max` > 0.5"):
        got = group_table(ds, by="lr", metrics="f1:lang=*@max,lms_score@mean", where=where)
        want = group_table(plain, by="lr", metrics="f1:lang=*@max,lms_score@mean",
                           where=where)
        assert_frame_equal(got.wide, want.wide, check_exact=True)
    args = {"selectors": "f1:lang=en@max,lms_score", "targets": "f1:lang=*@last",
            "exclude": "lang=en"}
    assert_frame_equal(selection(ds, **args), selection(plain, **args), check_exact=True)
    for where in (None, "`f1:lang=de@first` > 0.2"):
        got_p = parcoords_table(ds, metrics="f1:lang=*@max,lms_score@min", where=where,
                                highlights=["best:f1:lang=en@max", "worst:lms_score@mean"])
        want_p = parcoords_table(plain, metrics="f1:lang=*@max,lms_score@min", where=where,
                                 highlights=["best:f1:lang=en@max", "worst:lms_score@mean"])
        assert_frame_equal(got_p.table, want_p.table, check_exact=True)
        assert got_p.highlights == want_p.highlights


# -- against numpy, from the files' own lines --------------------------------------------


def expected_reduces(runs: Path) -> dict[tuple[str, str, tuple], dict[str, float | None]]:
    """Per (run, name, context without empty values): each reduce, by numpy, following
    the series model's words: logging order by time (ties by read position) when every
    point has a time, else by read position; NaN and null dropped before reducing."""
    series: dict[tuple[str, str, tuple], list[tuple[int, float | None, float]]] = {}
    position = 0
    for path in sorted(runs.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("kind") != "point":
                continue
            context = tuple(sorted((k, v) for k, v in (record.get("context") or {}).items()
                                   if v != ""))
            raw = record["value"]
            value = float({"NaN": math.nan, "Infinity": math.inf,
                           "-Infinity": -math.inf}.get(raw, raw))
            key = (record["run"], record["name"], context)
            series.setdefault(key, []).append((position, record.get("time"), value))
            position += 1
    out = {}
    for key, rows in series.items():
        if all(t is not None for _, t, _ in rows):
            rows = sorted(rows, key=lambda r: (r[1], r[0]))
        values = np.array([v for _, _, v in rows], dtype=float)
        values = values[~np.isnan(values)]
        if values.size == 0:
            out[key] = dict.fromkeys(REDUCES)
            continue
        out[key] = {"first": values[0], "last": values[-1], "min": values.min(),
                    "max": values.max(), "mean": values.mean()}
    return out


def summary_reduces(ds: Dataset) -> dict[tuple[str, str, tuple], dict[str, float | None]]:
    """The same, answered from the summary through ``reduce_runs``, one column a series."""
    keys = ds.series_keys()
    context = [c for c in keys.columns if c not in ("run", "name")]
    found: dict[tuple[str, str, tuple], dict[str, float | None]] = {}
    combos = keys.select("name", *context).unique()
    for row in combos.iter_rows(named=True):
        mine = keys.filter(pl.col("name") == row["name"])
        used = [k for k in context if mine.get_column(k).drop_nulls().len()]
        given = "".join(f":{k}={row[k] or ''}" for k in used)
        columns = expand([parse_metric_spec(f"{row['name']}{given}@{r}") for r in REDUCES],
                         keys)
        table = reduce_runs(ds.points, columns, summary=ds.series)
        ctx = tuple(sorted((k, row[k]) for k in context if row[k]))
        for values in table.iter_rows(named=True):
            found[(values["run"], row["name"], ctx)] = {
                r: values[c.label] for r, c in zip(REDUCES, columns, strict=True)}
    return found


def assert_matches_numpy(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, reduces in expected.items():
        for reduce, value in reduces.items():
            actual = got[key][reduce]
            if value is None:
                assert actual is None, (key, reduce)
            elif math.isnan(value):  # inf - inf in a mean
                assert actual is not None and math.isnan(actual), (key, reduce, actual)
            elif reduce == "mean":  # numpy sums in another order: equal up to rounding
                assert actual is not None and (actual == value or math.isclose(
                    actual, value, rel_tol=1e-12, abs_tol=1e-300)), (key, reduce, actual, value)
            else:
                assert actual == value, (key, reduce, actual, value)


def test_summary_reduces_match_numpy_on_hand_built_data(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    rng = random.Random(7)
    for k in range(4):
        (runs / f"odd{k}.jsonl").write_text("\n".join(odd_lines(rng, f"odd{k}", 50)) + "\n")
    assert_matches_numpy(summary_reduces(load(runs)), expected_reduces(runs))


def test_hand_worked_first_and_last_follow_the_logging_order(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    lines = [point("a", "m", 1.0, time=T0 + 5), point("a", "m", 2.0, time=T0 + 1),
             point("a", "m", math.nan, time=T0 + 9), point("a", "m", 3.0, time=T0 + 5),
             point("b", "m", 1.0, time=T0 + 5), point("b", "m", 2.0),  # no time: read order
             point("b", "m", 4.0, time=T0 + 1), point("b", "m", math.inf, time=T0)]
    (runs / "r.jsonl").write_text("\n".join(lines) + "\n")
    columns = expand([parse_metric_spec(f"m@{r}") for r in REDUCES],
                     load(runs).series_keys())
    table = reduce_runs(load(runs).points, columns, summary=load(runs).series)
    assert table.row(0) == ("a", 2.0, 3.0, 1.0, 3.0, 2.0)  # by time: 2 (t1), 1, 3 (t5)
    assert table.row(1) == ("b", 1.0, math.inf, 1.0, math.inf, math.inf)


# -- nothing lost, nothing stale ----------------------------------------------------------


def test_summary_follows_random_appends_truncations_and_rewrites(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "MAX_SEGMENTS", 3)  # merges too, now and then
    runs = tmp_path / "runs"
    runs.mkdir()
    rng = random.Random(11)
    files: dict[str, list[str]] = {}
    for k in range(3):
        files[f"r{k}"] = odd_lines(rng, f"r{k}", 30)
        (runs / f"r{k}.jsonl").write_text("\n".join(files[f"r{k}"]) + "\n")
    for _ in range(12):
        ds = load(runs)
        assert_matches_numpy(summary_reduces(ds), expected_reduces(runs))
        name = rng.choice(sorted(files))
        lines = files[name]
        action = rng.choice(["append", "append", "truncate", "rewrite"])
        if action == "append":
            lines += odd_lines(rng, name, rng.randint(1, 15))[1:]
        elif action == "truncate":
            del lines[rng.randint(1, len(lines)):]
        else:
            lines[:] = odd_lines(rng, name, rng.randint(5, 30))
        (runs / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    ds = load(runs)
    assert_matches_numpy(summary_reduces(ds), expected_reduces(runs))


def test_a_cache_of_the_previous_version_is_rebuilt(tmp_path: Path) -> None:
    runs = write_fixture(tmp_path / "runs")
    load(runs)
    folder = cache.cache_dir_for(runs)
    assert folder is not None
    index = folder / cache.INDEX
    state = json.loads(pl.read_parquet_metadata(index)["xp.cache"])
    state["version"] = cache.CACHE_VERSION - 1
    for info in state["segments"].values():  # an old layout: counts only
        path = folder / info["stats"]
        pl.read_parquet(path).select("__src", "run", "name", "context", "points").write_parquet(
            path)
    pl.read_parquet(index).write_parquet(index, metadata={"xp.cache": json.dumps(state)})
    ds = load(runs)
    assert ds.series is not None and "t_last" in ds.series.columns
    assert_matches_numpy(summary_reduces(ds), expected_reduces(runs))


def test_a_cache_of_version_6_with_its_json_manifest_is_rebuilt(tmp_path: Path) -> None:
    """Version 6 kept its state in manifest.json: a folder holding only that (its
    segments of old counts beside it) is read as no cache, and built again."""
    runs = write_fixture(tmp_path / "runs")
    load(runs)
    folder = cache.cache_dir_for(runs)
    assert folder is not None
    index = cache._Index.read(folder / cache.INDEX)
    assert index is not None
    manifest = {**index.manifest(), "version": 6}
    for info in manifest["segments"].values():
        path = folder / info["stats"]
        pl.read_parquet(path).select("__src", "run", "name", "context", "points").write_parquet(
            path)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / cache.INDEX).unlink()
    ds = load(runs)
    assert ds.series is not None and "t_last" in ds.series.columns
    assert_matches_numpy(summary_reduces(ds), expected_reduces(runs))
    assert cache.is_cache_folder(folder) and (folder / cache.INDEX).exists()

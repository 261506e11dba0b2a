"""Reading a runs directory: round trips, torn and bad input, Parquet, schema drift."""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import PYTHON, ROOT, run_python
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xpcli import Run
from xpcli import format as fmt
from xpcli.dataset import load
from xpcli.errors import DataError
from xpcli.records import Diagnostics, find_files, read_records, write_parquet

T0 = 1767225600.0

# -- strategies -----------------------------------------------------------------------------

printable = st.characters(blacklist_categories=("Cc", "Cs"))
names = st.text(printable, min_size=1, max_size=12)
context_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True).filter(
    lambda k: k not in fmt.RESERVED_CONTEXT_KEYS
)
contexts = st.dictionaries(context_keys, st.text(printable, max_size=8), max_size=3)
values = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [1e308, -1e308, 5e-324, 2.2250738585072014e-308, 0.0, -0.0, 1e-300]
) | st.integers(-(2**53), 2**53)
steps = st.none() | st.integers(-(2**63), 2**63 - 1)
epochs = st.none() | st.floats(allow_nan=False, allow_infinity=False)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
# Unique times give the points an order to compare in (the reader does not promise one).
points_st = st.lists(st.tuples(names, values, steps, epochs, contexts, times), max_size=12,
                     unique_by=lambda point: point[5])

scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(printable, max_size=8))
param_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), inner, min_size=1,
                      max_size=3),
    max_leaves=8,
)
params_st = st.dictionaries(st.from_regex(r"p_[a-z]{1,4}", fullmatch=True), param_values,
                            max_size=5)


def same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def expected_cell(value: Any) -> Any:
    """What a one-run param column holds for a flattened param value."""
    if isinstance(value, list):
        return json.dumps(value)
    return value


# -- round trip -----------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=params_st, points=points_st)
def test_whatever_the_writer_writes_reads_back_equal(params: dict, points: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with Run(tmp, "r", params=params, time=T0, flush_seconds=0) as run:
            for name, value, step, epoch, context, time in points:
                run.track(value, name, step=step, epoch=epoch, context=context, time=time)
        ds = load(tmp)
        assert not len(ds.diagnostics)

        runs = ds.runs.collect()
        assert runs.height == 1
        flat = fmt.flatten(params)
        assert ds.params == list(flat)
        row = runs.row(0, named=True)
        for key, value in flat.items():
            got = row[key]
            want = expected_cell(value)
            if isinstance(value, list):
                assert json.loads(got) == value
            elif isinstance(value, float):
                assert runs.schema[key] == pl.Float64 and got == want
            else:
                assert got == want and type(got) is type(want)
        assert row["points"] == len(points)
        assert row["status"] == "finished"

        got_points = ds.points.collect().sort("time")
        points = sorted(points, key=lambda point: point[5])
        assert got_points.height == len(points)
        keys = sorted({k for *_, ctx, _t in points for k in ctx})
        assert ds.context_keys == keys
        for rec, (name, value, step, epoch, context, time) in zip(
            got_points.iter_rows(named=True), points
        ):
            assert rec["name"] == name and rec["run"] == "r"
            assert same_float(rec["value"], float(value))
            assert rec["step"] == step
            assert same_float(rec["epoch"], epoch)
            assert rec["time"] == time
            for key in keys:
                assert rec[key] == context.get(key)
        assert got_points.schema["step"] == pl.Int64
        assert got_points.schema["value"] == pl.Float64


def test_column_types(tiny_runs: Path) -> None:
    ds = load(tiny_runs)
    assert ds.points.collect_schema() == pl.Schema(
        {"run": pl.String, "name": pl.String, "lang": pl.String, "step": pl.Int64,
         "epoch": pl.Float64, "time": pl.Float64, "value": pl.Float64}
    )
    schema = ds.runs.collect_schema()
    assert schema["created"] == pl.Datetime("us", "UTC")
    assert schema["ended"] == pl.Datetime("us", "UTC")
    assert schema["first_time"] == pl.Datetime("us", "UTC")
    assert schema["lr"] == pl.Float64 and schema["seed"] == pl.Int64
    assert schema["points"] == pl.Int64 and schema["metrics"] == pl.Int64
    assert ds.params == ["lr", "seed"] and ds.context_keys == ["lang"]


# -- torn, blank, malformed, empty ------------------------------------------------------------


def _small_run_bytes(tmp: Path) -> bytes:
    with Run(tmp, "cut", params={"lr": 0.5}, time=T0, flush_seconds=0) as run:
        run.track(math.nan, "f1", epoch=1.0, context={"lang": "de"}, time=T0 + 1)
        run.track(0.25, "f1", step=3, time=T0 + 2)
        run.track(-1e300, "loss", step=4, epoch=2.5, time=T0 + 3)
    return (tmp / "cut.jsonl").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("cache", ["cache", "no-cache"])
def test_cutting_a_file_at_any_byte_loses_at_most_the_cut_record(
        tmp_path: Path, cache: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if cache == "no-cache":
        monkeypatch.setenv("XP_NO_CACHE", "1")
    data = _small_run_bytes(tmp_path / "src")
    lines = data.splitlines(keepends=True)
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    with Run(runs_dir, "other", time=T0, flush_seconds=0) as run:
        run.track(1.0, "x", time=T0)
    target = runs_dir / "cut.jsonl"
    for cut in range(len(data) + 1):
        target.write_bytes(data[:cut])
        ds = load(runs_dir)  # never raises
        ends = [sum(len(x) for x in lines[: i + 1]) for i in range(len(lines))]
        whole = sum(1 for end in ends if end <= cut)
        # A line cut right before its newline is still a whole record.
        if whole < len(lines) and cut == ends[whole] - 1:
            whole += 1
        expected_points = sum(1 for line in lines[:whole] if b'"kind":"point"' in line)
        points = ds.points.filter(pl.col("run") == "cut").collect().sort("time")
        assert points.height == expected_points, cut
        assert points["value"].fill_nan(0.0).to_list() == [0.0, 0.25, -1e300][:expected_points]
        assert points["step"].to_list() == [None, 3, 4][:expected_points]
        torn = [d for d in ds.diagnostics.items if d.kind == "torn"]
        partial = 0 < cut < len(data) and cut not in ends and cut + 1 not in ends
        assert len(torn) == (1 if partial else 0), cut
        assert all(d.kind in ("torn", "empty") for d in ds.diagnostics.items), cut
        if torn:
            assert torn[0].line == whole + 1 and torn[0].path == str(target)


def test_blank_lines_are_counted(tmp_path: Path) -> None:
    data = _small_run_bytes(tmp_path)
    lines = data.splitlines(keepends=True)
    (tmp_path / "cut.jsonl").write_bytes(b"\n" + lines[0] + b"\n  \n" + b"".join(lines[1:]) + b"\n")
    ds = load(tmp_path)
    assert ds.points.collect().height == 3
    assert ds.diagnostics.blank_lines == 4
    assert not ds.diagnostics.items


def test_malformed_middle_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    data = _small_run_bytes(tmp_path)
    lines = data.splitlines(keepends=True)
    bad = b'{"kind":"point","run":"cut","name":"f1","value":"high"}\n'
    (tmp_path / "cut.jsonl").write_bytes(b"".join(lines[:2]) + bad + b"{oops\n"
                                         + b"".join(lines[2:]))
    ds = load(tmp_path)
    assert ds.points.collect().height == 3
    found = [(d.line, d.kind) for d in ds.diagnostics.items]
    assert found == [(3, "malformed"), (4, "malformed")]
    assert str(ds.diagnostics.items[0]).startswith(f"{tmp_path / 'cut.jsonl'}:3: value must")
    assert ds.diagnostics.summary() == "2 malformed"


def test_empty_files(tmp_path: Path, tiny_runs: Path) -> None:
    (tiny_runs / "empty.jsonl").write_bytes(b"")
    (tiny_runs / "spaces.jsonl").write_bytes(b"\n\n")
    ds = load(tiny_runs)
    assert ds.runs.collect().height == 2
    assert sorted((Path(d.path).name, d.kind) for d in ds.diagnostics.items) == [
        ("empty.jsonl", "empty"), ("spaces.jsonl", "empty")]
    only = tmp_path / "only"
    only.mkdir()
    (only / "empty.jsonl").write_bytes(b"")
    with pytest.raises(DataError, match="no records"):
        load(only)


def test_missing_dir_and_no_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "nope")
    with pytest.raises(DataError, match="no run files"):
        load(tmp_path)


def test_bad_numbers_skipped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "r.jsonl").write_text(
        '{"kind":"point","run":"r","name":"x","value":1,"step":100000000000000000000000}\n'
        '{"kind":"point","run":"r","name":"x","value":1,"time":1e999}\n'
        '{"kind":"point","run":"r","name":"x","value":2,"step":1}\n'
        '{"kind":"run","run":"r","meta":{"created":1e300}}\n'
    )
    ds = load(tmp_path)
    assert ds.points.collect()["value"].to_list() == [2.0]
    assert [d.line for d in ds.diagnostics.items] == [1, 2]
    assert ds.runs.collect()["created"].to_list() == [None]


def test_found_recursively_hidden_skipped(tmp_path: Path) -> None:
    for sub in ["a/b", ".hidden", "c"]:
        with Run(tmp_path / sub, "r" + sub.replace("/", "").replace(".", "h"), flush_seconds=0):
            pass
    (tmp_path / "c" / ".r.jsonl").write_text("garbage\n")
    (tmp_path / "c" / "notes.txt").write_text("garbage\n")
    files = [os.path.relpath(f, tmp_path) for f in find_files(tmp_path)]
    assert files == ["a/b/rab.jsonl", "c/rc.jsonl"]
    assert load(tmp_path).runs.collect()["run"].sort().to_list() == ["rab", "rc"]
    assert find_files(tmp_path / "c" / "rc.jsonl") == [str(tmp_path / "c" / "rc.jsonl")]


def test_symlink_loop_does_not_hang(tmp_path: Path, tiny_runs: Path) -> None:
    (tiny_runs / "sub").mkdir()
    os.symlink(tiny_runs, tiny_runs / "sub" / "loop")
    os.symlink(tiny_runs / "sub", tiny_runs / "self")
    code = ("import sys\nfrom xpcli.dataset import load\n"
            "print(load(sys.argv[1]).runs.collect().height)")
    proc = run_python(code, str(tiny_runs), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2"


# -- gzip and Parquet --------------------------------------------------------------------------


def test_jsonl_gz(tmp_path: Path, tiny_runs: Path) -> None:
    expected = load(tiny_runs)
    for path in tiny_runs.glob("*.jsonl"):
        path.with_suffix(".jsonl.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    ds = load(tiny_runs)
    assert not len(ds.diagnostics)
    assert ds.points.collect().equals(expected.points.collect())
    assert ds.runs.collect().equals(expected.runs.collect())
    # A gzip stream cut short: what was intact is read, the damage reported.
    gz = tiny_runs / "a.jsonl.gz"
    gz.write_bytes(gz.read_bytes()[:-12])
    ds = load(tiny_runs)
    assert any(d.kind == "torn" and d.path == str(gz) for d in ds.diagnostics.items)


def test_parquet_written_by_write_parquet_reads_the_same(tmp_path: Path, tiny_runs: Path) -> None:
    expected = load(tiny_runs)
    files = find_files(tiny_runs)
    raw = read_records(files, Diagnostics())
    out = tmp_path / "pq"
    write_parquet(raw, out / "all.parquet")
    assert os.listdir(out) == ["all.parquet"]  # no temporary left behind
    ds = load(out)
    assert not len(ds.diagnostics)
    assert ds.points.collect().equals(expected.points.collect())
    assert ds.runs.collect().equals(expected.runs.collect())


def test_mixed_jsonl_and_parquet(tmp_path: Path, tiny_runs: Path) -> None:
    raw = read_records([str(tiny_runs / "b.jsonl")], Diagnostics())
    write_parquet(raw, tiny_runs / "archive" / "b.parquet")
    (tiny_runs / "b.jsonl").unlink()
    ds = load(tiny_runs)
    runs = ds.runs.collect().sort("run")
    assert runs["run"].to_list() == ["a", "b"]
    assert runs["lr"].to_list() == [0.1, 0.01]
    assert runs["status"].to_list() == ["finished", "failed"]
    assert runs["points"].to_list() == [6, 1]
    assert ds.points.filter(pl.col("run") == "b").collect()["lang"].to_list() == ["en"]


def test_foreign_parquet_minimal_columns(tmp_path: Path) -> None:
    pl.DataFrame({"run": ["x", "x"], "name": ["acc", "acc"], "value": [0.5, 0.75],
                  "step": [1, 2], "context": [{"lang": "de"}, {"lang": "en"}]}).write_parquet(
        tmp_path / "foreign.parquet")
    ds = load(tmp_path)
    points = ds.points.collect()
    assert points["value"].to_list() == [0.5, 0.75]
    assert points["lang"].to_list() == ["de", "en"]
    assert points["epoch"].to_list() == [None, None]
    pl.DataFrame({"name": ["a"]}).write_parquet(tmp_path / "norun.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    kinds = sorted(d.kind for d in load(tmp_path).diagnostics.items)
    assert kinds == ["malformed", "unreadable"]


# -- schema drift and partial runs --------------------------------------------------------------


def test_schema_drift(tmp_path: Path) -> None:
    with Run(tmp_path, "a", params={"lr": 1, "flag": True}, time=T0, flush_seconds=0) as run:
        run.track(0.5, "f1", epoch=1, context={"lang": "de"}, time=T0)
    with Run(tmp_path, "b", params={"lr": 0.5, "wd": 0.1, "flag": 1}, time=T0 + 1,
             flush_seconds=0) as run:
        run.track(0.5, "f1", epoch=1, context={"lang": "en", "split": "dev"}, time=T0)
        run.track(0.5, "loss", step=1, time=T0)
    with Run(tmp_path, "c", params={"lr": 2, "name": "x"}, time=T0 + 2, flush_seconds=0):
        pass
    ds = load(tmp_path)
    runs = ds.runs.collect().sort("run")
    assert runs.schema["lr"] == pl.Float64 and runs["lr"].to_list() == [1.0, 0.5, 2.0]
    assert runs.schema["wd"] == pl.Float64 and runs["wd"].to_list() == [None, 0.1, None]
    assert runs.schema["flag"] == pl.String and runs["flag"].to_list() == ["true", "1", None]
    assert runs["name"].to_list() == [None, None, "x"]
    mixed = [d for d in ds.diagnostics.items if d.kind == "mixed-types"]
    assert len(mixed) == 1 and "'flag'" in mixed[0].message and "bool, int" in mixed[0].message
    points = ds.points.collect()
    assert ds.context_keys == ["lang", "split"]
    assert points.select("lang", "split").rows() == [("de", None), ("en", "dev"), (None, None)]


def test_runs_without_points_and_points_without_run_record(tmp_path: Path) -> None:
    with Run(tmp_path, "params-only", params={"lr": 0.1}, time=T0, flush_seconds=0):
        pass
    (tmp_path / "points-only.jsonl").write_text(
        '{"kind":"point","run":"points-only","name":"x","value":1,"time":1767225601}\n')
    ds = load(tmp_path)
    runs = ds.runs.collect().sort("run")
    assert runs["run"].to_list() == ["params-only", "points-only"]
    assert runs["points"].to_list() == [0, 1]
    assert runs["metrics"].to_list() == [0, 1]
    assert runs["lr"].to_list() == [0.1, None]
    assert runs["status"].to_list() == ["finished", None]
    assert runs["first_time"].to_list()[0] is None
    assert str(runs["first_time"].to_list()[1]) == "2026-01-01 00:00:01+00:00"


def test_non_finite_param_alone_reads_as_text(tmp_path: Path) -> None:
    # Documented in docs/format.md: a column of only non-finite values cannot tell a
    # float from the string "NaN"; beside real numbers it is a float.
    with Run(tmp_path, "a", params={"x": math.nan, "y": math.inf}, flush_seconds=0):
        pass
    with Run(tmp_path, "b", params={"y": 1.5}, flush_seconds=0):
        pass
    runs = load(tmp_path).runs.collect().sort("run")
    assert runs["x"].to_list() == ["NaN", None]
    assert runs["y"].to_list() == [math.inf, 1.5]


# -- other readers, concurrency ---------------------------------------------------------------


def test_readable_with_pyarrow_alone(sample_runs: Path) -> None:
    code = r"""
import glob, sys
import pyarrow.compute as pc, pyarrow.json as pj, pyarrow.parquet as pq
root = sys.argv[1]
points, runs = 0, set()
tables = [pj.read_json(f) for f in glob.glob(root + "/**/*.jsonl", recursive=True)]
tables += [pq.read_table(f) for f in glob.glob(root + "/**/*.parquet", recursive=True)]
for t in tables:
    points += pc.sum(pc.equal(t["kind"], "point")).as_py()
    runs.update(t["run"].to_pylist())
print(points, len(runs), "polars" in sys.modules, "xpcli" in sys.modules)
"""
    proc = run_python(code, str(sample_runs))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["216240", "240", "False", "False"]


WRITER = r"""
import sys
from xpcli import Run
with Run(sys.argv[1], f"proc{sys.argv[2]}", params={"proc": int(sys.argv[2])},
         flush_bytes=512, flush_seconds=0.01) as run:
    for i in range(3000):
        run.track(i * 1.0, "x", step=i, context={"proc": sys.argv[2]})
"""


def test_four_processes_writing_one_runs_dir(tmp_path: Path) -> None:
    procs = [subprocess.Popen([PYTHON, "-c", WRITER, str(tmp_path), str(i)], cwd=ROOT)
             for i in range(4)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    ds = load(tmp_path)
    assert not len(ds.diagnostics)
    runs = ds.runs.collect().sort("run")
    assert runs["run"].to_list() == ["proc0", "proc1", "proc2", "proc3"]
    assert runs["points"].to_list() == [3000] * 4
    assert runs["status"].to_list() == ["finished"] * 4
    points = ds.points.collect()
    assert points.select("proc", "step").unique().height == 12000


def test_concurrent_reader_sees_whole_records(tmp_path: Path) -> None:
    proc = subprocess.Popen([PYTHON, "-c", WRITER, str(tmp_path), "0"], cwd=ROOT)
    try:
        while proc.poll() is None:
            path = tmp_path / "proc0.jsonl"
            if path.exists() and path.stat().st_size:
                ds = load(tmp_path)
                steps = ds.points.collect()["step"].to_list()
                assert steps == list(range(len(steps)))
                assert all(d.kind == "torn" for d in ds.diagnostics.items)
    finally:
        assert proc.wait(timeout=300) == 0
    shutil.rmtree(tmp_path / "unused", ignore_errors=True)


def test_a_dataset_from_frames_in_memory() -> None:
    from xpcli.dataset import Dataset

    runs = pl.DataFrame({"run": ["a"], "lr": [0.1], "points": [2]})
    points = pl.DataFrame({"run": ["a", "a"], "name": ["f1", "f1"], "lang": ["de", "en"],
                           "step": [1, 1], "epoch": [1.0, 1.0], "time": [0.0, 0.0],
                           "value": [0.5, 0.6]})
    ds = Dataset.from_frames(runs, points)
    assert (ds.params, ds.meta, ds.context_keys) == (["lr"], [], ["lang"])
    assert Dataset.from_frames(runs, points, params=[]).params == []
    got_runs, got_points = ds
    assert got_runs.collect().equals(runs) and got_points.collect().equals(points)


@pytest.mark.parametrize("cache", ["cache", "no-cache"])
def test_parquet_rows_that_jsonl_would_refuse_are_skipped_and_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: str) -> None:
    """A row without a run (null or empty), with an unknown kind, or a point without a
    name or value: skipped and reported by row number, as JSONL reports its lines."""
    monkeypatch.setenv("XP_CACHE_DIR", str(tmp_path / "cache"))
    if cache == "no-cache":
        monkeypatch.setenv("XP_NO_CACHE", "1")
    runs = tmp_path / "runs"
    runs.mkdir()
    pl.DataFrame({
        "kind": ["point", "point", "point", "metric", "point", "point", "point"],
        "run": ["x", None, "", "x", "x", "x", "y"],
        "name": ["acc", "acc", "acc", "acc", None, "acc", "acc"],
        "value": [0.5, 0.6, 0.7, 0.8, 0.9, None, 0.25],
        "step": [1, 2, 3, 4, 5, 6, 7],
    }).write_parquet(runs / "foreign.parquet")
    ds = load(runs)
    points = ds.points.sort("step").collect()
    assert points.select("run", "step", "value").rows() == [("x", 1, 0.5), ("y", 7, 0.25)]
    assert ds.runs.collect().sort("run").get_column("run").to_list() == ["x", "y"]
    path = str(runs / "foreign.parquet")
    assert [str(d) for d in ds.diagnostics.items] == [
        f"{path}:2: missing or empty 'run'; row skipped",
        f"{path}:3: missing or empty 'run'; row skipped",
        f"{path}:4: unknown kind (expected 'run' or 'point'); row skipped",
        f"{path}:5: missing or empty 'name'; row skipped",
        f"{path}:6: missing 'value'; row skipped",
    ]
    assert ds.diagnostics.summary() == "5 malformed"

"""The shared dataset (``xp compact --to``): other engines read it and get the right numbers.

Expected values are computed here from the JSONL lines with plain Python, following the
series model's logging order (time when every point of a series has one, else file
order), never from xp's own output.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner

from xpcli.cli import cli
from xpcli.dataset import load
from xpcli.export import MANIFEST, export

T0 = 1767225600.0
NAN = "NaN"


def _records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def run(name: str, **params: Any) -> None:
        out.append({"kind": "run", "run": name, "time": T0, "params": params,
                    "meta": {"status": "finished"}})

    def point(run_: str, name: str, value: Any, context: dict[str, str] | None = None,
              **fields: Any) -> None:
        rec = {"kind": "point", "run": run_, "name": name, "value": value, **fields}
        if context is not None:
            rec["context"] = context
        out.append(rec)

    run("a", lr=0.1, seed=1)
    # f1 de: times out of file order, one NaN; logging order is by time: 0.2, 0.9, NaN, 0.4
    point("a", "f1", 0.4, {"lang": "de"}, epoch=4.0, time=T0 + 4)
    point("a", "f1", 0.2, {"lang": "de"}, epoch=1.0, time=T0 + 1)
    point("a", "f1", NAN, {"lang": "de"}, epoch=3.0, time=T0 + 3)
    point("a", "f1", 0.9, {"lang": "de"}, epoch=2.0, time=T0 + 2)
    point("a", "f1", 0.7, {"lang": "en"}, epoch=1.0, time=T0 + 1)
    # loss: one point lacks a time, so file order rules: 3.0, 1.0, 2.0 (last 2.0)
    point("a", "loss", 3.0, step=10, time=T0 + 9)
    point("a", "loss", 1.0, step=20)
    point("a", "loss", 2.0, step=30, time=T0 + 1)
    point("a", "loss", "Infinity", {"split": ""}, step=40, time=T0 + 10)
    run("b", lr=0.01, seed=2)
    point("b", "f1", NAN, {"lang": "de"}, epoch=1.0, time=T0 + 5)
    point("b", "f1", NAN, {"lang": "de"}, epoch=2.0, time=T0 + 6)
    point("b", "f1", 0.5, {"lang": "en"}, epoch=1.0, time=T0 + 5)
    run("c", lr=0.001, seed=3)  # no points at all
    for i in range(5):
        run(f"x{i}", lr=1.0, seed=i)
        point(f"x{i}", "f1", i / 10, {"lang": "en"}, epoch=1.0, time=T0 + i)
    return out


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    folder.mkdir()
    with open(folder / "all.jsonl", "w") as fh:
        for record in _records():
            fh.write(json.dumps(record) + "\n")
    return folder


def _num(value: Any) -> float:
    return float(value) if not isinstance(value, str) else float(value.replace("Infinity", "inf"))


def expected_series() -> dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[str, Any]]:
    """Series stats from the records, by hand."""
    groups: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[tuple[int, dict]]] = {}
    for index, rec in enumerate(_records()):
        if rec["kind"] != "point":
            continue
        context = tuple(sorted((k, v) for k, v in rec.get("context", {}).items() if v != ""))
        groups.setdefault((rec["run"], rec["name"], context), []).append((index, rec))
    out = {}
    for key, items in groups.items():
        if all("time" in rec for _, rec in items):
            items = sorted(items, key=lambda item: (item[1]["time"], item[0]))
        values = [_num(rec["value"]) for _, rec in items]
        kept = [v for v in values if not math.isnan(v)]
        epochs = [rec["epoch"] for _, rec in items if "epoch" in rec]
        steps = [rec["step"] for _, rec in items if "step" in rec]
        out[key] = {
            "count": len(values), "nan_count": len(values) - len(kept),
            "first": kept[0] if kept else None, "last": kept[-1] if kept else None,
            "min": min(kept) if kept else None, "max": max(kept) if kept else None,
            "sum": sum(kept) if kept else None,
            "epoch_min": min(epochs) if epochs else None,
            "step_max": max(steps) if steps else None,
            "order": [values.index(v) if not math.isnan(v) else None for v in values],
            "values": values,
        }
    return out


STATS = ("count", "nan_count", "first", "last", "min", "max", "sum", "epoch_min", "step_max")


def _key(row: dict[str, Any]) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    context = tuple(sorted((col[4:], v) for col, v in row.items()
                           if col.startswith("ctx_") and v is not None))
    return row["run"], row["name"], context


def _check_series(rows: list[dict[str, Any]]) -> None:
    expected = expected_series()
    assert len(rows) == len(expected)
    for row in rows:
        want = expected[_key(row)]
        for stat in STATS:
            assert row[stat] == want[stat], (_key(row), stat)


@pytest.fixture
def dataset_dir(runs_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "dataset"
    export(load(str(runs_dir)), str(target), buckets=3)
    return target


def test_pyarrow_reads_the_series_summary(dataset_dir: Path) -> None:
    table = ds.dataset(dataset_dir / "series", format="parquet", partitioning="hive").to_table()
    rows = table.to_pylist()
    _check_series(rows)
    for row in rows:  # the bucket a row sits in is the documented rule
        assert row["bucket"] == zlib.crc32(row["run"].encode()) % 3


def test_polars_reads_the_series_summary(dataset_dir: Path) -> None:
    frame = pl.scan_parquet(dataset_dir / "series" / "**" / "*.parquet",
                            hive_partitioning=True).collect()
    assert frame["bucket"].n_unique() > 1  # several buckets, read as one table
    _check_series(frame.to_dicts())


def test_duckdb_reads_points_in_logging_order_and_the_runs(dataset_dir: Path) -> None:
    con = duckdb.connect()
    points = f"read_parquet('{dataset_dir}/points/*/*.parquet', hive_partitioning=true)"
    # last = the non-NaN value with the highest order, computed by DuckDB from the points
    rows = con.execute(
        f"select run, name, ctx_lang, ctx_split, count(*) as count, "
        f"arg_max(value, \"order\") filter (where not isnan(value)) as last, "
        f"arg_min(value, \"order\") filter (where not isnan(value)) as first, "
        f"sum(value) filter (where not isnan(value)) as sum "
        f"from {points} group by all").fetchall()
    expected = expected_series()
    assert len(rows) == len(expected)
    for run, name, lang, split, count, last, first, total in rows:
        context = tuple((k, v) for k, v in (("lang", lang), ("split", split)) if v is not None)
        want = expected[(run, name, context)]
        assert (count, last, first, total) == (want["count"], want["last"], want["first"],
                                               want["sum"])
    orders = con.execute(f"select run, name, ctx_lang, list(\"order\" order by \"order\") "
                         f"from {points} group by all").fetchall()
    for *_, order in orders:  # 0..n-1 within every series
        assert order == list(range(len(order)))
    runs = con.execute(f"select run, lr, seed from '{dataset_dir}/runs/*.parquet' "
                       "order by run").fetchall()
    assert runs[:3] == [("a", 0.1, 1), ("b", 0.01, 2), ("c", 0.001, 3)] and len(runs) == 8
    manifest = json.loads((dataset_dir / MANIFEST).read_text())
    assert manifest["version"] == 1 and manifest["buckets"] == 3
    assert manifest["context_keys"] == {"ctx_lang": "lang", "ctx_split": "split"}


def test_cli_writes_and_replaces_a_dataset(runs_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out"
    runner = CliRunner()
    for _ in range(2):  # a second write replaces the first whole
        result = runner.invoke(cli, ["compact", "--runs", str(runs_dir), "--to", str(target)],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert result.stderr.strip() == f"wrote 8 runs, 10 series, 17 points in 1 bucket " \
            f"to {target}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "runs"]  # nothing left over
    assert sorted(p.name for p in runs_dir.iterdir()) == ["all.jsonl"]  # untouched


def test_cli_refuses_a_folder_that_is_not_a_dataset(runs_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["compact", "--runs", str(runs_dir), "--to",
                                      str(tmp_path / "other")])
    assert result.exit_code == 2
    assert "exists and is not an xp dataset" in result.stderr
    assert (tmp_path / "other" / "keep.txt").read_text() == "mine"
    url = CliRunner().invoke(cli, ["compact", "--runs", str(runs_dir), "--to", "ftp://b/x"])
    assert url.exit_code == 2
    assert "--to ftp://b/x: not a folder or an s3://, gs:// or az:// URL" in url.stderr

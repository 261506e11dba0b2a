"""Fuzzing the reader: ``dataset.load`` on a runs directory holding hostile files.

Random bytes, huge numbers, deep nesting, invalid UTF-8, NUL bytes and very long lines,
mixed with valid records: the read never raises anything but :class:`DataError` (nothing
readable at all), never hangs, keeps every valid line, and every skipped line is reported
with its file and line number. With and without the cache, the answer is the same.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl
import pytest
from fuzz_helpers import fuzz_settings, good_line, no_hang, record_line
from hypothesis import given
from hypothesis import strategies as st

from xpcli import load
from xpcli.errors import DataError

pytestmark = pytest.mark.slow  # the whole module: make test-fast leaves it out


def _load(runs: Path, cache: Path | None):  # noqa: ANN202
    old = {k: os.environ.get(k) for k in ("XP_CACHE_DIR", "XP_NO_CACHE")}
    if cache is None:
        os.environ["XP_NO_CACHE"] = "1"
    else:
        os.environ.pop("XP_NO_CACHE", None)
        os.environ["XP_CACHE_DIR"] = str(cache)
    try:
        with no_hang():
            ds = load(runs)
            return ds, ds.points.collect(), ds.runs.collect()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check_diagnostics(ds, path: str) -> None:  # noqa: ANN001
    for item in ds.diagnostics.items:
        if item.path == "":  # a finding across files (mixed types, odd contexts)
            continue
        assert item.path == path, str(item)
        assert path in str(item)
        if path.endswith(".jsonl") and item.kind in ("malformed", "torn"):
            assert item.line >= 1, str(item)


@fuzz_settings(ci=30)
@given(lines=st.lists(st.one_of(record_line(), st.integers(0, 10**6)), min_size=1,
                      max_size=12),
       newline_at_end=st.booleans(), compress=st.sampled_from(["", "", ".gz"]))
def test_hostile_jsonl_never_breaks_the_read(lines: list, newline_at_end: bool,
                                             compress: str) -> None:
    good = sorted(x for x in lines if isinstance(x, int))
    body = b"\n".join(good_line(x) if isinstance(x, int) else x for x in lines)
    body += b"\n" if newline_at_end else b""
    base = Path(tempfile.mkdtemp(prefix="xp-fuzz-"))
    try:
        runs = base / "runs"
        runs.mkdir()
        path = runs / f"f.jsonl{compress}"
        path.write_bytes(gzip.compress(body, mtime=0) if compress else body)
        answers = []
        for cache in (base / "cache", None, base / "cache"):
            try:
                ds, points, runs_frame = _load(runs, cache)
            except DataError as exc:
                assert str(runs) in str(exc)
                assert not good, "valid lines were there"
                answers.append(None)
                continue
            _check_diagnostics(ds, str(path))
            steps = sorted(points.filter(pl.col("run") == "good")["step"].to_list())
            assert steps == good  # no hostile line took a valid one down
            answers.append(points.sort(pl.all()).rows())
        assert answers[0] == answers[1] == answers[2]
    finally:
        shutil.rmtree(base, ignore_errors=True)


@fuzz_settings(ci=20)
@given(data=st.binary(max_size=4000), suffix=st.sampled_from([".jsonl", ".jsonl.gz",
                                                              ".parquet"]))
def test_random_bytes_in_any_run_file(data: bytes, suffix: str) -> None:
    base = Path(tempfile.mkdtemp(prefix="xp-fuzz-"))
    try:
        runs = base / "runs"
        runs.mkdir()
        (runs / f"junk{suffix}").write_bytes(data)
        (runs / "ok.jsonl").write_bytes(good_line(1) + b"\n")
        for cache in (base / "cache", None):
            ds, points, _ = _load(runs, cache)
            assert points.filter(pl.col("run") == "good")["step"].to_list() == [1]
            _check_diagnostics(ds, str(runs / f"junk{suffix}"))
    finally:
        shutil.rmtree(base, ignore_errors=True)


COLUMN_VALUES = st.one_of(
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=3, max_size=3),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=3, max_size=3),
    st.lists(st.none() | st.text(max_size=30), min_size=3, max_size=3),
    st.lists(st.none() | st.binary(max_size=30), min_size=3, max_size=3),
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.lists(st.lists(st.integers(0, 5), max_size=3), min_size=3, max_size=3),
    st.just([{"lang": "de"}, {"lang": None}, {"lang": "x\x00"}]),
)


@fuzz_settings(ci=20)
@given(columns=st.dictionaries(
    st.sampled_from(["kind", "run", "name", "value", "step", "epoch", "time", "context",
                     "params", "meta", "__class__"]), COLUMN_VALUES, max_size=8))
def test_parquet_with_any_columns(columns: dict) -> None:
    """A foreign Parquet file with wrong types, nulls and structs in any column."""
    base = Path(tempfile.mkdtemp(prefix="xp-fuzz-"))
    try:
        runs = base / "runs"
        runs.mkdir()
        buf = io.BytesIO()
        pl.DataFrame(columns).write_parquet(buf)
        path = runs / "foreign.parquet"
        path.write_bytes(buf.getvalue())
        (runs / "ok.jsonl").write_bytes(good_line(1) + b"\n")
        for cache in (base / "cache", None):
            ds, points, _ = _load(runs, cache)
            assert 1 in points.filter(pl.col("run") == "good")["step"].to_list()
            _check_diagnostics(ds, str(path))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_integers_too_big_for_a_float_in_any_field(tmp_path: Path) -> None:
    """Found by the soak: a 400-digit integer ``time`` in the last line raised
    OverflowError. Now it is a skipped, reported line (or an infinite value)."""
    huge = b"9" * 400
    lines = [good_line(1)]
    for field in (b"time", b"epoch", b"step", b"value"):
        lines.append(b'{"kind":"point","run":"bad","name":"m","value":1,"' + field + b'":'
                     + huge + b"}")
    for last in lines[1:]:
        runs = tmp_path / f"runs-{len(list(tmp_path.iterdir()))}"
        runs.mkdir()
        (runs / "f.jsonl").write_bytes(b"\n".join([*lines, last]))  # also as a torn tail
        for cache in (tmp_path / "cache", None):
            ds, points, _ = _load(runs, cache)
            assert points.filter(pl.col("run") == "good")["step"].to_list() == [1]
            _check_diagnostics(ds, str(runs / "f.jsonl"))


def _panicking_parquet() -> bytes | None:
    """A small Parquet file (as a foreign tool writes it: no page checksums) with three
    bits flipped where Polars' reader panics on it, or None if this Polars never does."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 300
    table = pa.table({"kind": ["point"] * n, "run": [f"r{i % 3}" for i in range(n)],
                      "name": ["m"] * n, "value": [i / 7 for i in range(n)],
                      "step": list(range(n)),
                      "context": [f'{{"k":"{i % 3}"}}' for i in range(n)]})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    data = buf.getvalue()
    for seed in range(400):
        rng = random.Random(seed)
        flipped = bytearray(data)
        for _ in range(3):
            flipped[rng.randrange(4, len(data) - 200)] ^= 1 << rng.randrange(8)
        try:
            pl.read_parquet(io.BytesIO(bytes(flipped)))
        except pl.exceptions.PanicException:
            return bytes(flipped)
        except Exception:  # noqa: BLE001, S112 - an ordinary error: not what is looked for
            continue
    return None


def test_a_parquet_file_that_makes_polars_panic_is_reported_as_damaged(tmp_path: Path
                                                                        ) -> None:
    """Polars' PanicException derives from BaseException: it must not escape the read
    (nor print a traceback from the command); the file is reported and skipped."""
    import subprocess
    import sys

    data = _panicking_parquet()
    if data is None:
        import pytest

        pytest.skip("this Polars does not panic on any of the damaged files tried")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "damaged.parquet").write_bytes(data)
    (runs / "ok.jsonl").write_bytes(good_line(1) + b"\n")
    for cache in (tmp_path / "cache", None):
        ds, points, _ = _load(runs, cache)
        assert points["step"].to_list() == [1]
        (item,) = ds.diagnostics.items
        assert item.path == str(runs / "damaged.parquet") and "damaged" in str(item)
    proc = subprocess.run([sys.executable, "-m", "xpcli", "runs", "--runs", str(runs),
                           "--format", "csv"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "XP_CACHE_DIR": str(tmp_path / "cache2")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ("run,reason,points,metrics,started,last_activity,elapsed\n"
                           "good,,1,1,1970-01-01T00:00:01Z,1970-01-01T00:00:01Z,0.0\n")
    assert "damaged.parquet" in proc.stderr and "damaged" in proc.stderr
    assert "Traceback" not in proc.stderr and "panicked" not in proc.stderr

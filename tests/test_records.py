"""Parsing JSONL bodies into raw frames: the fast path over several files at once."""

from __future__ import annotations

import json
from pathlib import Path

from xpcli import Run, records

T0 = 1767225600.0


def _write(runs: Path, name: str, lr: float, points: int) -> bytes:
    run = Run(runs, name, params={"lr": lr, "opt": {"decay": 1.0}, "tags": ["a"]},
              meta={"host": "h"}, time=T0, flush_seconds=0)
    for i in range(points):
        run.track(0.5 + i, "f1", step=i, epoch=i / 2, context={"lang": "de"}, time=T0 + i)
        run.track(float(i), "loss", step=i, time=T0 + i)
    run.close(time=T0 + points)
    return (runs / f"{name}.jsonl").read_bytes()


def _expected(body: bytes) -> list[dict[str, object]]:
    """Each line as the json module reads it: the record's fields, objects as dicts."""
    out = []
    for line in body.splitlines():
        rec = json.loads(line)
        kind = rec["kind"]
        out.append({"kind": kind, "run": rec["run"], "name": rec.get("name"),
                    "value": rec.get("value"), "step": rec.get("step"),
                    "epoch": rec.get("epoch"), "time": rec.get("time"),
                    "context": rec.get("context") if kind == "point" else None,
                    "params": rec.get("params") if kind == "run" else None,
                    "meta": rec.get("meta") if kind == "run" else None})
    return out


def _as_records(frame: object) -> list[dict[str, object]]:
    rows = frame.to_dicts()  # type: ignore[attr-defined]
    for row in rows:
        for name in ("context", "params", "meta"):
            row[name] = json.loads(row[name]) if row[name] is not None else None
    return rows


def test_several_files_parse_side_by_side_in_order(tmp_path: Path) -> None:
    bodies = [_write(tmp_path, f"r{k}", 0.1 * (k + 1), 3 + k) for k in range(4)]
    frame = records.fast_frame(bodies, sum(b.count(b"\n") for b in bodies))
    assert frame is not None
    expected = [rec for body in bodies for rec in _expected(body)]
    assert _as_records(frame) == expected
    # Whole floats in params stay floats: the text is exact, not Polars' re-encoding.
    first_params = frame.filter(frame["kind"] == "run")["params"][0]
    assert '"decay":1.0' in first_params
    joined = records.fast_frame(b"".join(bodies))
    assert joined is not None and joined.equals(frame)


def test_run_records_found_when_another_record_holds_their_spelling(tmp_path: Path) -> None:
    """A context key "kind" valued "run", and a run record written with other spacing:
    the run records are still paired with their own lines."""
    body = (
        b'{"kind": "run", "run": "a", "time": 1.0, "params": {"lr": 2.0}}\n'
        b'{"kind":"point","run":"a","name":"f1","context":{"kind":"run"},"value":1.5,'
        b'"time":2.0}\n'
        b'{"kind":"run","run":"b","time":3.0,"meta":{"host":"x"}}\n'
    )
    frame = records.fast_frame([body])
    assert frame is not None
    assert _as_records(frame) == _expected(body)
    assert frame["params"][0] == '{"lr":2.0}'


def test_objects_only_where_the_record_kind_has_them(tmp_path: Path) -> None:
    """``params`` on a point line is not part of the format: dropped, as the careful
    path drops it; a backslash in a context is kept exactly."""
    body = (
        b'{"kind":"run","run":"a","time":1.0,"params":{"lr":1.0}}\n'
        b'{"kind":"point","run":"a","name":"f1","value":1.0,"params":{"x":1},"time":2.0}\n'
        b'{"kind":"point","run":"a","name":"f1","context":{"path":"c:\\\\d"},"value":2.0,'
        b'"time":3.0}\n'
    )
    fast = records.fast_frame([body])
    assert fast is not None
    careful = records.careful_frame("x.jsonl", body, records.Diagnostics())
    assert _as_records(fast) == _as_records(careful) == _expected(body)
    assert json.loads(fast["context"][2]) == {"path": "c:\\d"}


def test_blocks_ask_for_no_more_than_the_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"x" * 1000)
    asked: list[int] = []

    class Spy:
        def __init__(self, fh: object) -> None:
            self.fh = fh

        def read(self, n: int) -> bytes:
            asked.append(n)
            return self.fh.read(n)  # type: ignore[attr-defined]

        def fileno(self) -> int:
            return self.fh.fileno()  # type: ignore[attr-defined]

        def tell(self) -> int:
            return self.fh.tell()  # type: ignore[attr-defined]

    with open(path, "rb") as fh:
        fh.seek(100)
        blocks = list(records._blocks(Spy(fh), 32 << 20))  # type: ignore[arg-type]
    assert b"".join(blocks) == b"x" * 900
    assert max(asked) <= 1 << 16
    with open(path, "rb") as fh:
        assert [len(b) for b in records._blocks(fh, 300)] == [300, 300, 300, 100]


def test_run_records_at_the_edges_and_inside_bodies_keep_their_own_objects(
        tmp_path: Path) -> None:
    """Bodies counted one by one: run records on first and last lines are taken from
    the edges of their bodies, one inside a body (params logged mid-run) or a blank line
    sends the lookup the long way; every run record keeps its own params and meta."""
    bodies = [_write(tmp_path, f"r{k}", 0.5 * (k + 1), 2 + k) for k in range(3)]
    run = Run(tmp_path, "mid", params={"lr": 3.0}, time=T0, flush_seconds=0)
    run.track(1.0, "loss", step=0, time=T0)
    run.log_params({"warmup": 2.0})
    run.track(2.0, "loss", step=1, time=T0 + 1)
    run.close(time=T0 + 2)
    middle = (tmp_path / "mid.jsonl").read_bytes()
    for case in (bodies, [*bodies, middle], [bodies[0], b"\n" + bodies[1]]):
        frame = records.fast_frame(case, [b.count(b"\n") for b in case])
        assert frame is not None
        expected = [rec for body in case for rec in _expected(body.lstrip(b"\n"))]
        assert _as_records(frame) == expected
    frame = records.fast_frame(bodies, [b.count(b"\n") for b in bodies])
    assert frame is not None
    assert frame.filter(frame["kind"] == "run")["params"].to_list()[::2] == [
        '{"lr":0.5,"opt":{"decay":1.0},"tags":["a"]}',
        '{"lr":1.0,"opt":{"decay":1.0},"tags":["a"]}',
        '{"lr":1.5,"opt":{"decay":1.0},"tags":["a"]}']

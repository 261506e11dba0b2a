"""The record format: run ids, non-finite floats, flattening, parsing one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from xpcli import format as fmt
from xpcli.errors import UsageError


@pytest.mark.parametrize("run", ["a", "0", "lr3e-5-s07", "run_1.final", "A" * 128, "01J-x.y_z"])
def test_check_run_id_accepts(run: str) -> None:
    assert fmt.check_run_id(run) == run


@pytest.mark.parametrize(
    "run",
    ["", "../x", "..", ".", "/abs", "a/b", "a\\b", "a\x00b", ".hidden", "-x", "_x", "A" * 129,
     "a b", "a\nb", "é", None, 3],
)
def test_check_run_id_refuses(run: object) -> None:
    with pytest.raises(UsageError, match="invalid run id"):
        fmt.check_run_id(run)  # type: ignore[arg-type]


def test_check_context_key() -> None:
    assert fmt.check_context_key("lang") == "lang"
    assert fmt.check_context_key("_x.y-z") == "_x.y-z"
    for key in ["", "1x", "a b", "x/y"]:
        with pytest.raises(UsageError, match="invalid context key"):
            fmt.check_context_key(key)
    for key in sorted(fmt.RESERVED_CONTEXT_KEYS):
        with pytest.raises(UsageError, match="names a column"):
            fmt.check_context_key(key)


def test_check_name() -> None:
    assert fmt.check_name("f1/dev ü") == "f1/dev ü"
    for name in ["", "a\nb", "a\x7fb", "x" * 257]:
        with pytest.raises(UsageError):
            fmt.check_name(name)


@pytest.mark.parametrize(
    "value, text",
    [(math.nan, '"NaN"'), (math.inf, '"Infinity"'), (-math.inf, '"-Infinity"'),
     (0.1, "0.1"), (-0.0, "-0.0"), (1e300, "1e+300"), (5e-324, "5e-324"), (3.0, "3.0")],
)
def test_encode_decode_float(value: float, text: str) -> None:
    assert fmt.encode_float(value) == text
    back = fmt.decode_value(json.loads(text))
    if math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value and math.copysign(1, back) == math.copysign(1, value)


@pytest.mark.parametrize("raw", [None, True, "nan", "inf", "1.5", [], {}])
def test_decode_value_refuses(raw: object) -> None:
    with pytest.raises(ValueError):
        fmt.decode_value(raw)


def test_decode_value_int() -> None:
    assert fmt.decode_value(3) == 3.0 and isinstance(fmt.decode_value(3), float)


def test_flatten() -> None:
    params = {"lr": 1e-4, "optimizer": {"name": "adamw", "betas": [0.9, 0.99],
                                        "sched": {"warmup": 10}}, "empty": {}, "x": None}
    assert fmt.flatten(params) == {
        "lr": 1e-4, "optimizer.name": "adamw", "optimizer.betas": [0.9, 0.99],
        "optimizer.sched.warmup": 10, "x": None,
    }


def test_plain_params() -> None:
    from pathlib import PurePosixPath

    out = fmt.plain_params({"a": (1, 2), "p": PurePosixPath("/x/y"), "n": math.nan,
                            "i": -math.inf, 3: "k"})
    assert out == {"a": [1, 2], "p": "/x/y", "n": "NaN", "i": "-Infinity", "3": "k"}
    with pytest.raises(UsageError, match="param 'o'"):
        fmt.plain_params({"o": object()})
    with pytest.raises(UsageError):
        fmt.plain_params([("a", 1)])  # type: ignore[arg-type]


def test_plain_params_refuses_a_cycle_naming_the_param() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(UsageError, match=r"param 'a': a value refers to itself"):
        fmt.plain_params({"a": loop})
    node: dict[str, object] = {"x": 1}
    node["self"] = node
    with pytest.raises(UsageError, match=r"param 'opt\.self': a value refers to itself"):
        fmt.plain_params({"opt": node})


def test_plain_params_keeps_a_value_shared_without_a_cycle() -> None:
    shared = [1, 2]
    out = fmt.plain_params({"a": shared, "b": {"c": shared, "d": [shared, shared]}})
    assert out == {"a": [1, 2], "b": {"c": [1, 2], "d": [[1, 2], [1, 2]]}}


def test_plain_params_depth() -> None:
    ok: object = 1
    for _ in range(fmt.MAX_PARAM_DEPTH):
        ok = [ok]
    assert json.dumps(fmt.plain_params({"a": ok})).count("[") == fmt.MAX_PARAM_DEPTH
    with pytest.raises(UsageError, match=r"param 'a': nested more than 100 levels"):
        fmt.plain_params({"a": [ok]})


def test_run_with_self_referencing_params_is_a_usage_error(tmp_path: Path) -> None:
    from xpcli import Run

    params: dict[str, object] = {"lr": 0.1}
    params["again"] = params
    with pytest.raises(UsageError, match=r"param 'again': a value refers to itself"):
        Run(tmp_path, "r1", params=params)


def test_point_line_round_trip() -> None:
    prefix = fmt.point_prefix("r1", "f1", {"lang": "de"})
    line = fmt.point_line(prefix, math.nan, 7, 1.5, 1767225600.25)
    assert line.endswith("\n") and line.count("\n") == 1
    rec = fmt.parse_line(line)
    assert rec["kind"] == "point" and rec["run"] == "r1" and rec["name"] == "f1"
    assert math.isnan(rec["value"]) and rec["step"] == 7 and rec["epoch"] == 1.5
    assert rec["time"] == 1767225600.25 and rec["context"] == {"lang": "de"}
    bare = fmt.parse_line(fmt.point_line(fmt.point_prefix("r1", "x", None), 2.0, None, None, 1.0))
    assert bare["step"] is None and bare["epoch"] is None and bare["context"] == {}


def test_run_record_round_trip() -> None:
    line = fmt.run_record("r1", 5.0, {"lr": 0.1}, {"status": "running"})
    assert fmt.parse_line(line) == {"kind": "run", "run": "r1", "time": 5.0,
                                    "params": {"lr": 0.1}, "meta": {"status": "running"}}
    assert fmt.parse_line(fmt.run_record("r1", 5.0))["params"] == {}


def test_parse_line_accepts_integral_float_step_and_unknown_fields() -> None:
    rec = fmt.parse_line('{"kind":"point","run":"r","name":"x","value":1,"step":3.0,"new":1}')
    assert rec["step"] == 3 and isinstance(rec["step"], int)


@pytest.mark.parametrize(
    "line, reason",
    [
        ('{"kind":"point","run":"r","name":"x","value":1', "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"kind":"point","name":"x","value":1}', "'run'"),
        ('{"kind":"point","run":"","name":"x","value":1}', "'run'"),
        ('{"kind":"metric","run":"r"}', "unknown kind"),
        ('{"run":"r","name":"x","value":1}', "unknown kind"),
        ('{"kind":"point","run":"r","value":1}', "'name'"),
        ('{"kind":"point","run":"r","name":"x"}', "number"),
        ('{"kind":"point","run":"r","name":"x","value":"1"}', "number"),
        ('{"kind":"point","run":"r","name":"x","value":1,"step":1.5}', "'step'"),
        ('{"kind":"point","run":"r","name":"x","value":1,"step":true}', "'step'"),
        ('{"kind":"point","run":"r","name":"x","value":1,"epoch":"1"}', "'epoch'"),
        ('{"kind":"point","run":"r","name":"x","value":1,"time":"now"}', "'time'"),
        ('{"kind":"point","run":"r","name":"x","value":1,"context":{"k":1}}', "'context'"),
        ('{"kind":"point","run":"r","name":"x","value":1,"context":["k"]}', "'context'"),
        ('{"kind":"run","run":"r","params":[1]}', "'params'"),
        ("[" * 100000, "not JSON"),
    ],
)
def test_parse_line_errors(line: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        fmt.parse_line(line)

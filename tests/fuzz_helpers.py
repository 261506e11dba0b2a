"""Hostile input for the fuzz tests: strategies and a guard against hangs.

``XP_SOAK=1`` raises the number of examples (``make soak``); ``XP_FUZZ_EXAMPLES=N`` sets it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def examples(ci: int, soak: int | None = None) -> int:
    """How many examples a fuzz target runs: ``ci`` in CI, ``soak`` (default 40 times as
    many) with ``XP_SOAK=1``; ``XP_FUZZ_EXAMPLES=N`` overrides both."""
    if os.environ.get("XP_FUZZ_EXAMPLES"):
        return int(os.environ["XP_FUZZ_EXAMPLES"])
    if os.environ.get("XP_SOAK", "") not in ("", "0"):
        return soak if soak is not None else ci * 40
    return ci


def fuzz_settings(ci: int, soak: int | None = None) -> Any:
    """Settings of a fuzz target: its example count, no database, and no per-example
    deadline: on a loaded machine a slow example is not a failure (``no_hang`` catches a
    real hang, with a bound far above any normal example)."""
    return settings(max_examples=examples(ci, soak), deadline=None,
                    database=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@contextlib.contextmanager
def no_hang(seconds: int = 120) -> Iterator[None]:
    """Fail (TimeoutError) instead of hanging when one example runs for ``seconds``."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer after {seconds}s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- building blocks -----------------------------------------------------------------------

HUGE_NUMBERS = [b"1e400", b"-1e400", b"1e-400", b"9" * 400, b"-" + b"9" * 30, b"2e308",
                b"18446744073709551616", b"-9223372036854775809", b"9223372036854775807",
                b"0.0000000000000000000000000001", b"-0", b"NaN", b"Infinity", b"1E+2",
                b"0x10", b"1_000", b".5", b"5.", b"+1", b"--1"]
BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
            b"\x80", b"\xe2\x82", b"\xef\xbb\xbf"]
ODD = [b"\x00", b"\x00" * 50, b"\r", b"\r\n", b"\t", b"\x1b[31m", b"\\u0000", b"\\ud800",
       b"\"", b"\\", b"</script>", b"]]>", b"{{", b"}}", b"[" * 3, b"null", b"true", b"{}",
       b"[]", b'"__class__"', b'"__proto__"']


@st.composite
def deep(draw: Any) -> bytes:
    """Deeply nested JSON (lists or objects), sometimes unbalanced."""
    depth = draw(st.sampled_from([50, 500, 1000, 1100, 5000, 100_000]))
    if draw(st.booleans()):
        text = b"[" * depth + b"1" + b"]" * depth
    else:
        text = b'{"a":' * depth + b"1" + b"}" * depth
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text


@st.composite
def long_bytes(draw: Any) -> bytes:
    """A very long run of one byte sequence (up to a few MB)."""
    unit = draw(st.sampled_from([b"a", b"9", b"\\\\", b"\\u00e9", b"\xc3\xa9", b" ", b"\x00"]))
    return unit * draw(st.sampled_from([10_000, 300_000, 2_000_000 // len(unit)]))


def fragment() -> Any:
    """Any hostile piece of a line."""
    return st.one_of(
        st.sampled_from(HUGE_NUMBERS + BAD_UTF8 + ODD),
        st.binary(max_size=64),
        st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass")),
        deep(),
    )


def hostile_value() -> Any:
    """A JSON value position filled with something a reader must survive."""
    return st.one_of(
        st.sampled_from(HUGE_NUMBERS),
        fragment(),
        st.sampled_from([b'"x"', b"[1,2]", b'{"a":"b"}', b"null", b"true", b"1.5", b"-7"]),
    )


POINT_FIELDS = [b"kind", b"run", b"name", b"value", b"step", b"epoch", b"time", b"context",
                b"params", b"meta", b"__class__", b"\x00", b""]


@st.composite
def record_line(draw: Any) -> bytes:
    """A record-shaped line whose fields may hold anything, or plain garbage."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:
        return draw(long_bytes())
    if choice == 2:
        return draw(deep())
    kinds = st.sampled_from([b'"point"', b'"run"', b'"Point"'])
    runs = st.sampled_from([b'"bad"', b'"bad\\u0000"', b'""'])
    fields = [(b"kind", draw(kinds | hostile_value())), (b"run", draw(runs | hostile_value()))]
    for _ in range(draw(st.integers(0, 6))):
        fields.append((draw(st.sampled_from(POINT_FIELDS)), draw(hostile_value())))
    body = b",".join(b'"' + k + b'":' + v for k, v in fields)
    line = b"{" + body + b"}"
    if draw(st.booleans()):  # cut, or with a stray byte inside
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.sampled_from([b"", b"\x00", b"\xff", b'"', b"}"])) + line[at:]
    return line.replace(b"\n", b" ")


def good_line(step: int) -> bytes:
    """A valid point of the run ``good``; its step identifies it."""
    return (b'{"kind":"point","run":"good","name":"m","value":%d,"step":%d,"time":1.0}'
            % (step, step))

"""Fuzzing every importer in ``xpcli/importers/`` with hostile files where it looks.

Each importer gets its usual layout with the files filled by random bytes, huge numbers,
deep nesting, invalid UTF-8, NUL bytes, very long lines and YAML Python tags. An import
either writes runs or raises an :class:`XpError` (nothing found); it never raises anything
else, never hangs, never lets a programming error (TypeError, KeyError, ...) pass as a
skipped run, writes only under ``<into>/imported/<kind>/``, and names the file of every
problem it reports. What it writes reads back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzz_helpers import fragment, fuzz_settings, long_bytes, no_hang, record_line
from hypothesis import given, reject
from hypothesis import strategies as st

from xpcli import load
from xpcli.errors import XpError
from xpcli.importers import KINDS, REGISTRY, import_runs

pytestmark = pytest.mark.slow  # the whole module: make test-fast leaves it out

#: Exceptions that mean a bug in the importer, not a broken file. (A RecursionError from
#: nesting deeper than Python's JSON/YAML parsers go skips that run, naming its file.)
BUGS = ("TypeError", "AttributeError", "KeyError", "IndexError", "OverflowError",
        "UnicodeError", "UnicodeDecodeError", "UnicodeEncodeError",
        "ZeroDivisionError", "AssertionError", "NameError", "UnboundLocalError")


def known_issue(text: str) -> bool:
    """Failures pinned by strict xfail tests; the fuzzer looks past them until fixed."""
    return any(sign in text for sign in KNOWN)


#: Signs of the pinned failures (e.g. "UnicodeDecodeError"); none at the moment.
KNOWN: tuple[str, ...] = ()


@st.composite
def text_file(draw: st.DrawFn) -> bytes:
    """The bytes of a text file (JSON, YAML, CSV or lines) that may be anything."""
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return draw(st.binary(max_size=2000))
    if kind == 1:
        return draw(long_bytes())
    if kind == 2:
        return b"\n".join(draw(st.lists(record_line(), max_size=6)))
    if kind == 3:  # a YAML file trying to run code
        return draw(st.sampled_from(YAML_PAYLOADS))
    sep = draw(st.sampled_from([b",", b"\n", b": ", b" ", b""]))
    return sep.join(draw(st.lists(fragment(), max_size=20)))


MARKER = Path(tempfile.gettempdir()) / "xp-fuzz-importer-ran-code"
YAML_PAYLOADS = [
    f'lr: !!python/object/apply:os.system ["touch {MARKER}"]'.encode(),
    f'!!python/object/apply:subprocess.check_output [["touch", "{MARKER}"]]'.encode(),
    b"a: !!python/name:os.system\n",
    b'x: !!python/object/new:type ["X", [], {}]\n',
    b"a: &a [*a]\n",  # a self-reference
    b"a: " + b"[" * 5000 + b"\n",
    b"{" * 3000,
    b"key: value\n" * 3,
]


def _registered_layout(kind: str) -> Callable[[Path, list[bytes]], None]:
    """The hostile files at the places a minimal source of ``kind`` keeps its files
    (``Registration.layout``), one file each, in order."""
    def layout(src: Path, files: list[bytes]) -> None:
        for name, data in zip(REGISTRY[kind].layout, files):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes(data)
    return layout


def _mlflow(src: Path, files: list[bytes]) -> None:
    """Deeper than the registered layout: a valid experiment, and a run meta.yaml whose
    start time (or, when the bytes start with ``#raw``, the whole file) is hostile, so the
    rest reaches the metric, param and tag readers."""
    run = src / "0" / "0123456789abcdef"
    for sub in ("metrics", "params", "tags"):
        (run / sub).mkdir(parents=True)
    (src / "0" / "meta.yaml").write_bytes(b"experiment_id: '0'\nname: Default\n")
    meta = files[0] if files and files[0].startswith(b"#raw") else (
        b"run_uuid: 0123456789abcdef\nexperiment_id: '0'\nstart_time: "
        + (files[0][:40] if files else b"1") + b"\nlifecycle_stage: active\n")
    (run / "meta.yaml").write_bytes(meta)
    for i, data in enumerate(files[1:]):
        where = ["metrics/loss", "params/lr", "tags/mlflow.runName", "metrics/f1"][i % 4]
        (run / where).write_bytes(data)


#: Where each registered importer gets its hostile files.
LAYOUTS: dict[str, Callable[[Path, list[bytes]], None]] = {
    **{kind: _registered_layout(kind) for kind in REGISTRY}, "mlflow": _mlflow,
}


def test_every_importer_module_is_registered_and_fuzzed() -> None:
    import pkgutil

    import xpcli.importers

    modules = {m.name for m in pkgutil.iter_modules(xpcli.importers.__path__)
               if not m.name.startswith("_")}
    assert modules == set(KINDS), "register each importer module in xpcli/importers/__init__.py"
    assert set(KINDS) == set(LAYOUTS)


@pytest.mark.parametrize("kind", sorted(KINDS))
@fuzz_settings(ci=6, soak=120)
@given(files=st.lists(text_file(), min_size=1, max_size=5))
def test_importer_survives_hostile_files(kind: str, files: list[bytes]) -> None:
    base = Path(tempfile.mkdtemp(prefix="xp-fuzz-import-"))
    try:
        src, into = base / "src", base / "runs"
        src.mkdir()
        LAYOUTS[kind](src, files)
        with no_hang():
            try:
                summary = import_runs(kind, str(src), str(into))
            except XpError as exc:
                assert str(exc).strip() and "\n" not in str(exc)
                summary = None
            except Exception as exc:
                if known_issue(f"{type(exc).__name__}: {exc}"):
                    reject()
                raise
        assert not MARKER.exists(), "a YAML payload ran code"
        written = [p for p in base.rglob("*") if p.is_file() and not p.is_relative_to(src)]
        outside = [p for p in written
                   if not p.is_relative_to(into / "imported" / KINDS[kind].rsplit(".")[-1])]
        assert not outside, outside
        if summary is None:
            return
        if any(known_issue(str(p)) for p in summary.problems):
            reject()
        for problem in summary.problems:
            assert problem.path, str(problem)
            assert not any(f"({bug}" in problem.message for bug in BUGS), str(problem)
        if summary.runs:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("XP_NO_CACHE", "1")
                ds = load(into)
                assert ds.runs.collect().height == len(summary.runs)
                assert ds.points.collect().height == summary.points
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if MARKER.exists():
            os.unlink(MARKER)


def _import(kind: str, files: list[bytes], tmp_path: Path):  # noqa: ANN202
    (tmp_path / "src").mkdir()
    LAYOUTS[kind](tmp_path / "src", files)
    return import_runs(kind, str(tmp_path / "src"), str(tmp_path / "runs"))


def test_mlflow_run_name_not_utf8(tmp_path: Path) -> None:
    summary = _import("mlflow", [b"", b"1 0.5 3\n", b"0.1", b"\xff"], tmp_path)
    assert [r.run for r in summary.runs] == ["01234567"]  # named by its uuid instead
    assert summary.points == 1
    (problem,) = summary.problems
    assert problem.path.endswith("mlflow.runName")
    assert "not UTF-8 text; tag skipped" in problem.message
    assert summary.skipped == {"unreadable files": 1}


def test_mlflow_step_beyond_64_bits(tmp_path: Path) -> None:
    metric = b"1 0.5 99999999999999999999999\n1 0.7 2\n1 0.9 9223372036854775807\n"
    summary = _import("mlflow", [b"", metric], tmp_path)
    assert summary.points == 2
    assert summary.skipped == {"points with an infinite or out-of-range step": 1}
    (problem,) = summary.problems
    assert problem.path.endswith("loss") and "(lines 1)" in problem.message
    steps = load(tmp_path / "runs").points.collect()["step"].sort().to_list()
    assert steps == [2, 2**63 - 1]


def test_wandb_config_with_an_alias_cycle(tmp_path: Path) -> None:
    summary = _import("wandb", [b"a: &a [*a]\nb: 1\n", b'{"loss": 0.5, "_step": 3}'],
                      tmp_path)
    assert summary.points == 1
    (problem,) = summary.problems
    assert problem.path.endswith("config.yaml")
    assert problem.message.startswith("param 'a': a value refers to itself")
    assert problem.message.endswith("the run's params skipped")
    assert "b" not in load(tmp_path / "runs").params


def test_lightning_hparams_with_an_alias_cycle(tmp_path: Path) -> None:
    summary = _import("lightning", [b"epoch,step,loss\n0,1,0.5\n", b"a: &a {b: *a}\n"],
                      tmp_path)
    assert summary.points == 1
    (problem,) = summary.problems
    assert problem.path.endswith("hparams.yaml")
    assert "param 'a.b': a value refers to itself" in problem.message


def test_hf_one_infinite_step_skips_only_that_point(tmp_path: Path) -> None:
    state = (b'{"log_history": [{"step": 1e999, "loss": 1}, {"step": NaN, "loss": 2},'
             b' {"step": 1e300, "loss": 3}, {"step": 2, "loss": 0.5}]}')
    summary = _import("hf", [state], tmp_path)
    assert summary.points == 1
    assert summary.skipped == {"points with an infinite or out-of-range step": 3}
    points = load(tmp_path / "runs").points.collect()
    assert points.select("step", "value").rows() == [(2, 0.5)]


def test_wandb_infinite_step_skips_only_that_row(tmp_path: Path) -> None:
    history = b'{"_step": Infinity, "loss": 1}\n{"_step": 4, "loss": 0.5}\n'
    summary = _import("wandb", [b"", b"", b"", history], tmp_path)
    assert summary.points == 1
    assert summary.skipped["points with an infinite or out-of-range step"] == 1

"""Shared fixtures: the repository's sample_runs and a tiny, fully determined runs directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RUNS = ROOT / "sample_runs"
PYTHON = sys.executable
T0 = 1767225600.0  # 2026-01-01T00:00:00Z


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the read cache out of the home folder (subprocesses inherit it too)."""
    os.environ["XP_CACHE_DIR"] = str(tmp_path_factory.mktemp("xp-cache"))


@pytest.fixture
def sample_runs() -> Path:
    """The reference story's 240 runs (24 JSONL files + 6 Parquet archives)."""
    assert SAMPLE_RUNS.is_dir(), "sample_runs/ is missing; run `make sample-runs`"
    return SAMPLE_RUNS


def write_tiny(runs_dir: Path) -> Path:
    """Two runs with fixed times: ``a`` (lr 0.1, seed 1) and ``b`` (lr 0.01, seed 2).

    ``a``: f1 lang=de/en at epochs 1, 2; loss at steps 0, 1.  ``b``: f1 lang=en at epoch 1.
    """
    from xpcli import Run

    run = Run(runs_dir, "a", params={"lr": 0.1, "seed": 1}, time=T0, flush_seconds=0)
    for epoch, (de, en) in enumerate([(0.5, 0.7), (0.25, 0.75)], start=1):
        run.track(de, "f1", epoch=epoch, context={"lang": "de"}, time=T0 + epoch)
        run.track(en, "f1", epoch=epoch, context={"lang": "en"}, time=T0 + epoch)
    run.track(2.0, "loss", step=0, time=T0 + 0.5)
    run.track(1.5, "loss", step=1, time=T0 + 1.5)
    run.close(time=T0 + 10)
    run = Run(runs_dir, "b", params={"lr": 0.01, "seed": 2}, time=T0 + 60, flush_seconds=0)
    run.track(0.5, "f1", epoch=1, context={"lang": "en"}, time=T0 + 61)
    run.close(status="failed", time=T0 + 70)
    return runs_dir


@pytest.fixture
def tiny_runs(tmp_path: Path) -> Path:
    return write_tiny(tmp_path / "runs")


def wait_for(predicate: Callable[[], object], timeout: float = 120.0) -> bool:
    """Poll ``predicate`` every 10 ms until it holds or ``timeout`` passes: tests wait for
    an event (a line written, a file changed), never for a fixed time."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def run_python(code: str, *args: str, env: dict[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` with the test interpreter; text output captured."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([PYTHON, "-c", code, *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)



GOLDEN = ROOT / "tests" / "golden"
GOLDEN_VERSIONS = GOLDEN / "versions.json"


def check_golden(fig: object, name: str, tmp_path: Path) -> None:
    """Compare a figure's SVG with ``tests/golden/<name>``; ``XP_UPDATE_GOLDEN=1`` rewrites it.

    SVG bytes depend on the matplotlib version (layout, path output), so the goldens
    record the version they were made with, and another version skips the comparison
    with that reason instead of failing on a difference nobody introduced.
    """
    import json

    import matplotlib

    from xpcli.plots.common import save_figure

    out = tmp_path / name
    save_figure(fig, str(out))  # type: ignore[arg-type]
    golden = GOLDEN / name
    versions = json.loads(GOLDEN_VERSIONS.read_text()) if GOLDEN_VERSIONS.exists() else {}
    if os.environ.get("XP_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(out.read_bytes())
        versions[name] = matplotlib.__version__
        GOLDEN_VERSIONS.write_text(json.dumps(versions, indent=1, sort_keys=True) + "\n")
    assert golden.exists(), "no golden yet: run with XP_UPDATE_GOLDEN=1"
    made_with = versions.get(name)
    if made_with != matplotlib.__version__:
        pytest.skip(f"{name} was made with matplotlib {made_with}; this is "
                    f"{matplotlib.__version__} (XP_UPDATE_GOLDEN=1 to remake it)")
    assert out.read_bytes() == golden.read_bytes(), (
        f"{name} changed; look at it, then XP_UPDATE_GOLDEN=1 to accept")


def half_then_enospc(monkeypatch: pytest.MonkeyPatch, fd: int) -> list[int]:
    """``os.write`` on ``fd`` (as the writer calls it) writes half its data, then fails
    with ENOSPC, alternately. Returns the sizes asked for, one per call."""
    import errno

    from xpcli import writer as writer_mod

    real = os.write
    calls: list[int] = []

    def fake(target: int, data) -> int:  # noqa: ANN001
        if target != fd:
            return real(target, data)
        calls.append(len(data))
        if len(calls) % 2 == 1:
            return real(target, bytes(data[: max(1, len(data) // 2)]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer_mod.os, "write", fake)
    return calls


def raw_controls(text: str) -> list[str]:
    """Characters a terminal would act on or hide (C0/C1 controls, bidi and other format
    characters, separators, lone surrogates) in ``text``; newlines between lines are fine."""
    import unicodedata

    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl",
                                                                          "Zp", "Cs")]


class ReadLog:
    """``open`` for the files under ``folder`` that logs each ``read``: (offset, bytes
    asked for, bytes got, file name), in ``reads``. Other files open as usual."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import builtins

        self.reads: list[tuple[int, int, int, str]] = []
        real = builtins.open
        log = self

        class Logged:
            def __init__(self, fh) -> None:  # noqa: ANN001
                self._fh = fh

            def read(self, size: int = -1) -> bytes:
                at = self._fh.tell()
                data = self._fh.read(size)
                log.reads.append((at, size, len(data), Path(self._fh.name).name))
                return data

            def __getattr__(self, name: str):  # noqa: ANN204
                return getattr(self._fh, name)

            def __enter__(self):  # noqa: ANN204
                return self

            def __exit__(self, *exc: object) -> None:
                self._fh.close()

        def logged_open(file, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            fh = real(file, mode, *args, **kwargs)
            inside = str(file).startswith(str(folder)) and "b" in mode
            return Logged(fh) if inside else fh

        monkeypatch.setattr(builtins, "open", logged_open)


@pytest.fixture
def read_log(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], ReadLog]:
    """``read_log(folder)``: from now on, log every read of a file under ``folder``."""
    return lambda folder: ReadLog(folder, monkeypatch)

"""xp: analysis of ML training-run logs from the command line and from Python.

Training jobs write with :class:`Run`; notebooks read with :func:`load`::

    from xpcli import Run, load

    with Run("runs", params={"lr": 1e-4, "seed": 1}) as run:
        run.track(0.81, name="f1", epoch=3, context={"lang": "de"})

    runs, points = load("runs")          # two Polars LazyFrames

Importing this package imports no polars: ``load`` pulls it in when first called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import XpError

#: The one place the version is written: pyproject.toml reads it, CHANGELOG.md lists it.
__version__ = "0.1.0"
__all__ = ["Run", "load", "new_run_id", "XpError", "__version__"]

if TYPE_CHECKING:
    from .dataset import Dataset
    from .writer import Run, new_run_id


def __getattr__(name: str) -> Any:
    """``Run`` and ``new_run_id`` load the writer when first used: a command that only
    reads (``xp select``) never imports it."""
    if name in ("Run", "new_run_id"):
        from . import writer

        return getattr(writer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(runs_dir: Any = "runs") -> "Dataset":
    """Load a runs directory: ``runs, points = xpcli.load("runs")`` (see :mod:`xpcli.dataset`)."""
    from .dataset import load as _load

    return _load(runs_dir)

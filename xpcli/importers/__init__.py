"""Importers: one module per foreign log format, driven by :func:`import_runs`.

``import_runs("tensorboard", "logs/", "runs")`` reads every run under ``logs/`` and
writes one Parquet file per run to ``runs/imported/tensorboard/``; every command can then
read them. See docs/importers.md for what each format maps to.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import UsageError
from ._base import ImportedRun, ImportSummary, Problem, Progress

#: kind -> module, in the order the help lists them.
KINDS: dict[str, str] = {
    "hf": "xpcli.importers.hf",
    "lightning": "xpcli.importers.lightning",
    "mlflow": "xpcli.importers.mlflow",
    "tensorboard": "xpcli.importers.tensorboard",
    "wandb": "xpcli.importers.wandb",
}
ALIASES = {"huggingface": "hf", "trainer": "hf", "tb": "tensorboard", "csv": "lightning"}

__all__ = ["KINDS", "ImportSummary", "ImportedRun", "Problem", "import_runs", "importer"]


def importer(kind: str) -> Any:
    """The importer module of ``kind`` (or an alias such as ``tb``)."""
    name = ALIASES.get(kind.lower(), kind.lower())
    if name not in KINDS:
        raise UsageError(f"unknown import kind {kind!r}; use one of {', '.join(KINDS)}")
    return importlib.import_module(KINDS[name])


def import_runs(kind: str, source: str, into: str, *, params_from_name: str | None = None,
                context_from_name: str | None = None,
                progress: Progress | None = None) -> ImportSummary:
    """Import the runs of ``source`` (a ``kind`` log folder) into the runs dir ``into``."""
    from ._base import import_source

    return import_source(importer(kind), source, into, params_regex=params_from_name,
                         context_regex=context_from_name, progress=progress)

"""Importers: one module per foreign log format, registered here, driven by :func:`import_runs`.

``import_runs("tensorboard", "logs/", "runs")`` reads every run under ``logs/`` and
writes one Parquet file per run to ``runs/imported/tensorboard/``; every command can then
read them. See docs/importers.md for what each format maps to.

:data:`REGISTRY` is the one list of importers: ``xp import``'s KIND choices and their help,
the table of docs/importers.md (``make docs``) and the importer fuzz tests read it. A new
importer is a module providing :class:`~xpcli.importers._base.Importer` and one
:class:`Registration` below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from . import aim, dvclive, hf, lightning, mlflow, optuna, table, tensorboard, wandb
from ._base import ImportedRun, Importer, ImportSummary, Problem, Progress


@dataclass(frozen=True)
class Registration:
    """One importer and what the CLI, the docs and the tests say about it.

    ``importer``: the module (typed: mypy checks it provides :class:`Importer`).
    ``title``: the format's name for people (``TensorBoard``).
    ``help``: the phrase after its KIND in ``xp import --help`` (``hf (trainer_state.json)``).
    ``reads``: rows of the docs table, ``(what is read, the extra it needs or None)``.
    ``layout``: the files of a minimal source, relative to it: where the fuzz tests put
    hostile bytes. ``aliases``: other names :func:`import_runs` accepts (``tb``).
    ``options``: the names of the importer's own options (``run_column``), which reach
    it as ``report.options``.
    """

    importer: Importer
    title: str
    help: str
    reads: tuple[tuple[str, str | None], ...]
    layout: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """The importer's KIND."""
        return self.importer.KIND

    @property
    def module(self) -> str:
        """The dotted name of the importer's module."""
        return str(getattr(self.importer, "__name__", ""))


#: Every importer, by KIND, in the order the help and the docs list them.
REGISTRY: dict[str, Registration] = {r.kind: r for r in (
    Registration(
        aim, "Aim", "a folder holding .aim/",
        reads=(("an Aim repository (`.aim/`) through Aim's SDK, from a temporary copy",
                "aim"),),
        layout=(".aim/VERSION", ".aim/run_metadata.sqlite"),
        options=("system",)),
    Registration(
        dvclive, "DVCLive", "dvclive/ folders, DVC experiments",
        reads=(("DVCLive `metrics.json`, `plots/metrics/**/*.tsv` and `params.yaml` "
                "(+ a DVC `params.yaml` beside `dvclive/`)", "yaml"),),
        layout=("exp1/dvclive/metrics.json", "exp1/dvclive/params.yaml",
                "exp1/dvclive/plots/metrics/loss.tsv",
                "exp1/dvclive/plots/metrics/train/loss.tsv", "exp1/params.yaml"),
        aliases=("dvc",)),
    Registration(
        hf, "HF Trainer", "trainer_state.json",
        reads=(("Hugging Face Trainer `trainer_state.json` (+ `all_results.json`, "
                "`training_args.json`, `config.json`)", None),),
        layout=("run1/trainer_state.json", "run1/config.json", "run1/all_results.json",
                "run1/training_args.json"),
        aliases=("huggingface", "trainer")),
    Registration(
        lightning, "Lightning CSV", "CSVLogger metrics.csv",
        reads=(("PyTorch Lightning CSVLogger `version_N/metrics.csv` + `hparams.yaml`",
                "yaml"),),
        layout=("version_0/metrics.csv", "version_0/hparams.yaml"),
        aliases=("csv",)),
    Registration(
        mlflow, "MLflow", "an mlruns/ folder, or a tracking URI with the mlflow extra",
        reads=(("an `mlruns/` file store", "yaml"),
               ("any tracking URI (`http://…`, `sqlite:///…`, `databricks`, `file:///…`)",
                "mlflow")),
        layout=("0/meta.yaml", "0/0123456789abcdef/meta.yaml",
                "0/0123456789abcdef/metrics/loss", "0/0123456789abcdef/params/lr",
                "0/0123456789abcdef/tags/mlflow.runName")),
    Registration(
        optuna, "Optuna", "a study storage: sqlite:///study.db, a .db or journal file",
        reads=(("a study storage (RDB URL, SQLite file, journal file) through Optuna's API",
                "optuna"),),
        layout=("study.db",),
        options=("study",)),
    Registration(
        table, "plain table", "CSV/TSV/JSON/JSONL/Parquet files",
        reads=(("CSV/TSV (Keras `CSVLogger`, pandas `to_csv`), JSONL, a JSON list of rows, "
                "a JSON object per run", None),
               ("Parquet (pandas `to_parquet`)", None)),
        layout=("log.csv", "rows.tsv", "config_0.json", "rows.jsonl", "dump.parquet"),
        aliases=("csvlogger", "json"),
        options=("run_column", "step_column", "epoch_column", "name_column", "value_column",
                 "param_column")),
    Registration(
        tensorboard, "TensorBoard", "event files",
        reads=(("event files (`events.out.tfevents.*`)", "tensorboard"),),
        layout=("run/events.out.tfevents.1700000000.host",
                "run/train/events.out.tfevents.1700000001.host"),
        aliases=("tb",)),
    Registration(
        wandb, "W&B", "local wandb/run-* folders",
        reads=(("`wandb/run-*/files/` (config, summary)", "yaml"),
               ("+ full history from the binary `run-*.wandb` file", "wandb")),
        layout=tuple(f"run-20250101_000000-abc123/{name}" for name in (
            "files/config.yaml", "files/wandb-summary.json", "files/wandb-metadata.json",
            "files/wandb-history.jsonl", "run-abc123.wandb"))),
)}

#: kind -> the module implementing it.
KINDS: dict[str, str] = {kind: r.module for kind, r in REGISTRY.items()}
#: other name -> kind.
ALIASES: dict[str, str] = {alias: r.kind for r in REGISTRY.values() for alias in r.aliases}

__all__ = ["KINDS", "REGISTRY", "ImportSummary", "ImportedRun", "Importer", "Problem",
           "Registration", "import_runs", "importer"]


def importer(kind: str) -> Importer:
    """The importer module of ``kind`` (or an alias such as ``tb``)."""
    name = ALIASES.get(kind.lower(), kind.lower())
    if name not in REGISTRY:
        raise UsageError(f"unknown import kind {kind!r}; use one of {', '.join(REGISTRY)}")
    return REGISTRY[name].importer


def import_runs(kind: str, source: str, into: str, *, params_from_name: str | None = None,
                context_from_name: str | None = None,
                progress: Progress | None = None, dry_run: bool = False,
                **options: Any) -> ImportSummary:
    """Import the runs of ``source`` (a ``kind`` log folder) into the runs dir ``into``.

    ``dry_run`` reads and counts everything and writes nothing. ``options`` are the
    importer's own (its registration's ``options``, e.g. ``run_column`` for ``table``);
    a name it does not take is a :class:`UsageError`.
    """
    from ._base import import_source

    module = importer(kind)
    takes = REGISTRY[module.KIND].options
    given = {name: value for name, value in options.items()
             if value is not None and value is not False and value != ()}
    unknown = sorted(set(given) - set(takes))
    if unknown:
        flags = ", ".join("--" + name.replace("_", "-") for name in unknown)
        raise UsageError(f"{flags}: not an option of `xp import {module.KIND}`"
                         + (f" (it takes {', '.join('--' + t.replace('_', '-') for t in takes)})"
                            if takes else ""))
    return import_source(module, source, into, params_regex=params_from_name,
                         context_regex=context_from_name, progress=progress,
                         dry_run=dry_run, options=given)

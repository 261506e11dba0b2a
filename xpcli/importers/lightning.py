"""PyTorch Lightning CSVLogger: ``version_N/metrics.csv`` and ``hparams.yaml``.

One run per folder holding ``metrics.csv`` (or only ``hparams.yaml``, reported as
missing its metrics). Lightning writes sparse rows: each row has ``epoch`` and ``step``
and only the metrics logged at that moment; every non-empty cell becomes one point with
that row's step and epoch, so the train and validation rows of one step merge by
themselves. Metric names stay as logged (``train_loss``, ``valid_loss``): Lightning
imposes no naming convention; ``--context-from-name`` splits them where a project has
one. ``hparams.yaml`` is read with a safe YAML loader: a value with a Python object tag
(the ``model`` that ``save_hyperparameters()`` dumps) is refused, never constructed, and
reported with its key; the plain params beside it (``lr``, ``batch_size``) are kept.
"""

from __future__ import annotations

import math
import os

from ._base import (
    Report,
    RunData,
    SourceRun,
    checked_params,
    load_yaml_params_or_skip,
    read_rows,
    relative_name,
    report_bad_rows,
    step_or_none,
    walk_files,
)

KIND = "lightning"
LOOK_FOR = "point it at a lightning_logs folder (version_N/metrics.csv)"

_AXES = ("epoch", "step")


def discover(source: str, report: Report) -> list[SourceRun]:
    """One source run per folder with metrics.csv or hparams.yaml."""
    files = walk_files(source, ("metrics.csv", "hparams.yaml"))
    folders = sorted({os.path.dirname(f) for f in files})
    root = source if os.path.isdir(source) else os.path.dirname(source)
    return [SourceRun(relative_name(root, folder), folder) for folder in folders]


def _number(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return math.nan if text.lower() == "nan" else None


def read(run: SourceRun, report: Report) -> RunData | None:
    """Points from metrics.csv, params from hparams.yaml."""
    data = RunData()
    hparams = os.path.join(run.path, "hparams.yaml")
    if os.path.isfile(hparams):
        params, _ = load_yaml_params_or_skip(hparams, report)
        if isinstance(params, dict):
            data.params = checked_params({str(k): v for k, v in params.items()}, hparams,
                                         report)
        elif params is not None:
            report.skip(hparams, "unreadable files",
                        "not a mapping of names to values; params skipped")
    metrics = os.path.join(run.path, "metrics.csv")
    if not os.path.isfile(metrics):
        report.skip(metrics, "missing files", "no metrics.csv; run skipped")
        return None
    rows = read_rows(metrics, report, "run skipped")
    if rows is None:
        return None
    if not rows:
        report.skip(metrics, "empty runs", "empty file; run skipped")
        return None
    header = [h.strip() for h in rows[0]]
    columns = [(i, name) for i, name in enumerate(header) if name not in _AXES and name]
    epoch_at = header.index("epoch") if "epoch" in header else None
    step_at = header.index("step") if "step" in header else None
    bad_rows: list[int] = []
    bad_cells = 0
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            bad_rows.append(number)
            continue
        epoch = _number(row[epoch_at]) if epoch_at is not None else None
        step = _number(row[step_at]) if step_at is not None else None
        if step is not None and (not step.is_integer() or step_or_none(step) is None):
            bad_rows.append(number)
            continue
        for i, name in columns:
            cell = row[i]
            if not cell.strip():
                continue
            value = _number(cell)
            if value is None:
                bad_cells += 1
                continue
            data.add(name, value, step=None if step is None else int(step), epoch=epoch)
    report_bad_rows(report, metrics, bad_rows)
    report.skip(metrics, "non-numeric values", count=bad_cells)
    if not len(data):
        report.skip(metrics, "empty runs", "no metric values; run skipped")
        return None
    return data

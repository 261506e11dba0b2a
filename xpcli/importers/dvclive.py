"""DVCLive output and DVC experiment folders: ``params.yaml``, ``metrics.json``, TSV series.

One run per DVCLive folder: a folder holding ``metrics.json`` or ``plots/metrics/``
(``dvclive/`` by default, found anywhere under the source, so a folder of DVC experiments
each with its ``dvclive/`` works). The run is named after the folder, or after its parent
when the folder is called ``dvclive`` (the experiment's or the commit's folder).

- ``params.yaml`` (nested -> dotted params, read with the safe YAML loader: Python object
  tags are refused and reported, never constructed). A DVC ``params.yaml`` beside the
  ``dvclive/`` folder is read first and DVCLive's own overrides it key by key.
- ``plots/metrics/**/*.tsv``: one series per file, each row a point at its ``step``
  (``timestamp``, DVCLive's milliseconds since the epoch, becomes the point's time). A
  first sub-folder is a context: ``plots/metrics/train/loss.tsv`` is metric ``loss`` with
  ``split=train``; deeper folders stay in the name (``train/a/loss.tsv`` -> ``a/loss``).
- ``metrics.json``: the final values; a value with no series (``test.loss`` when only
  ``train/`` and ``eval/`` are plotted) becomes one point at the file's ``step``, with the
  same name and context rules (``{"test": {"loss": 1.5}}`` and ``{"test/loss": 1.5}``,
  what ``Live.summary["test/loss"]`` writes, are ``loss`` with ``split=test``).
  Values that have a series are already there. ``step`` itself is not a metric.

``plots/custom/``, ``plots/images/`` and other DVCLive outputs are not series and are
left alone.
"""

from __future__ import annotations

import math
import os
from typing import Any

from .. import format as fmt
from ._base import (
    BAD_STEP,
    Report,
    RunData,
    SourceRun,
    checked_params,
    load_yaml_params_or_skip,
    read_json_or_skip,
    read_rows,
    relative_name,
    report_bad_rows,
    step_or_none,
)

KIND = "dvclive"
LOOK_FOR = ("point it at a dvclive/ folder or a folder of DVC experiments "
            "(metrics.json, params.yaml, plots/metrics/*.tsv)")

_SERIES = os.path.join("plots", "metrics")
_CONTEXT_KEY = "split"


def _is_live_folder(folder: str) -> bool:
    return (os.path.isfile(os.path.join(folder, "metrics.json"))
            or os.path.isdir(os.path.join(folder, _SERIES)))


def discover(source: str, report: Report) -> list[SourceRun]:
    """One source run per folder holding metrics.json or plots/metrics/."""
    if os.path.isfile(source):
        source = os.path.dirname(source)
    folders: list[str] = []
    for folder, dirs, _files in os.walk(source, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if _is_live_folder(folder):
            folders.append(folder)
            dirs[:] = []  # a DVCLive folder's plots/ are not runs of their own
    runs = []
    root = os.path.dirname(os.path.normpath(source)) \
        if os.path.basename(os.path.normpath(source)) == "dvclive" else source
    for folder in sorted(folders):
        named = os.path.dirname(folder) if os.path.basename(folder) == "dvclive" else folder
        runs.append(SourceRun(relative_name(root, named), folder))
    return runs


def _read_params(path: str, report: Report) -> dict[str, Any]:
    params, _ = load_yaml_params_or_skip(path, report)
    if params is None:
        return {}
    if not isinstance(params, dict):
        report.skip(path, "unreadable files", "not a mapping of names to values; params skipped")
        return {}
    return fmt.flatten({str(k): v for k, v in params.items()})


def _split(parts: list[str]) -> tuple[str, dict[str, str] | None]:
    """Path parts (``["train", "loss"]``) -> a metric name and its context."""
    if len(parts) > 1:
        # A key from JSON may hold a lone surrogate ("\\ud800"): made writable.
        split = parts[0].encode("utf-8", "replace").decode("utf-8")
        return "/".join(parts[1:]), {_CONTEXT_KEY: split}
    return parts[0], None


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _read_tsv(path: str, name: str, context: dict[str, str] | None, data: RunData,
              report: Report) -> bool:
    """The points of one TSV series; False when the file holds none."""
    rows = read_rows(path, report, "series skipped", delimiter="\t")
    if rows is None:
        return False
    if not rows:
        report.skip(path, "empty series", "empty file; series skipped")
        return False
    header = [h.strip() for h in rows[0]]
    values = [i for i, h in enumerate(header) if h not in ("step", "timestamp")]
    if "step" not in header or len(values) != 1:
        report.skip(path, "unreadable files",
                    f"header {header[:4]!r} is not DVCLive's 'step' and one value column; "
                    "series skipped")
        return False
    at_step, at_value = header.index("step"), values[0]
    at_time = header.index("timestamp") if "timestamp" in header else None
    bad_rows: list[int] = []
    bad_steps = 0
    added = 0
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            bad_rows.append(number)
            continue
        step_value = _number(row[at_step])
        value = _number(row[at_value])
        time = _number(row[at_time]) if at_time is not None else None
        if step_value is None or value is None:
            bad_rows.append(number)
            continue
        step = step_or_none(step_value)
        if step is None:
            bad_steps += 1
            continue
        data.add(name, value, step=step,
                 time=None if time is None or not math.isfinite(time) else time / 1000.0,
                 context=context)
        added += 1
    report_bad_rows(report, path, bad_rows)
    report.skip(path, BAD_STEP, count=bad_steps)
    return added > 0


def _leaves(value: Any, parts: list[str], out: list[tuple[list[str], Any]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():  # "test/acc" (Live.summary's own key) as nesting
            _leaves(item, [*parts, *(p for p in str(key).split("/") if p)], out)
    else:
        out.append((parts, value))


def read(run: SourceRun, report: Report) -> RunData | None:
    """Params from params.yaml, series from plots/metrics/, the rest of metrics.json."""
    data = RunData()
    params: dict[str, Any] = {}
    parent = os.path.dirname(run.path)
    if os.path.basename(run.path) == "dvclive" and os.path.isfile(
            os.path.join(parent, "params.yaml")):
        params.update(_read_params(os.path.join(parent, "params.yaml"), report))
    own = os.path.join(run.path, "params.yaml")
    if os.path.isfile(own):
        params.update(_read_params(own, report))
    data.params = checked_params(params, own, report)

    plotted: set[tuple[str, ...]] = set()
    series_root = os.path.join(run.path, _SERIES)
    for folder, dirs, files in os.walk(series_root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            if not file.endswith(".tsv") or file.startswith("."):
                continue
            path = os.path.join(folder, file)
            rel = os.path.relpath(path, series_root)[: -len(".tsv")]
            parts = rel.split(os.sep)
            name, context = _split(parts)
            if _read_tsv(path, name, context, data, report):
                plotted.add(tuple(parts))

    metrics_path = os.path.join(run.path, "metrics.json")
    if os.path.isfile(metrics_path):
        metrics = read_json_or_skip(metrics_path, report, "its final values skipped")
        if metrics is not None and not isinstance(metrics, dict):
            report.skip(metrics_path, "unreadable files",
                        "not a JSON object; its final values skipped")
        elif metrics is not None:
            _final_points(metrics, metrics_path, plotted, data, report)
    if not len(data):
        report.skip(run.path, "empty runs", "no series and no numeric metrics; run skipped")
        return None
    return data


def _final_points(metrics: dict[str, Any], path: str, plotted: set[tuple[str, ...]],
                  data: RunData, report: Report) -> None:
    raw_step = metrics.get("step")
    step = step_or_none(raw_step) if isinstance(raw_step, (int, float)) and not isinstance(
        raw_step, bool) else None
    leaves: list[tuple[list[str], Any]] = []
    _leaves({k: v for k, v in metrics.items() if k != "step"}, [], leaves)
    not_numbers = 0
    for parts, value in leaves:
        if tuple(parts) in plotted:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            not_numbers += 1
            continue
        name, context = _split(parts)
        data.add(name, value, step=step, context=context)
    report.skip(path, "non-numeric values", count=not_numbers)

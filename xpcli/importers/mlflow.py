"""MLflow: the ``mlruns/`` file store read natively, or any tracking URI via MLflow's client.

A plain path is read without the mlflow package (only PyYAML, for ``meta.yaml``): every
``<experiment>/<run>/`` folder with a run ``meta.yaml``, its ``params/``, ``metrics/``
(lines ``timestamp value step``) and ``tags/``. A source with a scheme (``http://...``,
``sqlite:///mlflow.db``, ``databricks``, ``file:///...``) is read through
``mlflow.tracking.MlflowClient`` and needs ``pip install 'xpcli[mlflow]'``.

Mapping: the run name (``mlflow.runName``, else the first 8 characters of the run uuid)
names the run; params are converted from MLflow's text (``0.3`` -> 0.3, ``[256, 128]`` ->
a list); each metric point keeps its step and its timestamp (as ``time``), no epoch;
points sharing a step stay in timestamp order. Meta: ``experiment``, ``mlflow_run_id``,
``status``, ``created``/``ended``, ``user``, ``parent`` (the xp id of the parent run of a
nested run when it is imported too, else its MLflow uuid) and the user's ``tags``.
Every active run is imported, one with no metrics too (a run of no points: the parent of
nested runs often logs none, and children name it). Deleted runs (lifecycle
``deleted``) are skipped and counted. Metric names stay as logged
(``validation_loss``); ``--context-from-name`` splits them where a project has a rule.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

from ._base import (
    BAD_STEP,
    STEP_MAX,
    STEP_MIN,
    Report,
    RunData,
    SourceRun,
    convert,
    load_yaml,
    require,
)

KIND = "mlflow"
LOOK_FOR = "point it at an mlruns/ folder or pass a tracking URI"

_STATUS = {1: "running", 2: "scheduled", 3: "finished", 4: "failed", 5: "killed"}
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^databricks")


def is_uri(source: str) -> bool:
    """True for a tracking URI (read with MLflow's client), False for a folder."""
    return bool(_URI.match(source)) and not os.path.exists(source)


def discover(source: str, report: Report) -> list[SourceRun]:
    """Every run folder of the file store under ``source``, or every run at a URI."""
    if is_uri(source):
        return _client_discover(source, report)
    runs = []
    for folder, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "models")
        if "meta.yaml" not in files:
            continue
        meta_path = os.path.join(folder, "meta.yaml")
        try:
            meta = load_yaml(meta_path)
        except (OSError, ValueError) as exc:
            report.skip(meta_path, "unreadable files", f"{exc}; skipped")
            continue
        if not isinstance(meta, dict) or not (meta.get("run_uuid") or meta.get("run_id")):
            continue  # an experiment's (or a registered model's) meta.yaml
        dirs[:] = []  # a run folder holds no other runs
        if meta.get("lifecycle_stage") == "deleted":
            report.skip(folder, "deleted runs")
            continue
        uuid = str(meta.get("run_uuid") or meta.get("run_id") or os.path.basename(folder))
        name = _tag(folder, "mlflow.runName") or str(meta.get("run_name") or "") or \
            str(meta.get("name") or "") or uuid[:8]
        runs.append(SourceRun(name, folder, key=uuid, extra={"meta": meta}))
    runs.sort(key=lambda r: (r.extra["meta"].get("start_time") or 0, r.path))
    return runs


def _tag(folder: str, key: str) -> str | None:
    """A tag's text, or None when it is missing or unreadable (``read`` reports that file)."""
    path = os.path.join(folder, "tags", *key.split("/"))
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _files(folder: str) -> list[tuple[str, str]]:
    """(key, path) of every file under ``folder``; keys with ``/`` are nested folders."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for file in sorted(files):
            path = os.path.join(root, file)
            out.append((os.path.relpath(path, folder).replace(os.sep, "/"), path))
    return out


def param_value(text: str) -> Any:
    """A param from MLflow's text: numbers, booleans, None, JSON lists/dicts, else text."""
    text = text.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    value = convert(text)
    if isinstance(value, float) and not math.isfinite(value):
        return text
    return value


def _meta_common(data: RunData, status: Any, start: Any, end: Any, tags: dict[str, str],
                 experiment: str | None, uuid: str) -> None:
    if isinstance(start, (int, float)) and start:
        data.created = start / 1000.0
    if isinstance(end, (int, float)) and end:
        data.meta["ended"] = end / 1000.0
    if isinstance(status, int):
        status = _STATUS.get(status, str(status))
    if status:
        data.meta["status"] = str(status).lower()
    if experiment:
        data.meta["experiment"] = experiment
    data.meta["mlflow_run_id"] = uuid
    if tags.get("mlflow.user"):
        data.meta["user"] = tags["mlflow.user"]
    if tags.get("mlflow.source.git.commit"):
        data.meta["git_commit"] = tags["mlflow.source.git.commit"]
    if tags.get("mlflow.parentRunId"):
        data.meta["parent"] = tags["mlflow.parentRunId"]
    user_tags = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
    if user_tags:
        data.meta["tags"] = user_tags


def read(run: SourceRun, report: Report) -> RunData | None:
    """Params, metrics, tags and meta of one run folder (or one run at a URI)."""
    if "client" in run.extra:
        return _client_read(run, report)
    data = RunData()
    meta = run.extra["meta"]
    for key, path in _files(os.path.join(run.path, "params")):
        try:
            with open(path, encoding="utf-8") as fh:
                data.params[key] = param_value(fh.read())
        except (OSError, UnicodeDecodeError) as exc:
            report.skip(path, "unreadable files", f"cannot read param ({exc})")
    tags: dict[str, str] = {}
    for key, path in _files(os.path.join(run.path, "tags")):
        try:
            with open(path, encoding="utf-8") as fh:
                tags[key] = fh.read().strip()
        except OSError as exc:
            report.skip(path, "unreadable files", f"cannot read tag ({exc.strerror})")
        except UnicodeDecodeError:
            named = " (the run is named from meta.yaml or its id)" \
                if key == "mlflow.runName" else ""
            report.skip(path, "unreadable files", f"not UTF-8 text; tag skipped{named}")
    for key, path in _files(os.path.join(run.path, "metrics")):
        _read_metric(data, key, path, report)
    experiment = _experiment_name(os.path.dirname(run.path))
    _meta_common(data, meta.get("status"), meta.get("start_time"), meta.get("end_time"),
                 tags, experiment, run.key)
    return data  # a run without metrics (the parent of nested runs) is still a run


def _experiment_name(folder: str) -> str | None:
    path = os.path.join(folder, "meta.yaml")
    try:
        meta = load_yaml(path)
    except (OSError, ValueError):
        return None
    return str(meta["name"]) if isinstance(meta, dict) and meta.get("name") else None


def _read_metric(data: RunData, key: str, path: str, report: Report) -> None:
    rows: list[tuple[int, int, float, int]] = []
    bad: list[int] = []
    huge: list[int] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        report.skip(path, "unreadable files", f"cannot read: {exc.strerror}")
        return
    for line_no, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            timestamp = int(parts[0])
            value = float(parts[1])
            step = int(parts[2]) if len(parts) > 2 else 0
            if len(parts) > 3:
                raise ValueError
        except (ValueError, IndexError):
            bad.append(line_no)
            continue
        if not (STEP_MIN <= step <= STEP_MAX and STEP_MIN <= timestamp <= STEP_MAX):
            huge.append(line_no)  # MLflow stores both as 64-bit integers
            continue
        rows.append((step, timestamp, value, line_no))
    if bad:
        report.skip(path, "malformed lines", f"{len(bad)} malformed lines skipped "
                    f"(lines {_lines_text(bad)})", len(bad))
    if huge:
        report.skip(path, BAD_STEP, f"{len(huge)} points with a step or timestamp beyond "
                    f"64 bits skipped (lines {_lines_text(huge)})", len(huge))
    rows.sort()
    for step, timestamp, value, _ in rows:
        data.add(key, value, step=step, time=timestamp / 1000.0)


def _lines_text(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:5])) + (" ..." if len(numbers) > 5 else "")


# -- any tracking URI, with MLflow's client ----------------------------------------------


def _client(uri: str) -> Any:
    tracking = require("mlflow.tracking", "mlflow", "importing from an MLflow tracking URI")
    return tracking.MlflowClient(tracking_uri=uri)


def _client_discover(uri: str, report: Report) -> list[SourceRun]:
    client = _client(uri)
    entities = require("mlflow.entities", "mlflow", "importing from an MLflow tracking URI")
    runs = []
    experiments = client.search_experiments(view_type=entities.ViewType.ACTIVE_ONLY)
    for experiment in experiments:
        token = None
        while True:
            page = client.search_runs([experiment.experiment_id],
                                      run_view_type=entities.ViewType.ACTIVE_ONLY,
                                      max_results=1000, page_token=token)
            for found in page:
                info = found.info
                name = info.run_name or found.data.tags.get("mlflow.runName") or \
                    info.run_id[:8]
                runs.append(SourceRun(name, uri, key=info.run_id, extra={
                    "client": client, "run": found, "experiment": experiment.name}))
            token = page.token
            if not token:
                break
    runs.sort(key=lambda r: (r.extra["run"].info.start_time or 0, r.path))
    return runs


def _client_read(run: SourceRun, report: Report) -> RunData | None:
    client = run.extra["client"]
    found = run.extra["run"]
    info = found.info
    data = RunData()
    data.params = {k: param_value(v) for k, v in found.data.params.items()}
    for key in sorted(found.data.metrics):
        history = client.get_metric_history(info.run_id, key)
        for m in sorted(history, key=lambda m: (m.step, m.timestamp)):
            data.add(key, m.value, step=m.step, time=m.timestamp / 1000.0)
    _meta_common(data, info.status, info.start_time, info.end_time, dict(found.data.tags),
                 run.extra.get("experiment"), info.run_id)
    return data

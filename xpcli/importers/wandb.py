"""Weights & Biases local run folders: ``wandb/run-*/files/``.

Read natively (PyYAML only, no wandb package): params from ``files/config.yaml`` (each
key's ``value``; W&B's own ``_wandb`` entry left out), and from ``wandb-summary.json`` the
run's final values as one point per metric at the summary's ``_step`` and
``_timestamp``. Where a run folder has ``files/wandb-history.jsonl`` (written by older
wandb versions), the full history is read from it instead: one point per logged value
with its ``_step``, ``_timestamp`` and, when logged, ``epoch``.

Summary entries that are media or histograms (dicts with a ``_type``) are skipped and
counted; nested dicts flatten to dotted names. Metric names stay as logged
(``train/loss``); ``--context-from-name '(?P<split>train|eval)/(?P<name>.+)'`` turns W&B
sections into a context.

Newer wandb versions keep the full history only in the binary ``run-*.wandb`` file
(offline runs keep everything there). With ``pip install 'xpcli[wandb]'`` that file is
read: its records are decoded with the wandb package's own protobuf classes
(``wandb.proto.wandb_internal_pb2.Record``); the wandb package has no public offline
reader for the file any more, so the record framing (LevelDB's log format: 32 KiB
blocks of chunks with a 7-byte header) is unpacked here. History, config and display name
then come from it; a truncated file keeps the records before the cut.

With a history, the summary's values that the history lacks become final points (all of
them when the history is cut), listed in meta ``from_summary``; see ``_add_summary``.
"""

from __future__ import annotations

import json
import os
import struct
from datetime import datetime
from typing import Any

from ._base import (
    BAD_STEP,
    Report,
    RunData,
    SourceRun,
    checked_params,
    finite_or_none,
    load_yaml_params_or_skip,
    metric_name,
    read_json_or_skip,
    require,
    step_or_none,
)

KIND = "wandb"
LOOK_FOR = "point it at a wandb/ folder holding run-*/files/ folders"

_RUN_PREFIXES = ("run-", "offline-run-")


def discover(source: str, report: Report) -> list[SourceRun]:
    """Every ``run-*``/``offline-run-*`` folder (``latest-run`` links are not followed)."""
    runs = []
    for folder, dirs, _files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "latest-run")
        base = os.path.basename(folder)
        if base.startswith(_RUN_PREFIXES) and (
            os.path.isdir(os.path.join(folder, "files"))
            or any(f.endswith(".wandb") for f in _files)
        ):
            dirs[:] = []
            wandb_id = base.rsplit("-", 1)[-1]
            runs.append(SourceRun(wandb_id, folder))
    return runs


def _flatten(prefix: str, value: Any, out: dict[str, Any], skipped: dict[str, int]) -> None:
    if isinstance(value, dict):
        kind = value.get("_type")
        if kind:
            skipped[f"{kind} summaries"] = skipped.get(f"{kind} summaries", 0) + 1
            return
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out, skipped)
    else:
        out[prefix] = value


def _add_row(data: RunData, row: dict[str, Any], report: Report, path: str) -> None:
    raw_step = finite_or_none(row.get("_step"))
    step = None if raw_step is None else step_or_none(raw_step)
    time = finite_or_none(row.get("_timestamp"))
    epoch = finite_or_none(row.get("epoch"))
    flat: dict[str, Any] = {}
    skipped: dict[str, int] = {}
    for key, value in row.items():
        if str(key).startswith("_"):
            continue
        _flatten(str(key), value, flat, skipped)
    for reason, count in skipped.items():
        report.skip(path, reason, count=count)
    other = bad_step = 0
    for key, value in flat.items():
        number = finite_or_none(value)
        if number is None:
            other += 1
        elif raw_step is not None and step is None:
            bad_step += 1
        else:
            data.add(key, number, step=step, time=time, epoch=epoch)
    report.skip(path, "non-numeric values", count=other)
    report.skip(path, BAD_STEP, count=bad_step)


def _params(path: str, report: Report) -> dict[str, Any]:
    config, refused = load_yaml_params_or_skip(path, report)
    if not isinstance(config, dict):
        return {}
    lost = {key.split(".")[0] for key, _ in refused if key.count(".") == 1
            and key.endswith(".value")}  # a refused value: the key has nothing left
    params = {}
    for key, entry in config.items():
        if str(key).startswith("_wandb") or key == "wandb_version" or str(key) in lost:
            continue
        params[str(key)] = entry.get("value") if isinstance(entry, dict) and "value" in entry \
            else entry
    return checked_params(params, path, report)


def read(run: SourceRun, report: Report) -> RunData | None:
    """Params from config.yaml; history (old runs) or summary points; metadata."""
    data = RunData()
    files = os.path.join(run.path, "files")
    config = os.path.join(files, "config.yaml")
    if os.path.isfile(config):
        data.params = _params(config, report)
    data.meta["wandb_id"] = run.name
    metadata = os.path.join(files, "wandb-metadata.json")
    if os.path.isfile(metadata):
        info = read_json_or_skip(metadata, report, "metadata skipped")
        if isinstance(info, dict):
            if isinstance(info.get("host"), str):
                data.meta["host"] = info["host"]
            started = info.get("startedAt")
            if isinstance(started, str):
                try:
                    data.created = datetime.fromisoformat(started.replace("Z", "+00:00")) \
                        .timestamp()
                except ValueError:
                    pass
    history = os.path.join(files, "wandb-history.jsonl")
    summary = os.path.join(files, "wandb-summary.json")
    binary = sorted(f for f in os.listdir(run.path) if f.endswith(".wandb"))
    if (binary and _has_wandb()) or os.path.isfile(history):
        if binary and _has_wandb():
            source = os.path.join(run.path, binary[-1])
            final, cut = _read_binary(data, source, report)
        else:
            source, final, cut = history, {}, _read_history(data, history, report)
        if os.path.isfile(summary):
            row = read_json_or_skip(summary, report, "summary skipped")
            final = {**final, **row} if isinstance(row, dict) else final
            source = summary
        _add_summary(data, final, cut, report, source)
    elif os.path.isfile(summary):
        row = read_json_or_skip(summary, report, "summary skipped")
        if isinstance(row, dict):
            _add_row(data, row, report, summary)
    else:
        report.skip(run.path, "runs without summary",
                    "no wandb-summary.json" + (" (its history is only in the binary .wandb "
                                               "file: pip install 'xpcli[wandb]' to read it)"
                                               if binary else ""))
    if not len(data) and not data.params:
        return None
    return data


def _add_summary(data: RunData, summary: dict[str, Any], cut: str | None, report: Report,
                 path: str) -> None:
    """Final points from the run summary for what the history lacks; names in meta
    ``from_summary``.

    A metric the history has no point of is always added (a test metric logged after
    the cut, a value set in the summary only). When the history is ``cut`` (the reason,
    e.g. a truncated ``.wandb`` file), so is a value the history never reached (the
    summary's is later than the cut). A complete history's metrics get no summary point:
    their values are never doubled, nor is a summary value set under a logged name taken
    for the last one.
    """
    logged: dict[str, set[Any]] = {}
    for name, value in zip(data.names, data.values):
        logged.setdefault(name, set()).add("nan" if value != value else value)
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if not str(key).startswith("_"):
            _flatten(str(key), value, flat, {})  # media: counted with the history
    fresh: dict[str, float] = {}
    for key, value in flat.items():
        number = finite_or_none(value)
        name = metric_name(key)
        if number is None or name in fresh:
            continue
        seen = logged.get(name)
        if seen is None or (cut and ("nan" if number != number else number) not in seen):
            fresh[name] = number
    if not fresh:
        return
    raw_step = finite_or_none(summary.get("_step"))
    step = None if raw_step is None else step_or_none(raw_step)
    if raw_step is not None and step is None:
        report.skip(path, BAD_STEP, count=len(fresh))
        return
    time = finite_or_none(summary.get("_timestamp"))
    epoch = finite_or_none(summary.get("epoch"))
    for name, number in fresh.items():
        data.add(name, number, step=step, time=time, epoch=epoch)
    data.meta["from_summary"] = sorted(fresh)
    if cut:
        names = ", ".join(sorted(fresh)[:5]) + (", ..." if len(fresh) > 5 else "")
        report.note(path, "values from the summary",
                    f"the history is cut ({cut}); {len(fresh)} final values it lacks taken "
                    f"from the summary at step {step}: {names} (meta from_summary)")


def _read_history(data: RunData, path: str, report: Report) -> str | None:
    """Points of ``wandb-history.jsonl``; the reason it is cut (a torn line), or None."""
    bad: list[int] = []
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                bad.append(number)
                continue
            if isinstance(row, dict):
                _add_row(data, row, report, path)
            else:
                bad.append(number)
    if bad:
        report.skip(path, "malformed lines",
                    f"{len(bad)} malformed lines skipped (first: line {bad[0]})", len(bad))
    return f"line {bad[-1]} is malformed" if bad else None


# -- the binary .wandb file (needs the wandb package for its protobuf classes) -----------

_HEADER = b":W&B"
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _has_wandb() -> bool:
    try:
        require("wandb.proto.wandb_internal_pb2", "wandb", "reading .wandb files")
    except Exception:  # noqa: BLE001 - the extra is optional: fall back to the JSON files
        return False
    return True


def records(path: str) -> tuple[list[bytes], str | None]:
    """The raw records of a .wandb file, and a problem text when it is cut or damaged.

    The file is a 7-byte header (``:W&B``, a 2-byte magic, a version byte), then LevelDB
    log blocks of 32 KiB: chunks with a header of CRC (4 bytes), length (2) and type (1);
    a record is one FULL chunk or FIRST, MIDDLE..., LAST chunks.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if not data.startswith(_HEADER) or len(data) < 7:
        return [], "not a .wandb file (no :W&B header)"
    out: list[bytes] = []
    parts: list[bytes] | None = None
    pos = 7
    while pos < len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # the block's tail is padding
            pos += left
            continue
        if pos + 7 > len(data):
            return out, f"truncated: {len(data) - pos} bytes at the end are not a whole chunk"
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:  # zero padding
            pos += left
            continue
        end = pos + 7 + length
        if end > len(data):
            return out, f"truncated: the last record is cut ({len(data) - pos} bytes)"
        chunk = data[pos + 7:end]
        pos = end
        if kind == _FULL:
            out.append(chunk)
        elif kind == _FIRST:
            parts = [chunk]
        elif kind == _MIDDLE and parts is not None:
            parts.append(chunk)
        elif kind == _LAST and parts is not None:
            out.append(b"".join(parts + [chunk]))
            parts = None
        else:
            return out, f"damaged: unexpected chunk type {kind} at byte {pos - length - 7}"
    return out, None


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _read_binary(data: RunData, path: str, report: Report) -> tuple[dict[str, Any], str | None]:
    """History, config, name and status from a .wandb file; its summary records, and why
    its history may be cut (a truncated or damaged file, no exit record), or None."""
    pb = require("wandb.proto.wandb_internal_pb2", "wandb", "reading .wandb files")
    raw, problem = records(path)
    if problem:
        reason = "truncated .wandb files" if problem.startswith("truncated") else \
            "damaged .wandb files"
        report.skip(path, reason, f"{problem}; {len(raw)} records read")
    summary: dict[str, Any] = {}
    undecodable = 0
    for blob in raw:
        record = pb.Record()
        try:
            record.ParseFromString(blob)
        except Exception:  # noqa: BLE001 - a damaged record: skip it, read the rest
            undecodable += 1
            continue
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = {(item.key or "/".join(item.nested_key)): _json_value(item.value_json)
                   for item in record.history.item}
            _add_row(data, row, report, path)
        elif kind == "run":
            run = record.run
            if run.display_name:
                data.meta["display_name"] = run.display_name
            if run.start_time.seconds and data.created is None:
                data.created = run.start_time.seconds + run.start_time.nanos / 1e9
            config = {item.key or "/".join(item.nested_key): _json_value(item.value_json)
                      for item in run.config.update}
            for key, value in config.items():
                if not key.startswith("_wandb"):
                    data.params.setdefault(key, value)
        elif kind == "config":
            for item in record.config.update:
                key = item.key or "/".join(item.nested_key)
                if not key.startswith("_wandb"):
                    data.params[key] = _json_value(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                if item.key:
                    summary[item.key] = _json_value(item.value_json)
        elif kind == "exit":
            data.meta["status"] = "finished" if record.exit.exit_code == 0 else "failed"
    report.skip(path, "undecodable records", count=undecodable)
    if problem:
        return summary, ("truncated .wandb file" if problem.startswith("truncated")
                         else "damaged .wandb file")
    if "status" not in data.meta:
        return summary, "the .wandb file has no exit record"
    return summary, None

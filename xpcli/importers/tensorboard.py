"""TensorBoard event files, read with the tensorboard package's own loader.

Needs ``pip install 'xpcli[tensorboard]'``. Events are read with
``tensorboard.backend.event_processing.event_file_loader`` and normalised with
``tensorboard.data_compat`` (legacy ``simple_value`` scalars become the tensor form), so
both old and tensor-encoded scalars import the same way.

Runs: every folder holding ``*tfevents*`` files is a run, except that

- sub-folders named like a split (``train``, ``validation``, ``val``, ``eval``, ``test``...,
  as Keras writes them) belong to their parent run and become the context ``split``;
- sub-folders named by a number (``1712345678.123``, where PyTorch's ``add_hparams``
  writes its hparams) belong to their parent run, without context.

Points: scalars only, with the event's step and wall time (no epoch: TensorBoard has
none). Tags become spec-safe names (``IoU (avg on test)`` -> ``IoU_avg_on_test``). Text,
image, histogram, audio and other plugin events are skipped and counted. HParams plugin
data (``session_start_info``) gives the run's params. A truncated or damaged event file
keeps what was read before the damage, and is reported.
"""

from __future__ import annotations

import os
import re
import struct
from typing import Any

from ._base import Report, RunData, SourceRun, relative_name, require

KIND = "tensorboard"
LOOK_FOR = "point it at a TensorBoard log folder (files named events.out.tfevents.*)"

SPLIT_FOLDERS = {
    "train": "train", "training": "train",
    "validation": "validation", "valid": "validation", "val": "validation",
    "eval": "eval", "evaluation": "eval", "test": "test",
}
_NUMBER_FOLDER = re.compile(r"\d+(?:\.\d+)?")
_SKIP_REASONS = {"text": "text events", "images": "image events",
                 "histograms": "histogram events", "audio": "audio events",
                 "pr_curves": "pr-curve events", "graph": "graph events"}


def _tb() -> tuple[Any, Any, Any, Any]:
    what = "importing TensorBoard logs"
    loader = require("tensorboard.backend.event_processing.event_file_loader",
                     "tensorboard", what)
    compat = require("tensorboard.data_compat", "tensorboard", what)
    tensor_util = require("tensorboard.util.tensor_util", "tensorboard", what)
    hparams = require("tensorboard.plugins.hparams.metadata", "tensorboard", what)
    return loader, compat, tensor_util, hparams


def _is_event_file(name: str) -> bool:
    return "tfevents" in name and not name.startswith(".")


def discover(source: str, report: Report) -> list[SourceRun]:
    """Group event files into runs (split and hparams sub-folders join their parent)."""
    _tb()  # fail early, with the pip hint, when the extra is missing
    root = source if os.path.isdir(source) else os.path.dirname(source)
    files: list[str] = []
    if os.path.isfile(source):
        files = [source]
    else:
        for folder, dirs, names in os.walk(source):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files += [os.path.join(folder, n) for n in sorted(names) if _is_event_file(n)]
    runs: dict[str, list[tuple[str, str | None]]] = {}
    for path in files:
        folder = os.path.dirname(path)
        base = os.path.basename(folder)
        run_folder, split = folder, None
        if folder != root and (base.lower() in SPLIT_FOLDERS or _NUMBER_FOLDER.fullmatch(base)):
            run_folder = os.path.dirname(folder)
            split = SPLIT_FOLDERS.get(base.lower())
        runs.setdefault(run_folder, []).append((path, split))
    return [
        SourceRun(relative_name(root, folder), folder, extra={"files": runs[folder]})
        for folder in sorted(runs)
    ]


def _records(path: str) -> tuple[int, int]:
    """(whole records, bytes left over) by the TFRecord framing (length headers only)."""
    size = os.path.getsize(path)
    count = pos = 0
    with open(path, "rb") as fh:
        while pos + 12 <= size:
            fh.seek(pos)
            (length,) = struct.unpack("<Q", fh.read(8))
            end = pos + 12 + length + 4
            if end > size:
                break
            count += 1
            pos = end
    return count, size - pos


def _scalar(tensor: Any, tensor_util: Any) -> float:
    """A scalar tensor's value; the common float/double cases without building an array."""
    if not tensor.tensor_content and not tensor.tensor_shape.dim:
        if len(tensor.float_val) == 1:
            return float(tensor.float_val[0])
        if len(tensor.double_val) == 1:
            return float(tensor.double_val[0])
    return float(tensor_util.make_ndarray(tensor))


def _hparam_values(info: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in info.hparams.items():
        kind = value.WhichOneof("kind")
        if kind == "number_value":
            number = value.number_value
            params[key] = int(number) if number.is_integer() and abs(number) < 2**53 else number
        elif kind == "string_value":
            params[key] = value.string_value
        elif kind == "bool_value":
            params[key] = value.bool_value
    return params


def read(run: SourceRun, report: Report) -> RunData | None:
    """Scalars and hparams of every event file of one run."""
    loader, compat, tensor_util, hparams = _tb()
    data = RunData()
    first_time: float | None = None
    for path, split in run.extra["files"]:
        plugin_of: dict[str, str] = {}
        context = {"split": split} if split else None
        events = 0
        try:
            for event in loader.EventFileLoader(path).Load():
                events += 1
                if first_time is None or (event.wall_time and event.wall_time < first_time):
                    first_time = event.wall_time or first_time
                if event.WhichOneof("what") != "summary":
                    if event.WhichOneof("what") in ("graph_def", "meta_graph_def"):
                        report.skip(path, "graph events")
                    continue
                for raw in event.summary.value:
                    value = compat.migrate_value(raw)
                    plugin = value.metadata.plugin_data.plugin_name
                    if plugin:
                        plugin_of.setdefault(value.tag, plugin)
                    else:
                        plugin = plugin_of.get(value.tag, "")
                    if plugin == "scalars":
                        try:
                            number = _scalar(value.tensor, tensor_util)
                        except (TypeError, ValueError):
                            report.skip(path, "non-numeric values")
                            continue
                        data.add(value.tag, number, step=event.step, time=event.wall_time,
                                 context=context)
                    elif plugin == "hparams":
                        content = value.metadata.plugin_data.content
                        if value.tag.endswith("session_start_info"):
                            info = hparams.parse_session_start_info_plugin_data(content)
                            data.params.update(_hparam_values(info))
                    else:
                        report.skip(path, _SKIP_REASONS.get(plugin, f"{plugin or 'other'} events"))
        except Exception as exc:  # noqa: BLE001 - keep what was read, report the file
            report.skip(path, "damaged event files",
                        f"read stopped after {events} events ({type(exc).__name__}); "
                        "the rest of the file skipped")
            continue
        records, left = _records(path)
        if left:
            report.skip(path, "truncated event files",
                        f"truncated: the last {left} bytes are not a whole record; "
                        f"{events} events read")
        elif events < records:
            report.skip(path, "damaged event files",
                        f"damaged: read {events} of {records} records; the rest skipped")
    data.created = first_time
    if not len(data):
        report.skip(run.path, "empty runs", "no scalar values; run skipped")
        return None
    return data

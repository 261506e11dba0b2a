"""Following one run as it is written: the points appended to its JSONL file since the
last look (``xp tail``).

:class:`Tail` reads the files ``Run`` writes for a run (``<run>.jsonl``, wherever they are
under the runs directory, and the files of its writers in a ``<run>/`` folder, new ones
as they appear; on object storage its segment objects, downloaded as they appear) from
where it last stopped, whole lines only: a line being written is kept until its newline
arrives. A file that shrank or was replaced is read
again from its start; a file that disappeared (compacted) is dropped. The run's own run
records say when it ends: a final status after its last ``running``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import format as fmt
from . import remote
from .errors import UsageError
from .liveness import FINAL
from .records import Diagnostics, find_files, parse_jsonl
from .spec.metric import MetricSpec, Reduce, parse_metric_spec, point_matches


def tail_specs(texts: Sequence[str]) -> list[MetricSpec]:
    """Metric specs naming the points to show (``f1:lang=*``, ``loss``); a reduce means
    nothing for single points and is refused."""
    specs = [parse_metric_spec(text) for text in texts]
    for spec in specs:
        if spec.reduce != Reduce():
            raise UsageError(f"{spec}: a reduce (@...) picks one value per run; xp tail "
                             "shows every point, so name the metric without it")
    return specs


_MARK = 64  # bytes before the offset kept, to tell a file rewritten in place


@dataclass
class _File:
    path: str
    ino: int = -1
    offset: int = 0  # bytes read so far
    rest: bytes = b""  # the start of a line whose newline has not arrived yet
    mark: bytes = b""  # the last bytes read: a file whose bytes there differ was replaced

    def read_from(self, fh: Any, info: os.stat_result) -> bytes:
        """What follows the part already read; all of it if the file was replaced,
        truncated or rewritten (another inode, shorter, other bytes where we stopped)."""
        start = self.offset - len(self.mark)
        if info.st_ino != self.ino or info.st_size < self.offset or (
                self.mark and os.pread(fh.fileno(), len(self.mark), start) != self.mark):
            self.ino, self.offset, self.rest, self.mark = info.st_ino, 0, b"", b""
        fh.seek(self.offset)
        data: bytes = fh.read()
        self.offset += len(data)
        self.mark = (self.mark + data)[-_MARK:]
        return data


@dataclass
class Tail:
    """The points of run ``run`` under ``runs_dir`` matching ``specs`` (all when empty)."""

    runs_dir: str
    run: str
    specs: list[MetricSpec] = field(default_factory=list)
    files: list[_File] = field(default_factory=list)
    status: str | None = None  # the run's last status seen
    skipped: int = 0  # lines that were not records

    def __post_init__(self) -> None:
        fmt.check_run_id(self.run)
        name = f"{self.run}.jsonl"
        if remote.is_url(self.runs_dir):
            self._folders: list[str] = []
            self.files = [_File(p) for p in self._segments()]
        else:
            found = [p for p in find_files(self.runs_dir) if os.path.basename(p) == name
                     or os.path.basename(os.path.dirname(p)) == self.run
                     and p.endswith(".jsonl")]
            # Folders of writers' files, looked at again on each poll for new writers.
            self._folders = sorted({os.path.dirname(p) for p in found
                                    if os.path.basename(p) != name}
                                   | {os.path.join(self.runs_dir, self.run)})
            self.files = [_File(p) for p in found]
        if not self.files:
            raise UsageError(
                f"no file {name} under {self.runs_dir}: xp tail follows the JSONL file a Run "
                "writes for its run (a compacted or imported run is not being written)")

    def _segments(self) -> list[str]:
        """On object storage: the run's segment objects, mirrored (new ones downloaded)."""
        from .cache import cache_home
        from .errors import DataError

        try:
            synced = remote.sync(f"{remote.normalize(self.runs_dir)}/{self.run}", cache_home())
        except DataError:
            return []
        return find_files(synced.folder)

    def _new_files(self) -> None:
        """Add the files that appeared since the last look (a new writer, a new segment)."""
        known = {entry.path for entry in self.files}
        if remote.is_url(self.runs_dir):
            paths = self._segments()
        else:
            paths = []
            for folder in self._folders:
                with contextlib.suppress(OSError):
                    paths += [e.path for e in os.scandir(folder) if e.name.endswith(".jsonl")
                              and not e.name.startswith(".")]
        self.files += [_File(p) for p in sorted(paths) if p not in known]

    @property
    def ended(self) -> bool:
        """Whether the run's last status is a final one (finished, failed, interrupted)."""
        return self.status in FINAL

    def start(self, last: int) -> list[dict[str, Any]]:
        """The last ``last`` points already written (in file order); later calls to
        :meth:`poll` return what follows them."""
        found: list[dict[str, Any]] = []
        for entry in self.files:
            try:
                with open(entry.path, "rb") as fh:
                    entry.ino = os.fstat(fh.fileno()).st_ino
                    data = fh.read()
            except OSError:
                continue
            end = data.rfind(b"\n") + 1
            entry.offset, entry.rest, entry.mark = end, b"", data[max(0, end - _MARK):end]
            frame = parse_jsonl(entry.path, data[:end], Diagnostics())
            for rec in frame.iter_rows(named=True):
                self._take(rec, found, raw=True)
        return found[-last:] if last > 0 else []

    def poll(self) -> list[dict[str, Any]]:
        """The matching points appended since the last call (and note the run's status)."""
        found: list[dict[str, Any]] = []
        self._new_files()
        for entry in list(self.files):
            try:
                with open(entry.path, "rb") as fh:
                    data = entry.read_from(fh, os.fstat(fh.fileno()))
            except FileNotFoundError:
                self.files.remove(entry)  # compacted or deleted: nothing more will come
                continue
            except OSError:
                continue
            data = entry.rest + data
            end = data.rfind(b"\n") + 1
            entry.rest = data[end:]
            for line in data[:end].split(b"\n")[:-1]:
                if not line.strip():
                    continue
                try:
                    rec = fmt.parse_line(line)
                except ValueError:
                    self.skipped += 1
                    continue
                self._take(rec, found)
        return found

    def _take(self, rec: dict[str, Any], found: list[dict[str, Any]], raw: bool = False) -> None:
        """Keep a point of this run that matches; remember the run's status."""
        if rec["run"] != self.run:
            return
        if rec["kind"] == "run":
            meta = rec["meta"]
            if raw:  # a row of the raw frame: meta as JSON text
                meta = json.loads(meta) if meta else {}
            status = meta.get("status") if isinstance(meta, dict) else None
            if isinstance(status, str):
                self.status = status
            return
        context: Any = rec["context"] or {}
        if raw and isinstance(context, str):
            context = json.loads(context)
        if self.specs and not any(point_matches(s, rec["name"], context) for s in self.specs):
            return
        found.append({"run": rec["run"], "name": rec["name"], "context": context,
                      "step": rec["step"], "epoch": rec["epoch"], "time": rec["time"],
                      "value": rec["value"]})

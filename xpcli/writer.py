"""``Run``: the writer a training job uses. Buffered, whole lines only, crash-safe.

Imports only the standard library (no polars): a training loop should not pay for the
analysis side.

Guarantees (see ``docs/guarantees.md``):

- Every record is one line, written with a single ``os.write`` on a file opened with
  ``O_APPEND``; the buffer holds whole lines only. A job killed with SIGKILL loses at most
  what is still buffered: by default at most 1 second or 64 KiB of records.
- A failed write (disk full, permission denied) truncates the file back to its last whole
  line, so nothing written before is damaged, keeps the records in memory for the next
  flush, and raises :class:`WriteError` to the caller of ``track``/``flush``/``close`` at
  once; a failure in the background flush (of any kind) is raised by the next call, and
  the background flushes go on. A ``close`` that fails leaves the run open, so its status
  is never written before its records.
- Text that cannot be written (a lone surrogate from ``os.fsdecode``), values that would
  not read back and params that would merge are refused by the call that passes them
  (:class:`UsageError` naming the field), before anything reaches the buffer.
- A child made by ``os.fork`` drops the runs it inherited: it never writes their
  buffered records again nor their status (its own runs are its own).
- Safe to call from several threads. Several processes may write the same run: each
  flush holds an exclusive ``flock`` on the file, so their lines never interleave, a
  failed write is cut back without touching the others' lines, and a torn line left by a
  killed writer is ended before the next record.
- What a reader needs to tell a live run from a dead one is recorded (see
  :mod:`xpcli.liveness`): host, pid, the process's start time, and a heartbeat: while the
  run is open, its file is modified at least every ``heartbeat`` seconds (the flush
  thread touches it when nothing was written; ``track`` does no extra work). A run ends
  ``finished``, ``failed`` (with the exception's type, message and last traceback lines)
  or ``interrupted`` (KeyboardInterrupt, or SIGTERM: see :class:`Run`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import math
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time as _time
import traceback
from collections import deque
from collections.abc import Iterator, Mapping
from types import FrameType, TracebackType
from typing import Any

from . import format as fmt
from . import liveness
from .errors import UsageError, WriteError

DEFAULT_FLUSH_BYTES = 64 * 1024
DEFAULT_FLUSH_SECONDS = 1.0
#: On object storage each flush is an upload (a request, an object): fewer, larger ones.
OBJECT_FLUSH_BYTES = 8 * 1024 * 1024
OBJECT_FLUSH_SECONDS = 10.0
#: On object storage, sealed segments waiting for a slow or stalled store past this many
#: bytes make ``track`` wait for the upload (back-pressure): memory stays bounded.
MAX_SEALED_BYTES = 256 * 1024 * 1024
#: File systems shared between hosts, where appends from two hosts to one file are not
#: atomic (NFS, SMB) or locks are unreliable: each writer process gets a file of its own.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "fuse.ceph", "glusterfs", "fuse.glusterfs",
    "lustre", "gpfs", "beegfs", "fuse.sshfs", "sshfs", "9p", "afs", "fuse.s3fs", "fuse.gcsfuse",
    "fuse.juicefs", "fuse.mountpoint-s3", "fuse.rclone", "fuse.blobfuse2", "fuse.goofys",
})
#: Where the mounted file systems are listed (tests point it at a file of their own).
MOUNTS = "/proc/mounts"
LAYOUTS = ("run", "writer")
DEFAULT_HEARTBEAT_SECONDS = liveness.DEFAULT_HEARTBEAT
TRACEBACK_LINES = 20  # the last lines of a traceback kept in a failed run's ``error``
_MAX_ERROR_TEXT = 4000  # characters of an exception message, and of one traceback line
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1  # steps are Int64 columns when read

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_id_lock = threading.Lock()
_last_id: tuple[int, int] = (0, 0)


def new_run_id() -> str:
    """A new run id: 26 characters, sortable by creation time (ms), unique across hosts.

    The ULID layout: 48 bits of milliseconds since 1970, then 80 random bits; ids made in
    the same millisecond by one process increase by one, so they still sort in order.
    """
    global _last_id
    with _id_lock:
        ms = _time.time_ns() // 1_000_000
        last_ms, last_rand = _last_id
        if ms <= last_ms:
            ms, rand = last_ms, last_rand + 1
        else:
            rand = int.from_bytes(secrets.token_bytes(10), "big") >> 1
        _last_id = (ms, rand)
    value = (ms << 80) | (rand & ((1 << 80) - 1))
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _short(number: Any) -> str:
    """A number for a message: huge integers by their size, not their 400 digits."""
    if isinstance(number, int) and number.bit_length() > 128:
        return f"an integer of {number.bit_length()} bits"
    return repr(number)


@contextlib.contextmanager
def _exclusive(fd: int) -> Iterator[None]:
    """An exclusive ``flock`` on ``fd`` (skipped where the filesystem has no locks)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _ends_with_newline(fd: int, size: int) -> bool:
    """Whether the file of ``fd`` (``size`` bytes) ends a line; True if it cannot be read."""
    try:
        return os.pread(fd, 1, size - 1) in (b"\n", b"")
    except OSError:
        return True


def _unescape_mount(text: str) -> str:
    """A mount point as /proc/mounts writes it (space as ``\\040``...) -> the path."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def filesystem_type(path: str, mounts: str | None = None) -> str | None:
    """The type of the file system holding ``path`` (``nfs4``, ``ext4``...), from the
    longest mount point above it in ``mounts`` (:data:`MOUNTS`); None when unknown."""
    real = os.path.realpath(path)
    best, kind = -1, None
    try:
        with open(mounts or MOUNTS, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape_mount(fields[1])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best, kind = len(point), fields[2]
    return kind


def default_layout(runs_dir: str) -> str:
    """``writer`` (one file per writer process) when ``$XP_LAYOUT`` says so or the runs
    directory is on a network file system (:data:`NETWORK_FILESYSTEMS`), else ``run``."""
    chosen = os.environ.get("XP_LAYOUT", "")
    if chosen:
        if chosen not in LAYOUTS:
            raise UsageError(f"XP_LAYOUT={chosen!r}: expected run or writer")
        return chosen
    probe = runs_dir
    while probe and not os.path.exists(probe):  # not made yet: its nearest parent
        parent = os.path.dirname(probe)
        probe = parent if parent != probe else ""
    kind = filesystem_type(probe or ".")
    return "writer" if kind in NETWORK_FILESYSTEMS else "run"


def _has_records(runs_dir: str, run: str, own: str) -> bool:
    """Whether run ``run`` was written before, in a file other than ``own``: its
    ``<run>.jsonl`` or a writer's file in its ``<run>/`` folder (a resumed run)."""
    single = os.path.join(runs_dir, run + ".jsonl")
    with contextlib.suppress(OSError):
        if single != own and os.path.getsize(single) > 0:
            return True
    try:
        return any(e.name.endswith(".jsonl") and e.path != own
                   for e in os.scandir(os.path.join(runs_dir, run)))
    except OSError:
        return False


_open_runs: "set[Run]" = set()  # strong refs: an unclosed run is flushed at exit
_EXACT = 2**53  # an int value within this converts to a float exactly and cannot overflow
_MAX_PREFIXES = 10_000  # cached line prefixes per run (distinct names and contexts)
_uncaught: BaseException | None = None  # the exception that is ending the interpreter
_hook_installed = False
_sigterm_received = False


def _install_excepthook() -> None:
    """Remember an uncaught exception, so runs closed at exit record why they ended."""
    global _hook_installed
    if _hook_installed:
        return
    _hook_installed = True
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        global _uncaught
        _uncaught = exc
        previous(kind, exc, tb)

    sys.excepthook = hook


def _ending_status(exc: BaseException | None) -> str:
    """The status of a run that ends because of ``exc`` (None: ended normally)."""
    if exc is None:
        return "finished"
    if isinstance(exc, SystemExit) and exc.code in (0, None):
        return "finished"
    if isinstance(exc, KeyboardInterrupt) or _sigterm_received:
        return "interrupted"
    return "failed"


def _clip(text: str) -> str:
    text = liveness.readable(text)
    return text if len(text) <= _MAX_ERROR_TEXT else text[:_MAX_ERROR_TEXT] + "..."


def describe_error(exc: BaseException) -> dict[str, Any]:
    """What a run records about the exception that ended it: ``type`` (qualified unless
    built in), ``message`` and ``traceback`` (its last :data:`TRACEBACK_LINES` lines), all
    text that can be written whatever the exception holds. ``signal`` is added when a
    SIGTERM arrived before it (the job's own handler raised it)."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else \
        f"{kind.__module__}.{kind.__qualname__}"
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the status
        message = f"<{kind.__name__} whose message cannot be shown>"
    try:
        lines = "".join(traceback.format_exception(kind, exc, exc.__traceback__)).splitlines()
    except Exception:  # noqa: BLE001
        lines = []
    error: dict[str, Any] = {"type": _clip(name), "message": _clip(message),
                             "traceback": [_clip(line) for line in lines[-TRACEBACK_LINES:]]}
    if _sigterm_received:
        error["signal"] = "SIGTERM"
    return error


def _close_all_at_exit() -> None:
    for run in list(_open_runs):
        try:
            run.close(status=_ending_status(_uncaught), error=_uncaught)
        except Exception:  # noqa: BLE001 - at exit nothing can be reported better
            pass


atexit.register(_close_all_at_exit)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM while runs are open and nobody else handles it: record each run as
    ``interrupted`` (its buffer first), then die of SIGTERM as the process would have.

    Called by a handler the job installed later (which chains to the one it found), it
    only notes the signal: the job's handler decides what happens next, and an exception
    that then ends a run makes it ``interrupted``."""
    global _sigterm_received
    _sigterm_received = True
    if signal.getsignal(signal.SIGTERM) is not _on_sigterm:
        return
    where = traceback.format_stack(frame)[-TRACEBACK_LINES:] if frame is not None else []
    error = {"type": "SIGTERM", "message": f"terminated by signal {signum} (SIGTERM)",
             "signal": "SIGTERM",
             "traceback": [_clip(line) for text in where for line in text.splitlines()]
             [-TRACEBACK_LINES:]}
    for run in list(_open_runs):
        run._interrupt(error)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(128 + signal.SIGTERM)  # only if SIGTERM could not end the process


def _catch_sigterm() -> None:
    """Handle SIGTERM while runs are open, if nobody does: only from the main thread and
    only while its handler is the default one (a job's own handler is never replaced)."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter, or no such signal
        pass


def _release_sigterm() -> None:
    """The last run closed: SIGTERM gets its default action back (if still ours)."""
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):  # another thread: the handler finds no runs and dies
        pass


def _after_fork_in_child() -> None:
    """In a child made by ``os.fork``: the runs belong to the parent. Dropping them here
    means the child never writes their buffered records a second time nor their status at
    its exit, and its run ids do not repeat the parent's."""
    global _id_lock, _last_id, _sigterm_received
    _id_lock = threading.Lock()  # another thread may have held it at the fork
    _last_id = (0, 0)
    _sigterm_received = False
    for run in list(_open_runs):
        run._disown()
    _open_runs.clear()
    _release_sigterm()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Unwritten(Exception):
    """A failed append: ``error`` for the caller; ``landed`` bytes of the data, whole
    lines, are in the file anyway (it could not be cut back) and must not be written
    again."""

    def __init__(self, error: WriteError, landed: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.landed = landed


class Run:
    """A training run that appends records to ``<runs_dir>/<run>.jsonl``.

    Example::

        with Run("runs", params={"lr": 1e-4, "seed": 1}) as run:
            for epoch in range(60):
                run.track(0.81, name="f1", epoch=epoch, context={"lang": "de"})

    ``run`` is the id (generated when not given; see :func:`new_run_id`). Giving an existing
    id appends to that run (a resumed run: ``running`` again, its first ``created`` kept,
    ``resumed`` set). ``params`` may nest (``{"optimizer": {"lr": 1e-4}}``); readers
    flatten it to ``optimizer.lr``. ``meta`` adds free-form run metadata (tags, notes).
    ``flush_bytes``/``flush_seconds`` bound what a killed job can lose. ``time`` sets the
    start time (unix seconds; default now), for importers and reproducible generators.

    Liveness: the run records its host, pid and the process's start time, and while it is
    open the flush thread keeps the file's modification time within ``heartbeat_seconds``
    (10 s; at least ``flush_seconds``) by touching it when nothing was written; a reader
    then tells a killed job (``crashed``) from a live one. ``flush_seconds=0`` (no thread)
    or ``heartbeat_seconds=0`` records no heartbeat.

    SIGTERM: when the job has no SIGTERM handler of its own (the default action, which
    kills the process without running any Python code), the run installs one while it is
    open, from the main thread only: it writes the buffer and an ``interrupted`` status,
    then restores the default action and sends itself SIGTERM again, so the process ends
    exactly as it would have (killed by SIGTERM) and no code of the job runs meanwhile. A
    handler the job installs itself is left alone, before or after the run opens; if it
    calls the previous handler, the signal is only noted, and a run ended by an exception
    after it is ``interrupted``. ``catch_sigterm=False`` leaves SIGTERM alone entirely.

    Where the records go (``docs/guarantees.md``): ``runs_dir`` may be an object-storage
    URL (``s3://bucket/prefix``, ``gs://``, ``az://``; the ``s3`` extra): then every flush
    uploads one new immutable object ``<run>/<writer>-<seq>.jsonl`` (:mod:`xpcli.remote`),
    by default every 10 s or 8 MiB (``flush_seconds``/``flush_bytes``), and the heartbeat
    is the writer's own ``<run>/<writer>.alive`` object. In a folder, ``layout="run"``
    appends to ``<run>.jsonl`` (shared by every writer of the run, under a lock) and
    ``layout="writer"`` gives this process a file of its own, ``<run>/<writer>.jsonl``
    (``writer``: a new id, sortable by time); the default is ``$XP_LAYOUT``, else
    ``writer`` when the folder is on a network file system (NFS, SMB, ...: see
    :data:`NETWORK_FILESYSTEMS`) and ``run`` elsewhere. ``path`` is the file written
    (the run's folder URL on object storage).

    On object storage a flush *seals* the buffer as the next segment and uploads it
    outside the run's lock: ``track`` hands a full buffer to the flush thread and goes
    on, so a slow or stalled store never holds up the training loop (the sealed segments
    wait in memory, in order, and a killed job loses them as it loses its buffer) until
    :data:`MAX_SEALED_BYTES` wait: then ``track`` waits for the store, so memory stays
    bounded.
    ``flush()`` and ``close()`` wait until everything sealed is uploaded.
    """

    def __init__(
        self,
        runs_dir: str | os.PathLike[str],
        run: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        meta: Mapping[str, Any] | None = None,
        flush_bytes: int | None = None,
        flush_seconds: float | None = None,
        time: float | None = None,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        catch_sigterm: bool = True,
        layout: str | None = None,
    ) -> None:
        self.id = fmt.check_run_id(run) if run is not None else new_run_id()
        self.runs_dir = os.fspath(runs_dir)
        self._segments: Any = None  # xpcli.remote.Segments on object storage
        self._private = False  # a file only this process writes: no lock needed
        self._fd = -1
        on_store = "://" in self.runs_dir
        if on_store:
            from . import remote

            if not remote.is_url(self.runs_dir):
                raise UsageError(f"{self.runs_dir}: not a runs directory or URL; object "
                                 "storage is s3://BUCKET/PREFIX, gs://... or az://...")
            self.runs_dir = remote.normalize(self.runs_dir)
            self.path = f"{self.runs_dir}/{self.id}/"
        else:
            if layout is not None and layout not in LAYOUTS:
                raise UsageError(f"layout={layout!r}: expected 'run' or 'writer'")
            if (layout or default_layout(self.runs_dir)) == "writer":
                self._private = True
                self.path = os.path.join(self.runs_dir, self.id, new_run_id() + ".jsonl")
            else:
                self.path = os.path.join(self.runs_dir, self.id + ".jsonl")
        if flush_bytes is None:
            flush_bytes = OBJECT_FLUSH_BYTES if on_store else DEFAULT_FLUSH_BYTES
        if flush_seconds is None:
            flush_seconds = OBJECT_FLUSH_SECONDS if on_store else DEFAULT_FLUSH_SECONDS
        if flush_bytes < 0 or flush_seconds < 0 or heartbeat_seconds < 0:
            raise UsageError("flush_bytes, flush_seconds and heartbeat_seconds must be >= 0")
        self._flush_bytes = flush_bytes
        self._flush_seconds = flush_seconds
        # The flush thread beats: no thread, no heartbeat; it wakes every flush_seconds.
        self._heartbeat = (max(heartbeat_seconds, flush_seconds)
                           if flush_seconds > 0 and heartbeat_seconds > 0 else 0.0)
        self._lock = threading.Lock()  # never re-entered: _flush runs under it
        # Object storage: sealed segments, uploaded in order by whoever holds the upload
        # lock (never the run's lock: track must not wait for a store).
        self._sealed: deque[bytes] = deque()
        self._upload_lock = threading.Lock()
        self._wake = threading.Event()  # a segment was sealed: the flush thread uploads
        self._closing = False  # close() is uploading the last segment
        self._buffer: list[str] = []
        self._buffered = 0
        self._prefixes: dict[Any, str] = {}
        self._error: WriteError | None = None
        self._closed = False
        self._status: str | None = None
        self._pid = os.getpid()
        self._forked = False
        if on_store:
            from .remote import Segments

            self._segments = Segments(self.runs_dir, self.id, new_run_id())
            resumed = self._segments.exists()
        else:
            try:
                os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
                self._fd = self._open(self.path)
                resumed = os.fstat(self._fd).st_size > 0 or _has_records(
                    self.runs_dir, self.id, self.path)
            except OSError as exc:
                raise WriteError(f"cannot open {self.path} for writing: {exc.strerror}") from None
        now = _time.time() if time is None else self._as_time(time)
        run_meta: dict[str, Any] = {
            "status": "running",
            "created": now,
            "host": liveness.host_name(socket.gethostname),  # written readable if not UTF-8
            "pid": self._pid,
            "format": fmt.VERSION,
        }
        start = liveness.start_token(self._pid)
        if start is not None:
            run_meta["pid_start"] = start
        if self._heartbeat:
            run_meta["heartbeat"] = self._heartbeat
        if resumed:  # the first start is kept; how the last attempt ended is not
            del run_meta["created"]
            run_meta.update(resumed=now, ended=None, error=None)
        if meta:
            run_meta.update(fmt.plain_params(meta, "meta"))
        self._emit(fmt.run_record(self.id, now, fmt.plain_params(params or {}), run_meta))
        self._flush()
        self._upload()
        self._last_flush = _time.monotonic()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if flush_seconds > 0:
            self._flusher = threading.Thread(
                target=self._flush_periodically, name=f"xp-flush-{self.id}", daemon=True
            )
            self._flusher.start()
        _open_runs.add(self)
        _install_excepthook()
        if catch_sigterm:
            _catch_sigterm()

    # -- public API ---------------------------------------------------------------

    def track(
        self,
        value: float,
        name: str,
        step: int | None = None,
        epoch: float | None = None,
        context: Mapping[str, Any] | None = None,
        time: float | None = None,
    ) -> None:
        """Record one metric value. ``context`` maps keys to values (``{"lang": "de"}``).

        ``value`` is any real number (Python, numpy or a one-element tensor); NaN and
        infinities are kept. ``time`` defaults to now (unix seconds).
        """
        # The hot path of a training loop: plain types take the shortest way; anything
        # else (numpy scalars, tensors, int epochs, huge steps) goes through the checks.
        kind = type(value)
        if kind is float:
            number = value
        elif kind is int and -_EXACT <= value <= _EXACT:
            number = float(value)
        else:
            number = self._as_float(value, name)
        key = (name, *context.items()) if context else name
        try:
            prefix = self._prefixes.get(key)
        except TypeError:  # an unhashable context value: refused by _prefix
            prefix = None
        if prefix is None:
            prefix = self._prefix(key, name, context)
        text = repr(number) if number - number == 0.0 else fmt.encode_float(number)
        if step is not None:
            if type(step) is not int or not _INT64_MIN <= step <= _INT64_MAX:
                step = self._as_int(step, "step")
            text = f'{text},"step":{step}'
        if epoch is not None:
            if type(epoch) is not float or epoch - epoch != 0.0:
                epoch = self._as_epoch(epoch)
            text = f'{text},"epoch":{epoch!r}'
        when = _time.time() if time is None else self._as_time(time)
        line = f'{prefix},"value":{text},"time":{when!r}}}\n'
        with self._lock:
            if self._closed or self._closing:
                raise UsageError(self._closed_message("tracking after close() is lost"))
            self._buffer.append(line)
            self._buffered += len(line)
            # A pending background-flush error is raised here, by the next call.
            if self._buffered < self._flush_bytes and self._error is None:
                return
            self._flush()
        if self._segments is not None:  # sealed: uploaded outside the lock
            if self._flusher is not None and not self._backlogged():
                self._wake.set()
            else:  # no flush thread, or too much waits: this call uploads (and waits)
                self._upload()

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Add or change params after the start (later values win when read)."""
        self._append_run_record(params=fmt.plain_params(params, "param"))

    def set_meta(self, **meta: Any) -> None:
        """Add free-form metadata to the run (``tags=["baseline"]``, ``note="..."``)."""
        self._append_run_record(meta=fmt.plain_params(meta, "meta"))

    def flush(self) -> None:
        """Write everything buffered now (on object storage: upload it, and wait)."""
        try:
            with self._lock:
                self._flush()
        finally:
            self._upload()

    def close(self, status: str = "finished", time: float | None = None, *,
              error: BaseException | None = None) -> None:
        """Flush and record the final ``status`` (``finished``, ``failed`` or
        ``interrupted``). Idempotent.

        ``time`` is the end time (unix seconds; default now). ``error``: the exception
        that ended the run, recorded as meta ``error`` (type, message, the last lines of
        its traceback; see :func:`describe_error`). When the write fails, the
        :class:`WriteError` is raised and the run stays open with its records kept: the
        status is never written before them. Call ``close()`` again once the disk has
        room (an unclosed run is closed at interpreter exit too)."""
        if not isinstance(status, str) or not status:
            raise UsageError(f"close(status={status!r}): a status is a non-empty string")
        fmt.check_text(status, "close(status=...)")
        with self._lock:
            if self._closed:
                return
            end = _time.time() if time is None else self._as_time(time)
            final: dict[str, Any] = {"status": status, "ended": end}
            if error is not None:
                final["error"] = describe_error(error)
            line = fmt.run_record(self.id, end, None, final)
            pending, self._error = self._error, None
            self._emit(line)
            try:
                self._write_buffer()
            except BaseException:
                if self._buffer and self._buffer[-1] is line:
                    self._buffer.pop()  # written by the next close(), after the records
                    self._buffered -= len(line)
                raise
            self._closing = True
        if self._segments is not None:
            # The records and the status, sealed last, are uploaded outside the lock.
            # When that fails the run stays open: what was sealed stays queued, in order
            # (the status after its records), for the next flush or close.
            try:
                self._upload()
            except BaseException:
                with self._lock:
                    self._closing = False
                raise
        with self._lock:
            self._closing = False
            self._closed = True
            self._status = status
            if self._flusher is not None:
                self._stop.set()
                self._wake.set()
            _open_runs.discard(self)
            if not _open_runs:
                _release_sigterm()
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
            if pending is not None:  # everything is written now, but say what happened
                raise pending

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """``finished``; ``failed`` with the exception recorded when the block raises;
        ``interrupted`` for KeyboardInterrupt or an exception after a SIGTERM;
        ``sys.exit(0)`` finishes."""
        status = _ending_status(exc)
        self.close(status=status, error=exc if status != "finished" else None)

    def __repr__(self) -> str:
        return f"Run({self.runs_dir!r}, run={self.id!r})"

    # -- internals ----------------------------------------------------------------

    def _prefix(self, key: Any, name: str, context: Mapping[str, Any] | None) -> str:
        """The checked line prefix of a (name, context) not found under ``key``.

        ``key`` (name and context items) is the cache key only when every context value
        is a ``str``: 1, True and 1.0 are equal keys but are written "1", "true" and
        "1.0", so other values are cached under a key with their types, looked up here.
        0.0 and -0.0 (written differently) are equal keys of one type, and NaN is not
        equal to itself: those are not cached at all.
        """
        values = context.values() if context else ()
        cached_as: Any
        try:
            cached_as = (key, *map(type, values))
            prefix = self._prefixes.get(cached_as)
        except TypeError:  # unhashable: refused below
            cached_as = prefix = None
        if prefix is not None:
            return prefix
        if all(type(val) is str for val in values):
            cached_as = key
        elif any(val != val or val == 0 for val in values if type(val) is not str):
            cached_as = None
        fmt.check_name(name)
        ctx = {fmt.check_context_key(k): fmt.context_text(k, v)
               for k, v in (context or {}).items()}
        prefix = fmt.point_prefix(self.id, name, ctx)
        if cached_as is not None:
            if len(self._prefixes) >= _MAX_PREFIXES:
                self._prefixes.clear()  # a context per sample: bounded, not a leak
            self._prefixes[cached_as] = prefix
        return prefix

    @staticmethod
    def _as_float(value: Any, name: str) -> float:
        if isinstance(value, bool) or value is None or isinstance(value, str):
            raise UsageError(f"track({value!r}, name={name!r}): value must be a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UsageError(
                f"track(name={name!r}): cannot turn a {type(value).__name__} into a number"
            ) from None
        except OverflowError:
            raise UsageError(
                f"track(name={name!r}): value {_short(value)} is too large for a float"
            ) from None

    @staticmethod
    def _as_int(step: Any, what: str) -> int:
        if isinstance(step, bool):
            raise UsageError(f"{what} must be an integer, got {step!r}")
        try:
            as_int = int(step)
        except (TypeError, ValueError):
            raise UsageError(f"{what} must be an integer, got {step!r}") from None
        if as_int != step:
            raise UsageError(f"{what} must be an integer, got {step!r}")
        if not _INT64_MIN <= as_int <= _INT64_MAX:
            raise UsageError(f"{what} must fit in 64 bits, got {_short(step)}")
        return as_int

    @staticmethod
    def _as_time(time: Any) -> float:
        try:
            value = float(time)
        except (TypeError, ValueError, OverflowError):
            raise UsageError(f"time must be unix seconds, got {_short(time)}") from None
        if not math.isfinite(value):
            raise UsageError(f"time must be finite, got {time!r}")
        return value

    @staticmethod
    def _as_epoch(epoch: Any) -> float:
        if isinstance(epoch, bool):
            raise UsageError(f"epoch must be a number, got {epoch!r}")
        try:
            value = float(epoch)
        except (TypeError, ValueError, OverflowError):
            raise UsageError(f"epoch must be a number, got {_short(epoch)}") from None
        if not math.isfinite(value):
            raise UsageError(f"epoch must be finite, got {epoch!r}")
        return value

    def _append_run_record(self, params: Mapping[str, Any] | None = None,
                           meta: Mapping[str, Any] | None = None) -> None:
        try:
            with self._lock:
                if self._closed or self._closing:
                    raise UsageError(self._closed_message("nothing more can be recorded"))
                self._emit(fmt.run_record(self.id, _time.time(), params, meta))
                self._flush()
        finally:
            self._upload()

    def _closed_message(self, consequence: str) -> str:
        if self._forked:
            return (f"run {self.id} was opened by process {self._pid}; this process "
                    f"({os.getpid()}) is a fork of it and cannot write to it: open a Run "
                    "of its own")
        return f"run {self.id} is closed; {consequence}"

    def _disown(self) -> None:
        """After ``os.fork``, in the child: this run is the parent's. Forget its buffer
        and file without writing anything; later calls raise UsageError."""
        self._lock = threading.Lock()  # may have been held by a thread of the parent
        self._upload_lock = threading.Lock()
        self._sealed = deque()
        self._buffer = []
        self._buffered = 0
        self._error = None
        self._closed = True
        self._forked = True
        self._flusher = None
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # the parent's descriptor stays open

    def _interrupt(self, error: dict[str, Any]) -> None:
        """In the SIGTERM handler, just before the process dies: the buffer and an
        ``interrupted`` status, in one write. When the lock stays taken (the signal
        arrived while this thread was inside the writer, whose buffer may be half
        written), only the status line is written: the buffer is lost, as with SIGKILL."""
        got = self._lock.acquire(timeout=0.5)
        try:
            if self._closed:
                return
            end = _time.time()
            line = fmt.run_record(self.id, end, None,
                                  {"status": "interrupted", "ended": end, "error": error})
            if got:
                self._emit(line)
                self._write_buffer()
            elif self._segments is not None:
                self._sealed.append(line.encode("utf-8"))
            else:
                self._write_now(line)
            self._closed = True
            # On object storage, the sealed segments if no upload is stuck (then they
            # are lost, as with SIGKILL).
            if self._segments is not None and self._upload_lock.acquire(timeout=5.0):
                try:
                    self._upload_sealed()
                finally:
                    self._upload_lock.release()
        except Exception:  # noqa: BLE001 - the process ends now; nothing can be reported
            pass
        finally:
            if got:
                self._lock.release()

    def _beat(self) -> None:
        """Touch the file (the heartbeat), under the lock: nothing written for a while.
        On object storage, overwrite this writer's own heartbeat object (outside the
        lock)."""
        if self._segments is not None:
            self._segments.beat()
            self._last_flush = _time.monotonic()
            return
        try:
            if os.utime in os.supports_fd:
                os.utime(self._fd)
            else:
                os.utime(self.path)
        except OSError:
            pass  # a missed beat is no reason to stop the job
        self._last_flush = _time.monotonic()

    def _emit(self, line: str) -> None:
        self._buffer.append(line)
        self._buffered += len(line)

    def _flush(self) -> None:
        """Write the buffer, then raise a pending error of the background flush."""
        pending, self._error = self._error, None
        self._write_buffer()
        if pending is not None:
            raise pending

    def _write_buffer(self) -> None:
        """Write the buffer in one append, and only then empty it: on failure the file is
        cut back to whole lines and the records stay buffered for the next flush. On
        object storage, seal it as the next segment, for :meth:`_upload`."""
        if not self._buffer:
            return
        if self._segments is not None:
            self._sealed.append("".join(self._buffer).encode("utf-8"))
            self._buffer.clear()
            self._buffered = 0
            return
        try:
            self._write_now("".join(self._buffer))
        except _Unwritten as failed:
            self._drop_written(failed.landed)
            raise failed.error from None
        self._buffer.clear()
        self._buffered = 0
        self._last_flush = _time.monotonic()

    def _backlogged(self) -> bool:
        """Whether the sealed segments waiting for the store exceed
        :data:`MAX_SEALED_BYTES` (then ``track`` waits for them rather than grow)."""
        return sum(len(segment) for segment in tuple(self._sealed)) > MAX_SEALED_BYTES

    def _upload(self) -> None:
        """Upload the sealed segments, outside the run's lock; wait for an upload under
        way first (one uploader at a time, so segments land in the order sealed). A
        failure raises :class:`WriteError` and keeps the segment first in line: the next
        upload sends exactly its bytes again, under its name."""
        if self._segments is None or not self._sealed:
            return
        with self._upload_lock:
            self._upload_sealed()

    def _upload_sealed(self) -> None:
        """:meth:`_upload`, the upload lock held."""
        while self._sealed:
            self._segments.put(self._sealed[0])
            self._sealed.popleft()
            self._last_flush = _time.monotonic()

    def _drop_written(self, landed: int) -> None:
        """Drop the first ``landed`` bytes of buffered lines (they are in the file)."""
        done = count = 0
        while count < len(self._buffer) and done < landed:
            done += len(self._buffer[count].encode("utf-8"))
            count += 1
        self._buffered -= sum(len(line) for line in self._buffer[:count])
        del self._buffer[:count]

    @staticmethod
    def _open(path: str) -> int:
        flags = os.O_APPEND | os.O_CREAT
        try:  # read access lets a flush check how the file ends (see _write_now)
            return os.open(path, flags | os.O_RDWR, 0o644)
        except PermissionError:
            return os.open(path, flags | os.O_WRONLY, 0o644)

    def _write_now(self, text: str) -> None:
        """Append ``text`` (whole lines) in one ``os.write``; on failure, cut it back.

        An exclusive ``flock`` on the file is held meanwhile, so other xp writers of the
        same file (a run written by several processes) wait instead of interleaving, the
        end of the file is known exactly (a failed write is cut back to it without
        touching anyone else's lines), and a torn line left there by a killed writer is
        ended first, so it cannot swallow our first record. A file removed meanwhile
        (compacted by ``xp compact``, deleted by hand) is created again, so records are
        never written into a file nobody can read.
        """
        data = text.encode("utf-8")
        for _ in range(3):
            with _exclusive(self._fd) if not self._private else contextlib.nullcontext():
                try:
                    info = os.fstat(self._fd)
                except OSError as exc:
                    raise _Unwritten(self._failed(exc, len(data)), 0) from None
                removed = info.st_nlink == 0
                if not removed:
                    self._append(data, info.st_size)
                    return
            if removed:  # reopened outside the lock, which belongs to the old file
                self._reopen()
        raise WriteError(f"cannot write to {self.path}: it is removed each time it is created")

    def _append(self, data: bytes, start: int) -> None:
        """Write ``data`` after the ``start`` bytes of the file, whole or not at all (the
        caller holds the lock). Raises :class:`_Unwritten`."""
        size = len(data)
        if start and not _ends_with_newline(self._fd, start):
            data = b"\n" + data
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            landed = 0
            try:  # never leave a partial line that would join the next one
                os.ftruncate(self._fd, start)
            except OSError:
                # What reached the file stays there: its whole lines are not written
                # again; the cut line is ended by the next flush (read as malformed).
                done = len(data) - len(view)
                landed = max(0, data.rfind(b"\n", 0, done) + 1 - (len(data) - size))
            raise _Unwritten(self._failed(exc, size - landed), landed) from None

    def _reopen(self) -> None:
        try:
            fd = self._open(self.path)
        except OSError as exc:
            raise WriteError(
                f"cannot write to {self.path}: it was removed and cannot be created again "
                f"({exc.strerror})"
            ) from None
        old, self._fd = self._fd, fd
        try:
            os.close(old)
        except OSError:
            pass

    def _failed(self, exc: OSError, kept: int) -> WriteError:
        return WriteError(
            f"cannot write to {self.path}: {exc.strerror}; {kept} bytes of records are "
            "kept in memory and written by the next flush"
        )

    def _flush_periodically(self) -> None:
        """Flush every ``flush_seconds`` (on object storage also when ``track`` sealed a
        full buffer, uploading outside the lock); any error is kept for the job's next
        call, and the flushes go on (the records stay buffered until one succeeds)."""
        while True:
            self._wake.wait(self._flush_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                if self._closed:
                    return
                try:
                    self._write_buffer()
                except Exception as exc:  # noqa: BLE001 - reported to the job, not lost
                    self._error = self._background(exc)
                due = self._heartbeat and _time.monotonic() - self._last_flush >= self._heartbeat
                if due and self._segments is None:
                    self._beat()
            if self._segments is None:
                continue
            try:
                self._upload()
            except Exception as exc:  # noqa: BLE001
                with self._lock:
                    self._error = self._background(exc)
            if due and not self._sealed:
                self._beat()

    def _background(self, exc: Exception) -> WriteError:
        """A failure of the flush thread, as the job's next call raises it."""
        if isinstance(exc, WriteError):
            return exc
        error = WriteError(
            f"background flush of {self.path} failed ({type(exc).__name__}: "
            f"{exc}); the records are kept in memory for the next flush"
        )
        error.__cause__ = exc
        return error


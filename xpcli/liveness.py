"""Is a run's writer still there? What a writer records about itself, and how a reader
decides a run's status from it.

Only the standard library: the writer imports it to describe its own process, the reader
to check that process. ``docs/guarantees.md`` states the rules for people; this module is
their implementation.

What :class:`xpcli.Run` records in its first run record's meta:

- ``host``: the host name (``$XP_HOST`` if set, else the system's);
- ``pid``: the process id;
- ``pid_start``: on Linux, ``linux:<boot id>:<pid namespace>:<start time>``, the process's
  start time in clock ticks since boot (``/proc/<pid>/stat``, field 22) with the machine's
  boot id and the process's pid namespace. A pid reused by another process has another
  start time, and a pid on another machine or in another container is never looked up
  here. Elsewhere no start time is recorded;
- ``heartbeat``: seconds; while the run is open its file is modified at least that often
  (by a write, or by touching it). Absent when the writer has no flush thread.

A run whose last written status is ``running`` is then decided when it is read
(:func:`decide`):

- the writer's process can be checked when the run's host is this host, it has a pid, and
  (if it recorded a start time) the boot id and pid namespace are this reader's. Then:
  the process is gone (or a zombie) -> ``crashed``; the pid exists with another start
  time -> ``crashed`` (reused pid); it exists and the run states a heartbeat that is older
  than :data:`MARGIN` intervals -> ``crashed`` (alive but no longer writing: hung, stopped
  or replaced by ``exec``); otherwise ``running``.
- otherwise (another host, a foreign record without a pid, a process this reader cannot
  see): no sign of life for more than :func:`stale_after` -> ``stale``; else ``running``.

The last sign of life is the newest of the run file's modification time (the heartbeat)
and the times in its records. Without ``/proc`` (macOS, BSD) a process is checked by
``kill(pid, 0)`` alone: it exists or not, but a reused pid cannot be told from the
writer; the heartbeat rule still catches it after :data:`MARGIN` intervals.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
INTERRUPTED = "interrupted"
CRASHED = "crashed"
STALE = "stale"
#: Statuses a writer records when it closes a run.
FINAL = (FINISHED, FAILED, INTERRUPTED)
#: Every status a reader shows, in the order the docs list them.
STATUSES = (RUNNING, FINISHED, FAILED, INTERRUPTED, CRASHED, STALE)

#: The writer's default heartbeat interval, in seconds.
DEFAULT_HEARTBEAT = 10.0
#: Missed heartbeats before a writer whose process still exists counts as no longer writing.
MARGIN = 6
#: Seconds without a sign of life before a run that cannot be checked is ``stale``. Long,
#: because that sign may come through a network file system (attributes cached for up to a
#: minute) from a host whose clock is not this one's.
STALE_AFTER = 600.0
_PID_MAX = 2**22  # Linux's largest pid_max; larger numbers are no pids


def host_name(system: Callable[[], str] | None = None) -> str:
    """This host's name for xp: ``$XP_HOST`` if set, else the system's host name
    (``system()``, default :func:`socket.gethostname`), made writable: a name that is not
    UTF-8 comes back with its bad bytes replaced."""
    name = os.environ.get("XP_HOST") or (system or socket.gethostname)()
    return readable(name)


def readable(text: str) -> str:
    """``text`` with anything that cannot be written as UTF-8 (lone surrogates, as
    ``os.fsdecode`` or ``socket.gethostname`` give for bytes that are not UTF-8) replaced."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def machine_id() -> str | None:
    """``linux:<boot id>:<pid namespace>`` of this process, or None without ``/proc``.

    Two processes with the same machine id see the same pids; a reboot changes it."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    if boot is None:
        return None
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        namespace = ""
    digits = "".join(c for c in namespace if c.isdigit())
    return f"linux:{boot.strip()}:{digits}"


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None
    when it cannot be read. Raises FileNotFoundError when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except FileNotFoundError:
        raise
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces and parentheses itself.
    return text[text.rfind(")") + 1:].split()


def start_token(pid: int, machine: str | None = None) -> str | None:
    """The ``pid_start`` of process ``pid`` on this machine, or None where it cannot be
    read (no ``/proc``, no such process, a hidden process)."""
    machine = machine if machine is not None else machine_id()
    if machine is None:
        return None
    try:
        fields = _stat_fields(pid)
    except FileNotFoundError:
        return None
    if fields is None or len(fields) < 20:
        return None
    return f"{machine}:{fields[19]}"  # field 22: start time, in clock ticks since boot


@dataclass(frozen=True)
class Process:
    """What this host knows of a pid: ``exists`` (None: cannot tell) and ``start``, its
    ``pid_start`` token when it could be read."""

    exists: bool | None
    start: str | None = None


def probe(pid: int, machine: str | None = None) -> Process:
    """Look pid up on this host: ``/proc`` first (start time, zombies count as gone), then
    ``kill(pid, 0)``, which sends nothing (a process of another user, hidden from
    ``/proc``, still answers it)."""
    if machine is not None:
        try:
            fields = _stat_fields(pid)
        except FileNotFoundError:
            fields = None
        else:
            if fields is not None and len(fields) >= 20:
                if fields[0] in ("Z", "X"):  # dead, only not yet reaped by its parent
                    return Process(False)
                return Process(True, f"{machine}:{fields[19]}")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return Process(False)
    except PermissionError:
        return Process(True)
    except OSError:
        return Process(None)
    return Process(True)


def _env_now() -> float | None:
    text = os.environ.get("XP_NOW")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        from .errors import UsageError

        raise UsageError(f"XP_NOW={text!r}: expected unix seconds, e.g. 1767225600")
    return value


@dataclass
class Observer:
    """Where and when a reader stands: what :func:`decide` compares a run with.

    ``now`` (unix seconds) and ``host`` come from ``$XP_NOW`` and ``$XP_HOST`` when set
    (tests and reproducible reports), else the clock and :func:`host_name`. ``probe``
    looks a pid up (:func:`probe` by default)."""

    now: float
    host: str
    machine: str | None = None
    probe: Callable[[int], Process] = field(default=probe)

    @classmethod
    def here(cls, now: float | None = None, host: str | None = None) -> "Observer":
        """This host, now (each overridable, then ``$XP_NOW``/``$XP_HOST``)."""
        import time

        if now is None:
            now = _env_now()
        machine = machine_id()
        return cls(now=time.time() if now is None else float(now),
                   host=host if host is not None else host_name(), machine=machine,
                   probe=lambda pid: probe(pid, machine))


def _number(value: Any) -> float | None:
    """A recorded number; text when another run's value of the same meta key made the
    column text (the runs table types a column from every run's values)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _pid(value: Any) -> int | None:
    number = _number(value)
    if number is None or not number.is_integer() or not 0 < number < _PID_MAX:
        return None
    return int(number)


def stale_after(heartbeat: float | None) -> float:
    """Seconds of silence after which a run that cannot be checked is ``stale``."""
    return max(MARGIN * heartbeat, STALE_AFTER) if heartbeat else STALE_AFTER


@dataclass(frozen=True)
class Facts:
    """What a reader knows of one run: its written ``status``, the writer's ``host``,
    ``pid``, ``pid_start`` and ``heartbeat`` as recorded (any type: checked here), and
    ``last_sign`` (unix seconds), its latest sign of life."""

    status: Any
    host: Any = None
    pid: Any = None
    pid_start: Any = None
    heartbeat: Any = None
    last_sign: float | None = None


def decide(facts: Facts, observer: Observer) -> tuple[Any, str | None]:
    """The status a run has now, and why when it is not what was written.

    Only a written ``running`` is looked at; any other status is returned as it is."""
    if facts.status != RUNNING:
        return facts.status, None
    heartbeat = _positive(facts.heartbeat)
    pid = _pid(facts.pid)
    host = facts.host if isinstance(facts.host, str) else None
    token = facts.pid_start if isinstance(facts.pid_start, str) and facts.pid_start else None
    age = None if facts.last_sign is None else observer.now - facts.last_sign
    on_this_host = host is not None and host == observer.host
    same_machine = token is None or (observer.machine is not None
                                     and token.rsplit(":", 1)[0] == observer.machine)
    if on_this_host and pid is not None and same_machine:
        process = observer.probe(pid)
        if process.exists is False:
            return CRASHED, f"process {pid} is gone"
        if process.exists:
            if token is not None and process.start is not None and process.start != token:
                return CRASHED, f"process {pid} is gone (its pid is another process's now)"
            if heartbeat is not None and age is not None and age > MARGIN * heartbeat:
                return CRASHED, (f"process {pid} exists but has not written for "
                                 f"{human_duration(age)} (heartbeat {human_duration(heartbeat)})")
            return RUNNING, None
    if age is not None and age > stale_after(heartbeat):
        where = f" from {host}" if host else ""
        return STALE, f"no sign of life{where} for {human_duration(age)}"
    return RUNNING, None


def short_reason(error: Mapping[str, Any] | None, limit: int = 80) -> str | None:
    """A one-line reason from an ``error`` meta object: ``ValueError: lr must be > 0``."""
    if not isinstance(error, Mapping):
        return None
    kind = error.get("type")
    kind = kind.rsplit(".", 1)[-1] if isinstance(kind, str) and kind else None
    message = error.get("message")
    first = message.strip().splitlines()[0].strip() if isinstance(message, str) and \
        message.strip() else ""
    text = f"{kind}: {first}" if kind and first else kind or first
    signal = error.get("signal")
    if isinstance(signal, str) and signal:  # a SIGTERM, and what the job made of it
        text = signal if kind in (None, signal) else f"{signal}, then {text}"
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def human_duration(seconds: float) -> str:
    """Seconds for people: ``45s``, ``12m 05s``, ``3h 04m``, ``2d 03h``."""
    if not math.isfinite(seconds):
        return str(seconds)
    sign = "-" if seconds < 0 else ""
    total = int(abs(seconds) + 0.5)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours:02d}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"

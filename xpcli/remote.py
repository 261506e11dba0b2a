"""Runs on object storage: ``s3://``, ``gs://`` and ``az://`` runs directories.

Through `obstore <https://developmentseed.org/obstore/>`_ (the Rust ``object_store``
crate that Polars also reads object storage with), installed by the ``s3`` extra
(``pip install 'xpcli[s3]'``); imported only when a runs directory is a URL.

Layout (see ``docs/format.md`` and ``docs/guarantees.md``): a writer never appends. Each
flush of :class:`xpcli.Run` uploads one new, immutable *segment* object
``<prefix>/<run>/<writer>-<seq>.jsonl`` (``writer``: an id made when the Run opens, unique
across hosts and sortable by time; ``seq``: 8 digits, from 0), with a put-if-absent where
the store supports it. While a run is open and idle its writer overwrites its own
``<run>/<writer>.alive`` object (the heartbeat). Any other ``*.jsonl``, ``*.jsonl.gz`` or
``*.parquet`` object under the prefix is read too (uploaded by hand, ``xp compact``).

Reading: :func:`sync` lists the prefix and downloads each new or changed object (by ETag
and size) into a local *mirror* folder in the cache (``<cache>/remote/<hash of URL>/``),
whose files carry the objects' modification times; the mirror is then read like any
local runs directory (:func:`xpcli.dataset.load`), so an unchanged object costs neither a
download nor a parse, and a new segment is the only thing downloaded and parsed.

Credentials and endpoints come from the standard environment of each store:
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``,
``AWS_ENDPOINT_URL`` (an S3-compatible server; ``AWS_ALLOW_HTTP=true`` for plain http),
or the instance's or pod's role; ``GOOGLE_APPLICATION_CREDENTIALS`` or
``GOOGLE_SERVICE_ACCOUNT``; ``AZURE_STORAGE_ACCOUNT_NAME`` with
``AZURE_STORAGE_ACCOUNT_KEY``, ``AZURE_STORAGE_SAS_TOKEN`` or a service principal
(``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``, ``AZURE_TENANT_ID``).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from .errors import DataError, UsageError, WriteError

#: :data:`xpcli.progress.Progress` (that module sits below this one in the layers).
Progress = Callable[[int, int, int, int, str], None]

SCHEMES = ("s3", "gs", "az")
#: Object names read as records (the suffixes :func:`xpcli.records.find_files` finds).
SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
#: A writer's heartbeat object beside its segments.
ALIVE = ".alive"
#: Downloads at once: listing and fetching are round trips, not bandwidth.
DOWNLOADS = 16
SEQ_DIGITS = 8
_URL = re.compile(r"(s3|gs|az)://([^/]+)(/.*)?\Z")
_ENV_CONFIG = {
    "gs": ("GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_PATH", "GOOGLE_SERVICE_ACCOUNT_KEY",
           "GOOGLE_APPLICATION_CREDENTIALS"),
    "az": ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN",
           "AZURE_STORAGE_TOKEN", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID",
           "AZURE_FEDERATED_TOKEN_FILE", "AZURE_STORAGE_USE_EMULATOR", "AZURE_STORAGE_ENDPOINT",
           "AZURE_USE_AZURE_CLI"),
}
#: A request is retried for this long at most (outside the run's lock: track goes on).
RETRY_SECONDS = 30


def is_url(text: Any) -> bool:
    """Whether a runs directory is an object-storage URL (``s3://``, ``gs://``, ``az://``)."""
    return isinstance(text, str) and text.split("://", 1)[0] in SCHEMES and "://" in text


def normalize(url: str) -> str:
    """``s3://bucket/prefix`` without a trailing slash; a one-line error when malformed."""
    match = _URL.match(url)
    if match is None or any(part in (".", "..") for part in (match.group(3) or "").split("/")):
        raise UsageError(f"{url}: not a runs URL; write s3://BUCKET/PREFIX (or gs://, az://)")
    return url.rstrip("/")


def first_line(exc: BaseException, limit: int = 240) -> str:
    """An object-store error in one line (their text runs over many); when cut short, the
    store's answer (``501 Not Implemented``) is kept at the end."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if len(text) <= limit:
        return text
    answer = re.search(r"status code: (\d{3}[^:]*)", text)
    tail = f" (the store answered {answer.group(1).strip()})" if answer else ""
    return text[: limit - 3 - len(tail)] + "..." + tail


def open_store(url: str) -> Any:
    """The obstore store of ``url`` (its prefix applied), from the environment.

    Raises :class:`UsageError` when obstore is missing or the URL cannot be used."""
    url = normalize(url)
    try:
        from obstore.store import from_url
    except ImportError:
        raise UsageError(f"{url}: runs on object storage need obstore: "
                         "pip install 'xpcli[s3]'") from None
    scheme = url.split("://", 1)[0]
    config = {name.lower(): os.environ[name] for name in _ENV_CONFIG.get(scheme, ())
              if os.environ.get(name)}
    retry = {"max_retries": 5, "retry_timeout": timedelta(seconds=RETRY_SECONDS)}
    try:
        return from_url(url, config=config or None,  # type: ignore[call-overload, unused-ignore]
                        retry_config=retry)
    except BaseException as exc:  # obstore raises its own errors, or panics (BaseException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise UsageError(f"{url}: cannot open the store: {first_line(exc)}") from None


def _safe_key(key: str) -> bool:
    """An object key that maps to a file inside the mirror: no empty, ``.`` or ``..``
    part (obstore refuses those when listing already; this keeps the mirror safe
    whatever a store returns)."""
    parts = key.split("/")
    return all(p not in ("", ".", "..") and "\0" not in p for p in parts)


# -- writing -----------------------------------------------------------------------------


class Segments:
    """The object-storage side of one :class:`xpcli.Run`: its segments and heartbeat.

    ``put`` uploads whole lines as the next segment, never overwriting an object (a
    put-if-absent; a store that refuses conditional puts gets plain puts, the names
    being unique to this writer anyway). An upload that failed is kept: the next ``put``
    uploads exactly those bytes again under the same name first, so a request that
    reached the store although its answer was lost is not written twice.
    """

    def __init__(self, url: str, run: str, writer: str) -> None:
        self.url = normalize(url)
        self.run = run
        self.writer = writer
        self.store = open_store(self.url)
        self.seq = 0
        self.pending: bytes | None = None
        self.mode = "create"

    def key(self, seq: int) -> str:
        return f"{self.run}/{self.writer}-{seq:0{SEQ_DIGITS}d}.jsonl"

    def exists(self) -> bool:
        """Whether the run has objects already (a resumed run)."""
        import obstore

        try:
            for batch in obstore.list(self.store, prefix=f"{self.run}/", chunk_size=1):
                if batch:
                    return True
        except Exception as exc:  # noqa: BLE001 - obstore's errors share no base we import
            raise WriteError(f"cannot list {self.url}/{self.run}/: {first_line(exc)}") from None
        return False

    def put(self, data: bytes) -> None:
        """Upload ``data`` (whole lines) as the next segment. Raises :class:`WriteError`
        and keeps what was not uploaded for the next call, which must pass it again
        (then perhaps followed by more lines)."""
        if self.pending is not None and data.startswith(self.pending):
            self._put_segment(self.pending)
            data = data[len(self.pending):]
        self.pending = None
        if data:
            try:
                self._put_segment(data)
            except WriteError:
                self.pending = data
                raise

    def _put_segment(self, data: bytes) -> None:
        import obstore
        from obstore.exceptions import AlreadyExistsError, NotSupportedError

        key = self.key(self.seq)
        try:
            obstore.put(self.store, key, data, mode=self.mode)  # type: ignore[arg-type, unused-ignore]
        except AlreadyExistsError:
            pass  # our own earlier attempt landed: names are unique to this writer
        except NotSupportedError:
            self.mode = "overwrite"
            self._put_segment(data)
            return
        except Exception as exc:  # noqa: BLE001
            raise WriteError(f"cannot upload {self.url}/{key}: {first_line(exc)}; "
                             f"{len(data)} bytes of records are kept in memory and uploaded "
                             "by the next flush") from None
        self.seq += 1

    def beat(self) -> None:
        """Overwrite this writer's heartbeat object (its own: never another writer's)."""
        import obstore

        with contextlib.suppress(Exception):  # a missed beat is no reason to stop the job
            obstore.put(self.store, f"{self.run}/{self.writer}{ALIVE}", b"")


# -- reading -----------------------------------------------------------------------------


@dataclass
class Synced:
    """What :func:`sync` did: the local ``folder``, and counts of objects ``listed`` (run
    files), ``downloaded`` (new or changed) and ``removed`` (gone from the store)."""

    url: str
    folder: str
    listed: int = 0
    downloaded: int = 0
    downloaded_bytes: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)

    def name_objects(self, dataset: Any) -> Any:
        """A :class:`xpcli.dataset.Dataset` read from the mirror, with the objects' URLs
        (not the mirror's files) in its diagnostics and ``files``."""
        local = self.folder + os.sep
        for item in dataset.diagnostics.items:
            if item.path.startswith(local):
                item.path = f"{self.url}/{item.path[len(local):]}"
        for key in self.skipped:
            dataset.diagnostics.add(f"{self.url}/{key}", 0,
                                    "object name with an empty, '.' or '..' part; skipped",
                                    "skipped")
        dataset.files = [f"{self.url}/{p[len(local):]}" if p.startswith(local) else p
                         for p in dataset.files]
        return dataset


_temporary: list[str] = []


def _drop_temporary() -> None:
    for folder in _temporary:
        shutil.rmtree(folder, ignore_errors=True)


def mirror_home(url: str, cache_home: Path) -> Path:
    """The folder of ``url``'s mirror in the cache folder ``cache_home``: named like the
    cache of a runs directory (16 hex digits, a ``lock`` inside), so ``xp cache clear
    --all`` removes it too."""
    return cache_home / hashlib.sha256(f"remote:{normalize(url)}".encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _list(store: Any, url: str) -> list[Any]:
    import obstore

    try:
        return [meta for batch in obstore.list(store) for meta in batch]
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot list {url}: {first_line(exc)}"
                        + ("; rename or remove that object" if "invalid path" in str(exc)
                           else "")) from None


def sync(url: str, cache_home: Path | None, progress: Progress | None = None) -> Synced:
    """Bring the local mirror of ``url`` (in the cache folder ``cache_home``; a temporary
    folder when it is None) up to date: only new or changed objects (by ETag and size)
    are downloaded, and objects gone from the store are removed from it. Raises
    :class:`DataError` when the URL holds no run file."""
    url = normalize(url)
    store = open_store(url)
    home = mirror_home(url, cache_home) if cache_home is not None else None
    if home is None:
        folder = Path(tempfile.mkdtemp(prefix="xp-remote-"))
        if not _temporary:
            atexit.register(_drop_temporary)
        _temporary.append(str(folder))
        home = folder
    with _locked(home):
        synced = _sync(url, store, home, progress)
    if not synced.listed:
        raise DataError(f"no run files (*.jsonl, *.jsonl.gz, *.parquet) under {url}; "
                        "pass --runs URL or set XP_RUNS")
    return synced


def _sync(url: str, store: Any, home: Path, progress: Progress | None) -> Synced:
    mirror = home / "mirror"
    manifest_path = home / "objects.json"
    try:
        known: dict[str, list[Any]] = json.loads(manifest_path.read_text("utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    result = Synced(url, str(mirror))
    wanted: dict[str, dict[str, Any]] = {}
    signs: dict[str, float] = {}  # run folder -> newest object time (the heartbeat)
    for meta in _list(store, url):
        key = meta["path"]
        when = meta["last_modified"].timestamp()
        if key.endswith(ALIVE) or key.endswith(SUFFIXES):
            folder = key.rsplit("/", 1)[0] if "/" in key else ""
            signs[folder] = max(when, signs.get(folder, when))
        if not key.endswith(SUFFIXES) or any(p.startswith(".") for p in key.split("/")):
            continue  # hidden objects are skipped, as hidden files are in a folder
        if not _safe_key(key):
            result.skipped.append(key)
            continue
        wanted[key] = meta
    result.listed = len(wanted)
    for key in set(known) - set(wanted):
        with contextlib.suppress(OSError):
            os.unlink(mirror / key)
        del known[key]
        result.removed += 1
    todo = [key for key, meta in wanted.items()
            if known.get(key, [None, None])[:2] != [meta["e_tag"], meta["size"]]
            or not _present(mirror / key, meta["size"])]
    total = sum(wanted[key]["size"] for key in todo)
    done = [0, 0]

    def fetch(key: str) -> tuple[str, bytes | None]:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            data = bytes(obstore.get(store, key).bytes())
        except NotFoundError:
            return key, None  # deleted since it was listed
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"cannot download {url}/{key}: {first_line(exc)}") from None
        return key, data

    with ThreadPoolExecutor(max_workers=DOWNLOADS) as pool:
        for key, data in pool.map(fetch, todo):
            meta = wanted[key]
            target = mirror / key
            if data is None:
                with contextlib.suppress(OSError):
                    os.unlink(target)
                known.pop(key, None)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            # The store's time: a reader tells a live run by its newest object.
            when = meta["last_modified"].timestamp()
            os.utime(target, (when, when))
            known[key] = [meta["e_tag"], meta["size"]]
            result.downloaded += 1
            result.downloaded_bytes += len(data)
            done[0] += 1
            done[1] += len(data)
            if progress is not None:
                progress(done[0], len(todo), done[1], total, "downloading")
    _mark_signs(mirror, wanted, signs)
    tmp_manifest = home / f".objects.{os.getpid()}.tmp"
    tmp_manifest.write_text(json.dumps(known), "utf-8")
    os.replace(tmp_manifest, manifest_path)
    return result


def _present(path: Path, size: int) -> bool:
    try:
        return os.stat(path).st_size == size
    except OSError:
        return False


def _mark_signs(mirror: Path, wanted: dict[str, dict[str, Any]],
                signs: dict[str, float]) -> None:
    """Give the last file of each run folder the folder's newest object time (a segment's
    or a heartbeat's), which a reader takes as the run's last sign of life."""
    last: dict[str, str] = {}
    for key in wanted:
        folder = key.rsplit("/", 1)[0] if "/" in key else ""
        if folder and (folder not in last or key > last[folder]):
            last[folder] = key
    for folder, key in last.items():
        sign = signs.get(folder)
        path = mirror / key
        try:
            if sign is not None and os.stat(path).st_mtime < sign:
                os.utime(path, (sign, sign))
        except OSError:
            pass

"""What every importer shares: source runs, points, run ids, params from names, writing.

An importer module provides what :class:`Importer` names: ``KIND``, ``LOOK_FOR``,
``discover(source, report) -> list[SourceRun]`` and ``read(run, report) -> RunData | None``
(and, to take a URI instead of a path, ``is_uri(source) -> bool``); it is registered in
:data:`xpcli.importers.REGISTRY`. :func:`import_source` drives it: it finds the
source runs, gives each a stable run id, reads it, and writes one Parquet file per source
run to ``<into>/imported/<kind>/<run>.parquet`` (atomically, so a reader never sees half a
file and a re-import replaces the file instead of adding a second copy).

Broken input never stops an import: a reader reports what it skipped with
:meth:`Report.skip` (a reason and, for a whole file, a message) and the rest goes on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time as _time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import format as fmt
from ..errors import UsageError, XpError

#: Where imported runs go inside the runs directory.
IMPORTED_DIR = "imported"

#: Characters a metric spec cannot hold in a name (see xpcli/spec/metric.py), replaced by "_".
_NAME_UNSAFE = re.compile(r"[\s:@,()\[\]=*?'\"`]+")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HASH_CHARS = 6


# -- what readers produce ------------------------------------------------------------------


@dataclass
class SourceRun:
    """One run found in a source: its original ``name``, the ``path`` that holds it.

    ``name`` is what the source calls the run (a folder path relative to the source,
    ``unet/runs/UNet_dr015_bs16_lr2e_4``); ``path`` the absolute file or folder it is read
    from; ``key`` whatever else the reader needs to find it (an MLflow run uuid).
    """

    name: str
    path: str
    key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ident(self) -> str:
        """What makes this source run distinct from every other (hashed into ids)."""
        return f"{self.path}#{self.key}" if self.key else self.path


class RunData:
    """Params, meta and points of one source run, filled by a reader."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.created: float | None = None
        self.names: list[str] = []
        self.values: list[float] = []
        self.steps: list[int | None] = []
        self.epochs: list[float | None] = []
        self.times: list[float | None] = []
        self.contexts: list[str | None] = []
        self.chunks: list[_Chunk] = []
        self._context_text: dict[tuple[tuple[str, str], ...], str] = {}

    def add(self, name: str, value: float, step: int | None = None,
            epoch: float | None = None, time: float | None = None,
            context: Mapping[str, str] | None = None) -> None:
        """Add one point; ``name`` is made spec-safe with :func:`metric_name`."""
        self.names.append(metric_name(name))
        self.values.append(float(value))
        self.steps.append(None if step is None else int(step))
        self.epochs.append(None if epoch is None else float(epoch))
        self.times.append(None if time is None else float(time))
        self.contexts.append(self._context(context))

    def add_columns(self, names: Sequence[str], codes: Any, values: Any, steps: Any,
                    times: Any, context: Mapping[str, str] | None = None) -> None:
        """Add many points of one context column-wise (numpy arrays, no epoch).

        ``codes[i]`` indexes ``names`` (the distinct raw names, each made spec-safe once as
        :meth:`add` does); ``values``, ``steps`` (int64) and ``times`` are arrays of the
        same length. Such points are stored after those added with :meth:`add`.
        """
        text = self._context(context)
        self.chunks.append(_Chunk([metric_name(n) for n in names], [text] * len(names),
                                  codes, values, steps, times))

    def _context(self, context: Mapping[str, str] | None) -> str | None:
        if not context:
            return None
        items = tuple(sorted((str(k), str(v)) for k, v in context.items()))
        text = self._context_text.get(items)
        if text is None:
            for key, _ in items:
                fmt.check_context_key(key)
            text = self._context_text[items] = fmt.dumps(dict(items))
        return text

    def __len__(self) -> int:
        return len(self.values) + sum(len(chunk.values) for chunk in self.chunks)


@dataclass
class _Chunk:
    """Points added column-wise: per code a (spec-safe) name and a context text."""

    names: list[str]
    contexts: list[str | None]
    codes: Any
    values: Any
    steps: Any
    times: Any

    def frame(self, run_id: str) -> Any:
        """The chunk's rows in ``records.RAW_SCHEMA``."""
        import polars as pl

        from ..records import RAW_SCHEMA

        n = len(self.values)
        codes = pl.Series(self.codes, dtype=pl.UInt32)
        return pl.DataFrame({
            "kind": pl.repeat("point", n, dtype=pl.String, eager=True),
            "run": pl.repeat(run_id, n, dtype=pl.String, eager=True),
            "name": pl.Series(self.names, dtype=pl.String).gather(codes),
            "value": pl.Series(self.values, dtype=pl.Float64),
            "step": pl.Series(self.steps, dtype=pl.Int64),
            "epoch": pl.repeat(None, n, dtype=pl.Float64, eager=True),
            "time": pl.Series(self.times, dtype=pl.Float64),
            "context": pl.Series(self.contexts, dtype=pl.String).gather(codes),
            "params": pl.repeat(None, n, dtype=pl.String, eager=True),
            "meta": pl.repeat(None, n, dtype=pl.String, eager=True),
        }, schema=RAW_SCHEMA)


@dataclass
class Problem:
    """One thing skipped: the file, a short reason (the summary's key) and a message."""

    path: str
    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass
class ImportedRun:
    """One run written: its id, the source's name for it, points, the file written."""

    run: str
    name: str
    source: str
    points: int
    path: str


@dataclass
class ImportSummary:
    """What an import did: runs written, points, and skipped items counted by reason."""

    kind: str
    source: str
    into: str
    runs: list[ImportedRun] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def points(self) -> int:
        """Points written, over every run."""
        return sum(r.points for r in self.runs)

    def skipped_text(self) -> str:
        """``20 text events, 1 unreadable file`` - the skipped counts in one phrase."""
        return ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))


class Report:
    """Collects what a reader skips; handed to ``discover`` and ``read``.

    ``options``: the importer's own options (``run_column`` for ``table``), by name.
    """

    def __init__(self, summary: ImportSummary,
                 options: Mapping[str, Any] | None = None) -> None:
        self.summary = summary
        self.options: Mapping[str, Any] = dict(options or {})

    def skip(self, path: str, reason: str, message: str | None = None, count: int = 1) -> None:
        """Count ``count`` items skipped for ``reason``; a ``message`` is shown per file."""
        if count <= 0:
            return
        self.summary.skipped[reason] += count
        if message:
            self.summary.problems.append(Problem(path, reason, message))

    def note(self, path: str, reason: str, message: str) -> None:
        """Report something the user should know that skipped nothing (a warning line)."""
        self.summary.problems.append(Problem(path, reason, message))


# -- names, ids and params -----------------------------------------------------------------


def metric_name(tag: str) -> str:
    """A metric name a spec can name: blanks and spec syntax (``:@,()[]=*?``) become ``_``.

    ``IoU (avg on test)`` -> ``IoU_avg_on_test``; ``train/loss`` stays as it is.
    """
    name = _NAME_UNSAFE.sub("_", str(tag)).strip("_")
    name = "".join(c for c in name if ord(c) >= 32 and ord(c) != 127)
    return name[:256] or "metric"


def safe_id(name: str) -> str:
    """A run id from a source's name: path separators -> ``-``, other odd runs -> ``_``."""
    text = "-".join(p for p in re.split(r"[\\/]+", name) if p)
    text = _ID_UNSAFE.sub("_", text).strip("._-")
    return text[: fmt.RUN_ID_MAX] or "run"


def short_hash(text: str) -> str:
    """Six hex digits of SHA-1: enough to keep a handful of same-named runs apart."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]


def _with_hash(base: str, ident: str) -> str:
    return f"{base[: fmt.RUN_ID_MAX - _HASH_CHARS - 1]}-{short_hash(ident)}"


def existing_sources(into: str) -> dict[str, str]:
    """Run id -> ``source_id`` of every run already imported under ``<into>/imported``."""
    import polars as pl

    root = os.path.join(into, IMPORTED_DIR)
    found: dict[str, str] = {}
    if not os.path.isdir(root):
        return found
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for file in files:
            if file.startswith(".") or not file.endswith(".parquet"):
                continue
            try:
                frame = pl.read_parquet(os.path.join(folder, file), columns=["kind", "run", "meta"])
            except Exception:  # noqa: BLE001 - a damaged file does not own its id
                continue
            for run, meta in frame.filter(pl.col("kind") == "run").select("run", "meta").rows():
                try:
                    found[run] = str(json.loads(meta or "{}").get("source_id", ""))
                except ValueError:
                    found[run] = ""
    return found


def assign_ids(runs: list[SourceRun], kind: str, taken: Mapping[str, str]) -> list[str]:
    """A stable run id per source run: its safe name, plus a short hash when needed.

    The hash of the source (kind, path, key) is added when two runs of this import share
    a safe name, or when the id already belongs to a run imported from another source
    (``taken``: id -> source id). Re-importing a source gives the same ids.
    """
    bases = [safe_id(r.name) for r in runs]
    counts = Counter(bases)
    ids = []
    for run, base in zip(runs, bases):
        ident = source_id(kind, run)
        owner = taken.get(base)
        if counts[base] > 1 or (owner is not None and owner != ident):
            base = _with_hash(base, ident)
        ids.append(fmt.check_run_id(base))
    return ids


def source_id(kind: str, run: SourceRun) -> str:
    """The identity of a source run, stored in meta ``source_id``."""
    return f"{kind}:{run.ident}"


def compile_name_regex(pattern: str | None, option: str) -> re.Pattern[str] | None:
    """Compile a ``--params-from-name``/``--context-from-name`` regex, or raise UsageError."""
    if not pattern:
        return None
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"{option}: bad regular expression {pattern!r} ({exc})") from None
    if not regex.groupindex:
        raise UsageError(f"{option}: {pattern!r} has no named group; "
                         "write e.g. 'lr(?P<lr>[0-9.e_-]+)'")
    return regex


_INT = re.compile(r"[+-]?\d+")
_E_UNDERSCORE = re.compile(r"^([+-]?\d+(?:\.\d*)?)e_(\d+)$")
_P_DECIMAL = re.compile(r"^([+-]?\d+)p(\d+)$")


def convert(text: str, kind: str | None = None) -> Any:
    """A value from text: int, float, bool, None or the text itself.

    Beyond Python's syntax: ``2e_4`` (``-`` written as ``_`` in a folder name) is 2e-4,
    ``0p5`` is 0.5. ``kind`` forces a type: ``str`` keeps the text, ``int``, ``float``,
    or ``dec`` (a decimal point after the first digit, for names like ``dr015`` = 0.15).
    """
    text = text.strip()
    if kind == "str":
        return text
    if kind == "dec":
        digits = text.lstrip("+-")
        if digits.isdigit():
            return float(f"{text[: len(text) - len(digits)]}{digits[0]}.{digits[1:] or '0'}")
        raise ValueError(f"{text!r} is not digits")
    lowered = text.lower()
    if kind is None:
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "null"):
            return None
    if _INT.fullmatch(text) and kind != "float":
        return int(text)
    candidate = _E_UNDERSCORE.sub(r"\1e-\2", text)
    candidate = _P_DECIMAL.sub(r"\1.\2", candidate)
    try:
        number = float(candidate)
    except ValueError:
        if kind in ("int", "float"):
            raise ValueError(f"{text!r} is not a number") from None
        return text
    if kind == "int":
        if not number.is_integer():
            raise ValueError(f"{text!r} is not an integer")
        return int(number)
    return number


_TYPE_SUFFIXES = ("str", "int", "float", "dec")


def params_from_name(regex: re.Pattern[str], name: str) -> dict[str, Any]:
    """Params from a run's name by the named groups of ``regex`` (searched, not matched).

    A group name may end in ``__int``, ``__float``, ``__str`` or ``__dec`` to force the
    type (``dr(?P<dropout__dec>\\d+)``); otherwise :func:`convert` guesses it.
    Groups that did not take part in the match are left out.
    """
    match = regex.search(name)
    if not match:
        return {}
    params: dict[str, Any] = {}
    for group, text in match.groupdict().items():
        if text is None:
            continue
        key, _, kind = group.rpartition("__")
        if not key or kind not in _TYPE_SUFFIXES:
            key, kind = group, ""
        try:
            params[key] = convert(text, kind or None)
        except ValueError:
            params[key] = text
    return params


def context_from_name(regex: re.Pattern[str], name: str) -> tuple[str, dict[str, str]]:
    """Split a metric name by ``regex``: group ``name`` is the new name, others context.

    ``(?P<split>train|val)_(?P<name>.+)`` turns ``val_loss`` into ``loss`` with
    ``split=val``. Names the regex does not fully match are kept as they are.
    """
    match = regex.fullmatch(name)
    if not match or not match.groupdict().get("name"):
        return name, {}
    context = {k: v for k, v in match.groupdict().items() if k != "name" and v}
    return match.group("name"), context


# -- running an import ---------------------------------------------------------------------


def to_frame(run_id: str, data: RunData) -> Any:
    """The raw record frame (``records.RAW_SCHEMA``) of one run: its run record, its points."""
    import polars as pl

    from ..records import RAW_SCHEMA

    n = len(data.values)
    params = fmt.plain_params(data.params) if data.params else None
    meta = fmt.plain_params(data.meta, "meta") if data.meta else None
    head = {
        "kind": ["run"], "run": [run_id], "name": [None], "value": [None], "step": [None],
        "epoch": [None], "time": [data.created],
        "context": [None],
        "params": [fmt.dumps(params) if params else None],
        "meta": [fmt.dumps(meta) if meta else None],
    }
    body = {
        "kind": ["point"] * n, "run": [run_id] * n, "name": data.names, "value": data.values,
        "step": data.steps, "epoch": data.epochs, "time": data.times,
        "context": data.contexts, "params": [None] * n, "meta": [None] * n,
    }
    return pl.concat([pl.DataFrame(head, schema=RAW_SCHEMA), pl.DataFrame(body, schema=RAW_SCHEMA),
                      *(chunk.frame(run_id) for chunk in data.chunks)], how="vertical")


def _apply_context_regex(data: RunData, regex: re.Pattern[str]) -> None:
    cache: dict[str, tuple[str, dict[str, str]]] = {}

    def split(name: str, text: str | None) -> tuple[str, str | None]:
        if name not in cache:
            cache[name] = context_from_name(regex, name)
        new, extra = cache[name]
        if not extra:
            return name, text
        old = json.loads(text) if text else {}
        return new, data._context({**old, **extra})

    for i, name in enumerate(data.names):
        data.names[i], data.contexts[i] = split(name, data.contexts[i])
    for chunk in data.chunks:
        pairs = [split(n, t) for n, t in zip(chunk.names, chunk.contexts)]
        chunk.names = [n for n, _ in pairs]
        chunk.contexts = [t for _, t in pairs]


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float if it is a real number (bools are not), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def is_number(value: Any) -> bool:
    """True for int and float values (NaN and infinities included), not for bools."""
    return finite_or_none(value) is not None or (
        isinstance(value, float) and math.isnan(value)
    )


#: The points table stores steps as Int64.
STEP_MIN, STEP_MAX = -(2**63), 2**63 - 1
#: The summary's reason for points skipped because their step cannot be stored.
BAD_STEP = "points with an infinite or out-of-range step"


def step_or_none(value: float | int) -> int | None:
    """A number as a step (floats truncated), or None when it is not finite or beyond 64 bits."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    step = int(value)
    return step if STEP_MIN <= step <= STEP_MAX else None


def checked_params(params: dict[str, Any], path: str, report: Report) -> dict[str, Any]:
    """``params`` when the record format takes them, else ``{}`` with ``path`` reported.

    :func:`format.plain_params` refuses a value that contains itself (a YAML alias
    cycle), nests too deep, or a name with control characters; the run keeps its points.
    """
    try:
        fmt.plain_params(params)
    except UsageError as exc:
        report.skip(path, "unreadable params", f"{exc}; the run's params skipped")
        return {}
    return params


Progress = Callable[[int, int, str], None]


class Importer(Protocol):
    """The interface of an importer module (its top-level names; mypy checks each one
    registered in :data:`xpcli.importers.REGISTRY` against it).

    ``KIND``: the name ``xp import`` takes and the folder runs go to. ``LOOK_FOR``: the hint
    when a source holds no run. ``discover`` lists the runs of a source (an absolute path,
    or a URI when the module also has ``is_uri(source) -> bool`` and says True), reporting
    what it skips; ``read`` gives one run's params, meta and points, or None after
    reporting why it cannot. Any exception but :class:`XpError` from ``read`` skips that
    run, named in the summary.
    """

    KIND: str
    LOOK_FOR: str

    def discover(self, source: str, report: Report) -> list[SourceRun]: ...

    def read(self, run: SourceRun, report: Report) -> RunData | None: ...


def import_source(module: Importer, source: str, into: str, *,
                  params_regex: str | None = None, context_regex: str | None = None,
                  progress: Progress | None = None, dry_run: bool = False,
                  options: Mapping[str, Any] | None = None) -> ImportSummary:
    """Import every run of ``source`` with importer ``module`` into the runs dir ``into``.

    Returns an :class:`ImportSummary`; raises :class:`XpError` only when the source does
    not exist or holds no run at all (anything less is skipped and counted). With
    ``dry_run`` every run is read and counted as usual but nothing is written (the
    summary's paths are where the files would go). ``options`` reach the importer as
    ``report.options``.
    """
    started = _time.perf_counter()
    kind = module.KIND
    p_regex = compile_name_regex(params_regex, "--params-from-name")
    c_regex = compile_name_regex(context_regex, "--context-from-name")
    root = os.path.abspath(os.fspath(source))
    is_uri = getattr(module, "is_uri", lambda text: False)
    if not os.path.exists(root) and not is_uri(source):
        raise UsageError(f"source {source} does not exist; pass a folder of {kind} logs")
    into = os.fspath(into)
    summary = ImportSummary(kind=kind, source=source, into=into)
    report = Report(summary, options)
    runs = module.discover(root if os.path.exists(root) else source, report)
    if not runs:
        detail = f" ({summary.skipped_text()})" if summary.skipped else ""
        raise XpError(f"no {kind} runs found under {source}{detail}; {module.LOOK_FOR}")
    ids = assign_ids(runs, kind, existing_sources(into))
    by_key = {run.key: run_id for run, run_id in zip(runs, ids) if run.key}
    out_dir = os.path.join(into, IMPORTED_DIR, kind)
    from ..records import write_parquet

    for done, (run, run_id) in enumerate(zip(runs, ids), start=1):
        if progress is not None:
            progress(done - 1, len(runs), run.name)
        try:
            data = module.read(run, report)
        except XpError:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken run must not stop the rest
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            report.skip(run.path, "unreadable run", f"cannot read ({type(exc).__name__}"
                        f"{': ' + first if first else ''}); run skipped")
            continue
        if data is None:
            continue
        parent = data.meta.get("parent")
        if isinstance(parent, str) and parent in by_key:
            data.meta["parent"] = by_key[parent]
        if p_regex is not None:
            name = data.meta.get("display_name") or run.name
            data.params = {**data.params, **params_from_name(p_regex, str(name))}
        if c_regex is not None:
            _apply_context_regex(data, c_regex)
        data.params = checked_params(data.params, run.path, report)
        data.meta = {**data.meta, "name": run.name, "source": run.path,
                     "source_kind": kind, "source_id": source_id(kind, run)}
        if data.created is not None:
            data.meta.setdefault("created", data.created)
        path = os.path.join(out_dir, f"{run_id}.parquet")
        frame = to_frame(run_id, data)  # built in a dry run too: what would fail, fails
        if not dry_run:
            write_parquet(frame, path)
        summary.runs.append(ImportedRun(run_id, run.name, run.path, len(data), path))
    if progress is not None:
        progress(len(runs), len(runs), "")
    summary.seconds = _time.perf_counter() - started
    return summary


def walk_files(root: str, filename: str | Iterable[str]) -> list[str]:
    """Every file named ``filename`` (or any of several names) under ``root``, sorted.

    Hidden folders are skipped; a symlink loop cannot hang the walk.
    """
    names = {filename} if isinstance(filename, str) else set(filename)
    if os.path.isfile(root):
        return [root] if os.path.basename(root) in names else []
    found: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(folder, f) for f in files if f in names)
    return sorted(found)


def relative_name(root: str, folder: str) -> str:
    """A run's name: its folder relative to the source root, or the root's own name."""
    rel = os.path.relpath(folder, root)
    if rel in (".", ""):
        return os.path.basename(os.path.normpath(folder)) or "run"
    return rel.replace(os.sep, "/")


def read_json(path: str) -> Any:
    """A JSON file; raises ValueError with a short reason (not JSON, not UTF-8)."""
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except ValueError as exc:
        raise ValueError(f"not JSON ({str(exc)[:60]})") from None


def read_json_or_skip(path: str, report: "Report", what: str) -> Any | None:
    """A JSON file, or None after reporting it as unreadable (``what`` is what is lost:
    ``"run skipped"``, ``"its params skipped"``)."""
    try:
        return read_json(path)
    except (OSError, ValueError) as exc:
        report.skip(path, "unreadable files", f"{exc}; {what}")
        return None


def require(module: str, extra: str, what: str) -> Any:
    """Import an optional package, or raise a one-line XpError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise XpError(f"{what} needs the {module.split('.')[0]} package: "
                      f"pip install 'xpcli[{extra}]'") from None


def load_yaml(path: str) -> Any:
    """A YAML file read with the safe loader only; python object tags are refused.

    Raises ValueError with a message naming the problem (never runs the file's code).
    """
    yaml = require("yaml", "yaml", "reading YAML files")
    with open(path, "rb") as fh:
        text = fh.read()
    try:
        return yaml.safe_load(text)
    except yaml.constructor.ConstructorError as exc:
        tag = getattr(exc, "problem", "") or str(exc)
        if "python/" in str(exc):
            raise ValueError(
                "refused: the file holds Python object tags (!!python/...) that would run "
                "code when loaded; only plain YAML is read"
            ) from None
        raise ValueError(f"unsupported YAML ({str(tag)[:80]})") from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0][:80]
        raise ValueError(f"not valid YAML ({first})") from None


@dataclass(frozen=True)
class Refused:
    """Where a YAML node with a Python (or unknown) tag was: never constructed."""

    tag: str


_PARAMS_LOADER: Any = None


def _params_loader(yaml: Any) -> Any:
    """A SafeLoader that builds a :class:`Refused` marker for every tag it cannot build
    safely (``!!python/object...``, ``!!python/name...``, local tags) instead of failing,
    and ``!!python/tuple`` (plain data, what YAML dumps of tuples use) as a list."""
    global _PARAMS_LOADER
    if _PARAMS_LOADER is None:
        class ParamsLoader(yaml.SafeLoader):
            pass

        def refuse(loader: Any, suffix: str, node: Any) -> Refused:
            return Refused(str(node.tag))  # the node's children are never built

        def as_list(loader: Any, node: Any) -> list[Any]:
            return list(loader.construct_sequence(node, deep=True))

        ParamsLoader.add_constructor("tag:yaml.org,2002:python/tuple", as_list)
        ParamsLoader.add_multi_constructor("", refuse)  # tags SafeLoader has no constructor for
        _PARAMS_LOADER = ParamsLoader
    return _PARAMS_LOADER


def load_yaml_params(path: str) -> tuple[Any, list[tuple[str, str]]]:
    """A params YAML file (``hparams.yaml``, W&B's ``config.yaml``) read safely, keeping
    what is plain data when some nodes are Python objects.

    Returns the data without the refused nodes, and (key, tag) of each refused node: a
    mapping entry is left out (``model`` of ``save_hyperparameters()``), a list holding
    one is left out whole; the key is dotted (``optimizer.cls``), ``""`` for the whole
    document. Nothing in the file is constructed but plain YAML. Raises ValueError
    naming the problem for a file that is not YAML.
    """
    yaml = require("yaml", "yaml", "reading YAML files")
    with open(path, "rb") as fh:
        text = fh.read()
    loader = _params_loader(yaml)(text)  # what yaml.safe_load does, with that loader
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0][:80]
        raise ValueError(f"not valid YAML ({first})") from None
    finally:
        loader.dispose()
    refused: list[tuple[str, str]] = []
    if isinstance(data, Refused):
        return None, [("", data.tag)]
    _drop_refused(data, "", refused, set())
    return data, refused


def _drop_refused(value: Any, where: str, refused: list[tuple[str, str]],
                  seen: set[int]) -> bool:
    """Remove :class:`Refused` nodes from ``value`` in place, noting them in ``refused``;
    True when ``value`` (a list) holds one and must go as a whole."""
    if id(value) in seen or not isinstance(value, (dict, list)):
        return False
    seen.add(id(value))
    if isinstance(value, dict):
        for key in list(value):
            item = value[key]
            label = f"<{key.tag}>" if isinstance(key, Refused) else str(key)
            name = f"{where}.{label}" if where else label
            if isinstance(key, Refused) or isinstance(item, Refused):
                refused.append((name, item.tag if isinstance(item, Refused) else key.tag))
                del value[key]
            elif _drop_refused(item, name, refused, seen):
                del value[key]
        return False
    gone = False
    for i, item in enumerate(value):
        if isinstance(item, Refused):
            refused.append((f"{where}[{i}]", item.tag))
            gone = True
        elif _drop_refused(item, f"{where}[{i}]", refused, seen):
            gone = True
    return gone


def report_refused(report: Report, path: str, refused: list[tuple[str, str]]) -> None:
    """Report each node :func:`load_yaml_params` refused: the file, the key, the tag."""
    for key, tag in refused:
        if not key:
            what, lost = "the whole file", "the run's params skipped"
        elif "[" in key:  # an item: its list went whole
            what, lost = repr(key), f"{key[:key.index('[')]!r} skipped, the other params kept"
        else:
            what, lost = repr(key), "the other params kept"
        report.skip(path, "unsafe YAML values", f"{what} holds a Python object ({tag}); "
                    f"refused, never loaded (it could run code): {lost}")


def load_yaml_params_or_skip(path: str, report: Report) -> tuple[Any, list[tuple[str, str]]]:
    """:func:`load_yaml_params` with what it refused reported; ``(None, [])`` after
    reporting a file that cannot be read or is not YAML (the run keeps its points)."""
    try:
        params, refused = load_yaml_params(path)
    except ValueError as exc:
        report.skip(path, "unreadable files", f"{exc}; the run's params skipped")
        return None, []
    except OSError as exc:
        report.skip(path, "unreadable files", f"cannot read: {exc.strerror}")
        return None, []
    report_refused(report, path, refused)
    return params, refused


def read_rows(path: str, report: Report, lost: str,
              delimiter: str = ",") -> list[list[str]] | None:
    """The rows of a CSV/TSV file (bytes that are not UTF-8 replaced), or None after
    reporting it unreadable (``lost``: what goes with it, ``"run skipped"``)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            return list(csv.reader(fh, delimiter=delimiter))
    except (OSError, csv.Error) as exc:
        report.skip(path, "unreadable files", f"cannot read ({exc}); {lost}")
        return None


def report_bad_rows(report: Report, path: str, lines: Sequence[int]) -> None:
    """Count rows skipped as malformed, naming the first few line numbers."""
    if lines:
        shown = ", ".join(map(str, lines[:5])) + (" ..." if len(lines) > 5 else "")
        report.skip(path, "malformed rows",
                    f"{len(lines)} malformed rows skipped (lines {shown})", len(lines))

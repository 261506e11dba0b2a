"""Optuna studies, read through Optuna's own API (``pip install 'xpcli[optuna]'``).

The source is a storage: an RDB URL (``sqlite:///study.db``, ``postgresql://...``), a
SQLite file (``study.db``, ``.sqlite``, ``.sqlite3``) or a journal file (any other file,
what ``JournalFileBackend`` writes). A file is copied to a temporary folder and the copy
opened, without creating tables, so the user's study is never modified. Every study in
the storage is read, or only the one named by the ``study`` option (``--study NAME``).

One run per trial, named ``<study>/trial_<number>``:

- params: the trial's ``params`` (as Optuna gives them: numbers, text, booleans);
- status: ``COMPLETE`` -> ``finished``, ``PRUNED`` -> ``pruned``, ``FAIL`` -> ``failed``,
  ``RUNNING`` -> ``running``, ``WAITING`` -> ``waiting``;
- ``intermediate_value``: the values ``trial.report(value, step)`` stored, by step;
- the final objective value(s): ``value`` for one objective, ``value_0``, ``value_1``, ...
  for several, or the names ``study.set_metric_names`` gave; at the last reported step
  (none without one) and the trial's completion time;
- meta: ``study``, ``trial``, ``state``, ``directions``, ``created`` (start) and
  ``ended`` (completion) times, and the trial's user attributes (``user_attrs.note``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Any

from .. import format as fmt
from ..errors import UsageError, XpError
from ._base import Report, RunData, SourceRun, require

KIND = "optuna"
LOOK_FOR = "point it at an Optuna storage: sqlite:///study.db, a .db file or a journal file"

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SQLITE = (".db", ".sqlite", ".sqlite3")
_STATUS = {"COMPLETE": "finished", "PRUNED": "pruned", "FAIL": "failed",
           "RUNNING": "running", "WAITING": "waiting"}


def is_uri(source: str) -> bool:
    """True for a storage URL (``sqlite:///...``) rather than a file."""
    return bool(_URL.match(source)) and not os.path.exists(source)


def _open(optuna: Any, source: str, scratch: str) -> Any:
    """A storage for ``source``: a URL as it is, a file through a copy in ``scratch``."""
    from optuna.storages import RDBStorage

    if is_uri(source):
        return RDBStorage(source, skip_table_creation=True)
    if os.path.isdir(source):
        raise UsageError(f"{source} is a folder; pass the study's storage file or URL "
                         "(sqlite:///study.db, a .db file or a journal file)")
    copy = os.path.join(scratch, os.path.basename(source))
    for suffix in ("", "-wal", "-shm"):  # SQLite keeps recent writes beside the file
        if os.path.exists(source + suffix):
            shutil.copyfile(source + suffix, copy + suffix)
    if source.lower().endswith(_SQLITE):
        return RDBStorage(f"sqlite:///{copy}", skip_table_creation=True)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(copy))


def discover(source: str, report: Report) -> list[SourceRun]:
    """Every trial of every study in the storage (or of ``--study``)."""
    optuna = require("optuna", "optuna", "importing Optuna studies")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    wanted = report.options.get("study")
    scratch = tempfile.mkdtemp(prefix="xp-optuna-")
    try:
        try:
            storage = _open(optuna, source, scratch)
            names = optuna.get_all_study_names(storage)
        except XpError:
            raise
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy and Optuna raise many kinds
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise XpError(f"cannot open {source} as an Optuna storage ({type(exc).__name__}"
                          f"{': ' + first if first else ''}); {LOOK_FOR}") from None
        if wanted is not None and wanted not in names:
            shown = ", ".join(repr(n) for n in names[:10]) or "none"
            raise UsageError(f"no study {wanted!r} in {source} (studies: {shown}); "
                             "pass one of them to --study")
        runs = []
        for name in names:
            if wanted is not None and name != wanted:
                continue
            study = optuna.load_study(study_name=name, storage=storage)
            info = {"study": name, "directions": [d.name.lower() for d in study.directions],
                    "metric_names": study.metric_names}
            for trial in study.get_trials(deepcopy=False):
                runs.append(SourceRun(f"{name}/trial_{trial.number}", source,
                                      key=f"{name}#{trial.number}",
                                      extra={"trial": trial, "study": info}))
        engine = getattr(storage, "engine", None)
        if engine is not None:
            engine.dispose()
        return runs
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _objective_names(info: dict[str, Any], count: int) -> list[str]:
    names = info.get("metric_names")
    if names and len(names) == count:
        return [str(n) for n in names]
    return ["value"] if count == 1 else [f"value_{i}" for i in range(count)]


def read(run: SourceRun, report: Report) -> RunData | None:
    """One trial: params, state, intermediate values, final value(s)."""
    trial = run.extra["trial"]
    info = run.extra["study"]
    data = RunData()
    data.params = {str(k): v for k, v in trial.params.items()}
    state = trial.state.name
    start, end = trial.datetime_start, trial.datetime_complete
    data.created = start.timestamp() if start is not None else None
    data.meta = {"study": info["study"], "trial": trial.number, "state": state.lower(),
                 "status": _STATUS.get(state, state.lower()),
                 "directions": info["directions"]}
    if end is not None:
        data.meta["ended"] = end.timestamp()
    data.meta.update(fmt.flatten({str(k): v for k, v in trial.user_attrs.items()},
                                 "user_attrs."))
    steps = sorted(trial.intermediate_values)
    for step in steps:
        data.add("intermediate_value", trial.intermediate_values[step], step=step)
    values = trial.values or []
    last = steps[-1] if steps else None
    for name, value in zip(_objective_names(info, len(values)), values):
        data.add(name, value, step=last, time=data.meta.get("ended"))
    return data

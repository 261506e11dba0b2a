"""Aim repositories, read through Aim's own SDK (``pip install 'xpcli[aim]'``).

The source is a folder holding ``.aim/`` (or the ``.aim`` folder itself). Aim writes
lock files into a repository it opens and reads finished runs from an index only its
own tools build, so the repository is copied to a temporary folder, the copy's index
rebuilt (what ``aim storage reindex`` does) and the copy read: the user's repository is
never opened, let alone modified.

One run per Aim run, named by its name when it was given one (``Run: <hash>`` is Aim's
default, then the hash):

- params: ``run["hparams"]``, nested -> dotted (``optimizer.lr``);
- meta: ``experiment``, ``tags``, ``created`` (creation time), ``ended``, ``archived``,
  ``aim_hash``;
- every metric sequence: each point with its step, epoch (Aim stores a missing epoch
  as NaN: imported as absent) and wall time, in the sequence's context (Aim's
  ``{"subset": "test", "lang": "de"}`` is xp's context as it is). Aim's own system
  metrics (``__system__cpu``, ...) only with the ``system`` option (``--system``).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import tempfile
from typing import Any

from .. import format as fmt
from ..errors import UsageError, XpError
from ._base import Report, RunData, SourceRun, require, step_or_none

KIND = "aim"
LOOK_FOR = "point it at the folder holding an Aim repository (.aim/)"

_SYSTEM = "__system__"


def _repository(source: str) -> str:
    if os.path.basename(os.path.normpath(source)) == ".aim":
        return source
    inner = os.path.join(source, ".aim")
    if os.path.isdir(inner):
        return inner
    raise UsageError(f"{source} holds no .aim/ folder; {LOOK_FOR}")


def discover(source: str, report: Report) -> list[SourceRun]:
    """Every run of the repository, read whole from a reindexed temporary copy."""
    repository = _repository(source)
    aim = require("aim", "aim", "importing Aim repositories")
    system = bool(report.options.get("system"))
    scratch = tempfile.mkdtemp(prefix="xp-aim-")
    try:
        copy = os.path.join(scratch, ".aim")
        shutil.copytree(repository, copy, symlinks=True)
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # Aim's progress bars
                repo = aim.Repo.from_path(scratch)
                repo._recreate_index()  # noqa: SLF001 - `aim storage reindex`; a copy
                hashes = repo.list_all_runs()
        except Exception as exc:  # noqa: BLE001 - Aim and RocksDB raise many kinds
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise XpError(f"cannot open {repository} as an Aim repository "
                          f"({type(exc).__name__}{': ' + first if first else ''}); "
                          f"{LOOK_FOR}") from None
        runs = []
        for run_hash in sorted(hashes):
            try:
                extra = _load(aim, scratch, run_hash, system, report)
            except XpError:
                raise
            except Exception as exc:  # noqa: BLE001 - one broken run must not stop the rest
                first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
                report.skip(os.path.join(repository, "meta", "chunks", run_hash),
                            "unreadable run", f"cannot read ({type(exc).__name__}"
                            f"{': ' + first if first else ''}); run skipped")
                continue
            name = extra["name"]
            if not name or name == f"Run: {run_hash}":
                name = run_hash
            runs.append(SourceRun(str(name), repository, key=run_hash, extra=extra))
        return runs
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _load(aim: Any, repo_path: str, run_hash: str, system: bool,
          report: Report) -> dict[str, Any]:
    """Everything xp takes from one run, as plain Python data."""
    from aim.sdk.sequences.metric import Metric

    run = aim.Run(run_hash, repo=repo_path, read_only=True)
    run.repo._prepare_runs_cache()  # noqa: SLF001 - what Run.metrics() does first
    hparams = run.get("hparams")
    series = []
    skipped_system = 0
    # Not run.metrics(): its default query leaves out the sequences of archived runs.
    for name, context, _ in run.iter_sequence_info_by_type(Metric.allowed_dtypes()):
        name = str(name)
        if name.startswith(_SYSTEM) and not system:
            skipped_system += 1
            continue
        steps, (values, epochs, times) = Metric(name, context, run).data.numpy()
        series.append((name, dict(context.to_dict()), list(steps.tolist()),
                       list(values.tolist()), list(epochs.tolist()), list(times.tolist())))
    report.skip("", "system metric sequences (import them with --system)",
                count=skipped_system)
    return {"name": run.name, "hparams": hparams if isinstance(hparams, dict) else {},
            "experiment": run.experiment, "tags": [str(t) for t in run.tags],
            "created": run.creation_time, "ended": run.end_time,
            "archived": bool(run.archived), "series": series}


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value):
        return None
    return float(value)


def read(run: SourceRun, report: Report) -> RunData | None:
    """One run's params, meta and points (all read in :func:`discover`)."""
    extra = run.extra
    data = RunData()
    data.params = fmt.flatten({str(k): v for k, v in extra["hparams"].items()})
    data.created = _float_or_none(extra["created"])
    data.meta = {"aim_hash": run.key, "archived": extra["archived"], "tags": extra["tags"]}
    if extra["experiment"] is not None:
        data.meta["experiment"] = str(extra["experiment"])
    if (ended := _float_or_none(extra["ended"])) is not None:
        data.meta["ended"] = ended
    for name, context, steps, values, epochs, times in extra["series"]:
        try:
            plain = {k: fmt.context_text(fmt.check_context_key(str(k)), v)
                     for k, v in context.items()}
        except UsageError as exc:
            report.skip(run.path, "unusable contexts", f"{name}: {exc}; sequence skipped")
            continue
        for step, value, epoch, time in zip(steps, values, epochs, times):
            data.add(name, value, step=step_or_none(step), epoch=_float_or_none(epoch),
                     time=_float_or_none(time), context=plain)
    return data

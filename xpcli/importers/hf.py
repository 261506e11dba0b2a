"""Hugging Face Trainer: ``trainer_state.json`` (its ``log_history``) and neighbouring files.

One run per ``trainer_state.json`` under the source. A ``checkpoint-N`` folder's state is a
prefix of its output folder's, and ``last-checkpoint/`` (pushed by ``hub_strategy=
"checkpoint"``) a copy of the latest checkpoint: they are skipped when the output folder
has its own state, and only the latest checkpoint is read when it does not.

Names and contexts (see docs/importers.md):

- ``eval_``, ``test_`` and ``predict_`` prefixes become the context ``split``:
  ``eval_loss`` -> ``loss`` with ``split=eval``.
- Training entries' ``loss`` gets ``split=train``; ``learning_rate``, ``grad_norm`` keep
  their names without context. The final summary entry's ``train_loss`` (the mean over
  the whole training), ``train_runtime``... keep their names, so they never mix with
  the per-step loss.
- seqeval's per-entity metrics (``eval_T005_f1``, next to ``eval_overall_f1``) get the
  context ``entity=T005``; the ``overall_`` ones have no entity: ``f1:split=eval:entity=``
  is the overall F1 whichever way a run logged it.

Params: the state's own settings (``train_batch_size``, ``num_train_epochs``,
``max_steps``...), ``trial_params`` of a hyperparameter search, ``training_args.json``, and
``config.json`` (under ``model.``, without the label maps). ``all_results.json`` adds the
final values the log history lacks (``predict_``/test results) at the last step.
``training_args.bin`` is a pickle and is never read.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ._base import (
    BAD_STEP,
    Report,
    RunData,
    SourceRun,
    finite_or_none,
    read_json,
    read_json_or_skip,
    relative_name,
    step_or_none,
    walk_files,
)

KIND = "hf"
LOOK_FOR = "point it at a folder holding trainer_state.json files (a Trainer output_dir)"

_SPLITS = ("eval", "test", "predict")
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
_LAST_CHECKPOINT = "last-checkpoint"
_ENTITY = re.compile(r"(.+)_(precision|recall|f1|number|accuracy)")
_STATE_PARAMS = ("train_batch_size", "num_train_epochs", "max_steps", "logging_steps",
                 "eval_steps", "save_steps")
_CONFIG_DROP = {"id2label", "label2id", "architectures", "_name_or_path"}


def discover(source: str, report: Report) -> list[SourceRun]:
    """One source run per trainer_state.json; checkpoints only when no final state."""
    states = walk_files(source, "trainer_state.json")
    folders = {os.path.dirname(s) for s in states}
    latest: dict[str, tuple[tuple[int, int], str]] = {}
    chosen: list[str] = []
    for state in states:
        folder = os.path.dirname(state)
        rank = _checkpoint_rank(folder, state)
        if rank is None:
            chosen.append(state)
            continue
        parent = os.path.dirname(folder)
        if parent in folders:
            report.skip(state, "checkpoint states")
            continue
        if parent in latest:
            report.skip(state, "checkpoint states")
            if latest[parent][0] > rank:
                continue
        latest[parent] = (rank, state)
    chosen += [state for _, state in latest.values()]
    root = source if os.path.isdir(source) else os.path.dirname(source)
    return [SourceRun(relative_name(root, os.path.dirname(s)), s) for s in sorted(chosen)]


def _checkpoint_rank(folder: str, state: str) -> tuple[int, int] | None:
    """How late a checkpoint folder's state is (its step; a named one wins a tie), or
    None for a folder that is no checkpoint.

    ``checkpoint-N`` is at step N. ``last-checkpoint`` (what ``hub_strategy="checkpoint"``
    pushes) is a copy of the latest one: its step is its state's ``global_step``.
    """
    base = os.path.basename(folder)
    match = _CHECKPOINT.fullmatch(base)
    if match:
        return int(match.group(1)), 1
    if base != _LAST_CHECKPOINT:
        return None
    try:
        step = read_json(state).get("global_step")
    except (OSError, ValueError, AttributeError):
        step = None  # read() reports the file if it is the one chosen
    number = finite_or_none(step)
    return (int(number) if number is not None and abs(number) < 2**63 else -1), 0


def _split_key(key: str, entity_prefixes: set[str]) -> tuple[str, dict[str, str]]:
    """``eval_T005_f1`` -> (``f1``, split=eval, entity=T005); see the module doc."""
    for split in _SPLITS:
        if key.startswith(split + "_") and len(key) > len(split) + 1:
            rest = key[len(split) + 1:]
            context = {"split": split}
            if split in entity_prefixes:
                if rest.startswith("overall_"):
                    return rest[len("overall_"):], context
                match = _ENTITY.fullmatch(rest)
                if match:
                    return match.group(2), {**context, "entity": match.group(1)}
            return rest, context
    if key == "loss":
        return key, {"split": "train"}
    return key, {}


def _entity_prefixes(entry: dict[str, Any]) -> set[str]:
    """Splits whose keys follow seqeval's layout (an ``<split>_overall_f1`` key is there)."""
    return {s for s in _SPLITS if f"{s}_overall_f1" in entry}


def _add_entry(data: RunData, entry: dict[str, Any], report: Report, path: str,
               seen: set[tuple[str, str, Any]]) -> None:
    raw_step = finite_or_none(entry.get("step"))
    step = step_or_none(raw_step) if raw_step is not None else None
    epoch = finite_or_none(entry.get("epoch"))
    prefixes = _entity_prefixes(entry)
    skipped = bad_step = 0
    for key, value in entry.items():
        if key in ("step", "epoch"):
            continue
        number = finite_or_none(value)
        if number is None:
            skipped += 1
            continue
        if raw_step is not None and step is None:  # NaN, infinite or beyond 64 bits
            bad_step += 1
            continue
        name, context = _split_key(key, prefixes)
        seen.add((name, str(sorted(context.items())), step))
        data.add(name, number, step=step, epoch=epoch, context=context)
    report.skip(path, "non-numeric values", count=skipped)
    report.skip(path, BAD_STEP, count=bad_step)


def _params(folder: str, state: dict[str, Any], report: Report) -> dict[str, Any]:
    params: dict[str, Any] = {k: state[k] for k in _STATE_PARAMS if state.get(k) is not None}
    args_path = os.path.join(folder, "training_args.json")
    if os.path.isfile(args_path):
        args = read_json_or_skip(args_path, report, "its params skipped")
        if isinstance(args, dict):
            params.update({k: v for k, v in args.items() if v is not None})
    if isinstance(state.get("trial_params"), dict):
        params.update(state["trial_params"])
    config_path = os.path.join(folder, "config.json")
    if os.path.isfile(config_path):
        config = read_json_or_skip(config_path, report, "its params skipped")
        if isinstance(config, dict):
            params["model"] = {k: v for k, v in config.items()
                               if k not in _CONFIG_DROP and v is not None}
    return params


def read(run: SourceRun, report: Report) -> RunData | None:
    """Points, params and meta of one trainer_state.json."""
    state = read_json_or_skip(run.path, report, "run skipped")
    if state is None:
        return None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        report.skip(run.path, "unreadable files", "no log_history list; run skipped")
        return None
    data = RunData()
    seen: set[tuple[str, str, Any]] = set()
    bad = 0
    for entry in history:
        if isinstance(entry, dict):
            _add_entry(data, entry, report, run.path, seen)
        else:
            bad += 1
    report.skip(run.path, "malformed log entries", count=bad)
    folder = os.path.dirname(run.path)
    results_path = os.path.join(folder, "all_results.json")
    if os.path.isfile(results_path):
        results = read_json_or_skip(results_path, report, "final results skipped")
        if isinstance(results, dict):
            step = finite_or_none(state.get("global_step"))
            step_int = step_or_none(step) if step is not None else None
            epoch = finite_or_none(results.get("epoch", state.get("epoch")))
            fresh = {}
            prefixes = _entity_prefixes(results)
            for key, value in results.items():
                if key == "epoch" or finite_or_none(value) is None:
                    continue
                name, context = _split_key(key, prefixes)
                if (name, str(sorted(context.items())), step_int) not in seen:
                    fresh[key] = value
            if fresh:
                fresh.update(step=step, epoch=epoch)  # _add_entry skips a bad step's points
                _add_entry(data, fresh, report, results_path, seen)
    data.params = _params(folder, state, report)
    if finite_or_none(state.get("best_metric")) is not None:
        data.meta["best_metric"] = state["best_metric"]
    if not len(data):
        report.skip(run.path, "empty runs", "log_history holds no numeric value; run skipped")
        return None
    return data

"""The reference story as data: NER models fine-tuned on English, evaluated on 5 languages.

A deterministic model of what such runs look like, written through the public writer
(:class:`xpcli.Run`). Used by ``make sample-runs`` (240 runs) and by the benchmark
(2,400 and 10,000 runs).

Per run (lr, seed), over 60 epochs:

- ``f1`` with ``lang`` in en, de, es, nl, zh, every epoch. Learning speed grows with the
  learning rate (1e-6 barely learns in 20 epochs). English rises to a plateau; the target
  languages rise, peak and then decline as the model forgets its multilingual ability,
  zh fastest. Large learning rates forget faster.
- ``loss`` with ``split=train``, 10 points per epoch (per step).
- ``lms_score``: one value per run, a learned selection score that tracks the mean target
  F1 at the last epoch (with noise), so it ranks target F1 better than English F1 does.

Each seed has a latent transfer quality that moves the targets and barely moves English,
so the run best on English is not the run best on the targets.
"""

from __future__ import annotations

import math
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xpcli import Run  # noqa: E402

LEARNING_RATES = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4)
LANGS = ("en", "de", "es", "nl", "zh")
EPOCHS = 60
STEPS_PER_EPOCH = 10
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z

# Per language: (F1 before fine-tuning, ceiling, forgetting rate, floor share).
LANG_MODEL = {
    "en": (0.05, 0.92, 0.000, 1.00),
    "de": (0.30, 0.78, 0.030, 0.55),
    "es": (0.32, 0.80, 0.025, 0.60),
    "nl": (0.31, 0.79, 0.028, 0.58),
    "zh": (0.15, 0.62, 0.080, 0.35),
}


def speed(lr: float) -> float:
    """Learning progress per epoch for a learning rate (1e-6 barely learns)."""
    return 0.28 * lr / 3e-5


def ceiling_factor(lr: float) -> float:
    """Large learning rates reach a lower peak (a bit unstable)."""
    return 1.0 - 0.10 * max(0.0, math.log10(lr / 3e-5))


def run_id(lr: float, seed: int) -> str:
    return f"lr{lr:.0e}-s{seed:02d}".replace("e-0", "e-")


def write_run(runs_dir: Path, lr: float, seed: int, index: int) -> None:
    """One run through the public writer, timestamps fixed so the bytes are reproducible."""
    rng = random.Random(f"{lr}-{seed}")
    transfer = rng.gauss(0.0, 1.0)  # seed's latent transfer quality (targets only)
    en_luck = rng.gauss(0.0, 1.0)  # seed's luck on English only
    k = speed(lr)
    top = ceiling_factor(lr)
    created = START + index * 7200.0
    params = {
        "lr": lr,
        "seed": seed,
        "model": "xlm-r-base",
        "optimizer": {"name": "adamw", "weight_decay": 0.01},
        "epochs": EPOCHS,
    }
    meta = {"created": created, "host": f"gpu-{index % 8:02d}", "pid": 10_000 + index,
            "tags": ["ner", "reference"]}
    with Run(runs_dir, run=run_id(lr, seed), params=params, meta=meta, time=created,
             flush_seconds=0) as run:
        last_targets = []
        for epoch in range(1, EPOCHS + 1):
            x = k * epoch
            progress = 1.0 - math.exp(-x)
            t = created + epoch * 90.0
            for step in range(STEPS_PER_EPOCH):
                s = (epoch - 1) * STEPS_PER_EPOCH + step
                loss = 0.08 + 2.2 * math.exp(-k * (s + 1) / STEPS_PER_EPOCH) + abs(
                    rng.gauss(0, 0.03)
                )
                run.track(round(loss, 4), name="loss", step=s, epoch=epoch - 1 + step / 10,
                          context={"split": "train"}, time=round(t - 90 + step * 9.0, 3))
            for lang in LANGS:
                base, ceiling, forget, floor = LANG_MODEL[lang]
                height = (ceiling * top - base)
                if lang == "en":
                    value = base + height * progress + 0.012 * en_luck
                else:
                    decay = floor + (1 - floor) * math.exp(-forget * x * (1 + 2 * lr / 3e-4))
                    value = base + height * progress * decay + 0.018 * transfer
                value += rng.gauss(0, 0.004)
                value = min(max(value, 0.0), 1.0)
                if lang != "en" and epoch == EPOCHS:
                    last_targets.append(value)
                run.track(round(value, 4), name="f1", step=epoch * STEPS_PER_EPOCH,
                          epoch=epoch, context={"lang": lang}, time=round(t, 3))
        lms = sum(last_targets) / len(last_targets) + rng.gauss(0, 0.012)
        run.track(round(lms, 4), name="lms_score", step=EPOCHS * STEPS_PER_EPOCH, epoch=EPOCHS,
                  time=round(created + EPOCHS * 90.0 + 5, 3))
        run.close(time=created + EPOCHS * 90.0 + 10)


def generate(runs_dir: Path, seeds: int = 40, learning_rates: tuple[float, ...] = LEARNING_RATES,
             first_index: int = 0) -> list[str]:
    """Write ``len(learning_rates) * seeds`` runs into ``runs_dir``; return their ids."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    ids = []
    index = first_index
    for seed in range(seeds):
        for lr in learning_rates:
            write_run(runs_dir, lr, seed, index)
            ids.append(run_id(lr, seed))
            index += 1
    return ids


# -- the same bytes, written fast --------------------------------------------------------
#
# write_run goes through xpcli.Run, which checks and formats every point on its own: 90 M
# points (100,000 runs) take about 40 minutes of two cores. write_run_fast writes exactly
# the same bytes (tests/test_reference_story.py compares them) a run at a time: the run's
# own numbers (its seeded draws) are computed as write_run computes them, and everything
# that is the same for every run of a learning rate (the noiseless curves, the step and
# epoch text of each line) is computed once.


class _Curves:
    """What every run of one learning rate shares: per loss step its noiseless value and
    the text between its value and its time; per epoch and language the noiseless F1
    (``base + height * progress`` for English, times the decay for the others), written
    as write_run adds it up, so adding the run's own terms gives the same floats."""

    def __init__(self, lr: float) -> None:
        k = speed(lr)
        top = ceiling_factor(lr)
        self.loss = [0.08 + 2.2 * math.exp(-k * (s + 1) / STEPS_PER_EPOCH)
                     for s in range(EPOCHS * STEPS_PER_EPOCH)]
        self.loss_text = [
            f',"step":{(e - 1) * STEPS_PER_EPOCH + j},"epoch":{e - 1 + j / 10!r},"time":'
            for e in range(1, EPOCHS + 1) for j in range(STEPS_PER_EPOCH)]
        self.f1: list[list[float]] = []
        for epoch in range(1, EPOCHS + 1):
            x = k * epoch
            progress = 1.0 - math.exp(-x)
            row = []
            for lang in LANGS:
                base, ceiling, forget, floor = LANG_MODEL[lang]
                height = (ceiling * top - base)
                if lang == "en":
                    row.append(base + height * progress)
                else:
                    decay = floor + (1 - floor) * math.exp(-forget * x * (1 + 2 * lr / 3e-4))
                    row.append(base + height * progress * decay)
            self.f1.append(row)
        self.f1_text = [f',"step":{e * STEPS_PER_EPOCH},"epoch":{float(e)!r},"time":'
                        for e in range(1, EPOCHS + 1)]


_CURVES: dict[float, _Curves] = {}


def _header(run: str, lr: float, seed: int, index: int, created: float) -> str:
    """The run record Run writes when it starts (this process's pid_start, as Run's)."""
    from xpcli import format as fmt
    from xpcli import liveness

    pid = os.getpid()
    meta: dict[str, object] = {"status": "running", "created": created,
                               "host": f"gpu-{index % 8:02d}", "pid": 10_000 + index,
                               "format": fmt.VERSION}
    start = liveness.start_token(pid)
    if start is not None:
        meta["pid_start"] = start
    meta["tags"] = ["ner", "reference"]
    params = {"lr": lr, "seed": seed, "model": "xlm-r-base",
              "optimizer": {"name": "adamw", "weight_decay": 0.01}, "epochs": EPOCHS}
    return fmt.run_record(run, created, fmt.plain_params(params), fmt.plain_params(meta))


def _times(t: float) -> list[str]:
    """The time text (and line end) of an epoch's loss points, as write_run rounds them:
    whole seconds (every time of the story is one) written as repr writes a whole float."""
    if t.is_integer() and abs(t) < 2**52:
        whole = int(t) - 90
        return [f"{whole + step * 9}.0}}\n" for step in range(STEPS_PER_EPOCH)]
    return [f"{round(t - 90 + step * 9.0, 3)!r}}}\n" for step in range(STEPS_PER_EPOCH)]


def write_run_fast(runs_dir: Path, lr: float, seed: int, index: int) -> None:
    """:func:`write_run`'s file, byte for byte, without the writer's per-point work."""
    from xpcli import format as fmt

    curves = _CURVES.get(lr)
    if curves is None:
        curves = _CURVES[lr] = _Curves(lr)
    rng = random.Random(f"{lr}-{seed}")
    gauss = rng.gauss
    transfer = gauss(0.0, 1.0)
    en_luck = gauss(0.0, 1.0)
    created = START + index * 7200.0
    run = run_id(lr, seed)
    loss_head = fmt.point_prefix(run, "loss", {"split": "train"}) + ',"value":'
    f1_heads = [fmt.point_prefix(run, "f1", {"lang": lang}) + ',"value":' for lang in LANGS]
    lines = [_header(run, lr, seed, index, created)]
    out = lines.append
    last_targets = []
    for epoch in range(1, EPOCHS + 1):
        t = created + epoch * 90.0
        first = (epoch - 1) * STEPS_PER_EPOCH
        times = _times(t)
        for step in range(STEPS_PER_EPOCH):
            s = first + step
            loss = curves.loss[s] + abs(gauss(0, 0.03))
            out(f"{loss_head}{round(loss, 4)!r}{curves.loss_text[s]}{times[step]}")
        when = f"{round(t, 3)!r}}}\n"
        for i, lang in enumerate(LANGS):
            noiseless = curves.f1[epoch - 1][i]
            value = noiseless + 0.012 * en_luck if lang == "en" else noiseless + 0.018 * transfer
            value += gauss(0, 0.004)
            value = min(max(value, 0.0), 1.0)
            if lang != "en" and epoch == EPOCHS:
                last_targets.append(value)
            out(f"{f1_heads[i]}{round(value, 4)!r}{curves.f1_text[epoch - 1]}{when}")
    lms = sum(last_targets) / len(last_targets) + gauss(0, 0.012)
    out(fmt.point_prefix(run, "lms_score", None)
        + f',"value":{round(lms, 4)!r},"step":{EPOCHS * STEPS_PER_EPOCH},'
        f'"epoch":{float(EPOCHS)!r},"time":{round(created + EPOCHS * 90.0 + 5, 3)!r}}}\n')
    end = created + EPOCHS * 90.0 + 10
    out(fmt.run_record(run, end, None, {"status": "finished", "ended": end}))
    path = runs_dir / f"{run}.jsonl"
    with open(path, "x", encoding="utf-8") as fh:
        fh.write("".join(lines))

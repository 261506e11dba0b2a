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

"""Small runs directories in the shape of the real logs that broke the old series model.

Each writer puts one case into a fresh runs directory through the public writer; the
values are chosen so the right answers can be worked out by hand (the tests do, beside
each assertion). ``python tests/series_cases.py DIR`` writes all of them under ``DIR``
(one folder per case), to try the commands by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

T0 = 1767225600.0  # 2026-01-01T00:00:00Z

#: All at step 0 (an MLflow store): logged as (time offset in s, value), in file order.
#: m1's file lists its 4th and 3rd points swapped: the timestamps put them back.
STEP0 = {
    "m1": (0.1, [(0, 0.90), (60, 0.85), (180, 0.55), (120, 0.70), (240, 0.45)]),
    "m2": (0.1, [(0, 0.60), (60, 0.75), (120, 0.80)]),
    "m3": (0.01, [(0, 0.50), (60, 0.52), (120, 0.40), (180, 0.41)]),
}

#: A resumed Hugging Face run: (step, epoch, wer). The epoch counter resets at the resume
#: (step 52,000 is epoch 5.06, step 100,000 epoch 4.01); hf2 is a clean run.
RESETS = {
    "hf": [(12000, 1.17, 0.40), (24000, 2.34, 0.33), (36000, 3.5, 0.29), (48000, 4.67, 0.27),
           (52000, 5.06, 0.26), (60000, 2.4, 0.25), (70000, 2.8, 0.24), (80000, 3.2, 0.23),
           (90000, 3.61, 0.225), (100000, 4.01, 0.22)],
    "hf2": [(10000, 1.0, 0.50), (20000, 2.0, 0.42), (30000, 3.0, 0.36), (40000, 4.0, 0.33),
            (50000, 5.0, 0.30)],
}

#: loss of run k1: logged every step without a context, and at 3 epoch ends with
#: split=train.
NOKEY_STEPS = 40
NOKEY_TRAIN = [(10, 1.5), (20, 1.2), (30, 1.0)]

#: acc every epoch 1..20 and test_acc once, at the end: (acc values, test_acc).
SINGLE = {
    "s1": ([0.3 + 0.02 * e for e in range(1, 21)], 0.71),
    "s2": ([0.35 + 0.02 * e for e in range(1, 21)], 0.74),
}

#: Two ranks writing one run: every step's loss logged twice (rank 0, then rank 1):
#: d1 at steps 0..4, d2 at steps 0..2 (with one more point at step 3).
DUPS = {
    "d1": [(s, r, 2.0 - 0.1 * s + 0.01 * r) for s in range(5) for r in (0, 1)],
    "d2": [(s, r, 3.0 - 0.2 * s + 0.01 * r) for s in range(3) for r in (0, 1)] + [(3, 0, 2.3)],
}


def write_step0(runs: Path) -> Path:
    from xpcli import Run

    for i, (name, (lr, points)) in enumerate(STEP0.items()):
        start = T0 + 3600 * i
        run = Run(runs, name, params={"lr": lr}, time=start, flush_seconds=0)
        for offset, value in points:
            run.track(value, "acc", step=0, time=start + offset)
        for step in range(3):  # a loss with real steps beside it, logged after acc began
            run.track(1.0 - 0.1 * step, "loss", step=step, time=start + 30 + 60 * step)
        run.close(time=start + 300)
    return runs


def write_resets(runs: Path) -> Path:
    from xpcli import Run

    for i, (name, points) in enumerate(RESETS.items()):
        start = T0 + 86400 * i
        run = Run(runs, name, params={"seed": i}, time=start, flush_seconds=0)
        for step, epoch, wer in points:
            run.track(wer, "eval_wer", step=step, epoch=epoch, time=start + step / 10)
        run.close(time=start + 20000)
    return runs


def write_nokey(runs: Path) -> Path:
    from xpcli import Run

    run = Run(runs, "k1", params={"lr": 0.1}, time=T0, flush_seconds=0)
    train = dict(NOKEY_TRAIN)
    for step in range(1, NOKEY_STEPS + 1):
        run.track(2.0 - 0.03 * step, "loss", step=step, time=T0 + step)
        if step in train:
            run.track(train[step], "loss", step=step, context={"split": "train"},
                      time=T0 + step + 0.5)
    run.close(time=T0 + 100)
    return runs


def write_single(runs: Path) -> Path:
    from xpcli import Run

    for i, (name, (acc, test)) in enumerate(SINGLE.items()):
        start = T0 + 3600 * i
        run = Run(runs, name, params={"seed": i}, time=start, flush_seconds=0)
        for epoch, value in enumerate(acc, start=1):
            run.track(value, "acc", step=100 * epoch, epoch=epoch, time=start + epoch)
        run.track(test, "test_acc", step=100 * len(acc), epoch=len(acc), time=start + 30)
        run.close(time=start + 60)
    return runs


def write_dups(runs: Path) -> Path:
    from xpcli import Run

    for i, (name, points) in enumerate(DUPS.items()):
        start = T0 + 3600 * i
        run = Run(runs, name, params={"seed": i}, time=start, flush_seconds=0)
        for n, (step, _, value) in enumerate(points):
            run.track(value, "loss", step=step, time=start + n)
        run.close(time=start + 60)
    return runs


CASES = {"step0": write_step0, "resets": write_resets, "nokey": write_nokey,
         "single": write_single, "dups": write_dups}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    target = Path(sys.argv[1])
    for case, write in CASES.items():
        write(target / case)
        print(target / case)

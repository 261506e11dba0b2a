"""Write ``sample_runs/``: the reference story's 240 runs (6 learning rates x 40 seeds).

Deterministic: the same bytes every time. Every run is written through :class:`xpcli.Run`
as JSONL; the runs of seeds 0-3 stay JSONL (so the JSONL path is always exercised) and
the others are stored as one Parquet file per learning rate, the columnar form of the
same records (docs/format.md), which keeps the folder under 10 MB.

Usage: python scripts/make_sample_runs.py [OUT_DIR]   (default: sample_runs)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_story import LEARNING_RATES, generate, run_id  # noqa: E402

from xpcli.records import Diagnostics, read_records, write_parquet  # noqa: E402

SEEDS = 40
JSONL_SEEDS = 4


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), seeds=SEEDS)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for lr in LEARNING_RATES:
            names = [run_id(lr, seed) for seed in range(SEEDS)]
            for name in names[:JSONL_SEEDS]:
                shutil.copyfile(Path(tmp) / f"{name}.jsonl", out / f"{name}.jsonl")
            diags = Diagnostics()
            raw = read_records([str(Path(tmp) / f"{n}.jsonl") for n in names[JSONL_SEEDS:]],
                               diags)
            assert not len(diags), diags.items
            label = f"{lr:.0e}".replace("e-0", "e-")
            write_parquet(raw, out / "archive" / f"lr{label}.parquet")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out}: {len(LEARNING_RATES) * SEEDS} runs, {size / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "sample_runs"))

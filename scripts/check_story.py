"""Is docs/story.html what docs/story.toml gives on sample_runs with this xp?

The page records the digest of its inputs (the report file, every file of the runs
directory, xp's page template: see ``xpcli.report.inputs_digest``); this recomputes it
and fails, naming the fix, when they differ. ``make lint`` runs it.

Usage: python scripts/check_story.py [PAGE REPORT RUNS]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    from xpcli.report import inputs_digest, recorded_digest

    page, views, runs = (argv or [str(ROOT / "docs/story.html"), str(ROOT / "docs/story.toml"),
                                  str(ROOT / "sample_runs")])
    if not Path(page).is_file():
        print(f"{page}: missing: run make figures", file=sys.stderr)
        return 1
    recorded = recorded_digest(page)
    if recorded is None:
        print(f"{page}: records no inputs digest (written by an older xp): run make figures",
              file=sys.stderr)
        return 1
    if recorded != inputs_digest(views, runs):
        print(f"{page}: stale: {Path(views).name}, the runs in {Path(runs).name}/ or xp's "
              "page template changed since it was written: run make figures", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

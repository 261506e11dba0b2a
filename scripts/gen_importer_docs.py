"""Write the table of importers in docs/importers.md from xpcli.importers.REGISTRY.

Only the lines between the two markers are generated; the rest of the page is prose.
Usage: python scripts/gen_importer_docs.py [--check]   (--check: exit 1 if it is stale)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generated_doc import write_or_check  # noqa: E402

from xpcli.importers import REGISTRY  # noqa: E402

TARGET = ROOT / "docs" / "importers.md"
BEGIN = "<!-- the table below is generated from xpcli.importers.REGISTRY by `make docs` -->"
END = "<!-- end of the generated table -->"


def table() -> list[str]:
    rows = ["| KIND | reads | needs |", "|---|---|---|"]
    for kind, registration in REGISTRY.items():
        for reads, extra in registration.reads:
            needs = f"`pip install 'xpcli[{extra}]'`" if extra else "nothing extra"
            rows.append(f"| `{kind}` | {reads} | {needs} |")
    return rows


def render() -> str:
    lines = TARGET.read_text().split("\n")
    if BEGIN not in lines or END not in lines:
        raise SystemExit(f"{TARGET.relative_to(ROOT)}: the markers of the generated table "
                         f"are missing ({BEGIN!r} ... {END!r})")
    start, stop = lines.index(BEGIN), lines.index(END)
    return "\n".join([*lines[:start + 1], *table(), *lines[stop:]])


def main() -> None:
    write_or_check(TARGET, render(), ROOT)


if __name__ == "__main__":
    main()

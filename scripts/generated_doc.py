"""Shared by the scripts that generate docs: write the file, or check that it is fresh."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(target: Path, text: str, root: Path) -> None:
    """Write ``text`` to ``target``; with ``--check`` on the command line, exit 1 instead
    when ``target`` does not already hold exactly ``text``."""
    name = target.relative_to(root)
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != text:
            print(f"{name} is stale: run `make docs`", file=sys.stderr)
            sys.exit(1)
        return
    target.write_text(text)
    print(f"wrote {name}", file=sys.stderr)

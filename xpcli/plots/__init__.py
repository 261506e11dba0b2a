"""Figures: frames in, a matplotlib Figure out. Nothing here reads files.

This package file imports no matplotlib, so a command can check ``-o FILE`` before any
work and without paying for matplotlib when it prints a table instead.
"""

from __future__ import annotations

import os

from ..errors import UsageError

SUFFIXES = (".png", ".svg", ".pdf")


def check_output_path(path: str) -> str:
    """Refuse an ``-o`` path whose suffix is not .png, .svg or .pdf, before any work."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"-o {path}: the figure format comes from the suffix; use "
                         f"{', '.join(SUFFIXES)}")
    return path

"""Figures: frames in, a matplotlib Figure out. Nothing here reads files.

This package file imports no matplotlib, so a command can check ``-o FILE`` before any
work and without paying for matplotlib when it prints a table instead.
"""

from __future__ import annotations

import os

from ..errors import UsageError

SUFFIXES = (".png", ".svg", ".pdf")


def check_output_path(path: str, html: bool = False) -> str:
    """Refuse an ``-o`` path whose suffix is not .png, .svg or .pdf (or, for the commands
    with an interactive view, ``html=True``, .html), before any work."""
    suffix = os.path.splitext(path)[1].lower()
    allowed = (*SUFFIXES, ".html") if html else SUFFIXES
    if suffix not in allowed and not (html and suffix == ".htm"):
        raise UsageError(f"-o {path}: the figure format comes from the suffix; use "
                         f"{', '.join(allowed)}")
    return path

"""Interactive, self-contained HTML views: ``-o FILE.html`` and ``xp report``.

One HTML file per view (or one per report) that opens in any browser with no server and
no network: the charting library (Apache ECharts, vendored under ``vendor/``), xp's own
script and style, and the data are all inline. See :mod:`xpcli.html.page` for the
guarantees (no request of any kind, no markup from the data) and docs/html.md for why
ECharts.

This package file imports nothing heavy, so a command can check ``-o FILE.html`` before
any work.
"""

from __future__ import annotations

import os

HTML_SUFFIXES = (".html", ".htm")


def is_html(path: str | None) -> bool:
    """True when ``-o path`` asks for an HTML view (by its suffix)."""
    return path is not None and os.path.splitext(path)[1].lower() in HTML_SUFFIXES

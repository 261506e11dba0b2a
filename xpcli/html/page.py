"""One self-contained HTML document: inline scripts, inline style, data as inert JSON.

The guarantees every page keeps, whatever the run ids, params, labels or report text:

- **No network.** Every script and style is inline. A Content-Security-Policy in the
  page allows no source at all (``default-src 'none'``), images only as ``data:``, and
  scripts only by the SHA-256 of the page's own inline scripts, so nothing in the page
  can fetch, load or connect, and a browser refuses it if anything tried.
- **No markup from data.** Data travels as JSON inside ``<script type="application/json">``
  (never run), with ``<``, ``>``, ``&`` and the JavaScript line separators escaped, so no
  ``</script>`` or ``<!--`` can end the block. The page's script puts text into the
  document with ``textContent`` and escapes what the chart tooltips show; titles and
  report text are HTML-escaped here. Even a ``<script>`` injected despite all that would
  not run: its hash is not in the policy.
- **The library is the one shipped.** The vendored ECharts file is checked against its
  SHA-256 before it is inlined (:func:`echarts_js`).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import XpError

HERE = Path(__file__).parent
VENDOR = HERE / "vendor"
ECHARTS_VERSION = "6.1.0"
#: SHA-256 of vendor/echarts.min.js (the npm package echarts@6.1.0, dist/echarts.min.js).
ECHARTS_SHA256 = "b66b25aeb4df84e33199dc21694014d336d222cbd9deb0e5a7c14bd6aa0d0fd0"


@cache
def echarts_js() -> str:
    """The vendored ECharts build, after checking its checksum."""
    path = VENDOR / "echarts.min.js"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise XpError(f"{path}: cannot read the bundled chart library ({exc.strerror}); "
                      "reinstall xpcli") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != ECHARTS_SHA256:
        raise XpError(f"{path}: checksum {digest[:12]}... is not the one shipped "
                      f"({ECHARTS_SHA256[:12]}...); the file was changed: reinstall xpcli")
    return data.decode("utf-8")


@cache
def _asset(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def script_json(value: Any) -> str:
    """``value`` as JSON that is inert inside a ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c``… so no ``</script>``, ``<!--`` or entity
    can appear; U+2028/U+2029 are escaped too. NaN and infinities are refused (builders
    pass None for a missing value)."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def finite(value: Any) -> Any:
    """A number for JSON: None for NaN, infinities and None; floats stay floats."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rounded(value: Any, digits: int = 7) -> Any:
    """A float to ``digits`` significant digits (curves: the JSON is a third the size; the
    value shown on hover is rounded to 4 digits anyway); None for a missing value."""
    if value is None or not isinstance(value, float):
        return value
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


@dataclass
class View:
    """An interactive chart: ``kind`` (``parcoords`` or ``lines``) and its ``spec``, the
    JSON the page's script draws from (see xp.js for its fields)."""

    kind: str
    title: str
    spec: dict[str, Any]
    #: Marks an object that :func:`xpcli.plots.common.save_figure` hands to :meth:`save`.
    is_html_view = True

    def save(self, path: str, only_if_changed: bool = False) -> str:
        """Write this view as a page of its own (atomically, as figures are)."""
        return write_page(path, self.title, [self], only_if_changed=only_if_changed,
                          heading=False)


@dataclass
class Text:
    """A heading and paragraphs of plain text (escaped; blank lines split paragraphs)."""

    heading: str | None = None
    text: str = ""
    level: int = 2


@dataclass
class Image:
    """A static figure (PNG bytes) shown inline as a ``data:`` image."""

    png: bytes
    alt: str


@dataclass
class Table:
    """A table: ``columns`` and ``rows`` of display strings, under a caption."""

    columns: list[str]
    rows: list[list[str]]
    caption: str | None = None
    numeric: list[bool] = field(default_factory=list)


Block = View | Text | Image | Table


def _csp(scripts: Sequence[str]) -> str:
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode()
        + "'" for s in scripts)
    return (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
            "img-src data:; base-uri 'none'; form-action 'none'")


def _paragraphs(text: str) -> str:
    parts = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>\n" for p in parts)


def _block_html(block: Block, index: int) -> str:
    if isinstance(block, Text):
        level = min(max(block.level, 1), 4)
        head = (f"<h{level}>{html.escape(block.heading)}</h{level}>\n"
                if block.heading else "")
        return head + _paragraphs(block.text)
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure class="xp-static"><img alt="{html.escape(block.alt)}" '
                f'src="data:image/png;base64,{data}"></figure>\n')
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in block.columns)
        numeric = block.numeric or [False] * len(block.columns)
        body = "".join(
            "<tr>" + "".join(
                f'<td{" class=num" if num else ""}>{html.escape(cell)}</td>'
                for cell, num in zip(row, numeric)) + "</tr>\n"
            for row in block.rows)
        caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
        return (f'<div class="xp-static-table"><table>{caption}<thead><tr>{head}</tr>'
                f"</thead><tbody>\n{body}</tbody></table></div>\n")
    view_id = f"xp-view-{index}"
    return (f'<section class="xp-view" id="{view_id}" data-kind="{html.escape(block.kind)}">'
            f'</section>\n<script type="application/json" id="{view_id}-data">'
            f"{script_json(block.spec)}</script>\n")


def render_page(title: str, blocks: Sequence[Block], heading: bool = True,
                meta: Mapping[str, str] | None = None) -> str:
    """The whole document: ``title`` as its title (and first heading, unless ``heading``
    is False: a page of one view shows the view's own title), then ``blocks``; ``meta``:
    name -> content of extra meta tags (a report's inputs digest)."""
    views = any(isinstance(b, View) for b in blocks)
    scripts = [echarts_js(), _asset("xp.js"), "xp.init();"] if views else []
    body = "".join(_block_html(block, i) for i, block in enumerate(blocks))
    tags = "".join(f"<script>{s}</script>\n" for s in scripts)
    h1 = f"<h1>{html.escape(title)}</h1>\n" if heading else ""
    extra = "".join(f'<meta name="{html.escape(k)}" content="{html.escape(v)}">\n'
                    for k, v in (meta or {}).items())
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{_csp(scripts)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"{extra}"
        f"<title>{html.escape(title)}</title>\n<style>{_asset('xp.css')}</style>\n"
        f"</head>\n<body>\n<main>\n{h1}{body}</main>\n"
        f"{tags}</body>\n</html>\n"
    )


def write_page(path: str, title: str, blocks: Sequence[Block],
               only_if_changed: bool = False, heading: bool = True,
               meta: Mapping[str, str] | None = None) -> str:
    """Write a page to ``path`` atomically (beside it under a hidden name, then renamed);
    with ``only_if_changed`` an identical file is left alone (``--watch``)."""
    from ..plots.common import replace_atomically

    text = render_page(title, blocks, heading, meta).encode("utf-8")
    def write(tmp: str) -> None:
        Path(tmp).write_bytes(text)

    return replace_atomically(path, write, only_if_changed)

"""Text from log files, made safe to show a person: the one place that decides what a
terminal may receive. Only the standard library, so the CLI's error path can use it.

Run ids, params, metric names, context values and file names come from files anyone may
have written. Shown raw, an ESC sequence clears the screen, sets the window title or
makes an OSC 8 link, U+202E shows ``abc<U+202E>gnp.exe`` as ``abcexe.png``, and a cell
cut short can end inside a sequence. :func:`visible` writes every such character as an
escape (``\\x1b``, ``\\u202e``), so what is shown is inert text with the same meaning.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories shown as escapes: controls (C0, DEL, C1), format characters (bidi
#: overrides and isolates, zero-width characters, BOM, tag characters), line and
#: paragraph separators, and lone surrogates.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escape(char: str) -> str:
    if char in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` with every control, bidi/format and separator character written as an
    escape (``"\\x1b[2J"`` for ESC [2J); anything else, any script or emoji, unchanged."""
    if text.isprintable():  # the common case: nothing to look at char by char
        return text
    category = unicodedata.category
    return "".join(_escape(c) if category(c) in HIDDEN_CATEGORIES else c for c in text)

"""Write docs/specs.md, the grammar of metric specs, --where and run pickers, from the
module docs of the xpcli.spec package and its table of reducers (REDUCERS).

Usage: python scripts/gen_spec_docs.py [--check]   (--check: exit 1 if docs/specs.md is stale)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generated_doc import write_or_check  # noqa: E402

from xpcli.spec import metric, picker, where  # noqa: E402

TARGET = ROOT / "docs" / "specs.md"
#: The paragraph of the metric module docs after which the table of reducers goes.
REDUCERS_MARK = "The reducers are the rows of :data:`REDUCERS`"


def inline(text: str) -> str:
    """reST inline markup as Markdown: ``code`` and :role:`~name` become `code`."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"``(.+?)``", r"`\1`", text)


def markdown(doc: str) -> list[str]:
    """A module docstring from its first heading on, as Markdown lines.

    Handles what these docstrings use: headings underlined with ``=``, ``::`` blocks
    (indented, become fenced code), bullets and paragraphs (kept as they are)."""
    lines = doc.strip("\n").splitlines()
    start = next(i for i, line in enumerate(lines[1:], 1) if re.fullmatch(r"=+", line)) - 1
    out: list[str] = []
    i = start
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and re.fullmatch(r"=+", lines[i + 1]) and line.strip():
            out += [f"## {inline(line)}"]
            i += 2
            continue
        if line.endswith("::"):
            text = line[:-2].rstrip()
            if text:
                out.append(inline(text) + ":")
                out.append("")
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += ["```text", *block, "```", ""]
            continue
        out.append(inline(line))
        i += 1
    return out


def reducer_table() -> list[str]:
    rows = ["| REDUCE | one number per run and column |", "|---|---|"]
    for reducer in metric.REDUCERS.values():
        rows.append(f"| `{reducer.syntax}` | {inline(reducer.doc)} |")
    return rows


def render() -> str:
    parts = ["# Metric specs, `--where` and run pickers", "",
             "Generated from the module docs of `xpcli.spec` (`metric`, `where`, `picker`) and "
             "its table of reducers by `make docs`; do not edit by hand.", ""]
    metric_doc = markdown(metric.__doc__ or "")
    mark = next((i for i, line in enumerate(metric_doc) if line.startswith(inline(REDUCERS_MARK))),
                None)
    if mark is None:
        raise SystemExit(f"xpcli/spec/metric.py: its docs lost the line {REDUCERS_MARK!r}")
    metric_doc[mark] = "The reducers (`REDUCERS` in `xpcli/spec/metric.py`):"
    metric_doc[mark + 1:mark + 1] = ["", *reducer_table()]
    parts += metric_doc
    parts += ["", *markdown(where.__doc__ or ""), "", *markdown(picker.__doc__ or "")]
    return "\n".join(parts).rstrip("\n") + "\n"


def main() -> None:
    write_or_check(TARGET, render(), ROOT)


if __name__ == "__main__":
    main()

"""``xp report``: a saved, replayable study — a TOML file listing xp commands — run against
a runs directory and written as one document (HTML with interactive views, or Markdown
with PNG files beside it).

A report file::

    title = "NER sweep"                  # optional (default: the file's name)
    text = "What this report shows."     # optional, plain text

    [[view]]
    title = "Every run"                  # required
    text = "Drag on an axis to filter."  # optional
    command = "parcoords --params lr,seed --metrics 'f1:lang=*' --highlight best:f1:lang=en"

``command`` is an xp command line without ``xp`` (a string, split into words as a POSIX
shell would split it — quotes and backslashes — but never run by one), or a list of
words. It is parsed by xp's own command-line parser, exactly as typed on the command
line: nothing is evaluated. The report adds ``--runs`` and, for figure commands, where
the figure goes; an entry may not give ``--runs``, ``-o`` or ``--watch`` itself.

The commands run in this process; their tables and figures are caught on their way out
(see :class:`Collector`), so nothing is written but the report.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import tempfile
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError

#: Commands a report may list: everything that reads and answers, nothing that writes.
TABLE_COMMANDS = ("runs", "metrics", "select", "group", "selection", "compare", "importance")
FIGURE_COMMANDS = ("parcoords", "curves", "aggregate", "forgetting", "scatter")
#: Figure commands with an interactive view (the others are embedded as PNG).
HTML_VIEWS = ("parcoords", "curves", "aggregate", "forgetting")
REFUSED_OPTIONS = {"--runs": "xp report --runs DIR sets it for every view",
                   "-o": "the report places each figure itself",
                   "--output": "the report places each figure itself",
                   "--watch": "a report is written once"}
TOP_KEYS = ("title", "text", "view")
VIEW_KEYS = ("title", "text", "command")
#: Where a running command finds the report's collector (a key of the click context's obj).
REPORT_SINK = "xp.report_sink"


@dataclass
class Entry:
    """One view of a report: its title, text and the command's words (without ``xp``)."""

    title: str
    text: str
    args: list[str]
    number: int

    @property
    def command(self) -> str:
        return self.args[0]


@dataclass
class Report:
    """A parsed report file."""

    path: str
    title: str
    text: str
    entries: list[Entry]


def _where(path: str, number: int | None = None, title: str | None = None) -> str:
    if number is None:
        return path
    named = f" ({title!r})" if title else ""
    return f"{path}: view {number}{named}"


def _split(path: str, number: int, title: str, command: Any) -> list[str]:
    where = _where(path, number, title)
    if isinstance(command, str):
        try:
            # A backslash at the end of a line continues it, as in a shell.
            words = shlex.split(re.sub(r"\\\r?\n", " ", command), comments=False,
                                posix=True)
        except ValueError as exc:
            raise UsageError(f"{where}: command: {exc} (check the quotes)") from None
    elif isinstance(command, list) and all(isinstance(w, str) for w in command):
        words = list(command)
    else:
        raise UsageError(f"{where}: command must be a string or a list of strings")
    if words and words[0] == "xp":
        words = words[1:]
    if not words:
        raise UsageError(f"{where}: command is empty; e.g. command = \"select --top 5\"")
    name = words[0]
    if name not in (*TABLE_COMMANDS, *FIGURE_COMMANDS):
        from .errors import did_you_mean

        hint = did_you_mean(name, (*TABLE_COMMANDS, *FIGURE_COMMANDS))
        hint = hint if hint.startswith("did you mean") else (
            f"a report runs {', '.join((*TABLE_COMMANDS, *FIGURE_COMMANDS))}")
        raise UsageError(f"{where}: command {name!r} cannot be in a report; {hint}")
    for word in words[1:]:
        option = word.split("=", 1)[0]
        if option in REFUSED_OPTIONS or (word.startswith("-o") and not word.startswith("--")
                                         and len(word) > 2 and name in FIGURE_COMMANDS):
            key = option if option in REFUSED_OPTIONS else "-o"
            raise UsageError(f"{where}: drop {key} from the command; {REFUSED_OPTIONS[key]}")
    return words


def parse_report(path: str, quiet: bool = False) -> Report:
    """Read and check a report file; errors name the file, the view and what to fix.
    ``quiet``: every command runs with ``--quiet`` (no warnings on stderr)."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the report file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r}; a report has "
                         f"{', '.join(TOP_KEYS)} ([[view]] tables)")
    title = data.get("title", os.path.splitext(os.path.basename(path))[0])
    text = data.get("text", "")
    if not isinstance(title, str) or not isinstance(text, str):
        raise UsageError(f"{path}: title and text must be strings")
    views = data.get("view")
    if not isinstance(views, list) or not views or not all(isinstance(v, dict) for v in views):
        raise UsageError(f"{path}: no views; add [[view]] tables with a title and a command")
    entries = []
    for number, view in enumerate(views, start=1):
        vtitle = view.get("title")
        where = _where(path, number, vtitle if isinstance(vtitle, str) else None)
        unknown = [k for k in view if k not in VIEW_KEYS]
        if unknown:
            raise UsageError(f"{where}: unknown key {unknown[0]!r}; a view has "
                             f"{', '.join(VIEW_KEYS)}")
        if not isinstance(vtitle, str) or not vtitle.strip():
            raise UsageError(f"{where}: give the view a title = \"...\"")
        vtext = view.get("text", "")
        if not isinstance(vtext, str):
            raise UsageError(f"{where}: text must be a string")
        if "command" not in view:
            raise UsageError(f"{where}: no command; e.g. command = \"select --top 5\"")
        words = _split(path, number, vtitle, view["command"])
        entries.append(Entry(vtitle, vtext, [*words, "--quiet"] if quiet else words, number))
    return Report(path, title, text, entries)


@dataclass
class Collector:
    """Catches what a command would write: tables (``emit``) and figures (``save``)."""

    tables: list[tuple[Any, str | None]] = field(default_factory=list)
    figures: list[Any] = field(default_factory=list)

    def table(self, frame: Any, title: str | None) -> None:
        self.tables.append((frame, title))

    def figure(self, figure: Any, path: str) -> None:
        self.figures.append(figure)


def _run(report: Report, entry: Entry, runs: str, suffix: str, cli: Any) -> Collector:
    """Run one entry's command in this process, through ``cli`` (the xp group), and
    collect what it answers."""
    import click

    collector = Collector()
    args = ["--runs", runs, *entry.args]
    if entry.command in FIGURE_COMMANDS:
        wanted = suffix if entry.command in HTML_VIEWS else ".png"
        args += ["-o", os.path.join(tempfile.gettempdir(), f"xp-report-view{wanted}")]
    try:
        cli.main(args=args, prog_name="xp", standalone_mode=False,
                 obj={REPORT_SINK: collector})
    except click.ClickException as exc:
        raise UsageError(f"{_where(report.path, entry.number, entry.title)}: "
                         f"xp {entry.command}: {exc.format_message()}") from None
    except click.exceptions.Exit as exc:
        if exc.exit_code:
            raise UsageError(f"{_where(report.path, entry.number, entry.title)}: "
                             f"xp {entry.command} exited with {exc.exit_code}") from None
    return collector


def _png(figure: Any) -> bytes:
    from .plots.common import save_figure

    with tempfile.TemporaryDirectory(prefix="xp-report-") as folder:
        path = os.path.join(folder, "figure.png")
        save_figure(figure, path)
        with open(path, "rb") as handle:
            return handle.read()


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "view"


def build_html(report: Report, runs: str, cli: Any) -> list[Any]:
    """The blocks of the HTML document: each view's text, then its tables and figures."""
    from .html.page import Image, Table, Text, View
    from .output import _display_rows

    blocks: list[Any] = []
    if report.text:
        blocks.append(Text(None, report.text))
    for entry in report.entries:
        collected = _run(report, entry, runs, ".html", cli)
        blocks.append(Text(entry.title, entry.text))
        for frame, caption in collected.tables:
            columns, numeric, rows = _display_rows(frame)
            blocks.append(Table(columns, rows, caption, numeric))
        for figure in collected.figures:
            if isinstance(figure, View):
                blocks.append(figure)
            else:
                blocks.append(Image(_png(figure), entry.title))
    return blocks


#: The page of a report records the digest of its inputs in a meta tag of this name.
INPUTS_META = "xp-report-inputs"


def _template_digest() -> str:
    """The page template: the code, script and style of xpcli/html and of this module,
    and the bundled library's checksum. A change to any of them changes the page."""
    import hashlib
    from pathlib import Path

    from .html.page import ECHARTS_SHA256

    here = Path(__file__).parent
    digest = hashlib.sha256(ECHARTS_SHA256.encode())
    files = sorted(p for p in (here / "html").iterdir()
                   if p.is_file() and p.suffix in (".py", ".js", ".css"))
    for file in [Path(__file__), *files]:
        data = file.read_bytes()
        digest.update(f"{file.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def inputs_digest(views: str, runs: str) -> str | None:
    """The SHA-256 of what a report's page is made from: the report file's bytes, every
    file of the runs directory (its path in the directory and its bytes; hidden files and
    folders left out) and the page template (:func:`_template_digest`). None for runs
    on object storage (not read byte by byte here)."""
    import hashlib
    from pathlib import Path

    from .remote import is_url

    if is_url(runs):
        return None
    digest = hashlib.sha256(b"xp report inputs 1\0")
    digest.update(_template_digest().encode())
    data = Path(views).read_bytes()
    digest.update(f"report\0{len(data)}\0".encode())
    digest.update(data)
    root = Path(runs)
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    for file in files:
        data = file.read_bytes()
        name = file.name if file == root else file.relative_to(root).as_posix()
        digest.update(f"run file\0{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def recorded_digest(page: str) -> str | None:
    """The inputs digest a report's page recorded (None when it has none)."""
    from pathlib import Path

    match = re.search(rf'<meta name="{INPUTS_META}" content="([0-9a-f]{{64}})">',
                      Path(page).read_text(encoding="utf-8"))
    return match.group(1) if match else None


def write_html(report: Report, runs: str, path: str, cli: Any) -> str:
    """Run every view through ``cli`` (the xp click group) and write one self-contained
    HTML page to ``path``; the page records the digest of its inputs
    (:func:`inputs_digest`), so a check can tell a page that is no longer what its
    report file and runs give."""
    from .html.page import write_page

    digest = inputs_digest(report.path, runs)
    meta = {INPUTS_META: digest} if digest else None
    return write_page(path, report.title, build_html(report, runs, cli), meta=meta)


def write_markdown(report: Report, runs: str, path: str, cli: Any) -> list[str]:
    """Run every view through ``cli`` (the xp click group) and write Markdown to
    ``path``, each figure as a PNG beside it
    (``<name>-<view>-<slug>.png``); returns the files written."""
    from .output import write_markdown as markdown_table
    from .plots.common import replace_atomically, save_figure

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"-o {path}: folder {folder} does not exist")
    stem = os.path.splitext(os.path.basename(path))[0]
    out = io.StringIO()
    written: list[str] = []
    out.write(f"# {report.title}\n\n")
    if report.text:
        out.write(report.text.strip() + "\n\n")
    for entry in report.entries:
        collected = _run(report, entry, runs, ".png", cli)
        out.write(f"## {entry.title}\n\n")
        if entry.text:
            out.write(entry.text.strip() + "\n\n")
        for frame, caption in collected.tables:
            markdown_table(frame, out, title=caption)
            out.write("\n")
        for k, figure in enumerate(collected.figures):
            extra = f"-{k + 1}" if len(collected.figures) > 1 else ""
            name = f"{stem}-{entry.number}-{_slug(entry.title)}{extra}.png"
            save_figure(figure, os.path.join(folder, name))
            written.append(os.path.join(folder, name))
            alt = entry.title.replace("[", "(").replace("]", ")")
            out.write(f"![{alt}]({name})\n\n")
    text = out.getvalue()
    replace_atomically(path, lambda tmp: _write_text(tmp, text))
    written.insert(0, path)
    return written

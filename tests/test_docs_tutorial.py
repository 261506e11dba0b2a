"""Every ``$ xp ...`` line in README.md and docs/tutorial.md runs, and shows what xp prints.

The fenced ``console`` blocks are parsed: a line starting with ``$ `` is a command (a
trailing backslash continues it), the lines after it up to the next command are its shown
output. Each command runs through bash from the repository root (so pipes work as
written), with a fixed 120-column width, and must exit 0. Where output is shown, every
shown line must appear in what the command prints, in the same order; a line ``…`` marks
rows left out. A shown rich table but no ``--format`` (a terminal's ``auto``) is compared
with ``--format table``. ``-o FILE`` is redirected into a temporary folder, so the tests
never touch docs/figures/.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow  # the whole module: make test-fast leaves it out

DOCS = (ROOT / "README.md", ROOT / "docs" / "tutorial.md")
ELISION = {"…", "...", "⋮"}
WIDTH = "120"


@dataclass
class Example:
    doc: str
    line: int
    command: str
    shown: list[str]

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def examples(path: Path) -> list[Example]:
    """The ``$ xp`` commands of ``path``'s console blocks, with the output shown below each."""
    found: list[Example] = []
    lines = path.read_text().splitlines()
    in_block = False
    current: Example | None = None
    continued = False
    for number, line in enumerate(lines, start=1):
        if not in_block:
            in_block = line.strip() == "```console"
            continue
        if line.strip() == "```":
            in_block, current, continued = False, None, False
            continue
        if continued and current is not None:
            current.command += " " + line.strip().removesuffix("\\").strip()
            continued = line.rstrip().endswith("\\")
        elif line.startswith("$ "):
            command = line[2:].rstrip()
            continued = command.endswith("\\")
            command = command.removesuffix("\\").strip()
            current = None
            if command.startswith("xp "):
                doc = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
                current = Example(doc, number, command, [])
                found.append(current)
        elif current is not None:
            current.shown.append(line.rstrip())
    for example in found:
        while example.shown and not example.shown[-1]:
            example.shown.pop()
    return found


ALL = [example for doc in DOCS if doc.exists() for example in examples(doc)]
# A command shown twice the same way (a figure in the README and the tutorial) runs once.
_unique: dict[tuple[str, tuple[str, ...]], Example] = {}
for _example in ALL:
    _unique.setdefault((_example.command, tuple(_example.shown)), _example)
RUN = list(_unique.values())


def shell_command(example: Example, out_dir: Path) -> str:
    """The command as run: figures into ``out_dir``, a shown rich table asked for explicitly."""
    command = re.sub(r"(-o|--output)\s+(\S+)",
                     lambda m: f"{m.group(1)} {out_dir / Path(m.group(2)).name}",
                     example.command)
    xp_part, pipe, rest = command.partition(" | ")
    if "--format" not in xp_part and any("┃" in line for line in example.shown):
        xp_part += " --format table"
    return xp_part + pipe + rest


def run(command: str) -> subprocess.CompletedProcess[str]:
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           "COLUMNS": WIDTH, "NO_COLOR": "1", "XP_FORCE_TTY": "0"}
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)


def _same_text(line: str) -> str:
    """A line's words with runs of blanks and of rule characters collapsed: what a table
    says, whatever column padding the installed rich version chooses."""
    return re.sub(r"([━─═])\1+", r"\1", " ".join(line.split()))


def missing_line(shown: list[str], printed: list[str]) -> str | None:
    """The first shown line not found (in order) in the printed lines, else None."""
    position = 0
    printed_text = [_same_text(line) for line in printed]
    for line in shown:
        if not line.strip() or line.strip() in ELISION:
            continue
        wanted = _same_text(line)
        while position < len(printed) and printed_text[position] != wanted:
            position += 1
        if position == len(printed):
            return line
        position += 1
    return None


def test_docs_have_examples() -> None:
    docs = {example.doc for example in ALL}
    assert docs == {"README.md", "docs/tutorial.md"}
    assert any(example.shown for example in ALL)


@pytest.mark.parametrize("example", RUN, ids=[example.id for example in RUN])
def test_documented_command_runs_and_prints_what_is_shown(example: Example,
                                                          tmp_path: Path) -> None:
    proc = run(shell_command(example, tmp_path))
    assert proc.returncode == 0, f"{example.id}: $ {example.command}\n{proc.stderr}"
    for name in re.findall(r"(?:-o|--output)\s+(\S+)", example.command):
        assert (tmp_path / Path(name).name).stat().st_size > 0, f"{example.id}: no {name}"
    printed = [line.rstrip() for line in proc.stdout.splitlines()]
    missing = missing_line(example.shown, printed)
    assert missing is None, (
        f"{example.id}: $ {example.command}\nshown but not printed:\n{missing}\n"
        f"printed:\n{proc.stdout}"
    )


def script_commands() -> list[list[str]]:
    """The xp commands of scripts/make_figures.sh, as argument lists."""
    text = (ROOT / "scripts" / "make_figures.sh").read_text().replace("\\\n", " ")
    text = text.replace('"$OUT/', "docs/figures/").replace('.png"', ".png")
    return [shlex.split(line) for line in text.splitlines() if line.startswith("xp ")]


def test_documented_figures_are_the_ones_make_figures_draws() -> None:
    commands = script_commands()
    drawn = [c for c in commands if c[1] != "report"]
    assert len(drawn) == 5
    # And the same views as one interactive page, linked from the README gallery.
    assert [c for c in commands if c[1] == "report"] == [
        ["xp", "report", "docs/story.toml", "--runs", "sample_runs", "-o", "docs/story.html",
         "-q"]]
    assert "(docs/story.html)" in (ROOT / "README.md").read_text()
    figures = [shlex.split(e.command) for e in ALL if "docs/figures/" in e.command]
    for example in figures:
        assert example in drawn, f"not drawn by make figures: {shlex.join(example)}"
    readme = [shlex.split(e.command) for e in ALL if e.doc == "README.md"]
    for command in drawn:
        assert command in readme, f"not in the README gallery: {shlex.join(command)}"
        assert (ROOT / command[command.index("-o") + 1]).exists()


def test_parser_and_matcher_on_a_small_block(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("$ xp outside\n```console\n$ xp a \\\n    --b 'c d' | head -2\nx\n\n"
                   "$ make z\nignored\n$ xp e -o docs/figures/f.png\n\n```\n")
    found = examples(doc)
    assert [(e.line, e.command, e.shown) for e in found] == [
        (3, "xp a --b 'c d' | head -2", ["x"]),
        (9, "xp e -o docs/figures/f.png", []),
    ]
    assert shell_command(found[1], tmp_path) == f"xp e -o {tmp_path / 'f.png'}"
    table = Example("d", 1, "xp m --runs r | head -3", ["a ┃ b"])
    assert shell_command(table, tmp_path) == "xp m --runs r --format table | head -3"
    assert missing_line(["a", "…", "c"], ["a", "b", "c"]) is None
    assert missing_line(["c", "a"], ["a", "b", "c"]) == "a"
    assert missing_line(["a", "x"], ["a", "b"]) == "x"

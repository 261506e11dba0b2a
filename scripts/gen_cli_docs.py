"""Write docs/cli.md, the command reference, from the commands' own --help.

Usage: python scripts/gen_cli_docs.py [--check]   (--check: exit 1 if docs/cli.md is stale)
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generated_doc import write_or_check  # noqa: E402

from xpcli.cli import COMMANDS, cli  # noqa: E402

TARGET = ROOT / "docs" / "cli.md"


def help_text(command: click.Command, path: list[str]) -> str:
    with click.Context(command, info_name=" ".join(path), terminal_width=100,
                       max_content_width=100, help_option_names=["-h", "--help"]) as ctx:
        return command.get_help(ctx)


def render() -> str:
    parts = ["# Command reference", "",
             "Generated from `xp COMMAND --help` by `make docs`; do not edit by hand.", ""]
    parts += ["## xp", "", "```text", help_text(cli, ["xp"]), "```", ""]
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None, name
        parts += [f"## xp {name}", "", "```text", help_text(command, ["xp", name]), "```", ""]
        if isinstance(command, click.Group):
            for sub in command.list_commands(click.Context(command)):
                subcommand = command.get_command(click.Context(command), sub)
                assert subcommand is not None
                parts += [f"### xp {name} {sub}", "", "```text",
                          help_text(subcommand, ["xp", name, sub]), "```", ""]
    return "\n".join(parts)


def main() -> None:
    write_or_check(TARGET, render(), ROOT)


if __name__ == "__main__":
    main()

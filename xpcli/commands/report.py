"""``xp report``: run the views of a report file and write one HTML or Markdown document."""

from __future__ import annotations

import click

from ._common import command, info, quiet_option, runs_dir, runs_option


@command("report")
@click.argument("views", metavar="VIEWS.toml")
@runs_option
@click.option("-o", "--output", "output", metavar="FILE", required=True,
              help="The document: FILE.html (one self-contained page, interactive views) "
                   "or FILE.md (Markdown, each figure a PNG beside it).")
@quiet_option
def report_cmd(views: str, runs: str | None, output: str, quiet: bool) -> None:
    """Run the xp commands listed in a report file and write one document.

    A report file (TOML) has a title, a text and [[view]] tables, each with a title, a
    text and an xp command (views and tables), e.g. command = "parcoords --params lr
    --metrics 'f1:lang=*'". The same file on next week's runs gives next week's report.
    Commands are parsed by xp's own parser, never by a shell. See docs/html.md.

    \b
    Examples:
      xp report docs/story.toml --runs sample_runs -o story.html
      xp report docs/story.toml --runs sample_runs -o summary.md
    """
    import os

    from ..errors import UsageError
    from ..html import is_html
    from ..report import parse_report, write_html, write_markdown

    suffix = os.path.splitext(output)[1].lower()
    if not is_html(output) and suffix != ".md":
        raise UsageError(f"-o {output}: the report format comes from the suffix; use .html "
                         "or .md")
    report = parse_report(views, quiet=quiet)
    directory = runs_dir(runs)
    group = click.get_current_context().find_root().command  # the xp group runs each view
    if is_html(output):
        write_html(report, directory, output, group)
        info(f"wrote {output}")
    else:
        for path in write_markdown(report, directory, output, group):
            info(f"wrote {path}")

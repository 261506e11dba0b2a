"""``xp report``: report files parsed and checked, their commands run by xp's own parser
(never a shell), written as one HTML page or as Markdown with PNG files beside it."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from xpcli.cli import cli
from xpcli.html import page

ROOT = Path(__file__).resolve().parent.parent
DATA = re.compile(r'<script type="application/json" id="[^"]+">(.*?)</script>', re.S)


def _report(tmp_path: Path, text: str, runs: Path, out: str = "r.html",
            *extra: str) -> tuple[int, str, Path]:
    views = tmp_path / "views.toml"
    views.write_text(text)
    target = tmp_path / out
    result = CliRunner().invoke(cli, ["report", str(views), "--runs", str(runs), "-o",
                                      str(target), *extra])
    return result.exit_code, result.stderr, target


REPORT = '''
title = "Tiny <study>"
text = "Two runs & a table."

[[view]]
title = "Runs by English F1"
text = "The table."
command = "select -m f1:lang=en --sort f1[lang=en]"

[[view]]
title = "Every run"
command = ["parcoords", "--params", "lr,seed", "-m", "f1:lang=en"]

[[view]]
title = "Curves"
command = """curves f1:lang=en \\
  --color lr"""
'''


def test_html_report_holds_every_view(tiny_runs: Path, tmp_path: Path) -> None:
    code, stderr, out = _report(tmp_path, REPORT, tiny_runs, "r.html", "-q")
    assert code == 0, stderr
    assert stderr == f"wrote {out}\n"
    text = out.read_text()
    assert "<title>Tiny &lt;study&gt;</title>" in text and "<p>Two runs &amp; a table.</p>" in text
    assert "<h2>Runs by English F1</h2>" in text and "<h2>Curves</h2>" in text
    # The select table: both runs, hand-worked last English F1 (a: 0.75, b: 0.5).
    rows = re.findall(r"<tr>(.*?)</tr>", text)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert [c[0] for c in cells if c] == ["b", "a"]  # sorted by f1[lang=en], ascending
    assert [c[-1] for c in cells if c] == ["0.50", "0.75"]  # one precision per column
    kinds = re.findall(r'data-kind="(\w+)"', text)
    assert kinds == ["parcoords", "lines"]
    specs = [json.loads(body) for body in DATA.findall(text)]
    assert specs[0]["runs"] == ["a", "b"]
    assert text.count("<script>") == 3  # ECharts once, however many views


def test_markdown_report_writes_pngs_beside_it(tiny_runs: Path, tmp_path: Path) -> None:
    code, stderr, out = _report(tmp_path, REPORT, tiny_runs, "r.md", "-q")
    assert code == 0, stderr
    text = out.read_text()
    assert text.startswith("# Tiny <study>\n\nTwo runs & a table.\n\n## Runs by English F1\n")
    images = re.findall(r"!\[([^\]]*)\]\(([^)]+)\)", text)
    assert images == [("Every run", "r-2-every-run.png"), ("Curves", "r-3-curves.png")]
    for _, name in images:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"wrote {tmp_path / name}" in stderr
    assert "| b |" in text and "| a |" in text


@pytest.mark.parametrize("body,message", [
    ('title = "x"\n[[view]\n', "views.toml: not valid TOML: "),
    ('titel = "x"\n', "views.toml: unknown key 'titel'; a report has title, text, view"),
    ('title = "x"\n', "views.toml: no views; add [[view]] tables"),
    ('[[view]]\ncommand = "select"\n', "views.toml: view 1: give the view a title"),
    ('[[view]]\ntitle = "A"\n', "views.toml: view 1 ('A'): no command"),
    ('[[view]]\ntitle = "A"\ncommand = "selct"\n',
     "views.toml: view 1 ('A'): command 'selct' cannot be in a report; did you mean 'select'?"),
    ('[[view]]\ntitle = "A"\ncommand = "import tensorboard x"\n',
     "views.toml: view 1 ('A'): command 'import' cannot be in a report"),
    ('[[view]]\ntitle = "A"\ncommand = "select --runs /etc"\n',
     "views.toml: view 1 ('A'): drop --runs from the command; xp report --runs DIR"),
    ('[[view]]\ntitle = "A"\ncommand = "curves f1 -o x.png"\n',
     "views.toml: view 1 ('A'): drop -o from the command"),
    ('[[view]]\ntitle = "A"\ncommand = "forgetting f1 --watch 2"\n',
     "views.toml: view 1 ('A'): drop --watch from the command"),
    ('[[view]]\ntitle = "A"\ncommand = "select --where \'lr > 1"\n',
     "views.toml: view 1 ('A'): command: No closing quotation (check the quotes)"),
    ('[[view]]\ntitle = "A"\ncommand = 5\n',
     "views.toml: view 1 ('A'): command must be a string or a list of strings"),
    ('[[view]]\ntitle = "A"\ncommand = "select"\nextra = 1\n',
     "views.toml: view 1 ('A'): unknown key 'extra'"),
    ('[[view]]\ntitle = "A"\ncommand = "select"\n[[view]]\ntitle = "B"\n'
     'command = "select -m f1@maxx"\n',
     "views.toml: view 2 ('B'): xp select: f1@maxx: unknown reduce 'maxx'"),
])
def test_mistakes_name_the_file_and_the_view(tiny_runs: Path, tmp_path: Path, body: str,
                                             message: str) -> None:
    code, stderr, out = _report(tmp_path, body, tiny_runs)
    assert code != 0
    assert stderr.startswith(f"Error: {tmp_path / 'views.toml'}")
    assert message in stderr.replace(str(tmp_path) + "/", "")
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not out.exists()


def test_commands_are_never_run_by_a_shell(tiny_runs: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    body = f'[[view]]\ntitle = "A"\ncommand = "select; touch {marker} && echo $(touch {marker})"\n'
    code, stderr, _ = _report(tmp_path, body, tiny_runs)
    assert code != 0 and "view 1 ('A')" in stderr
    assert not marker.exists()


def test_report_suffix_is_checked(tiny_runs: Path, tmp_path: Path) -> None:
    code, stderr, _ = _report(tmp_path, REPORT, tiny_runs, "r.pdf")
    assert code != 0 and "use .html or .md" in stderr


def test_story_report_names_the_five_views() -> None:
    from xpcli.report import parse_report

    report = parse_report(str(ROOT / "docs" / "story.toml"))
    commands = [entry.command for entry in report.entries]
    assert commands == ["parcoords", "forgetting", "curves", "aggregate", "parcoords",
                        "selection"]


def test_a_figure_without_a_view_is_an_inline_png(tiny_runs: Path, tmp_path: Path) -> None:
    body = '[[view]]\ntitle = "lr against F1"\ncommand = "scatter lr f1:lang=en"\n'
    code, stderr, out = _report(tmp_path, body, tiny_runs, "r.html", "-q")
    assert code == 0, stderr
    text = out.read_text()
    images = re.findall(r'<img alt="lr against F1" src="data:image/png;base64,([^"]+)">', text)
    assert len(images) == 1
    assert base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<script>" not in text  # no interactive view: no script at all


def _check(page: Path, views: Path, runs: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "check_story.py"), str(page),
                           str(views), str(runs)], capture_output=True, text=True, cwd=ROOT)


def test_a_page_records_its_inputs_and_the_check_finds_it_stale(tiny_runs: Path,
                                                                tmp_path: Path) -> None:
    code, stderr, out = _report(tmp_path, REPORT, tiny_runs, "r.html", "-q")
    assert code == 0, stderr
    views = tmp_path / "views.toml"
    # The digest, worked out here by hand: the template's, the report's bytes, each run file.
    template = hashlib.sha256(page.ECHARTS_SHA256.encode())
    for file in [ROOT / "xpcli" / "report.py", *sorted(
            p for p in (ROOT / "xpcli" / "html").iterdir()
            if p.is_file() and p.suffix in (".py", ".js", ".css"))]:
        template.update(f"{file.name}\0{file.stat().st_size}\0".encode() + file.read_bytes())
    digest = hashlib.sha256(b"xp report inputs 1\0" + template.hexdigest().encode())
    digest.update(f"report\0{views.stat().st_size}\0".encode() + views.read_bytes())
    for file in sorted(p for p in tiny_runs.rglob("*") if p.is_file()):
        name = file.relative_to(tiny_runs).as_posix()
        digest.update(f"run file\0{name}\0{file.stat().st_size}\0".encode() + file.read_bytes())
    assert f'<meta name="xp-report-inputs" content="{digest.hexdigest()}">' in out.read_text()
    assert _check(out, views, tiny_runs).returncode == 0

    # A changed report file, a changed run, a new run file: each makes the page stale.
    run_file = sorted(p for p in tiny_runs.rglob("*") if p.is_file())[0]
    for change in (lambda: views.write_text(REPORT + "\n"),
                   lambda: run_file.write_bytes(run_file.read_bytes() + b"\n"),
                   lambda: (tiny_runs / "more.jsonl").write_text("")):
        change()
        checked = _check(out, views, tiny_runs)
        assert checked.returncode == 1
        assert checked.stderr.strip().endswith("run make figures")
        code, stderr, out = _report(tmp_path, views.read_text(), tiny_runs, "r.html", "-q")
        assert code == 0, stderr
        assert _check(out, views, tiny_runs).returncode == 0
    # A hidden file (an editor's, a cache's) is not an input.
    (tiny_runs / ".notes").write_text("x")
    assert _check(out, views, tiny_runs).returncode == 0


def test_a_page_without_a_digest_is_stale(tmp_path: Path) -> None:
    page_file = tmp_path / "old.html"
    page_file.write_text("<!DOCTYPE html><html></html>")
    checked = _check(page_file, ROOT / "docs" / "story.toml", ROOT / "sample_runs")
    assert checked.returncode == 1 and "run make figures" in checked.stderr

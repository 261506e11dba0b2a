"""Nothing runs code from input; paths stay inside the runs directory; SVG text is text.

A static check of the package's source (no eval, exec, pickle, unsafe YAML, shell) and
payloads that would leave a marker file if anything executed them.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT, T0, raw_controls
from fuzz_helpers import no_hang

from xpcli import Run, load
from xpcli.errors import UsageError

pytestmark = pytest.mark.slow  # the whole module: make test-fast leaves it out

PACKAGE = ROOT / "xpcli"

FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "execfile", "input"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib", "cloudpickle"}
FORBIDDEN_ATTRS = {("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"),
                   ("yaml", "load_all"), ("yaml", "unsafe_load_all"), ("os", "system"),
                   ("os", "popen"), ("torch", "load"), ("numpy", "load"), ("np", "load")}
#: import_module calls, each on a fixed registry (command table, importer kinds, extras).
IMPORT_MODULE_SITES = {"cli.py", "importers/__init__.py", "importers/_base.py"}


def _sources() -> list[tuple[str, ast.AST]]:
    return [(str(p.relative_to(PACKAGE)), ast.parse(p.read_text(), str(p)))
            for p in sorted(PACKAGE.rglob("*.py"))]


def test_the_package_never_evaluates_or_unpickles() -> None:
    found = []
    for name, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""]
                found += [f"{name}:{node.lineno} imports {m}" for m in mods
                          if m.split(".")[0] in FORBIDDEN_MODULES or m == "subprocess"]
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{name}:{node.lineno} calls {func.id}")
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if (func.value.id, func.attr) in FORBIDDEN_ATTRS:
                    found.append(f"{name}:{node.lineno} calls {func.value.id}.{func.attr}")
                if func.attr == "import_module" and name not in IMPORT_MODULE_SITES:
                    found.append(f"{name}:{node.lineno} imports a module by name")
            if isinstance(func, ast.Attribute) and func.attr in ("deserialize", "read_pickle"):
                found.append(f"{name}:{node.lineno} calls {func.attr}")
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant)
                                              and kw.value.value is False):
                    found.append(f"{name}:{node.lineno} passes shell=")
    assert found == []


def test_yaml_is_read_with_the_safe_loader_only() -> None:
    uses = [(name, node.lineno) for name, tree in _sources() for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr.endswith("load")
            and isinstance(node.value, ast.Name) and node.value.id == "yaml"]
    for name, _ in uses:
        text = (PACKAGE / name).read_text()
        assert "yaml.safe_load" in text
    assert all((PACKAGE / n).read_text().count("yaml.load(") == 0 for n, _ in uses)


# -- payloads ------------------------------------------------------------------------------


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


def _xp(*args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xpcli", *args], capture_output=True,
                          text=True, env={**os.environ, "XP_CACHE_DIR": str(cache)}, cwd=ROOT)


def test_hostile_record_keys_are_only_data(tmp_path: Path, marker: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    lines = [
        {"kind": "run", "run": "a", "__class__": "subprocess.Popen",
         "params": {"__class__": "os.system", "__reduce__": ["os.system", [f"touch {marker}"]],
                    "__init__": {"__globals__": 1}, "lr": 0.1},
         "meta": {"__builtins__": f"__import__('os').system('touch {marker}')"}},
        {"kind": "point", "run": "a", "name": "__class__", "value": 1, "step": 0,
         "context": {"__dict__": "x", "k": f"$(touch {marker})"}, "__reduce__": "os.system"},
        {"kind": "point", "run": "a", "name": f"`touch {marker}`", "value": 2, "step": 0},
    ]
    (runs / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    ds = load(runs)
    row = ds.runs.collect().row(0, named=True)
    assert row["__class__"] == "os.system" and row["lr"] == 0.1
    assert json.loads(row["__reduce__"]) == ["os.system", [f"touch {marker}"]]
    assert sorted(ds.points.collect()["name"].to_list()) == ["__class__", f"`touch {marker}`"]
    for args in (["runs"], ["metrics"], ["select", "-m", "__class__:k=*"]):
        proc = _xp(*args, "--runs", str(runs), "--format", "csv", cache=tmp_path / "c")
        assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("where", [
    "__import__('os').system('touch {m}')",
    "lr > 0 or __import__('os').system('touch {m}')",
    "`__import__('os').system('touch {m}')` > 0",
    "lr.__class__.__mro__[1].__subclasses__()",
    "run == '{m}' or open('{m}', 'w')",
])
def test_where_payloads_through_xp_select(tiny_runs: Path, tmp_path: Path, marker: Path,
                                          where: str) -> None:
    proc = _xp("select", "--runs", str(tiny_runs), "--where", where.format(m=marker),
               "--format", "csv", cache=tmp_path / "c")
    assert proc.returncode in (0, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists()


def _yaml_payload(marker: Path) -> bytes:
    return (f'lr: !!python/object/apply:os.system ["touch {marker}"]\n'
            f"seed: 1\n").encode()


@pytest.mark.parametrize("kind", ["lightning", "wandb", "mlflow"])
def test_yaml_python_tags_are_refused_not_run(tmp_path: Path, marker: Path, kind: str) -> None:
    from test_fuzz_importers import LAYOUTS

    from xpcli.importers import KINDS, import_runs

    if kind not in KINDS:
        pytest.skip(f"no {kind} importer yet")
    src = tmp_path / "src"
    src.mkdir()
    payload = _yaml_payload(marker)
    if kind == "lightning":
        LAYOUTS[kind](src, [b"epoch,step,loss\n0,1,0.5\n", payload])
    elif kind == "wandb":
        LAYOUTS[kind](src, [payload, b'{"loss": 0.5, "_step": 1}'])
    else:
        LAYOUTS[kind](src, [b"#raw" + payload])
    try:
        summary = import_runs(kind, str(src), str(tmp_path / "runs"))
        text = " ".join(str(p) for p in summary.problems)
        assert "python" in text.lower() or "refused" in text.lower() or not summary.runs
    except Exception as exc:  # noqa: BLE001 - any refusal will do, as long as nothing ran
        assert "python" in str(exc).lower() or "no mlflow runs" in str(exc), exc
    assert not marker.exists()


# -- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["../evil", "..", ".", "/tmp/evil", "a/b", "a\\b",
                                    "a\x00b", "", ".hidden", "-rf", "a" * 129, "é"])
def test_run_ids_cannot_leave_the_runs_directory(tmp_path: Path, run_id: str) -> None:
    runs = tmp_path / "inner" / "runs"
    with pytest.raises(UsageError, match="invalid run id"):
        Run(runs, run_id)
    assert not (tmp_path / "inner").exists() or list(tmp_path.rglob("*.jsonl")) == []


def test_import_names_cannot_leave_the_target(tmp_path: Path) -> None:
    """Source run names with ``..``, absolute paths and separators become plain ids."""
    from xpcli.importers import KINDS, import_runs

    if "mlflow" not in KINDS:
        pytest.skip("no mlflow importer")
    src = tmp_path / "src"
    for i, name in enumerate(["../../../../tmp/evil", "/etc/passwd", "..", "a/../../b",
                              "C:\\\\x", "\x00"]):
        run = src / "0" / f"{i:016x}"
        for sub in ("metrics", "params", "tags"):
            (run / sub).mkdir(parents=True)
        (run / "meta.yaml").write_text(f"run_uuid: '{i:016x}'\nlifecycle_stage: active\n")
        (run / "tags" / "mlflow.runName").write_text(name)
        (run / "metrics" / "loss").write_text("1 0.5 1\n")
    into = tmp_path / "into" / "runs"
    summary = import_runs("mlflow", str(src), str(into))
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(src)]
    assert written and all(p.is_relative_to(into / "imported" / "mlflow") for p in written)
    assert len(summary.runs) == 6


def test_symlink_loops_and_special_files_do_not_hang_the_reader(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with Run(runs, "real", flush_seconds=0) as run:
        run.track(1.0, "m", step=0, time=T0)
    (runs / "self").symlink_to(runs, target_is_directory=True)
    (runs / "sub").mkdir()
    (runs / "sub" / "up").symlink_to(runs, target_is_directory=True)
    (runs / "sub" / "upup").symlink_to("../sub", target_is_directory=True)
    (runs / "a.jsonl").symlink_to(runs / "b.jsonl")
    (runs / "b.jsonl").symlink_to(runs / "a.jsonl")
    (runs / "dangling.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (runs / "zero.jsonl").symlink_to("/dev/zero")
    os.mkfifo(runs / "fifo.jsonl")
    for cache in ("", "1"):
        os.environ["XP_NO_CACHE"] = cache
        try:
            with no_hang():
                ds = load(runs)
                assert ds.points.collect().height == 1
                assert ds.runs.collect()["run"].to_list() == ["real"]
        finally:
            os.environ.pop("XP_NO_CACHE", None)
    proc = _xp("runs", "--runs", str(runs), "--format", "csv", cache=tmp_path / "c")
    assert proc.returncode == 0 and proc.stdout.count("real") == 1, proc.stderr


# -- SVG -----------------------------------------------------------------------------------

NASTY = ['<script>alert(1)</script>', ']]><script>x</script>', '"\' onload="alert(1)',
         "&amp; &lt; <!-- -->", "<![CDATA[ x ]]>", "</svg><svg onload=alert(1)>",
         "--><script>alert(1)</script><!--"]


def assert_clean_svg(data: bytes) -> None:
    root = ET.fromstring(data)  # well-formed, or this raises
    tags = {el.tag.rsplit("}", 1)[-1].lower() for el in root.iter()}
    assert "script" not in tags and "foreignobject" not in tags
    for el in root.iter():
        assert not [k for k in el.attrib if k.lower().startswith("on")], el.attrib


def test_save_figure_escapes_text(tmp_path: Path) -> None:
    from xpcli.plots.common import new_figure, save_figure

    fig = new_figure(6, 4)
    ax = fig.add_subplot()
    for i, text in enumerate(NASTY):
        ax.plot([0, 1], [i, i + 1], label=text)
        ax.annotate(text, (0.5, i))
    ax.set_title(NASTY[0])
    ax.set_xlabel(NASTY[1])
    ax.set_ylabel(NASTY[2])
    ax.set_xticks([0, 1], NASTY[3:5])
    ax.legend(title=NASTY[5])
    ax.text(0, 0, NASTY[6])
    fig.suptitle(" ".join(NASTY))
    path = save_figure(fig, str(tmp_path / "x.svg"))
    data = Path(path).read_bytes()
    assert_clean_svg(data)


#: Free text as a metric name, within what a spec can name (no ``:@,()[]=*?`` quotes).
NASTY_METRIC = "x--></text><script>x</script>&lt;<!--"


def _nasty_runs(runs: Path) -> None:
    for i, lr in enumerate([1e-4, 1e-3, 1e-2]):
        run = Run(runs, f"r{i}", params={"lr": lr, "note": NASTY[i], NASTY[3]: i},
                  time=T0, flush_seconds=0)
        for epoch in range(1, 4):
            run.track(0.5 + i / 10 + epoch / 100, "f1", epoch=epoch,
                      context={"lang": NASTY[(i + epoch) % 3]}, time=T0 + epoch)
            run.track(1.0 / epoch, NASTY_METRIC, epoch=epoch, time=T0 + epoch)
        run.close(time=T0 + 9)


def test_commands_write_clean_svg_from_hostile_params_and_names(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _nasty_runs(runs)
    cache = tmp_path / "c"
    jobs = {
        "parcoords": ["parcoords", "--params", "lr,note", "--metrics", "f1:lang=*",
                      "--color", "note"],
        "curves": ["curves", "f1:lang=*", "--color", "note"],
        "curves2": ["curves", NASTY_METRIC, "--color", "lr"],
        "parcoords2": ["parcoords", "--params", "lr", "--metrics", NASTY_METRIC],
    }
    for name, args in jobs.items():
        out = tmp_path / f"{name}.svg"
        proc = _xp(*args, "--runs", str(runs), "-o", str(out), cache=cache)
        if proc.returncode != 0:
            assert "Traceback" not in proc.stderr, proc.stderr
            pytest.fail(f"{name}: {proc.stderr}")
        assert_clean_svg(out.read_bytes())


# -- terminals, Markdown and spreadsheets ------------------------------------------------

#: Notes (a param) from a foreign file: HTML, a tracking pixel, a link, a formula, a row
#: break, an OSC 8 link, an ESC sequence.
HOSTILE_NOTES = [
    "<img src=x onerror=alert(1)>",
    "![](http://t.example/pixel.png)",
    "[click](http://evil.example)",
    '=HYPERLINK("http://evil.example","x")',
    "a|b\r\n| x |\rrow",
    "\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\ \x1b[2J\x1b[H",
]
HOSTILE_RUN_IDS = ["r0\x1b]0;pwned\x07", "r1\u202egnp.exe", "r2", "r3", "r4\x9b31m", "r5"]
HOSTILE_FILE = "evil\x1b[31m\u202e.jsonl"


def _foreign_runs(runs: Path) -> Path:
    """Records as another program may write them (the reader takes any run id)."""
    runs.mkdir(parents=True)
    lines = []
    for i, (run, note) in enumerate(zip(HOSTILE_RUN_IDS, HOSTILE_NOTES)):
        lines.append({"kind": "run", "run": run, "time": T0 + i,
                      "params": {"lr": 0.1 * (i + 1), "note": note}})
        lines.append({"kind": "point", "run": run, "name": "f1", "value": 0.5 + i / 10,
                      "epoch": 1, "time": T0 + i, "context": {"lang": "x\x1b[5m\u202e"}})
        lines.append({"kind": "point", "run": run, "name": "loss\x1b]0;t\x07", "value": 1.0,
                      "epoch": 1, "time": T0 + i})
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    (runs / HOSTILE_FILE).write_text(text + '{"kind":"point","run":"r2","na')  # torn
    return runs


@pytest.mark.parametrize("args", [["runs"], ["metrics"], ["select", "-p", "note,lr"],
                                  ["select", "-p", "note", "-m", "f1:lang=*"],
                                  ["group", "--by", "note", "-m", "f1:lang=*"]])
@pytest.mark.parametrize("columns", ["60", "250"])
def test_tables_and_warnings_show_control_characters_visibly(tmp_path: Path, args: list[str],
                                                            columns: str) -> None:
    runs = _foreign_runs(tmp_path / "runs")
    proc = subprocess.run([sys.executable, "-m", "xpcli", *args, "--runs", str(runs)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "XP_FORCE_TTY": "1", "NO_COLOR": "1",
                               "COLUMNS": columns, "XP_CACHE_DIR": str(tmp_path / "c")})
    assert proc.returncode == 0, proc.stderr
    assert not raw_controls(proc.stdout), raw_controls(proc.stdout)
    assert not raw_controls(proc.stderr), proc.stderr
    assert "evil\\x1b[31m\\u202e.jsonl" in proc.stderr  # the torn line's file, escaped
    if columns == "250" and args[0] in ("select", "runs"):
        assert "r0\\x1b]0;pwned\\x07" in proc.stdout and "r1\\u202egnp.exe" in proc.stdout


def test_error_messages_show_control_characters_visibly(tmp_path: Path) -> None:
    missing = tmp_path / "no\x1b[2Jdir\u202e"
    for args, code in ((["runs", "--runs", str(missing)], 1),
                       (["select", "--runs", str(tmp_path), "--format", "x\x1b[2J"], 2),
                       (["select", "--runs", str(tmp_path), "--x", "\x1b]0;t\x07"], 2)):
        proc = subprocess.run([sys.executable, "-m", "xpcli", *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=300,
                              env={**os.environ, "XP_CACHE_DIR": str(tmp_path / "c")})
        assert proc.returncode == code, proc.stderr
        assert proc.stderr.count("\n") >= 1 and not raw_controls(proc.stderr), proc.stderr
        assert "\\x1b" in proc.stderr


def test_markdown_from_hostile_values_is_inert(tmp_path: Path) -> None:
    runs = _foreign_runs(tmp_path / "runs")
    proc = _xp("select", "--runs", str(runs), "-p", "note,lr", "-m", "f1:lang=*",
               "--format", "markdown", "-q", cache=tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    lines = text.split("\n")
    assert lines[0].startswith("**") and lines[1] == "" and lines[-1] == ""
    table = lines[2:-1]
    assert len(table) == 2 + len(HOSTILE_RUN_IDS)  # header, rule, one line per run
    width = len(re.findall(r"(?<!\\)\|", table[0]))
    assert all(len(re.findall(r"(?<!\\)\|", line)) == width for line in table)
    for bad in ("<img", "![", "](", "\r", "\x1b", "\u202e", "\x9b", "\x07"):
        assert bad not in text, repr(bad)
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "!\\[]\\(http://t.example/pixel.png)" in text
    assert "a\\|b\\\\r\\\\n\\| x \\|\\\\rrow" in text


def test_csv_from_hostile_values_cannot_run_as_a_formula(tmp_path: Path) -> None:
    import csv
    import io

    runs = _foreign_runs(tmp_path / "runs")
    for fmt, sep, command in (("csv", ",", "select"), ("tsv", "\t", "select"),
                              ("csv", ",", "runs")):  # one option, the same on every command
        got = {}
        for raw in (False, True):
            proc = _xp(command, "--runs", str(runs), "--params", "note,lr", "--format", fmt,
                       "-q", *(["--csv-raw"] if raw else []), cache=tmp_path / "c")
            assert proc.returncode == 0, proc.stderr
            rows = list(csv.DictReader(io.StringIO(proc.stdout, newline=""), delimiter=sep))
            got[raw] = {row["run"]: row for row in rows}
        assert got[False]["r3"]["note"] == "'" + HOSTILE_NOTES[3]
        assert got[True]["r3"]["note"] == HOSTILE_NOTES[3]
        for run in HOSTILE_RUN_IDS:
            assert not got[False][run]["note"].startswith(("=", "+", "-", "@"))
            assert float(got[False][run]["lr"]) > 0  # numbers untouched

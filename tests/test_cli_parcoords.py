"""``xp parcoords`` end to end: tables on stdout, figures with -o, messages on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from xpcli import Run
from xpcli.cli import cli

SAMPLE_RUNS = Path(__file__).resolve().parent.parent / "sample_runs"
START = 1_767_225_600.0

# run: (lr, seed, {lang: [F1 at epoch 1, 2]}); the last run has no German F1.
RUNS = {
    "lr1e-5-s0": (1e-5, 0, {"en": [0.5, 0.6], "de": [0.4, 0.3]}),
    "lr1e-4-s1": (1e-4, 1, {"en": [0.7, 0.8], "de": [0.5, 0.45]}),
    "lr1e-3-s2": (1e-3, 2, {"en": [0.6, 0.9]}),
}


@pytest.fixture()
def runs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    for index, (run_id, (lr, seed, f1)) in enumerate(RUNS.items()):
        created = START + index * 3600
        with Run(folder, run=run_id, params={"lr": lr, "seed": seed},
                 meta={"created": created}, time=created, flush_seconds=0) as run:
            for lang, values in f1.items():
                for epoch, value in enumerate(values, start=1):
                    run.track(value, name="f1", step=epoch, epoch=epoch,
                              context={"lang": lang}, time=created + epoch)
    return folder


def invoke(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


EXPECTED_CSV = (
    "run,lr,seed,f1[lang=de],f1[lang=en]\n"
    "lr1e-5-s0,1e-5,0,0.3,0.6\n"
    "lr1e-4-s1,1e-4,1,0.45,0.8\n"
    "lr1e-3-s2,1e-3,2,,0.9\n"
)


def test_user_example_with_xp_runs_prints_the_table(runs_dir):
    result = invoke(["parcoords", "--params", "lr,seed", "--metrics", "f1:lang=*",
                     "--format", "csv"], env={"XP_RUNS": str(runs_dir)})
    assert result.exit_code == 0
    assert result.stdout == EXPECTED_CSV
    assert result.stderr == "xp: 1 of 3 runs have no value for f1 lang=de\n"


def test_piped_output_defaults_to_csv(runs_dir):
    result = invoke(["parcoords", "--runs", str(runs_dir), "--params", "lr,seed",
                     "--metrics", "f1:lang=*"])
    assert result.exit_code == 0
    assert result.stdout == EXPECTED_CSV


def test_json_table_with_run_axis_and_where(runs_dir):
    result = invoke(["parcoords", "--runs", str(runs_dir), "--params", "lr",
                     "--metrics", "f1:lang=en", "--run-axis", "--where", "lr >= 1e-4",
                     "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [
        {"run": "lr1e-4-s1", "run_number": 1, "lr": 1e-4, "f1[lang=en]": 0.8},
        {"run": "lr1e-3-s2", "run_number": 2, "lr": 1e-3, "f1[lang=en]": 0.9},
    ]


def test_figure_written_with_highlight_and_counts_on_stderr(runs_dir, tmp_path):
    out = tmp_path / "pc.png"
    result = invoke(["parcoords", "--runs", str(runs_dir), "--params", "lr,seed",
                     "--metrics", "f1:lang=*", "--highlight", "best:f1:lang=en",
                     "-o", str(out)])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "xp: 1 of 3 runs have no value for f1 lang=de (drawn in the missing band)",
        "xp: highlight best:f1:lang=en: lr1e-3-s2",
        f"wrote {out}",
    ]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_svg_bytes_are_deterministic(runs_dir, tmp_path):
    paths = [tmp_path / "a.svg", tmp_path / "b.svg"]
    for path in paths:
        result = invoke(["parcoords", "--runs", str(runs_dir), "--params", "lr,seed",
                         "--metrics", "f1:lang=*", "--color", "seed", "--invert", "f1",
                         "--log", "f1:lang=en", "--linear", "lr", "--highlight", "lr1e-5-s0",
                         "-o", str(path)])
        assert result.exit_code == 0, result.stderr
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert b"<svg" in paths[0].read_bytes()[:500]


def test_figure_and_explicit_format_give_both(runs_dir, tmp_path):
    out = tmp_path / "pc.pdf"
    result = invoke(["parcoords", "--runs", str(runs_dir), "--params", "lr,seed",
                     "--metrics", "f1:lang=*", "-o", str(out), "--format", "csv", "-q"])
    assert result.exit_code == 0
    assert result.stdout == EXPECTED_CSV
    assert result.stderr == f"wrote {out}\n"
    assert out.read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--params", "lr,sed", "--metrics", "f1:lang=*"], "unknown param 'sed'"),
        (["--params", "lr", "--metrics", "f1:lang=*", "-o", "x.gif"], "suffix"),
        (["--params", "lr", "--metrics", "f1:lang=*", "--invert", "loss"],
         "--invert: unknown axis 'loss'"),
        (["--params", "lr"], "at least 2 axes"),
        (["--params", "lr", "--metrics", "f1:lang=*", "--where", "lr >"], "--where"),
        (["--params", "lr", "--metrics", "f1:lang=*", "--highlight", "nope"],
         "unknown run 'nope'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(runs_dir, args, message):
    result = CliRunner().invoke(cli, ["parcoords", "--runs", str(runs_dir), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_has_examples():
    result = invoke(["parcoords", "--help"])
    assert result.exit_code == 0
    assert "xp parcoords --runs sample_runs" in result.stdout
    assert "--highlight" in result.stdout and "--format" in result.stdout


def test_views_1_and_5_on_sample_runs(tmp_path):
    out = tmp_path / "v1.svg"
    result = invoke(["parcoords", "--runs", str(SAMPLE_RUNS), "--params", "lr,seed",
                     "--metrics", "f1:lang=*", "--highlight", "best:f1:lang=en",
                     "-o", str(out)])
    assert result.exit_code == 0
    assert "xp: highlight best:f1:lang=en: " in result.stderr
    assert out.stat().st_size > 0
    result = invoke(["parcoords", "--runs", str(SAMPLE_RUNS), "--params", "lr",
                     "--metrics", "f1:lang=en,lms_score,f1:lang=de", "--run-axis",
                     "--format", "csv"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "run,run_number,lr,f1[lang=en],lms_score,f1[lang=de]"
    assert len(lines) == 241

"""One meaning per option across commands, and usage errors that carry the hint."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from xpcli.cli import COMMANDS, cli
from xpcli.commands._common import XpCommand

# Same name, deliberately different meaning: select --best SPEC picks a run, forgetting
# --best max|min says which way is better; curves highlights one run (one bold line).
KNOWN_DIFFERENCES = {"--best", "--highlight"}


def _commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(cli)
    found: list[tuple[str, click.Command]] = []
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            found += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
        else:
            found.append((name, command))
    return found


def test_every_command_refuses_repeated_single_values() -> None:
    assert all(isinstance(command, XpCommand) for _, command in _commands())


def test_same_named_options_take_values_the_same_way() -> None:
    shapes: dict[str, dict[tuple, list[str]]] = {}
    for name, command in _commands():
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            long = max(param.opts, key=len)
            shape = (param.multiple, param.is_flag, type(param.type).__name__,
                     tuple(sorted(o for o in param.opts if o != long)))
            shapes.setdefault(long, {}).setdefault(shape, []).append(name)
    differing = {k: v for k, v in shapes.items() if len(v) > 1 and k not in KNOWN_DIFFERENCES}
    assert differing == {}
    # The shared list options are repeatable and comma-splittable, with their short form.
    for option, short in (("--by", "-b"), ("--metrics", "-m"), ("--params", "-p")):
        ((multiple, _, _, shorts),) = shapes[option]
        assert multiple and shorts == (short,), option


def _invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args))


def _csv(result: click.testing.Result) -> list[dict[str, str]]:
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


@pytest.mark.parametrize("command", [["aggregate", "f1:lang=en"], ["forgetting", "f1:lang=en"]])
def test_by_repeated_is_by_comma_separated(sample_runs: Path, command: list[str]) -> None:
    base = [*command, "--runs", str(sample_runs), "--format", "csv", "-q"]
    repeated = _csv(_invoke(*base, "--by", "lr", "--by", "seed"))
    commas = _csv(_invoke(*base, "--by", "lr,seed"))
    assert repeated == commas
    assert {"lr", "seed"} <= set(repeated[0])
    # grouped by both keys, not by the last --by only: more groups than by seed alone
    pairs = {(row["lr"], row["seed"]) for row in repeated}
    only_seed = _csv(_invoke(*base, "--by", "seed"))
    assert len(pairs) > len({row["seed"] for row in only_seed})


@pytest.mark.parametrize("args, option", [
    (["select", "--runs", "A", "--runs", "B"], "--runs"),
    (["select", "--best", "f1:lang=en", "--best", "f1:lang=de"], "--best"),
    (["group", "--format", "csv", "--format", "json"], "--format"),
    (["forgetting", "f1:lang=*", "--run", "a", "--run", "b"], "--run"),
])
def test_repeated_single_value_option_is_a_usage_error(args: list[str], option: str) -> None:
    result = _invoke(*args)
    assert result.exit_code == 2
    assert f"Error: option {option} given more than once; it takes one value" in result.stderr


def test_parcoords_takes_m_and_p_like_select(sample_runs: Path) -> None:
    short = _csv(_invoke("parcoords", "--runs", str(sample_runs), "-p", "lr", "-p", "seed",
                         "-m", "f1:lang=en", "--format", "csv", "-q"))
    long = _csv(_invoke("parcoords", "--runs", str(sample_runs), "--params", "lr,seed",
                        "--metrics", "f1:lang=en", "--format", "csv", "-q"))
    assert short == long
    assert list(short[0]) == ["run", "lr", "seed", "f1[lang=en]"]


@pytest.mark.parametrize("command", [
    ["curves", "f1:lang=en"],
    ["aggregate", "f1:lang=en"],
    ["forgetting", "f1:lang=en", "--run", "lr1e-4-s00"],
    ["parcoords", "-p", "lr", "-m", "f1:lang=en"],
    ["scatter", "lr", "f1:lang=en"],
])
def test_output_and_explicit_format_give_figure_and_table(sample_runs: Path, tmp_path: Path,
                                                          command: list[str]) -> None:
    figure = tmp_path / "figure.svg"
    base = [*command, "--runs", str(sample_runs), "-q", "-o", str(figure)]
    only_figure = _invoke(*base)
    assert only_figure.exit_code == 0, only_figure.stderr
    assert figure.exists() and only_figure.stdout == ""
    figure.unlink()
    both = _invoke(*base, "--format", "csv")
    assert both.exit_code == 0, both.stderr
    assert figure.exists()
    assert len(_csv(both)) > 0


def test_import_accepts_the_documented_alias(tmp_path: Path) -> None:
    result = _invoke("import", "tb", str(tmp_path / "nothing"), "--into", str(tmp_path))
    assert result.exit_code != 0
    assert "Invalid value" not in result.stderr
    assert "tensorboard" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["select", "-p", "lrr"], "Error: --params: unknown param 'lrr'; did you mean 'lr'?\n"),
    (["group", "--by", "lrr"], "Error: --by: unknown param 'lrr'; did you mean 'lr'?\n"),
    (["curves", "f1:lang=en", "--color", "lrr"],
     "Error: --color: unknown param or meta column 'lrr'; did you mean 'lr'?\n"),
    (["parcoords", "--color", "lrr"],
     "Error: --color lrr: not an axis, a param or a metric; did you mean 'lr'?\n"),
    (["scatter", "lrr", "f1:lang=en"],
     "Error: X lrr: neither a param nor a metric; did you mean 'lr'?\n"),
    (["select", "--where", "status == finished"],
     "Error: --where \"status == finished\": unknown name 'finished' at column 11; to compare "
     "with the text, quote it: status == \"finished\"\n"),
    (["select", "--where", "f1[lang=de] < 0.7"],
     "Error: --where \"f1[lang=de] < 0.7\": unexpected character '[' at column 3; put a metric "
     "column or spec in backticks: `f1[lang=de]`\n"),
])
def test_unknown_names_get_the_hint(sample_runs: Path, args: list[str], message: str) -> None:
    result = _invoke(*args, "--runs", str(sample_runs))
    assert result.exit_code == 2
    assert result.stderr == message


@pytest.mark.parametrize("args, last_line", [
    (["selectt"], "Error: no such command 'selectt'; did you mean 'select'?"),
    (["nothing-like-it"], "Error: no such command 'nothing-like-it'; 'xp --help' lists the "
                          "commands"),
    (["select", "--format", "xlsx"],
     "Error: Invalid value for '--format': 'xlsx' is not one of 'auto', 'table', 'csv', 'tsv', "
     "'json', 'jsonl', 'markdown', 'parquet'; for xlsx use 'csv'"),
    (["select", "--format", "jsn"],
     "Error: Invalid value for '--format': 'jsn' is not one of 'auto', 'table', 'csv', 'tsv', "
     "'json', 'jsonl', 'markdown', 'parquet'; did you mean 'json'?"),
])
def test_click_usage_errors_end_with_one_line_hint(args: list[str], last_line: str) -> None:
    result = _invoke(*args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == last_line

"""The series model on logs shaped like the real ones that broke it (tests/series_cases.py).

Every expected number is worked out here from the fixture's own data, by hand or with
numpy, never taken from xp's output.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from matplotlib.collections import PathCollection
from series_cases import (
    DUPS,
    NOKEY_STEPS,
    NOKEY_TRAIN,
    RESETS,
    SINGLE,
    STEP0,
    write_dups,
    write_nokey,
    write_resets,
    write_single,
    write_step0,
)

from xpcli.analysis import X_CHOICES
from xpcli.analysis.series_model import (
    POSITION,
    ROW,
    AxisChoice,
    Notes,
    align,
    choose_axes,
    in_logging_order,
    series_checks,
)
from xpcli.cli import COMMANDS, cli


def xp(*args: str):
    return CliRunner().invoke(cli, list(args), env={"XP_FORCE_TTY": "0"},
                              catch_exceptions=False)


def rows(result) -> list[dict[str, str]]:
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def logged(points: list[tuple[float, float]]) -> np.ndarray:
    """Values in logging order: every point has a time, so by time."""
    return np.array([v for _, v in sorted(points)])


# -- all points at step 0, the order only in the timestamps (an MLflow store) -----------


@pytest.fixture
def step0(tmp_path: Path) -> str:
    return str(write_step0(tmp_path / "runs"))


def test_step0_reducers_read_every_point_in_time_order(step0: str) -> None:
    got = {r["run"]: r for r in rows(xp("select", "--runs", step0, "-m",
                                        "acc@first,acc@max,acc@mean,acc,acc@median,acc@min",
                                        "--format", "csv"))}
    for run, (_, points) in STEP0.items():
        values = logged(points)
        expected = {"acc@first": values[0], "acc@max": values.max(), "acc@mean": values.mean(),
                    "acc": values[-1], "acc@median": np.median(values),
                    "acc@min": values.min()}
        for label, value in expected.items():
            assert float(got[run][label]) == pytest.approx(value), (run, label)
    # By hand for m1 (its file lists t=180 before t=120): 0.9, 0.85, 0.7, 0.55, 0.45.
    assert (got["m1"]["acc@first"], got["m1"]["acc"], got["m1"]["acc@median"]) == (
        "0.9", "0.45", "0.7")


def test_step0_group_max_is_over_every_point(step0: str) -> None:
    got = rows(xp("group", "--runs", step0, "--by", "lr", "-m", "acc@max", "--format", "csv"))
    for row in got:
        maxima = [logged(points).max() for lr, points in STEP0.values()
                  if lr == float(row["lr"])]
        assert int(row["n"]) == len(maxima)
        assert float(row["median(acc@max)"]) == pytest.approx(np.median(maxima))
        assert float(row["min(acc@max)"]) == pytest.approx(min(maxima))
        assert float(row["max(acc@max)"]) == pytest.approx(max(maxima))
    assert [r["lr"] for r in got] == ["0.01", "0.1"]


def test_step0_forgetting_shows_the_drop_on_the_logging_order(step0: str) -> None:
    result = xp("forgetting", "acc", "--runs", step0, "--format", "csv")
    assert "xp: x: order for acc (no epochs; step is 0 for every point)" in result.stderr
    got = {r["run"]: r for r in rows(result)}
    for run, (_, points) in STEP0.items():
        values = logged(points)
        peak = int(np.argmax(values))
        assert float(got[run]["peak"]) == values[peak]
        assert float(got[run]["peak_order"]) == peak
        assert float(got[run]["final"]) == values[-1]
        assert float(got[run]["drop"]) == pytest.approx(values[peak] - values[-1])
        assert int(got[run]["points"]) == len(values)
        after = np.arange(len(values))[peak + 1:]
        if len(after) >= 2:
            slope = np.polyfit(after, values[peak + 1:], 1)[0]
            assert float(got[run]["slope"]) == pytest.approx(slope)
    # m1 lost half its accuracy: 0.9 at its first point, 0.45 at its last.
    assert (got["m1"]["rel_drop"], got["m1"]["status"]) == ("0.5", "past_peak")
    assert got["m2"]["status"] == "still_learning"


def test_step0_x_time_is_seconds_since_the_runs_first_point(step0: str) -> None:
    points = STEP0["m1"][1]
    got = rows(xp("forgetting", "acc", "--runs", step0, "--run", "m1", "--x", "time",
                  "--format", "csv"))[0]
    offsets, values = zip(*sorted(points))  # the run's first point is acc's, at 0 s
    assert (float(got["peak"]), float(got["peak_time"])) == (0.9, 0.0)
    assert float(got["since_peak"]) == offsets[-1] - offsets[0]
    assert float(got["slope"]) == pytest.approx(np.polyfit(offsets[1:], values[1:], 1)[0])
    assert float(got["auc"]) == pytest.approx(np.trapezoid(values, offsets) / offsets[-1])
    curve = rows(xp("curves", "acc", "--runs", step0, "--where", "run == 'm1'", "--x", "time",
                    "--format", "csv"))
    assert [(float(r["time"]), float(r["value"])) for r in curve] == sorted(points)
    # at=N on the order view: the third point logged.
    got = rows(xp("select", "--runs", step0, "-m", "acc@at=2", "--format", "csv"))
    assert {r["run"]: float(r["acc@at=2"]) for r in got} == {
        run: logged(points)[2] for run, (_, points) in STEP0.items()}


def test_columns_on_different_axes_share_one_table(step0: str) -> None:
    result = xp("curves", "acc,loss", "--runs", step0, "--where", "run == 'm1'",
                "--format", "csv")
    assert ("xp: x: order for acc (no epochs; step is 0 for every point); step for loss "
            "(no epochs)") in result.stderr
    got = [(r["metric"], float(r["x"]), r["x_axis"]) for r in rows(result)]
    values = [float(r["value"]) for r in rows(result)]
    assert got == [("acc", float(i), "order") for i in range(5)] + [
        ("loss", float(s), "step") for s in range(3)]
    assert values == pytest.approx([*logged(STEP0["m1"][1]), *(1.0 - 0.1 * s for s in range(3))])
    result = xp("aggregate", "acc,loss", "--runs", step0, "--format", "csv")
    assert "x: order for acc; step for loss, exact alignment" in result.stderr
    table = rows(result)
    assert table[0].keys() >= {"metric", "x_axis", "x", "center"}
    first = [logged(points)[0] for _, points in STEP0.values()]
    assert float(table[0]["center"]) == pytest.approx(np.median(first))


# -- an epoch counter that resets (a resumed Hugging Face run) --------------------------


@pytest.fixture
def resets(tmp_path: Path) -> str:
    return str(write_resets(tmp_path / "runs"))


def test_resets_last_is_the_last_logged(resets: str) -> None:
    got = {r["run"]: r for r in rows(xp("select", "--runs", resets, "-m",
                                        "eval_wer,eval_wer@min,eval_wer@at=step:100000",
                                        "--format", "csv"))}
    # Logged in step (and time) order; the last one is at step 100,000 (epoch 4.01), not
    # the one at the largest epoch (5.06, step 52,000).
    assert float(got["hf"]["eval_wer"]) == RESETS["hf"][-1][2] == 0.22
    assert float(got["hf2"]["eval_wer"]) == RESETS["hf2"][-1][2]
    assert float(got["hf"]["eval_wer@min"]) == min(w for _, _, w in RESETS["hf"])
    assert float(got["hf"]["eval_wer@at=step:100000"]) == 0.22
    assert got["hf2"]["eval_wer@at=step:100000"] == ""


def test_resets_auto_x_falls_back_to_the_step_and_says_so(resets: str) -> None:
    result = xp("curves", "eval_wer", "--runs", resets, "--format", "csv")
    assert "xp: x: step for eval_wer (epoch goes backwards in run hf)" in result.stderr
    got = rows(result)
    assert [(r["run"], int(r["step"]), float(r["value"])) for r in got] == [
        (run, step, wer) for run in ("hf", "hf2") for step, _, wer in RESETS[run]]
    # Asked for epochs, the warning names the run and the series and what was done.
    result = xp("curves", "eval_wer", "--runs", resets, "--x", "epoch", "--format", "csv")
    assert result.stderr.splitlines()[0] == (
        "xp: warning: run hf, eval_wer: epoch goes backwards (5.06, then 2.4); curves drew "
        "the last logged value at each epoch")
    hf = [(float(r["epoch"]), float(r["value"])) for r in rows(result) if r["run"] == "hf"]
    assert hf == sorted((e, w) for _, e, w in RESETS["hf"])  # no epoch is logged twice
    # The default is epoch where it works: no line about x.
    result = xp("curves", "eval_wer", "--runs", resets, "--where", "run == 'hf2'",
                "--format", "csv")
    assert result.stderr == "" and rows(result)[0].keys() >= {"epoch"}


# -- points without the context key -----------------------------------------------------


@pytest.fixture
def nokey(tmp_path: Path) -> str:
    return str(write_nokey(tmp_path / "runs"))


def test_metrics_shows_points_without_a_key(nokey: str) -> None:
    (row,) = rows(xp("metrics", "--runs", nokey, "--format", "csv"))
    total = NOKEY_STEPS + len(NOKEY_TRAIN)
    assert row["context"] == f"split=train|(none) ({NOKEY_STEPS} of {total} points have no split)"
    assert int(row["points"]) == total


def test_a_spec_matching_a_minority_warns(nokey: str) -> None:
    result = xp("select", "--runs", nokey, "-m", "loss:split=train@mean,loss:split=train",
                "--format", "csv")
    total = NOKEY_STEPS + len(NOKEY_TRAIN)
    assert result.stderr == (
        f"xp: warning: loss:split=train selects {len(NOKEY_TRAIN)} of {total} points of loss; "
        f"{NOKEY_STEPS} have no split — use loss:split= for those\n")
    (row,) = rows(result)
    assert float(row["loss[split=train]@mean"]) == pytest.approx(
        np.mean([v for _, v in NOKEY_TRAIN]))
    # The default table has both columns: nothing is hidden, nothing to say.
    result = xp("select", "--runs", nokey, "--format", "csv")
    assert result.stderr == "" and rows(result)[0].keys() >= {"loss[split=]",
                                                              "loss[split=train]"}
    # loss:split= names the others, without a warning.
    result = xp("select", "--runs", nokey, "-m", "loss:split=@mean", "--format", "csv")
    assert result.stderr == ""
    (row,) = rows(result)
    assert float(row["loss[split=]@mean"]) == pytest.approx(
        np.mean([2.0 - 0.03 * s for s in range(1, NOKEY_STEPS + 1)]))
    # The same warning from the other commands that take specs.
    for args in (("curves", "loss:split=train"), ("forgetting", "loss:split=train"),
                 ("parcoords", "--params", "lr", "--metrics", "loss:split=train")):
        result = xp(*args, "--runs", nokey, "--format", "csv")
        assert result.exit_code == 0, (args, result.stderr)
        assert "loss:split=train selects 3 of 43 points of loss" in result.stderr, args


# -- single-point series in figures -------------------------------------------------------


def _single_figure(tmp_path: Path):
    from xpcli.analysis.series import load_series
    from xpcli.dataset import load
    from xpcli.plots.series import curves_figure

    data = load_series(load(write_single(tmp_path / "runs")), "acc,test_acc")
    return curves_figure(data.series, data.x, data.keys)


def test_a_single_point_series_is_drawn_and_sets_only_its_own_axes(tmp_path: Path) -> None:
    fig = _single_figure(tmp_path)
    acc, test = [ax for ax in fig.axes if ax.get_title()]
    assert (acc.get_title(), test.get_title()) == ("acc", "test_acc")
    # test_acc: one point per run, drawn as markers at (epoch 20, value).
    (dots,) = [c for c in test.collections if isinstance(c, PathCollection)]
    expected = sorted((20.0, t) for _, t in SINGLE.values())
    assert sorted(map(tuple, dots.get_offsets().tolist())) == expected
    low, high = test.get_ylim()
    values = [t for _, t in SINGLE.values()]
    assert low < min(values) and max(values) < high
    assert high - low < 2 * (max(values) - min(values))  # scaled to the points it holds
    # acc's panel is scaled from acc (its lines, no markers: 20 points each).
    assert not [c for c in acc.collections if isinstance(c, PathCollection)]
    acc_values = [v for values, _ in SINGLE.values() for v in values]
    low, high = acc.get_ylim()
    assert low < min(acc_values) and max(acc_values) < high
    assert high - low < 1.2 * (max(acc_values) - min(acc_values))


def test_a_series_that_is_not_drawn_does_not_set_the_axes() -> None:
    from xpcli.plots.series import curves_figure

    frame = pl.DataFrame({
        "run": ["a"] * 3 + ["b"] * 2,
        "metric": ["f1"] * 5,
        "epoch": [1.0, 2.0, 3.0, 50.0, 60.0],
        "value": [0.5, 0.6, 0.7, float("nan"), float("inf")],
    })
    fig = curves_figure(frame, "epoch", ["metric"])
    (ax,) = [a for a in fig.axes if a.get_ylabel() == "f1"]
    xlow, xhigh = ax.get_xlim()
    ylow, yhigh = ax.get_ylim()
    assert 0 < xlow < 1 and 3 < xhigh < 4  # run b (no finite value) is not drawn
    assert 0.4 < ylow < 0.5 and 0.7 < yhigh < 0.8


def test_short_series_get_markers_in_aggregate_and_forgetting_figures() -> None:
    from matplotlib.lines import Line2D

    from xpcli.analysis.forgetting import curve_stats, rank_contexts
    from xpcli.plots.forgetting import run_figure
    from xpcli.plots.series import aggregate_figure

    table = pl.DataFrame({"metric": ["f1"], "epoch": [3.0], "center": [0.5], "low": [0.4],
                          "high": [0.6], "n": [2]})
    fig = aggregate_figure(table, "epoch", ["metric"])
    (ax,) = [a for a in fig.axes if a.get_ylabel() == "f1"]
    (line,) = [a for a in ax.lines if isinstance(a, Line2D)]
    assert line.get_marker() == "o" and list(line.get_xydata()[0]) == [3.0, 0.5]
    low, high = ax.get_ylim()
    assert low < 0.4 and 0.6 < high  # the band, drawn as a bar
    curves = pl.DataFrame({"run": ["r"] * 4, "context": ["a", "b", "b", "b"],
                           "epoch": [1.0, 1.0, 2.0, 3.0], "value": [0.3, 0.5, 0.6, 0.4]})
    fig = run_figure(curves, rank_contexts(curve_stats(curves)))
    (ax,) = fig.axes
    markers = {line.get_label().split(":")[0]: line.get_marker() for line in ax.lines
               if not line.get_label().startswith("_")}
    assert markers["a"] == "o" and markers["b"] in (None, "None", "")


# -- alignment: how many points one value per x discarded ---------------------------------


def test_alignment_says_how_many_points_it_discarded_and_where(tmp_path: Path) -> None:
    runs = str(write_dups(tmp_path / "runs"))
    result = xp("curves", "loss", "--runs", runs, "--format", "csv")
    dropped = {run: len(points) - len({step for step, _, _ in points})
               for run, points in DUPS.items()}
    assert dropped == {"d1": 5, "d2": 3}
    assert result.stderr.splitlines() == [
        "xp: x: step for loss (no epochs)",
        "xp: warning: run d1, loss: step repeats (5 points at a step logged before); curves "
        "drew the last logged value at each step (5 points discarded)",
        "xp: warning: run d2, loss: step repeats (3 points at a step logged before); curves "
        "drew the last logged value at each step (3 points discarded)",
        "xp: warning: one value per (run, series, x), the last logged: 8 points discarded in "
        "2 series of 2 runs",
    ]
    # The value kept at each step is the last logged there (rank 1 where both logged).
    kept = {(run, step): value for run, points in DUPS.items() for step, _, value in points}
    # (CSV writes 15 significant digits: 2.8099999999999996 reads 2.81.)
    got = [(r["run"], int(r["step"]), float(r["value"])) for r in rows(result)]
    assert [g[:2] for g in got] == [key for key, _ in sorted(kept.items())]
    assert [g[2] for g in got] == pytest.approx(
        [value for _, value in sorted(kept.items())], rel=1e-14)
    # The aggregate tells the same; select reads every point (no alignment, no warning).
    result = xp("aggregate", "loss", "--runs", runs, "--format", "json")
    assert "aggregate used the last logged value at each step (5 points discarded)" in \
        result.stderr
    first = json.loads(result.stdout)[0]
    assert first["center"] == pytest.approx(np.median([kept[("d1", 0)], kept[("d2", 0)]]))
    result = xp("select", "--runs", runs, "-m", "loss@mean", "--format", "csv")
    assert result.stderr == ""
    assert {r["run"]: float(r["loss@mean"]) for r in rows(result)} == pytest.approx(
        {run: np.mean([v for _, _, v in points]) for run, points in DUPS.items()})


# -- one --x for every command --------------------------------------------------------------


def test_every_command_with_an_x_takes_the_same_choices() -> None:
    import importlib

    import click

    with_x = {}
    for name, target in COMMANDS.items():
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        for param in command.params:
            if "--x" in getattr(param, "opts", ()):
                assert isinstance(param.type, click.Choice), name
                with_x[name] = (tuple(param.type.choices), param.default, param.help)
    assert set(with_x) == {"select", "group", "aggregate", "curves", "selection", "parcoords",
                           "forgetting", "compare", "importance", "scatter", "diff"}
    assert {choices for choices, _, _ in with_x.values()} == {
        ("auto", "epoch", "step", "time", "order")} == {X_CHOICES}
    assert {default for _, default, _ in with_x.values()} == {"auto"}
    assert len({text for _, _, text in with_x.values()}) == 1  # one definition


# -- the pieces, on hand-made frames --------------------------------------------------------


def test_logging_order_sorts_by_time_only_when_every_point_has_one() -> None:
    frame = pl.DataFrame({
        "run": ["a", "a", "a", "b", "b", "b"],
        "time": [3.0, 1.0, 2.0, 5.0, None, 1.0],
        "value": [0.3, 0.1, 0.2, 0.5, 0.0, 0.1],
    }).with_row_index(ROW)
    ordered = in_logging_order(frame, ["run"])
    # a: every point has a time -> 0.1, 0.2, 0.3; b: one lacks it -> read order.
    assert ordered["value"].to_list() == [0.1, 0.2, 0.3, 0.5, 0.0, 0.1]
    assert ordered[POSITION].to_list() == [0, 1, 2, 0, 1, 2]


def test_align_keeps_the_last_logged_per_x() -> None:
    frame = pl.DataFrame({
        "run": ["a"] * 5 + ["b"] * 2,
        "x": [1.0, 2.0, 3.0, 2.0, None, 1.0, 2.0],
        "value": [0.1, 0.2, 0.3, 0.25, 0.9, 0.5, 0.6],
    }).with_row_index(ROW)
    ordered = in_logging_order(frame, ["run"])
    kept = align(ordered, ["run"], "x")
    # a: x 2 logged twice, the later 0.25 kept; the point without x left out; sorted by x.
    assert kept.select("run", "x", "value").rows() == [
        ("a", 1.0, 0.1), ("a", 2.0, 0.25), ("a", 3.0, 0.3), ("b", 1.0, 0.5), ("b", 2.0, 0.6)]


def test_auto_prefers_an_increasing_step_to_a_repeated_epoch() -> None:
    # A per-step loss logged with a whole-number epoch (epoch repeats, step increases).
    frame = pl.DataFrame({
        "col": [0] * 4 + [1] * 3 + [2] * 2,
        "run": ["a"] * 9,
        "epoch": [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 2.0, 0.0, 0.0],
        "step": [1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0, None, None],
        "time": [None] * 9,
    }).with_row_index(ROW)
    ordered = in_logging_order(frame, ["col", "run"])
    choices = choose_axes(series_checks(ordered, ["col", "run"], ["epoch", "step"]), "col")
    assert choices == {
        0: AxisChoice("step", "epoch repeats in run a"),
        1: AxisChoice("epoch", ""),  # step repeats too: the epoch (it does not go back)
        2: AxisChoice("order", "epoch is 0 for every point; no steps"),
    }


def test_notes_cap_the_series_lines_and_total_the_discards() -> None:
    notes = Notes()
    for i in range(12):
        notes.problem(f"r{i:02d}", "loss", "step repeats (1 point at a step logged before)",
                      "curves drew the last logged value at each step", 1)
    lines = notes.lines(limit=10)
    assert len(lines) == 12
    assert lines[0].startswith("warning: run r00, loss: step repeats")
    assert lines[10] == "warning: 2 more series whose x goes backwards or repeats"
    assert lines[11] == ("warning: one value per (run, series, x), the last logged: 12 points "
                         "discarded in 12 series of 12 runs")


# -- series read in read order against the general path ----------------------------------


def _read_order_points(case: str) -> pl.DataFrame:
    """f1 on two languages and loss without a context, 6 runs, in read order; ``case``
    spoils one thing the read-order path relies on."""
    rows = []
    for r in range(6):
        clock = 100.0 * r
        for epoch in range(1, 5):
            for name, lang in (("f1", "de"), ("f1", "en"), ("loss", None)):
                clock += 1.0
                rows.append([f"r{r}", name, lang, epoch * 10, float(epoch), clock,
                             float(r + epoch / 10)])
    if case == "time back":  # r1's f1:lang=en at epoch 4 logged before its epoch 3
        rows[12 + 9 + 1][5] = rows[12 + 6 + 1][5] - 0.5
    elif case == "split run":  # r1's rows in two places of the scan
        rows = rows[12:18] + rows[:12] + rows[18:]
    elif case == "missing epoch":  # r0's loss at epoch 2
        rows[3 + 2][4] = None
    elif case == "repeated epoch":  # r2's f1:lang=en at epoch 4 says epoch 1
        rows[24 + 9 + 1][4] = 1.0
    elif case == "no time":
        for row in rows[:12]:
            row[5] = None
    return pl.DataFrame(rows, orient="row", schema={
        "run": pl.String, "name": pl.String, "lang": pl.String, "step": pl.Int64,
        "epoch": pl.Float64, "time": pl.Float64, "value": pl.Float64})


#: Two columns that select the same points (loss has no lang).
OVERLAP = "f1:lang=en,loss,loss:lang="


@pytest.mark.parametrize("case", ["clean", "time back", "split run", "missing epoch",
                                  "repeated epoch", "no time"])
@pytest.mark.parametrize("specs", ["f1:lang=*,loss", "f1:lang=en,loss,loss:lang=",
                                   "f1:lang=en,loss:lang="])
@pytest.mark.parametrize("x", ["auto", "epoch", "step"])
def test_read_order_path_gives_the_general_answer(case: str, specs: str, x: str) -> None:
    from polars.testing import assert_frame_equal

    from xpcli.analysis.series import _extract_general, series_in_read_order, series_keys
    from xpcli.spec.metric import expand, parse_metric_specs

    points = _read_order_points(case)
    columns = expand(parse_metric_specs(specs), points.select("run", "name", "lang").unique())
    fast_notes, general_notes = Notes(), Notes()
    fast = series_in_read_order(points, columns, x, notes=fast_notes)  # type: ignore[arg-type]
    general = _extract_general(points, columns, x, None, general_notes,  # type: ignore[arg-type]
                               "kept the last")
    # Only the clean points of disjoint columns with a rising x take the read-order path.
    taken = case in ("clean", "no time") and specs != OVERLAP or \
        (case in ("missing epoch", "repeated epoch") and x == "step"
         and specs != OVERLAP)
    assert (fast is not None) == taken
    if fast is not None:
        assert_frame_equal(fast.sorted(series_keys(columns)), general)
        assert fast.runs.to_list() == sorted(general.get_column("run").unique().to_list())
        assert fast_notes.lines() == general_notes.lines() == []
        assert fast_notes.axes == general_notes.axes

"""The HTML views in a real headless Chromium, checked through the page itself.

Each test writes a view with the CLI, opens it in Chromium (Debian's chromium and
chromium-driver; skipped with the reason where they are missing) and checks what a
person would: the lines drawn, the count a brush keeps (against Polars), the run a hover
names (a real mouse move), the request log (the file itself and nothing else), and a
run id holding markup shown as text. Every view leaves a screenshot in
build/screenshots/ for a person to look at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from browser_helpers import Browser, why_no_browser
from click.testing import CliRunner
from conftest import ROOT, T0

from xpcli import load
from xpcli.cli import cli

pytestmark = pytest.mark.slow
SCREENSHOTS = ROOT / "build" / "screenshots"
HOSTILE = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


BROWSER_INTERNAL = ("data:", "chrome://", "chrome-untrusted://", "devtools://")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = why_no_browser()
    if reason:
        pytest.skip(reason)
    opened = Browser()
    try:
        yield opened
    finally:
        opened.close()


def _xp(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr


def _open(browser: Browser, path: Path, shot: str) -> None:
    browser.load(path)
    assert browser.console_errors() == []
    requests = browser.requests()
    # The page itself is the one request: no script, style, font, image or beacon.
    # Chromium's own pages (chrome://resources/... for a native tooltip, under load) are
    # the browser's, read from inside it, not the page's and not the network's.
    made = [u for u in requests if not u.startswith(BROWSER_INTERNAL)]
    assert made == [path.resolve().as_uri()]
    assert browser.js("return performance.getEntriesByType('resource').length") == 0
    browser.screenshot(SCREENSHOTS / f"{shot}.png")


def _last(points: pl.LazyFrame, name: str, **context: str) -> pl.DataFrame:
    """Each run's last logged value of one series (logging order: time), in plain Polars."""
    frame = points.filter(pl.col("name") == name)
    for key, value in context.items():
        frame = frame.filter(pl.col(key) == value)
    return (frame.sort("time", maintain_order=True).group_by("run")
            .agg(pl.col("value").last()).collect())


def _hover(browser: Browser, x: float, y: float, view: int = 0) -> None:
    """Move the real mouse to (x, y) in the chart's pixels."""
    from selenium.webdriver.common.action_chains import ActionChains

    charts = browser.driver.find_elements("css selector", ".xp-chart")
    size = charts[view].size
    ActionChains(browser.driver).move_to_element_with_offset(
        charts[view], int(round(x - size["width"] / 2)), int(round(y - size["height"] / 2))
    ).perform()


def _wait(browser: Browser, script: str) -> object:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser.driver, 60, poll_frequency=0.05).until(
        lambda d: d.execute_script(script))


def _highlight_midpoint(browser: Browser, axis: int) -> tuple[float, float]:
    """The pixel halfway between parallel axes ``axis`` and ``axis + 1`` on the first
    highlighted run's line."""
    x, y = browser.js("""
        var v = xp.views[0], j = arguments[0];
        var cs = v.chart.getModel().getComponent('parallel').coordinateSystem;
        var vals = v.spec.values[v.spec.highlights[0].index];
        var a = cs.dataToPoint(vals[j], cs.dimensions[j]);
        var b = cs.dataToPoint(vals[j + 1], cs.dimensions[j + 1]);
        return [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];""", axis)
    return x, y


def _tooltip(browser: Browser, holding: str) -> str:
    """The text of the chart's tooltip once it shows and holds ``holding``."""
    return str(_wait(browser, """
        var tips = Array.from(xp.views[0].chart.getDom().querySelectorAll('div')).filter(
            function (e) { return e.style.display !== 'none' && e.innerText &&
                                  e.innerText.indexOf(arguments[0]) >= 0; });
        return tips.length && tips[0].innerText;""".replace("arguments[0]", json.dumps(holding))))


# -- parallel coordinates ---------------------------------------------------------------

PARCOORDS = ("--params", "lr,seed", "--metrics", "f1:lang=*", "--color", "lr",
             "--highlight", "best:f1:lang=en")


@pytest.fixture(scope="module")
def parcoords_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "parcoords.html"
    _xp("parcoords", "--runs", str(ROOT / "sample_runs"), *PARCOORDS, "-o", str(out), "-q")
    return out


def test_parcoords_draws_every_run_and_brushes_to_the_right_count(
        browser: Browser, parcoords_page: Path) -> None:
    _open(browser, parcoords_page, "parcoords")
    drawn = browser.js("""
        var zr = xp.views[0].chart.getZr();
        return zr.storage.getDisplayList(true).filter(function (e) {
            return e.type === 'polyline' && !e.invisible; }).length;""")
    assert drawn == 240
    assert browser.js("return document.querySelector('.xp-count').textContent") == \
        "all 240 runs kept"

    points = load(ROOT / "sample_runs").points
    en = _last(points, "f1", lang="en").rename({"value": "en"})
    de = _last(points, "f1", lang="de").rename({"value": "de"})
    both = en.join(de, on="run")
    axes = [a["column"] for a in browser.js("return xp.views[0].spec.axes")]
    en_axis, de_axis = axes.index("f1[lang=en]"), axes.index("f1[lang=de]")

    def brush(axis: int, lo: float, hi: float) -> None:
        browser.js("xp.views[0].chart.dispatchAction({type: 'axisAreaSelect', "
                   "parallelAxisIndex: arguments[0], intervals: [[arguments[1], "
                   "arguments[2]]]});", axis, lo, hi)

    brush(en_axis, 0.9, 1.0)
    expected = both.filter(pl.col("en").is_between(0.9, 1.0))
    assert 0 < expected.height < 240
    assert browser.js("return document.querySelector('.xp-count').textContent") == \
        f"{expected.height} of 240 runs kept"
    assert sorted(browser.js("return xp.views[0].keptRuns")) == sorted(expected["run"])
    # A second axis at once: the runs inside both ranges.
    brush(de_axis, 0.7, 0.8)
    expected = both.filter(pl.col("en").is_between(0.9, 1.0) & pl.col("de").is_between(0.7, 0.8))
    assert 0 < expected.height
    assert browser.js("return document.querySelector('.xp-count').textContent") == \
        f"{expected.height} of 240 runs kept"
    table = browser.js("return Array.from(document.querySelectorAll('.xp-table-wrap tbody tr'))"
                       ".map(function (r) { return r.cells[0].textContent; })")
    assert sorted(table) == sorted(expected["run"])
    browser.screenshot(SCREENSHOTS / "parcoords-brushed.png")
    csv = browser.js("return xp.views[0].table.csv()")
    assert csv.splitlines()[0] == "run,lr,seed,f1 lang=de,f1 lang=en,f1 lang=es,f1 lang=nl," \
        "f1 lang=zh"
    assert len(csv.splitlines()) == expected.height + 1


def test_a_brush_leaves_out_runs_without_a_value(browser: Browser, tiny_runs: Path,
                                                 tmp_path: Path) -> None:
    page = tmp_path / "missing.html"
    _xp("parcoords", "--runs", str(tiny_runs), "--params", "lr,seed", "-m", "f1:lang=*",
        "-o", str(page), "-q")
    _open(browser, page, "parcoords-missing")
    spec = browser.js("return xp.views[0].spec")
    de = [a["column"] for a in spec["axes"]].index("f1[lang=de]")
    axis = spec["axes"][de]
    browser.js("xp.views[0].chart.dispatchAction({type: 'axisAreaSelect', "
               "parallelAxisIndex: arguments[0], intervals: [[arguments[1], arguments[2]]]});",
               de, axis["dataMin"], axis["dataMax"])
    german = _last(load(tiny_runs).points, "f1", lang="de")
    assert browser.js("return xp.views[0].keptRuns") == sorted(german["run"]) == ["a"]
    # The band is labelled on the chart, once: only the German axis has a run without.
    labels = browser.js("""
        return xp.views[0].chart.getZr().storage.getDisplayList(true).filter(function (e) {
            return e.style && /[(]missing[)]/.test(e.style.text) && !e.invisible; }).length;""")
    assert labels == 1


def test_a_real_mouse_drag_on_an_axis_brushes(browser: Browser, parcoords_page: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    browser.load(parcoords_page)
    spec = browser.js("return xp.views[0].spec")
    en_axis = [a["column"] for a in spec["axes"]].index("f1[lang=en]")
    top, bottom = browser.js("""
        var c = xp.views[0].chart, cs = c.getModel().getComponent('parallel').coordinateSystem;
        var d = cs.dimensions[arguments[0]];
        return [cs.dataToPoint(0.95, d), cs.dataToPoint(0.85, d)];""", en_axis)
    chart = browser.driver.find_element("css selector", ".xp-chart")
    size = chart.size
    ActionChains(browser.driver).move_to_element_with_offset(
        chart, int(top[0] - size["width"] / 2), int(top[1] - size["height"] / 2)
    ).click_and_hold().move_by_offset(0, int(bottom[1] - top[1]) // 2).move_by_offset(
        0, int(bottom[1] - top[1]) - int(bottom[1] - top[1]) // 2).release().perform()
    kept = _wait(browser, "var k = xp.views[0].keptRuns; return k.length < 240 && k;")
    points = load(ROOT / "sample_runs").points
    en = _last(points, "f1", lang="en")
    # The brush spans the pixels dragged: about 0.85..0.95 (a pixel is ~0.0023 here).
    # (the interval as the chart's axisareaselected event reported it to the page)
    lo, hi = browser.js("return xp.views[0].brushes[arguments[0]][0]", en_axis)
    assert abs(lo - 0.85) < 0.01 and abs(hi - 0.95) < 0.01
    expected = en.filter(pl.col("value").is_between(lo, hi))
    assert sorted(kept) == sorted(expected["run"])
    browser.screenshot(SCREENSHOTS / "parcoords-mouse-brush.png")


def test_hovering_a_line_names_its_run(browser: Browser, parcoords_page: Path) -> None:
    browser.load(parcoords_page)
    points = load(ROOT / "sample_runs").points
    best = _last(points, "f1", lang="en").sort("value", descending=True)["run"][0]
    spec = browser.js("return xp.views[0].spec")
    assert spec["runs"][spec["highlights"][0]["index"]] == best
    # Halfway between two axes along the best run's line (drawn on top of the others).
    _hover(browser, *_highlight_midpoint(browser, 2))
    text = _tooltip(browser, "f1 lang=en")
    assert text.splitlines()[0] == best
    assert "lr: 3e-5" in text and "seed: 5" in text
    browser.screenshot(SCREENSHOTS / "parcoords-hover.png")


def _hostile_runs(folder: Path) -> Path:
    """Two runs, one whose id and a param hold markup and a script."""
    folder.mkdir(parents=True)
    lines = []
    for k, (run, lr) in enumerate([(HOSTILE, 0.1), ("plain", 0.01)]):
        lines.append({"kind": "run", "run": run, "time": T0 + k,
                      "params": {"lr": lr, "note": "</script><b>bold</b>"}, "meta": {}})
        for epoch, value in enumerate([0.6 - k / 10, 0.7 - k / 10], start=1):
            lines.append({"kind": "point", "run": run, "name": "f1", "context": {"lang": "en"},
                          "value": value, "epoch": epoch, "time": T0 + k + epoch})
            lines.append({"kind": "point", "run": run, "name": "f1", "context": {"lang": "de"},
                          "value": value / 2, "epoch": epoch, "time": T0 + k + epoch})
    (folder / "runs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def test_markup_in_run_ids_and_params_is_shown_as_text(browser: Browser, tmp_path: Path) -> None:
    runs = _hostile_runs(tmp_path / "runs")
    page = tmp_path / "hostile.html"
    _xp("parcoords", "--runs", str(runs), "--params", "lr,note", "-m", "f1:lang=*",
        "--highlight", "best:f1:lang=en", "-o", str(page), "-q")
    text = page.read_text()
    assert HOSTILE not in text and "</script><b>" not in text
    _open(browser, page, "parcoords-hostile")
    assert browser.js("return window.__xss === undefined")
    cells = browser.js("return Array.from(document.querySelectorAll('.xp-table-wrap tbody tr'))"
                       ".map(function (r) { return [r.cells[0].textContent, "
                       "r.cells[2].textContent]; })")
    assert sorted(cells) == sorted([[HOSTILE, "</script><b>bold</b>"],
                                    ["plain", "</script><b>bold</b>"]])
    assert browser.js("return document.querySelectorAll('main b, main img').length") == 0
    assert browser.js("return document.querySelector('.xp-bar + .xp-bar').textContent") \
        .strip().startswith(HOSTILE)
    # The hover card shows it as text too.
    _hover(browser, *_highlight_midpoint(browser, 1))
    tip = _tooltip(browser, "note")
    assert tip.splitlines()[0] == HOSTILE
    assert browser.js("return window.__xss === undefined")

    curves = tmp_path / "hostile-curves.html"
    _xp("curves", "f1:lang=*", "--runs", str(runs), "--color", "note", "-o", str(curves), "-q")
    assert HOSTILE not in curves.read_text()
    _open(browser, curves, "curves-hostile")
    assert browser.js("return window.__xss === undefined")
    assert browser.js("return document.querySelectorAll('main b, main img').length") == 0


# -- lines --------------------------------------------------------------------------------


def test_curves_hover_legend_and_zoom(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "curves.html"
    _xp("curves", "f1:lang=*", "--runs", str(ROOT / "sample_runs"), "--color", "lr",
        "--highlight", "best:f1:lang=en", "-o", str(page), "-q")
    _open(browser, page, "curves")
    spec = browser.js("return xp.views[0].spec")
    runs = {ln["label"] for ln in spec["lines"] if ln["z"] == 2}
    assert len(runs) == 240 and len(spec["panels"]) == 5
    # Lines drawn: the polylines of the chart's "lines" series (runs that look alike share
    # a series) and the unbroken stretches of its line series.
    drawn = browser.js("""var n = 0;
        xp.views[0].chart.getOption().series.forEach(function (s) {
            if (s.type === 'lines') { n += s.data.length; return; }
            if (s.type !== 'line') return;
            var inside = false;
            s.data.forEach(function (d) {
                var on = d[1] !== null; if (on && !inside) n++; inside = on; });
        });
        return n;""")
    assert drawn == 240 * 5 + 5  # every run in every panel, and the highlight in each
    # The highlighted run at epoch 30 on English: a real hover names it.
    best = [ln for ln in spec["lines"] if ln["z"] == 10][0]["label"]
    panel_en = [p["title"] for p in spec["panels"]].index("lang=en")
    en_line = [i for i, ln in enumerate(spec["lines"]) if ln["label"] == best
               and ln["p"] == panel_en and ln["z"] == 10][0]
    # The page unpacked the numbers it carries: the run's logged points, exactly.
    logged = (load(ROOT / "sample_runs").points
              .filter((pl.col("run") == best) & (pl.col("name") == "f1")
                      & (pl.col("lang") == "en")).sort("epoch").collect())
    assert spec["lines"][en_line]["x"] == logged["epoch"].to_list()
    assert spec["lines"][en_line]["y"] == logged["value"].to_list()
    x, y = browser.js("var v = xp.views[0], ln = v.spec.lines[arguments[0]];"
                      "return v.chart.convertToPixel({gridIndex: ln.p}, [ln.x[29], ln.y[29]]);",
                      en_line)
    _hover(browser, x, y)
    assert _wait(browser, "return xp.views[0].hovered") == best
    tip = browser.js("return xp.views[0].tip.textContent")
    assert tip.startswith(best) and "epoch: 30" in tip
    browser.screenshot(SCREENSHOTS / "curves-hover.png")

    # Hide lr=3e-5 (the best run's group) and the highlight, as a click on their legend
    # entries does: a hover there finds another run or nothing, never a hidden one.
    for name in ("lr=3e-5", [ln["name"] for ln in spec["lines"] if ln["z"] == 10][0]):
        browser.js("xp.views[0].chart.dispatchAction({type: 'legendToggleSelect', "
                   "name: arguments[0]})", name)
    browser.js("xp.views[0].hovered = 'pending'")
    _hover(browser, x + 1, y + 1)
    hovered = _wait(browser, "var v = xp.views[0]; return v.hovered !== 'pending' && "
                    "[v.hovered];")[0]
    hidden = {ln["label"] for ln in spec["lines"] if ln["name"] == "lr=3e-5"}
    assert hovered not in hidden
    browser.screenshot(SCREENSHOTS / "curves-legend-hidden.png")

    # Zoom into epochs 10..20 and back: the x values at the first panel's left and right
    # edges (its grid's place in the chart's option, read back through the public API).
    edges = """var c = xp.views[0].chart, g = c.getOption().grid[0], w = c.getWidth();
        var left = parseFloat(g.left) / 100 * w, right = left + parseFloat(g.width) / 100 * w;
        return [c.convertFromPixel({gridIndex: 0}, [left, g.top + 1])[0],
                c.convertFromPixel({gridIndex: 0}, [right, g.top + 1])[0]];"""
    browser.js("xp.views[0].chart.dispatchAction({type: 'dataZoom', startValue: 10, "
               "endValue: 20})")
    assert browser.js(edges) == pytest.approx([10, 20], abs=1e-6)
    browser.driver.find_element("xpath", "//button[text()='Reset zoom']").click()
    extent = browser.js(edges)
    assert extent[0] <= 1 and extent[1] >= 60


def test_aggregate_bands_and_hover(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "aggregate.html"
    _xp("aggregate", "f1:lang=*", "--runs", str(ROOT / "sample_runs"), "--by", "lr",
        "-o", str(page), "-q")
    _open(browser, page, "aggregate")
    spec = browser.js("return xp.views[0].spec")
    assert len(spec["bands"]) == 6 * 5 and len(spec["lines"]) == 6 * 5
    # The median and the band of lr=1e-4 on German at epoch 10, against numpy.
    points = load(ROOT / "sample_runs").points
    runs = load(ROOT / "sample_runs").runs
    de10 = (points.filter((pl.col("name") == "f1") & (pl.col("lang") == "de")
                          & (pl.col("epoch") == 10))
            .join(runs.select("run", "lr"), on="run").filter(pl.col("lr") == 1e-4)
            .collect()["value"].to_numpy())
    name = "lr=1e-4 (40 runs)"
    panel = [p["title"] for p in spec["panels"]].index("lang=de")
    index = [i for i, ln in enumerate(spec["lines"]) if ln["name"] == name and ln["p"] == panel][0]
    line = spec["lines"][index]
    k = line["x"].index(10.0)
    assert line["y"][k] == pytest.approx(float(np.median(de10)), rel=1e-6)
    extra = dict((key, values) for key, values in line["extra"])
    assert extra["low"][k] == pytest.approx(float(de10.min()), rel=1e-6)
    assert extra["high"][k] == pytest.approx(float(de10.max()), rel=1e-6)
    assert extra["n"][k] == 40
    x, y = browser.js("var v = xp.views[0], ln = v.spec.lines[arguments[0]];"
                      "return v.chart.convertToPixel({gridIndex: ln.p}, [ln.x[arguments[1]], "
                      "ln.y[arguments[1]]]);", index, k)
    _hover(browser, x, y)
    assert _wait(browser, "return xp.views[0].hovered") == name
    assert "n: 40" in browser.js("return xp.views[0].tip.textContent")
    browser.screenshot(SCREENSHOTS / "aggregate-hover.png")


@pytest.mark.parametrize("args,shot", [
    (("--run", "best:f1:lang=en"), "forgetting-run"),
    (("--by", "lr"), "forgetting-by-lr"),
])
def test_forgetting_views_load(browser: Browser, tmp_path: Path, args: tuple[str, ...],
                               shot: str) -> None:
    page = tmp_path / f"{shot}.html"
    _xp("forgetting", "f1:lang=*", "--runs", str(ROOT / "sample_runs"), *args, "-o",
        str(page), "-q")
    _open(browser, page, shot)
    spec = browser.js("return xp.views[0].spec")
    assert spec["markers"]  # the peaks
    first = spec["lines"][0]
    mid = len(first["x"]) // 2
    x, y = browser.js("var v = xp.views[0], ln = v.spec.lines[0];"
                      "return v.chart.convertToPixel({gridIndex: ln.p}, [ln.x[arguments[0]], "
                      "ln.y[arguments[0]]]);", mid)
    _hover(browser, x, y)
    assert _wait(browser, "return xp.views[0].hovered")

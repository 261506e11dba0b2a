"""HTML views without a browser: inert JSON, the page's policy, the vendored library's
checksum, the CLI's ``-o FILE.html`` and the numbers a view carries (hand-worked)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xpcli.cli import cli
from xpcli.errors import XpError
from xpcli.html import page
from xpcli.html.pack import unpack

SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
DATA = re.compile(r'<script type="application/json" id="([^"]+)">(.*?)</script>', re.S)


def views_in(text: str) -> list[dict]:
    """The JSON of every view in a page, parsed as the browser's JSON.parse would, the
    packed numbers of a line view put in place of their indices as the page does."""
    specs = [json.loads(body) for _, body in DATA.findall(text)]
    for spec in specs:
        if "packed" in spec:
            arrays = unpack(spec.pop("packed"))
            spec["xs"] = [arrays[i] for i in spec["xs"]]
            cols = spec["lines"]
            column = {name: [int(v) for v in arrays[i]] for name, i in cols["columns"].items()}
            extra = {i: [[k, arrays[a]] for k, a in ex] for i, ex in cols["extra"]}
            spec["lines"] = [
                {**cols["styles"][column["style"][i]], "label": cols["labels"][column["label"][i]],
                 "xi": column["xi"][i], "y": arrays[column["y"][i]],
                 **({"extra": extra[i]} if i in extra else {})}
                for i in range(cols["n"])]
            for band in spec["bands"]:
                for key in ("x", "lo", "hi"):
                    band[key] = arrays[band[key]]
    return specs


@given(st.text())
def test_script_json_is_inert_and_exact(text: str) -> None:
    out = page.script_json({"run": text, "params": [text]})
    assert "<" not in out and ">" not in out and "&" not in out
    assert "\u2028" not in out and "\u2029" not in out
    assert json.loads(out) == {"run": text, "params": [text]}


def test_script_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        page.script_json(float("nan"))


def test_page_policy_allows_only_its_own_scripts() -> None:
    view = page.View("lines", "t", {"title": "</script><script>alert(1)</script>"})
    text = page.render_page("<b>report</b>", [view, page.Text("<i>h</i>", "a & b\n\nc")])
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', text).group(1)
    assert "default-src 'none'" in csp and "unsafe-eval" not in csp
    scripts = SCRIPT.findall(text)
    assert len(scripts) == 3  # ECharts, xp.js, the init call; the data is not a script
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "<title>&lt;b&gt;report&lt;/b&gt;</title>" in text
    assert "<h2>&lt;i&gt;h&lt;/i&gt;</h2>" in text and "<p>a &amp; b</p>" in text
    assert "alert(1)" in text and "<script>alert" not in text
    assert views_in(text)[0]["title"] == "</script><script>alert(1)</script>"
    # Nothing to fetch: no src= or href= in the markup but inline data images.
    markup = SCRIPT.sub("", text)
    assert not re.search(r'\b(src|href)\s*=\s*"(?!data:)', markup)


def test_changed_library_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vendor = tmp_path / "vendor"
    shutil.copytree(page.VENDOR, vendor)
    with open(vendor / "echarts.min.js", "ab") as handle:
        handle.write(b"\n;fetch('https://example.org/')")
    monkeypatch.setattr(page, "VENDOR", vendor)
    page.echarts_js.cache_clear()
    try:
        with pytest.raises(XpError, match="checksum .* not the one shipped"):
            page.echarts_js()
    finally:
        monkeypatch.undo()
        page.echarts_js.cache_clear()
    assert hashlib.sha256(page.echarts_js().encode()).hexdigest() == page.ECHARTS_SHA256


def test_vendored_library_carries_its_licence() -> None:
    assert "Apache License" in (page.VENDOR / "ECHARTS-LICENSE").read_text()
    assert "Apache ECharts" in (page.VENDOR / "ECHARTS-NOTICE").read_text()


def _xp(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_parcoords_html_carries_the_runs_and_their_values(tiny_runs: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "pc.html"
    code, stdout, stderr = _xp("parcoords", "--runs", str(tiny_runs), "--params", "lr,seed",
                               "-m", "f1:lang=en", "--highlight", "best:f1:lang=en",
                               "-o", str(out))
    assert code == 0, stderr
    assert stdout == "" and f"wrote {out}" in stderr
    (spec,) = views_in(out.read_text())
    assert spec["runs"] == ["a", "b"]
    # Hand-worked: a logged f1 en 0.7 then 0.75 (last 0.75); b logged 0.5.
    assert spec["table"]["columns"] == ["run", "lr", "seed", "f1 lang=en"]
    assert spec["table"]["rows"] == [["a", 0.1, 1, 0.75], ["b", 0.01, 2, 0.5]]
    assert [a["type"] for a in spec["axes"]] == ["value", "value", "value"]
    assert spec["highlights"] == [{"index": 0, "color": "#d62728",
                                   "label": "a  (best:f1:lang=en)"}]
    assert spec["order"][-1] == 0  # the highlight is drawn last, on top
    assert spec["params"]["names"] == ["lr", "seed"]


def test_html_is_refused_where_there_is_no_view(tiny_runs: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["scatter", "--runs", str(tiny_runs), "f1:lang=en",
                                      "f1:lang=de", "-o", str(tmp_path / "s.html")])
    assert result.exit_code != 0
    assert ".png, .svg, .pdf" in result.stderr and ".html" not in result.stderr.split("use")[-1]


@pytest.mark.parametrize("args", [
    ["curves", "f1:lang=*", "--color", "lr"],
    ["aggregate", "f1:lang=*", "--by", "lr"],
    ["forgetting", "f1:lang=*", "--run", "best:f1:lang=en"],
    ["forgetting", "f1:lang=*", "--by", "lr"],
])
def test_line_views_are_written(sample_runs: Path, tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "view.html"
    code, _, stderr = _xp(*args, "--runs", str(sample_runs), "-o", str(out), "-q")
    assert code == 0, stderr
    (spec,) = views_in(out.read_text())
    assert spec["lines"] and spec["panels"]
    assert out.stat().st_size < 5_000_000


def test_curves_view_values_are_the_logged_points(tiny_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.html"
    code, _, stderr = _xp("curves", "f1:lang=de", "--runs", str(tiny_runs), "-o", str(out))
    assert code == 0, stderr
    (spec,) = views_in(out.read_text())
    (line,) = spec["lines"]  # only run a logged German F1
    assert (line["label"], spec["xs"][line["xi"]], line["y"]) == ("a", [1.0, 2.0],
                                                                  [0.5, 0.25])


def test_parcoords_of_240_runs_fits_the_budget(sample_runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "pc.html"
    code, _, stderr = _xp("parcoords", "--runs", str(sample_runs), "--params", "lr,seed",
                          "-m", "f1:lang=*", "--color", "lr", "-o", str(out), "-q")
    assert code == 0, stderr
    assert out.stat().st_size <= 5_000_000
    (spec,) = views_in(out.read_text())
    assert len(spec["runs"]) == 240 and len(spec["values"]) == 240
    assert spec["axes"][0]["type"] == "log"  # lr spans two decades, as in the PNG


def test_a_run_without_a_value_sits_in_the_missing_band(tiny_runs: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "pc.html"
    code, _, stderr = _xp("parcoords", "--runs", str(tiny_runs), "--params", "lr",
                          "-m", "f1:lang=*", "-o", str(out))
    assert code == 0, stderr
    (spec,) = views_in(out.read_text())
    de = [a["column"] for a in spec["axes"]].index("f1[lang=de]")
    axis = spec["axes"][de]
    # b logged no German F1: drawn below the axis' values, at its foot (where the page
    # labels it), not on a value.
    assert spec["runs"] == ["a", "b"] and spec["values"][0][de] == 0.25
    assert axis["min"] == spec["values"][1][de] == axis["missingAt"] < axis["dataMin"] <= 0.25
    assert spec["table"]["rows"][1][spec["table"]["columns"].index("f1 lang=de")] is None
    assert spec["notes"] == ["1 of 2 runs have no value for f1 lang=de (drawn at the foot "
                             "of that axis, in the (missing) band)"]


NUMBER = st.one_of(st.none(), st.integers(-10**6, 10**6).map(lambda k: k / 10**4),
                   st.floats(allow_nan=True, allow_infinity=True))


# No deadline: a loaded CI machine is slow, and nothing here is about time.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(NUMBER, max_size=8), max_size=4))
def test_packed_numbers_come_back_to_seven_significant_digits(arrays: list) -> None:
    from xpcli.html.pack import pack, unpack

    back = unpack(pack(arrays))
    assert [len(a) for a in back] == [len(a) for a in arrays]
    for row, got in zip(arrays, back):
        for value, decoded in zip(row, got):
            if value is None or value != value or value in (float("inf"), float("-inf")):
                assert decoded is None
            else:
                # Within half a unit of the 7th significant digit, and no more digits.
                assert decoded == pytest.approx(value, rel=5.000001e-7, abs=0)
                assert float(f"{decoded:.7g}") == decoded


def test_logged_decimals_and_epoch_times_come_back_exactly() -> None:
    from xpcli.html.pack import pack, unpack

    f1 = [0.6791, 0.25, None, 1.0, 0.0001]
    times = [1767254400.123, 1767254460.5]
    packed = pack([f1, times], digits=[7, 15])
    assert packed["d"] == [4, -1]  # four decimals as integers; times as 64-bit floats
    assert unpack(packed) == [f1, times]


def test_a_watched_html_view_is_rewritten_when_the_runs_change(tmp_path: Path) -> None:
    from conftest import T0

    from xpcli import Run, watch

    runs = tmp_path / "runs"
    run = Run(runs, "r", flush_seconds=0, flush_bytes=0, time=T0)
    for epoch, (de, en) in enumerate([(0.5, 0.6), (0.7, 0.8), (0.6, 0.85)], start=1):
        run.track(de, "f1", epoch=epoch, context={"lang": "de"}, time=T0 + epoch)
        run.track(en, "f1", epoch=epoch, context={"lang": "en"}, time=T0 + epoch)
    out = tmp_path / "forgetting.html"
    pages: list[str] = []

    def append(count: int) -> None:
        pages.append(out.read_text())
        if count == 1:
            run.track(0.4, "f1", epoch=4, context={"lang": "de"}, time=T0 + 4)
            run.track(0.9, "f1", epoch=4, context={"lang": "en"}, time=T0 + 4)

    control = watch.Control(refreshes=3, after_refresh=append)
    result = CliRunner().invoke(cli, ["forgetting", "f1:lang=*", "--runs", str(runs), "--run",
                                      "r", "-o", str(out), "--watch=0.01"],
                                obj={"watch_control": control}, catch_exceptions=False)
    run.close()
    assert result.exit_code == 0, result.output
    assert result.stderr == f"writing {out} every 0.01s (Ctrl-C ends)\n"
    # The new epoch is in the second page; the third refresh found nothing new and left
    # the file as it was; no temporary file is left beside it.
    lines = [{ln["label"]: (spec["xs"][ln["xi"]], ln["y"]) for ln in spec["lines"]}
             for (spec,) in map(views_in, pages)]
    assert lines[0]["lang=de"] == ([1.0, 2.0, 3.0], [0.5, 0.7, 0.6])
    assert lines[1]["lang=de"] == ([1.0, 2.0, 3.0, 4.0], [0.5, 0.7, 0.6, 0.4])
    assert pages[1] == pages[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forgetting.html", "runs"]

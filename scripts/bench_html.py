"""Sizes and browser load times of the HTML views at 240, 2,400 and 10,000 runs.

For each runs directory: write the parcoords, curves, aggregate and forgetting views of
the reference story with xp (``-o FILE.html``), then open each in headless Chromium
(Debian's chromium and chromium-driver, as the browser tests do) and read what the page
measured:

- load: navigation start until every view is drawn (``xp.readyMs``), median of 3 loads;
- brush (parcoords): one brush on the English F1 axis, until the kept count and the
  table of kept runs are updated (the page does it in the brush event, synchronously).

Runs directories: ``sample_runs`` (240 runs) and ``DATA/runs-2400``, ``DATA/runs-10000``
(the reference story at those sizes, 2,400 and 10,002 runs, as ``scripts/bench.py``
generates them; made here when missing). Prints a Markdown table (docs/html.md keeps
the last one) with the machine's load average (1 minute) at each view's loads.

Usage: python scripts/bench_html.py [--data bench-data] [--sizes 240,2400,10000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

VIEWS = {
    "parcoords": ["parcoords", "--params", "lr,seed", "-m", "f1:lang=*", "--color", "lr",
                  "--highlight", "best:f1:lang=en"],
    "curves": ["curves", "f1:lang=*", "--color", "lr"],
    "aggregate": ["aggregate", "f1:lang=*", "--by", "lr"],
    "forgetting": ["forgetting", "f1:lang=*", "--by", "lr"],
}
LOADS = 3


def runs_dir(data: Path, size: int) -> Path:
    if size == 240:
        return ROOT / "sample_runs"
    folder = data / f"runs-{size}"
    if not folder.exists():
        from reference_story import LEARNING_RATES, generate

        generate(folder, seeds=max(1, round(size / len(LEARNING_RATES))))
    return folder


def measure(browser: object, page: Path, kind: str) -> dict[str, float]:
    from browser_helpers import Browser

    assert isinstance(browser, Browser)
    loads = []
    for _ in range(LOADS):
        browser.load(page)
        loads.append(float(browser.js("return xp.readyMs")))
    out = {"load_ms": statistics.median(loads), "load_avg": os.getloadavg()[0]}
    if kind == "parcoords":
        out["brush_ms"] = float(browser.js("""
            var v = xp.views[0], t = performance.now();
            var j = v.spec.axes.map(function (a) { return a.column; }).indexOf('f1[lang=en]');
            v.chart.dispatchAction({type: 'axisAreaSelect', parallelAxisIndex: j,
                                    intervals: [[0.9, 1.0]]});
            return performance.now() - t;"""))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="bench-data")
    parser.add_argument("--sizes", default="240,2400,10000")
    args = parser.parse_args()
    from browser_helpers import Browser, why_no_browser

    reason = why_no_browser()
    if reason:
        sys.exit(f"bench_html: {reason}")
    xp = str(Path(sys.executable).parent / "xp")
    rows = []
    browser = Browser()
    try:
        with tempfile.TemporaryDirectory(prefix="xp-bench-html-") as tmp:
            for size in [int(s) for s in args.sizes.split(",")]:
                runs = runs_dir(Path(args.data), size)
                # Parse the JSONL into xp's cache first: the times below are warm reads.
                table = subprocess.run([xp, "runs", "--runs", str(runs), "-q", "--format",
                                        "csv"], check=True, capture_output=True, text=True)
                size = len(table.stdout.splitlines()) - 1  # the runs in it (10,002)
                for kind, command in VIEWS.items():
                    page = Path(tmp) / f"{kind}-{size}.html"
                    start = time.perf_counter()
                    subprocess.run([xp, *command, "--runs", str(runs), "-o", str(page), "-q"],
                                   check=True)
                    write_s = time.perf_counter() - start
                    result = measure(browser, page, kind)
                    rows.append((size, kind, page.stat().st_size / 1e6, write_s, result))
                    print(f"{size} {kind}: {rows[-1][2]:.1f} MB, {result}", file=sys.stderr)
    finally:
        browser.close()
    print("| runs | view | file | xp writes it | browser load | brush | load average |")
    print("|---:|:---|---:|---:|---:|---:|---:|")
    for size, kind, mb, write_s, result in rows:
        brush = f"{result['brush_ms']:.0f} ms" if "brush_ms" in result else ""
        print(f"| {size:,} | {kind} | {mb:.1f} MB | {write_s:.1f} s | "
              f"{result['load_ms'] / 1000:.1f} s | {brush} | {result['load_avg']:.0f} |")


if __name__ == "__main__":
    main()

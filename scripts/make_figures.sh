#!/bin/sh
# Regenerate docs/figures/: the five views of the reference story, drawn from sample_runs/
# by the same commands a user types (README.md and docs/tutorial.md show them), and
# docs/story.html, the same views as one interactive page (xp report docs/story.toml).
# Usage: scripts/make_figures.sh   (or `make figures`; XP=path/to/xp picks another xp)
#
# The PNGs are committed, so they must come out byte-identical on every run: xp saves
# figures without dates or versions, and the palette pass below is deterministic too.
set -eu
cd "$(dirname "$0")/.."
XP=${XP:-.venv/bin/xp}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=docs/figures
mkdir -p "$OUT"

xp() { "$XP" "$@"; }

# View 1: every run across lr, seed and F1 per language; the best on English bold and red.
xp parcoords --runs sample_runs --params lr,seed --metrics 'f1:lang=*' --color lr \
    --highlight best:f1:lang=en -o "$OUT/view1-parcoords.png"

# View 2: that run's F1 per language over 60 epochs, peaks marked: which language forgets.
xp forgetting 'f1:lang=*' --runs sample_runs --run best:f1:lang=en \
    -o "$OUT/view2-forgetting.png"

# View 3: every run's curve, one panel per language, coloured by learning rate.
xp curves 'f1:lang=*' --runs sample_runs --color lr -o "$OUT/view3-curves.png"

# View 4: the same aggregated over the 40 seeds: median line and min-max band per lr.
xp aggregate 'f1:lang=*' --runs sample_runs --by lr -o "$OUT/view4-aggregate.png"

# View 5: model selection, the run picked by English F1 against the one picked by LMS.
xp parcoords --runs sample_runs --params lr \
    --metrics 'f1:lang=en,lms_score,f1:lang=de,f1:lang=es,f1:lang=nl,f1:lang=zh' \
    --run-axis --color lms_score \
    --highlight best:f1:lang=en --highlight best:lms_score -o "$OUT/view5-selection.png"

# The five views as one interactive, self-contained page (docs/story.toml lists them).
xp report docs/story.toml --runs sample_runs -o docs/story.html -q

# 240 anti-aliased lines make large RGBA PNGs; a 256-colour palette (no dithering) keeps
# the look and cuts them to about a quarter, so the folder stays small enough to commit.
"$PYTHON" - "$OUT"/view*.png <<'PY'
import sys

from PIL import Image

for path in sys.argv[1:]:
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    palette = rgb.quantize(colors=256, method=Image.Quantize.FASTOCTREE,
                           dither=Image.Dither.NONE)
    palette.save(path, optimize=True)
PY
du -ch "$OUT"/view*.png | tail -1 >&2

# Every target sets up .venv itself, so a fresh clone needs only Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint docs sample-runs figures bench bench-peers check smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/xp --runs sample_runs metrics
	$(BIN)/xp --runs sample_runs group --by lr -m f1:lang=en,f1:lang=de,f1:lang=zh
	$(BIN)/xp --runs sample_runs forgetting 'f1:lang=*' --run best:f1:lang=en
	$(BIN)/xp --runs sample_runs selection -s f1:lang=en,lms_score -t 'f1:lang=*' \
		--exclude lang=en --format markdown

# loadgroup: the tests of one xdist_group (the Spark ones) share a worker and a session.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# The edit-test loop: everything but the tests marked slow (make test runs them all).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check xpcli tests scripts
	$(BIN)/mypy xpcli
	$(BIN)/python scripts/gen_cli_docs.py --check
	$(BIN)/python scripts/gen_spec_docs.py --check
	$(BIN)/python scripts/gen_importer_docs.py --check
	$(BIN)/python scripts/check_story.py

docs: $(STAMP)
	$(BIN)/python scripts/gen_cli_docs.py
	$(BIN)/python scripts/gen_spec_docs.py
	$(BIN)/python scripts/gen_importer_docs.py

sample-runs: $(STAMP)
	$(BIN)/python scripts/make_sample_runs.py sample_runs

figures: $(STAMP)
	XP=$(BIN)/xp PYTHON=$(BIN)/python scripts/make_figures.sh

bench: $(STAMP)
	$(BIN)/python scripts/bench.py

# Aim and MLflow through their own APIs, in their own venv (bench-data/peers-venv).
bench-peers: $(STAMP)
	$(BIN)/python scripts/bench_peers.py

check: lint test

smoke: $(STAMP)
	rm -rf build/smoke && $(BIN)/python -m pip wheel --quiet --no-deps -w build/smoke .
	$(PYTHON) -m venv build/smoke/venv
	build/smoke/venv/bin/pip install --quiet build/smoke/xpcli-*.whl
	build/smoke/venv/bin/xp --help > /dev/null
	build/smoke/venv/bin/xp --runs sample_runs metrics --format csv
	build/smoke/venv/bin/xp --runs sample_runs parcoords -p lr -m f1:lang=en -o build/smoke/pc.html

clean:
	rm -rf $(VENV) build dist *.egg-info

.PHONY: soak
soak: $(STAMP)
	$(BIN)/python scripts/soak.py

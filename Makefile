# speechkit: `make test` and `make install` do all the set-up on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.speechkit-installed

.PHONY: install system-deps demo test test-fast fuzz lint docs clean

install: system-deps $(STAMP)

system-deps:
	bash data_prep/system_deps.sh

$(STAMP): setup.cfg pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; speechkit needs Python 3.11 (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $@

# The default bundle end to end: resynthesis into every speaker and style, a spoken continuation, evaluation with the
# HTML report (outputs and figures are printed; everything lands in demo_out/).
demo: install
	$(PY) -m speechkit.cli.main demo

# The whole suite: unit tests, slow corpus/ASR tests, and (as recipes land) every recipe's debug preset.
test: install
	$(PY) -m pytest -q

# Unit tests without the slow marker, for quick iterations.
test-fast: install
	$(PY) -m pytest -q -m "not slow"

# The reliability suite at 5x its iterations (hypothesis examples, corruptions, kills), plus the 1-hour runs; the
# table it prints is the "Reliability" table of docs/reliability.md (written to eval/reliability/fuzz.json).
# FUZZ_SCALE=20 for more.
FUZZ_SCALE ?= 5
fuzz: install
	SPEECHKIT_FUZZ_SCALE=$(FUZZ_SCALE) SPEECHKIT_RELIABILITY_REPORT=eval/reliability/fuzz.json \
		$(PY) -m pytest -q -p no:cacheprovider tests/reliability

# ruff, and the layering the code relies on (inference never imports training code).
lint: install
	$(VENV)/bin/ruff check speechkit tests data_prep benchmarks eval
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_architecture.py

# The documentation site (docs/ and the API reference from the docstrings) in site/, warnings as errors.
docs: install
	$(PY) -m mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .ruff_cache

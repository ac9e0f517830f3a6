# Two commands on a fresh machine: `make demo` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := data/demo
DEMO_CUSTOMERS ?= 1000

.PHONY: demo test lint install install-dev bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/predelinq init
	$(BIN)/predelinq synth --customers $(DEMO_CUSTOMERS) --seed 1 --out $(DEMO_DIR)
	$(BIN)/predelinq ingest --customers $(DEMO_DIR)/customers.csv \
		--transactions $(DEMO_DIR)/transactions.csv \
		--payments $(DEMO_DIR)/payments.csv --labels $(DEMO_DIR)/labels.csv
	$(BIN)/predelinq summary

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

test: lint
	$(BIN)/python -m pytest

bench: install-dev
	$(BIN)/python bench/ingest.py --customers 100000 --json

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

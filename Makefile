# Two commands on a fresh machine: `make demo` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := data/demo
DEMO_CUSTOMERS ?= 1000
DEMO_ENV := DATABASE_URL=sqlite:///$(DEMO_DIR)/predelinq.db PREDELINQ_MODEL_DIR=$(DEMO_DIR)/models PREDELINQ_THREADS=2
ingest_args = --customers $(1)/customers.csv --transactions $(1)/transactions.csv --payments $(1)/payments.csv --labels $(1)/labels.csv

.PHONY: demo test lint install install-dev bench clean screenshots

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,dask]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# The seed's story on a fresh embedded database under data/demo: 1,000 customers arrive,
# `check` trains the first model, 75 new customers arrive, `check` retrains on 200 customers
# and the gate decides, a full retrain follows, then the history and a few scores. Then the
# monitoring story: 1,000 customers whose behaviour shifted in July arrive, `monitor` shows
# the drift, `check` fires on it, and the backtest shows what retraining recovers.
demo: install
	rm -rf $(DEMO_DIR)
	$(DEMO_ENV) $(BIN)/predelinq synth --customers $(DEMO_CUSTOMERS) --seed 1 --out $(DEMO_DIR)/batch1
	$(DEMO_ENV) $(BIN)/predelinq ingest $(call ingest_args,$(DEMO_DIR)/batch1)
	$(DEMO_ENV) PREDELINQ_MAX_CUSTOMERS=all $(BIN)/predelinq check
	$(DEMO_ENV) $(BIN)/predelinq synth --customers 75 --seed 2 --out $(DEMO_DIR)/batch2
	$(DEMO_ENV) $(BIN)/predelinq ingest $(call ingest_args,$(DEMO_DIR)/batch2)
	$(DEMO_ENV) $(BIN)/predelinq check
	$(DEMO_ENV) $(BIN)/predelinq retrain --max-customers all --reason "full retrain with the new customers"
	$(DEMO_ENV) $(BIN)/predelinq history
	$(DEMO_ENV) $(BIN)/predelinq score --as-of 2024-12-01 --output $(DEMO_DIR)/scores.csv
	head -n 6 $(DEMO_DIR)/scores.csv
	@echo "--- monitoring: a regime change arrives with 1,000 customers whose behaviour shifted in July"
	$(DEMO_ENV) $(BIN)/predelinq monitor
	$(DEMO_ENV) $(BIN)/predelinq synth --customers 1000 --seed 3 --shift-from 2024-07-01 --out $(DEMO_DIR)/batch3
	$(DEMO_ENV) $(BIN)/predelinq ingest $(call ingest_args,$(DEMO_DIR)/batch3)
	$(DEMO_ENV) $(BIN)/predelinq monitor
	printf '[triggers]\ncooldown_hours = 0  # the demo replays months in a minute\n' > $(DEMO_DIR)/predelinq.toml
	$(DEMO_ENV) PREDELINQ_CONFIG=$(DEMO_DIR)/predelinq.toml PREDELINQ_MAX_CUSTOMERS=all $(BIN)/predelinq check --dry-run
	$(DEMO_ENV) PREDELINQ_CONFIG=$(DEMO_DIR)/predelinq.toml PREDELINQ_MAX_CUSTOMERS=all $(BIN)/predelinq check
	$(DEMO_ENV) $(BIN)/predelinq monitor
	$(DEMO_ENV) PREDELINQ_MAX_CUSTOMERS=all $(BIN)/predelinq backtest --from 2024-06-01 --to 2025-01-01 --policy never --policy triggers --after 2024-09-01
	@echo "explore: export DATABASE_URL=sqlite:///$(DEMO_DIR)/predelinq.db PREDELINQ_MODEL_DIR=$(DEMO_DIR)/models"
	@echo "dashboard: then PREDELINQ_DEV_MODE=1 $(BIN)/predelinq serve, and open http://127.0.0.1:8000/ui"

# The README's pictures of the dashboard, from the demo's database (run `make demo` first),
# in Debian's chromium (apt-get install chromium).
screenshots: install-dev
	$(DEMO_ENV) $(BIN)/python docs/screenshots.py

lint: install-dev
	$(BIN)/ruff check src tests bench docs
	$(BIN)/ruff format --check src tests bench docs
	$(BIN)/mypy src tests

test: lint
	$(BIN)/python -m pytest

bench: install-dev
	$(BIN)/python bench/ingest.py --customers 100000 --json

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

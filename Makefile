# Two commands matter: `make demo` (the main job end to end) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := $(CURDIR)/.demo
export DAGSTER_HOME := $(DEMO)/dagster_home
export FP_SAP_URL ?= sqlite:///$(DEMO)/sap.db
export FP_STATE_URL ?= sqlite:///$(DEMO)/state.db
export FP_HUBSPOT_SANDBOX_STATE ?= $(DEMO)/hubspot.db
DEMO_CUSTOMERS ?= 2000
# where orders and carts go (the panel's commerce.objects): deals | orders_and_carts | both
COMMERCE ?= deals

.PHONY: install demo dev test lint lock clean prod-up

$(BIN)/fp-hubspot: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/fp-hubspot

demo: install
	$(BIN)/fp-demo run --customers $(DEMO_CUSTOMERS) --dir $(DEMO) --commerce $(COMMERCE)

dev: install
	$(BIN)/fp-demo prepare --customers $(DEMO_CUSTOMERS) --dir $(DEMO) --commerce $(COMMERCE)
	$(BIN)/fp-demo dev --dir $(DEMO)

# a live store for `make dev`: new carts, orders and changes in the demo SAP database every
# SIMULATE_EVERY seconds (SIMULATE_ROUNDS=0: until Ctrl-C); the sensors and the schedule pick them up
SIMULATE_EVERY ?= 60
SIMULATE_ROUNDS ?= 0
.PHONY: simulate
simulate: install
	$(BIN)/fp-demo simulate --url $(FP_SAP_URL) --every $(SIMULATE_EVERY) --rounds $(SIMULATE_ROUNDS)

test: install
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4

# ruff on everything; mypy on the product package (config: pyproject.toml [tool.mypy])
lint: install
	$(BIN)/ruff check fp_hubspot_assets fp_hubspot_assets_tests bench
	$(BIN)/mypy

# re-pin every dependency after changing pyproject.toml
lock:
	rm -rf /tmp/fp-lock-venv && $(PYTHON) -m venv /tmp/fp-lock-venv
	/tmp/fp-lock-venv/bin/pip install -q --upgrade pip
	/tmp/fp-lock-venv/bin/pip install -q -e '.[dev,bench]'
	/tmp/fp-lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

prod-up: install
	deploy/prod-up.sh

.PHONY: prod-down
prod-down:
	deploy/prod-up.sh stop

clean:
	rm -rf $(DEMO)

# Forewarn — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench venv clean format

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	@touch $(STAMP)

venv: $(STAMP)

## Run the whole service on the embedded default with a simulated network and an injected fault.
run: $(STAMP)
	$(BIN)/forewarn demo

## Lint, then every test (unit, integration on SQLite and PostgreSQL, end-to-end).
test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

PEER := .venv-peer

$(PEER)/.installed:
	@test -d $(PEER) || $(PYTHON) -m venv $(PEER)
	$(PEER)/bin/pip install --quiet 'quixstreams>=3,<4'
	@touch $@

## Every benchmark; figures in bench/results/, plots in docs/img/ (docs/benchmarks.md).
bench: $(STAMP) $(PEER)/.installed
	$(BIN)/pip install --quiet -e '.[embedded,dev,bench]'
	FOREWARN_PEER_PYTHON=$(PEER)/bin/python $(BIN)/python -m bench
	$(BIN)/python -m bench.plots

## The fault, load and poison suite at five times the size `make test` runs it (docs/reliability.md).
.PHONY: reliability
reliability: $(STAMP)
	FOREWARN_RELIABILITY_SCALE=5 FOREWARN_RELIABILITY_LOAD_SECONDS=600 FOREWARN_RELIABILITY_STORM_CUSTOMERS=2500 \
		$(BIN)/pytest -m reliability -p no:cacheprovider tests/reliability

clean:
	rm -rf $(VENV) $(PEER) forewarn.db .pytest_cache .mypy_cache .ruff_cache

# One entry point for people and CI. Everything a target needs, it installs itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint typecheck pytest bench clean docs-reference

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# The demo shop under selfheal and chaos for a minute, with a fixed seed (`selfheal demo -h`).
DEMO_ARGS ?= --duration 60 --seed 7
demo: $(STAMP)
	$(BIN)/selfheal demo $(DEMO_ARGS)

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[all,dev,bench]'
	touch $@

# Each script prints its table and its targets (about 15 minutes in all on two cores).
bench: $(VENV)/.bench-installed
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/policies.py
	$(BIN)/python bench/breaker_halfopen.py
	$(BIN)/python bench/health.py
	$(BIN)/python bench/supervisor.py
	$(BIN)/python bench/events.py
	$(BIN)/python bench/fleet.py
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/chaos_proxy.py
	$(BIN)/python bench/healing.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The configuration reference is generated from the models; tests/docs fails when it is stale.
docs-reference: $(STAMP)
	$(BIN)/python -m selfheal.cli._reference > docs/configuration-reference.md

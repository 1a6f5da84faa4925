# estat-lake: two commands on a fresh machine.
#   make demo   install, then run every sample partition offline through Dagster
#   make test   install, then run the whole test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export ESTAT_LAKE_HOME ?= $(CURDIR)/.estat-lake
export DAGSTER_HOME    := $(ESTAT_LAKE_HOME)/dagster
DEV_PORT ?= 3000

.PHONY: install demo test test-fast lint dev validate bench ui-check clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/estat-lake demo

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest

# The unit tests: no Dagster job, no lake load, no server beyond the emulator (about a minute).
test-fast: install
	$(BIN)/pytest -m "not slow" -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

validate: install
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster definitions validate -m estat_assets.definitions

dev: install
	DEV_PORT=$(DEV_PORT) bash scripts/dev.sh

# Benchmarks (docs/benchmarks.md): fetch, conform, e2e; `make bench BENCH=e2e` runs one. e2e puts
# the dlt peer in its own venv, $(ESTAT_LAKE_HOME)/bench-peer-venv (pip, first run only).
bench: install
	$(BIN)/python -m bench $(BENCH)

# UI check (optional, not part of `make test`): emulator + dagster dev, a backfill, a release the
# sensor loads, a refused load, screenshots into docs/. Needs Debian's chromium and a Japanese font
# (installed here with apt when missing: Debian's registry, not PyPI).
ui-check: install
	command -v chromium >/dev/null && fc-list | grep -qi "Noto.*CJK" || \
	  (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk)
	$(BIN)/python -m estat_assets_tests.ui_check

clean:
	rm -rf $(ESTAT_LAKE_HOME)

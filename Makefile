# The two quickstart commands:  `make demo` (set up + live demo)  and  `make test` (set up + all tests).
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo lab test lint unit bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	bash scripts/install-chromium.sh
	bash scripts/install-redis.sh

## the main job: the quickstart notebook in JupyterLab when a browser can open, else the live
## terminal demo (server + synthetic agent events + client, one-line summary).  WSN_DEMO=terminal
## or WSN_DEMO=lab forces one.
demo: $(STAMP)
	@mode="$${WSN_DEMO:-}"; \
	if [ -z "$$mode" ]; then \
	  if [ -n "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}" ] || [ "$$(uname)" = Darwin ]; then mode=lab; else mode=terminal; fi; \
	fi; \
	if [ "$$mode" = lab ]; then exec $(BIN)/jupyter lab notebooks/01_quickstart.ipynb; \
	else exec $(BIN)/python -m wsnotebook demo; fi

## the quickstart notebook in JupyterLab
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/01_quickstart.ipynb

lint: $(STAMP)
	$(BIN)/ruff check wsnotebook tests benchmarks
	$(BIN)/ruff format --check wsnotebook tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

## everything CI runs
test: setup lint
	$(BIN)/python -m pytest --cov=wsnotebook --cov-report=term:skip-covered

bench: $(STAMP)
	$(BIN)/python -m wsnotebook bench

bench-quick: $(STAMP)
	$(BIN)/python -m wsnotebook bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts

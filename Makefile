# LC2 Backup — every target bootstraps what it needs: a fresh machine only needs python3 and make.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
# Bytecode is compiled at install (as in the image) and cached for our own sources: without it every service
# process compiles FastAPI, pydantic and nats-py again at start (a fifth of a short run's CPU; benchmark B7).
unexport PYTHONDONTWRITEBYTECODE
PYTEST_ARGS ?=
# Test files run in this many processes at once (pytest-xdist; a file stays in one process, with its module-wide
# servers): most cases wait on servers and designed timeouts, so two processes share two cores well.
TEST_WORKERS ?= 2
BENCH_ARGS ?=
AWSCLI_VERSION := 1.46.3
AWSCLI := $(TOOLS)/awscli/bin/aws

.PHONY: help install test test-fast lint format typecheck imports demo up down status contracts bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml
	$(UV) sync --all-packages --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

# Azurite (npm, pinned in lc2backup.devstack.azurite): Azure Blob Storage for the Azure tests and demo.
AZURITE := $(TOOLS)/azurite/node_modules/.bin/azurite-blob
$(AZURITE): $(VENV)/.installed
	$(BIN)/python -c "from lc2backup.devstack.azurite import ensure_azurite; ensure_azurite()"

install: $(VENV)/.installed $(AZURITE) ## Create .venv with every package of the workspace (uv, from PyPI) and Azurite (npm)

test: install ## Run every test (unit, integration, e2e) against real local servers (TEST_WORKERS=2 processes)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-fast: install ## Only the tests that need no service processes (-m "not e2e")
	$(BIN)/pytest -m "not e2e" $(PYTEST_ARGS)

lint: install ## ruff (lint + format check), import-linter, contracts drift
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m lc2backup.contracts check

format: install ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy --strict over libs, services and tools
	$(BIN)/mypy libs/*/src services/*/src tools/*/src bench

demo: install ## Back up a Liferay-like environment on the embedded local stack, end to end (PROVIDER=gcp or azure: through that provider against local stand-ins)
	$(BIN)/lc2backup demo --provider $(or $(PROVIDER),local)

up: install ## Start the local stack and the five services in the background (state in .lc2/)
	$(BIN)/lc2backup dev up --detach

down: install ## Stop what 'make up' started
	$(BIN)/lc2backup dev down

status: install ## Show the running local stack
	$(BIN)/lc2backup dev status

contracts: install ## Regenerate contracts/ (event schemas, asyncapi.yaml, openapi.json, CRD) and deploy's CRD
	$(BIN)/python -m lc2backup.contracts write
	$(BIN)/python -m lc2backup.crd_gateway.crd

# awscli in a virtualenv of its own: beside aioboto3 it resolves to a boto3 that does not import.
$(AWSCLI): $(UV)
	$(UV) venv --quiet $(TOOLS)/awscli --python $(PYTHON)
	$(UV) pip install --quiet --python $(TOOLS)/awscli awscli==$(AWSCLI_VERSION)

bench: install $(AWSCLI) ## Run benchmarks B1-B9 (~40 min; BENCH_ARGS="--only B4"), write bench/results/latest.json
	@command -v rclone >/dev/null 2>&1 || { \
	  echo "bench: installing rclone (Debian package), the B4 peer"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone; \
	  else echo "bench: rclone is missing: run 'sudo apt-get install rclone'" >&2; exit 1; fi; }
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: ## Remove the virtual environments and local state
	rm -rf $(VENV) $(TOOLS) .lc2 .pytest_cache .mypy_cache .ruff_cache

# Every target does its own set-up: on a fresh machine with Python 3.11, Node 20 and pip,
# `make demo` and `make test` are the only two commands you need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
TOOLS := build/tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
# The same lock, on the Lambda runtime's Python (3.13), for the shipped code's tests.
LAMBDA_VENV := .venv-lambda-python
STAGE ?= dev
PYTEST_ARGS ?=
# CI has 2 cores: one pytest worker each, a test file's tests kept on one worker (module fixtures
# such as a running product are built once per file).
PYTEST_PARALLEL ?= -n 2 --dist loadfile
DEMO_ARGS ?=
# Node 20 is past its end of life: jsii (synth) and the CDK CLI's AWS SDK (deploy, diff) each print
# a notice about it on every run. They say nothing about this project; Node 22+ prints neither.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED := true
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

.PHONY: help install lint format typecheck test test-unit test-infra test-localcloud test-emulator \
        test-e2e test-lambda-python synth demo dev emulator bootstrap deploy diff bench openapi browser-deps \
        clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	@touch $@

install: $(VENV)/.synced ## create .venv from uv.lock (pinned, no resolution)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: install ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: install ## mypy (strict) over the shipped and local code
	$(VENV)/bin/mypy infra ops functions/billpay local app.py

browser-deps: ## Debian's Chromium for the Link page browser test
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: lint typecheck synth browser-deps node_modules/.installed ## everything CI runs: lint, types, every test tier
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-lambda-python

test-lambda-python: install ## the shipped code's unit tests again, on the Lambda runtime's Python
	@python=$$($(PY) -m infra.bytecode) || exit 1; \
	UV_PROJECT_ENVIRONMENT=$(abspath $(LAMBDA_VENV)) $(UV) sync --frozen --quiet --python "$$python"
	$(LAMBDA_VENV)/bin/python -m pytest tests/unit/billpay -p no:cacheprovider $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-unit: install ## unit tier only (sockets blocked)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-infra: install node_modules/.installed ## CDK assertions, cdk-nag, cfn-lint, the CDK CLI's synth
	$(PY) -m pytest tests/infra $(PYTEST_ARGS)

test-localcloud: synth ## the synthesized template running on the local cloud
	$(PY) -m pytest tests/localcloud $(PYTEST_ARGS)

test-emulator: install browser-deps ## Codat emulator contract tests through the real SDK
	$(PY) -m pytest tests/emulator $(PYTEST_ARGS)

test-e2e: synth browser-deps ## the journey through the local API, as `make demo` and `make dev` run it
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

synth: install ## synthesize into cdk.out; builds the dependency layer with pip, no Docker (cached by hash)
	$(PY) app.py -c stage=$(STAGE)

demo: synth ## run the Bill Pay journey on the local cloud (no AWS, no Codat, no Docker); DEMO_ARGS="--faults"
	$(PY) -m localcloud demo $(DEMO_ARGS)

dev: synth ## keep the local cloud running (moto + local API on 127.0.0.1)
	$(PY) -m localcloud dev

emulator: install ## run the Codat emulator on 127.0.0.1
	$(PY) -m codat_emulator

openapi: install ## regenerate docs/openapi.json from the product API's handlers (a test fails if stale)
	$(PY) -m ops openapi > docs/openapi.json.new && mv docs/openapi.json.new docs/openapi.json

bench: synth ## run the benchmarks (figures go to docs/benchmarks.md by hand)
	$(PY) -m benchmarks

bootstrap: install node_modules/.installed ## once per AWS account/region: the CDK bootstrap stack, for your credentials'
	npx cdk bootstrap -c stage=$(STAGE)

deploy: install node_modules/.installed ## deploy to AWS with the pinned CDK CLI
	npx cdk deploy --all -c stage=$(STAGE)

diff: install node_modules/.installed ## diff against the deployed stacks
	npx cdk diff --all -c stage=$(STAGE)

clean: ## remove build output (keeps .venv)
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache $(LAMBDA_VENV)

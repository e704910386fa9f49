# workpulse: two commands.
#   make demo   sets up .venv and runs the whole pipeline on embedded parts
#   make test   sets up .venv with the test tools and runs lint, types and all tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# the compiled tagging engine is built by `pip install`: rebuild when its source changes
BUILD_INPUTS := pyproject.toml setup.py streams/workpulse/tagging/_engine.pyx
STAMP  := $(VENV)/.installed-$(shell cat $(BUILD_INPUTS) | cksum | cut -d' ' -f1)
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test venv lint typecheck unit integration mixin ops-tools clean

$(STAMP): $(BUILD_INPUTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[embedded,test]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/workpulse demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check streams tests scripts mixin setup.py
	$(BIN)/ruff format --check streams tests scripts mixin setup.py

# dashboards/*.json and deploy/prometheus/workpulse.rules.yml from mixin/
mixin: $(STAMP)
	$(BIN)/python -m mixin

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

integration: $(STAMP) ops-tools
	$(BIN)/pytest tests/integration -q $(PYTEST_ARGS)

# Debian's prometheus, prometheus-alertmanager and chromium for tests/ops (installed
# when absent, as root)
ops-tools:
	bash scripts/install-ops-tools.sh

test: lint typecheck ops-tools
	$(BIN)/pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# Two-command set-up: `make run` (the main job) and `make test` (the test suite).
# Each creates .venv and installs the project with constraints.txt if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 60
export DO_NOT_TRACK := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: install run test test-fast lint smoke clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/geosgm run

# Two workers (pytest-xdist); a file's tests stay together and in order (module fixtures).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The edit-test loop: everything but the tests that start processes or servers.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -m 'not slow and not process'

lint: $(STAMP)
	$(BIN)/ruff check pipeline stages tests tools benchmarks
	$(BIN)/ruff format --check pipeline stages tests tools benchmarks
	$(BIN)/mypy

clean-venv:
	rm -rf $(VENV)

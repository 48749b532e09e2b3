# Two commands do all set-up on a fresh machine with Python 3.11:
#   make demo   — install into .venv and run Northwind orders through the back office
#   make test   — install into .venv and run the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
ORDERS ?= 100

.PHONY: install demo up check test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test]"
	touch $@

demo: install
	$(BIN)/handoff demo --orders $(ORDERS) --auto-approve

# The checks first (seconds), then the suite: layers, lint and format, types of the core.
check: install
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: check
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache

# tracepay: `make demo` runs the whole system, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo demo-headless test lint bench setup clean

## make demo: install what is missing, then run every service on free loopback ports
## (the ledger on a three-server NATS JetStream cluster, one node process per organisation).
demo: setup
	$(BIN)/tracepay demo

## make demo-headless: 20 simulated sales end to end; prints one JSON summary.
demo-headless: setup
	$(BIN)/tracepay demo --headless --sales 20 --json

## make test: install what is missing (incl. the test-only Debian packages), run pytest.
test: setup
	scripts/install-system-packages.sh test
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

setup: $(STAMP)
	scripts/install-system-packages.sh demo

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[terminal,ledger,dev]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .ruff_cache *.egg-info

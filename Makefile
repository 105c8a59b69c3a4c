# The two commands a newcomer runs: `make demo` and `make test`. Both create .venv and install what is
# missing from the pinned constraints; when everything is installed they go straight to work.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONSTRAINTS := constraints/constraints-3.11.txt
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint install constraints clean bench

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e ".[prod,openlineage,dev]" -c $(CONSTRAINTS)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest

# Unit tests only: a quick loop while developing (make test runs everything).
test-fast: $(STAMP)
	$(PY) -m pytest tests/unit -q

# Every benchmarks/bench_*.py at the goals' sizes (minutes: it runs the demo twice) -> benchmarks/RESULTS.md.
# A missed goal is a row of the table, never a failure; a module that fails is reported there with its error.
bench: $(STAMP)
	$(PY) -m benchmarks

constraints:
	scripts/update-constraints.sh

clean:
	rm -rf $(VENV) .demo

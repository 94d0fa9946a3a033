# The README's commands. Every target sets up its own virtual environment from the pinned
# constraints (torch 2.13.0 CPU build among them), so each works on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: setup run test bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

## the main job: every study on the embedded default backends -> outputs/paper/seed=0/
run: $(STAMP)
	$(BIN)/popnas-harness experiment=paper

## the unit and regression tests (benchmarks are skipped)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## the benchmark suite, saved as JSON and compared against the previous save
bench: $(STAMP)
	$(BIN)/python -m pytest tests/benchmarks --benchmark-only --benchmark-autosave -q \
		$(if $(wildcard .benchmarks/*/[0-9][0-9][0-9][0-9]_*.json),--benchmark-compare --benchmark-compare-fail=min:25%)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .benchmarks

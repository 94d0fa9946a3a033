# The README's commands. Every target sets up its own virtual environment from the pinned
# constraints (torch 2.13.0 CPU build among them), so each works on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: setup run lint test test-portable bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

## the main job: every study on the embedded default backends -> outputs/paper/seed=0/
run: $(STAMP)
	$(BIN)/popnas-harness experiment=paper

## ruff (the rule set in pyproject.toml) on the whole tree, mypy on the core library
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

## the unit and regression tests (benchmarks are skipped)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## the golden tables again under other CPU kernels and thread settings: they must hold on any x86 machine
## (ATen's portable kernels; one thread with MKL's conditional-numerical-reproducibility mode; numpy without
## its AVX-512 loops)
test-portable: $(STAMP)
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest -q tests/test_paper_tables.py
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MKL_CBWR=COMPATIBLE \
	NPY_DISABLE_CPU_FEATURES="AVX512F AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR" \
	$(BIN)/python -m pytest -q tests/test_paper_tables.py

## the benchmark suite, saved as JSON and compared against the previous save
bench: $(STAMP)
	$(BIN)/python -m pytest tests/benchmarks --benchmark-only --benchmark-autosave -q \
		$(if $(wildcard .benchmarks/*/[0-9][0-9][0-9][0-9]_*.json),--benchmark-compare --benchmark-compare-fail=min:25%)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache .benchmarks .mypy_cache .ruff_cache

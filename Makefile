# Two commands set up a fresh machine and do everything:
#   make run   - install, then run the main job
#   make test  - install, then run the default test suite
#   make mutate - mutation testing of the critical-path modules (hours; not in CI)
# The ray extra is installed too, so that the tests exercise --backend ray.
# torch is pinned to the local CPU build *before* the package, because an unpinned
# torch pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint mutate clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.*"
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	touch $(STAMP)

run: install
	$(BIN)/python evaluate.py paper --figure 2 --trials 50 --out results/paper

test: install
	$(BIN)/python -m pytest -q

# mutmut on the critical-path modules, each against its own tests, at low priority;
# GROUPS="iscc_model dynamics" runs a subset, MUTATE_LIMIT caps each group [s].
GROUPS ?=
MUTATE_LIMIT ?= 3600
mutate: install
	nice -n 10 $(BIN)/python scripts/mutate.py $(GROUPS) --time-limit $(MUTATE_LIMIT)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build mutants *.egg-info

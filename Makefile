# Two commands set up a fresh machine and do everything:
#   make run   - install, then run the main job (the shipped agent against the optimizer)
#   make test  - install, then run the default test suite
#   make mutate - mutation testing of the critical-path modules (hours; not in CI)
# The ray extra is installed too, so that the tests exercise --backend ray.
# torch is pinned to the local CPU build *before* the package, because an unpinned
# torch pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run fig2 test lint mutate clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "torch==2.13.*"
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	touch $(STAMP)

# The main job: the shipped agent against the optimizer-driven policies on 4 seeded
# 500-slot episodes of ISCC-v0 (~1-2 min on 2 cores): table, paired.csv, policies.png.
RUN_POLICIES := pretrained,threshold-budget,lyapunov-budget,fixed-beta:mu,heuristic,lyapunov,fo
run: install
	OPENBLAS_NUM_THREADS=1 $(BIN)/python evaluate.py policies --policies $(RUN_POLICIES) \
	  --episodes 4 --seed 0 --jobs 2 --env-kwargs '{"oracle": "fast"}' --out results/main

# The paper's Fig. 2 with 50 drops per point (~10 s); `--figure all` for Figs. 2-9.
fig2: install
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

# The two commands of the README. Both create .venv when it is missing and are safe to rerun.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.ptb-lstm-installed
# Extra arguments for `make train`, e.g. make train ARGS="--engine tf-graph --epochs 1"
ARGS    ?=
PYTEST_ARGS ?=

.PHONY: train test bench reproduce notebooks lab data gradcheck lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[tf,torch,plot,dev]'
	@touch $(STAMP)

train: $(STAMP)
	$(BIN)/ptb-lstm data
	$(BIN)/ptb-lstm train --config small $(ARGS)

test: $(STAMP)
	$(BIN)/ptb-lstm data >/dev/null  # PTB for the real-data tests: found, or downloaded once
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Times every installed engine on the CPU and rewrites the speeds in the README's engine table
# and the table in docs/performance.md.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

# Trains the small config with all three engines (runs/reproduce/ENGINE; finished runs are kept,
# interrupted ones resumed), evaluates each, and rewrites docs/results.md and its figure; it
# takes about the sum of the engines' "13 epochs (est.)" in docs/performance.md plus their
# evaluations. ARGS="--config medium" does the same for the medium model (NumPy engine).
# Pass options with ARGS, e.g. make reproduce ARGS="--engine numpy".
reproduce: $(STAMP)
	$(BIN)/python benchmarks/reproduce.py $(ARGS)

data: $(STAMP)
	$(BIN)/ptb-lstm data

gradcheck: $(STAMP)
	$(BIN)/ptb-lstm gradcheck

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks notebooks

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache

# Rewrites notebooks/*.ipynb from notebooks/build.py, executes them (outputs kept) and writes
# their figures to docs/figures/notebook*.png.
notebooks: $(STAMP)
	$(BIN)/python notebooks/build.py

# Installs JupyterLab into .venv (the `lab` extra) and opens the series, Part I first. Options
# for jupyter with LAB_ARGS, e.g. make lab LAB_ARGS="--no-browser --port 8889".
LAB_ARGS ?=
lab: $(VENV)/.ptb-lstm-lab
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/1_numpy.ipynb

$(VENV)/.ptb-lstm-lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[tf,plot,dev,lab]'
	@touch $@

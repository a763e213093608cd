# The two commands of the README. Both create .venv when it is missing and are safe to rerun.
# `make train` installs only what the NumPy engines need (NumPy, tqdm, matplotlib); `make test`
# adds TensorFlow, PyTorch and the test tools, so that every engine is tested, and runs the
# checks of `make lint` (ruff, mypy) before the tests.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
CORE    := $(VENV)/.ptb-lstm-core
FULL    := $(VENV)/.ptb-lstm-full
# Extra arguments for `make train`, e.g. make train ARGS="--epochs 1"
ARGS    ?=
PYTEST_ARGS ?=

.PHONY: train test bench reproduce notebooks lab data gradcheck lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(FULL): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[tf,torch,dev]'
	@touch $@ $(CORE)

# Finds PTB (or downloads it, honouring --data-dir in ARGS), trains, and ends with the run's
# figure and the commands to use the model.
train: $(CORE)
	$(BIN)/ptb-lstm train --config small $(ARGS)

# The checks of `make lint` first, then the tests.
test: $(FULL)
	$(MAKE) --no-print-directory lint
	$(BIN)/ptb-lstm data >/dev/null  # PTB for the real-data tests: found, or downloaded once
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(FULL)
	$(BIN)/python benchmarks/bench.py

# Trains the small config with all three engines (runs/reproduce/ENGINE; finished runs are kept,
# interrupted ones resumed), evaluates each, and rewrites docs/results.md and its figure; it
# takes about the sum of the engines' "full run (est.)" at small in docs/bench.md.
# ARGS="--config medium" does the same for the medium model (NumPy engine).
# Pass options with ARGS, e.g. make reproduce ARGS="--engine numpy".
reproduce: $(FULL)
	$(BIN)/python benchmarks/reproduce.py $(ARGS)

data: $(CORE)
	$(BIN)/ptb-lstm data

gradcheck: $(CORE)
	$(BIN)/ptb-lstm gradcheck

# ruff's lint and its format check over the code, then mypy's type check of src/ (its settings
# are [tool.mypy] in pyproject.toml); any finding fails the target, and so `make test`.
lint: $(FULL)
	$(BIN)/ruff check src tests benchmarks notebooks
	$(BIN)/ruff format --check src tests benchmarks notebooks
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache

# Builds notebooks/*.ipynb from their sources notebooks/N_*.py (jupytext's percent format) with
# notebooks/build.py, executes them (outputs kept) and writes their figures to
# docs/figures/notebook*.png.
notebooks: $(FULL)
	$(BIN)/python notebooks/build.py

# Installs JupyterLab into .venv (the `lab` extra) and opens the series, Part I first. Options
# for jupyter with LAB_ARGS, e.g. make lab LAB_ARGS="--no-browser --port 8889".
LAB_ARGS ?=
lab: $(VENV)/.ptb-lstm-lab
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/1_numpy.ipynb

$(VENV)/.ptb-lstm-lab: $(FULL)
	$(BIN)/python -m pip install --quiet -e '.[tf,dev,lab]'
	@touch $@

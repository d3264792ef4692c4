# The two promises of the README: `make lab` and `make test`, on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: lab test train pretrained bench figures lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# .[dev] is everything: the base dependencies, the lunarlander and notebooks extras, and the tools.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(STAMP)

# Jupyter refuses to run as root without --allow-root (containers, CI machines): pass it only there.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

# `make lint` first (fail fast), then every notebook top to bottom (nbval; DTM_LITE_QUICK=1 shrinks their
# workloads) and every test. pytest-xdist runs a file per worker process (--dist loadfile keeps each file's
# module fixtures and each notebook's cells in one process), one worker per core up to 4; the notebooks go
# first because they are the longest files. The suite is bound by XLA compiles, which are mostly single-threaded.
test: lint
	DTM_LITE_QUICK=1 MPLBACKEND=Agg $(BIN)/python -m pytest $(wildcard notebooks/*.ipynb) tests/ --nbval-lax \
		-n auto --maxprocesses 4 --dist loadfile -p no:cacheprovider --durations=10

# Resumes runs/default if it has a checkpoint (n_epochs is the total, so a finished run stops at once).
train: $(STAMP)
	$(BIN)/python -m dtm_lite train --out runs/default $(if $(wildcard runs/default/latest.npz),--resume)

# The shipped DTM.pretrained("lunarlander"): the parameters of the default run, as package data.
pretrained: $(STAMP)
	$(BIN)/python -m dtm_lite export --run runs/default --out dtm_lite/pretrained/lunarlander.npz

figures: $(STAMP)
	$(BIN)/python -m dtm_lite figures --run runs/default --out figures

bench: $(STAMP)
	$(BIN)/python benchmarks/sampler_vs_thrml.py
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/epoch_times.py
	$(BIN)/python benchmarks/frames_source.py
	$(BIN)/python benchmarks/memory.py

# Lint, format check (the notebooks and Markdown excluded: pyproject.toml) and type check.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy dtm_lite

clean:
	rm -rf $(VENV) runs .pytest_cache

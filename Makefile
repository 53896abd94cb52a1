# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
# The Python picks the stack (zoo/stack.py): 3.11 the pinned one (TensorFlow 2.15.1, in
# .venv), 3.12 or 3.13 the modern one (TensorFlow 2.21 + tf-keras, in .venv-3.12, ...):
# `make demo PYTHON=python3.12`.
PYTHON ?= python3.11
# pyenv's shims run python3.12 only where version 3.12 is selected: select every installed
# one, the default first (a no-op without pyenv).
export PYENV_VERSION ?= $(shell (pyenv version-name; pyenv versions --bare) 2>/dev/null | awk '!seen[$$0]++' | paste -sd: -)
PY_VERSION := $(shell PYENV_VERSION=$(PYENV_VERSION) $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
ifeq ($(PY_VERSION),)
$(error PYTHON=$(PYTHON) does not run here; pass PYTHON=python3.11 (pinned stack) or PYTHON=python3.12 (modern))
endif
ifeq ($(PY_VERSION),3.11)
VENV        ?= .venv
CONSTRAINTS := constraints.txt
NO_DEPS     :=
else
VENV        ?= .venv-$(PY_VERSION)
CONSTRAINTS := constraints-modern.txt
# Packages whose declared dependencies pip cannot resolve on this stack (setup.py says
# why): installed in a second step, without them.
NO_DEPS     := zookeeper larq-zoo $(if $(filter 3.12,$(PY_VERSION)),,larq)
endif
BIN    := $(VENV)/bin
ZOO    := $(BIN)/zoo
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# Two pytest-xdist workers, a test file each (its fixtures, such as the built docs site,
# stay in one process): about half the wall time of one process on 2 cores. The files go
# in the order of their names (`--no-loadscope-reorder`): xdist's own order starts the
# files with the most tests first, and those are the heaviest ones, each slower beside another.
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: install data browser demo docs bench test test-fast clean

install: $(STAMP)

# Idempotent: re-runs only when the venv is missing or its stack changed.
$(STAMP): setup.py pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e ".[cpu,openvino,test,docs]"
	$(if $(NO_DEPS),$(BIN)/python -m pip install -q --no-deps -c $(CONSTRAINTS) $(NO_DEPS))
	touch $@

# The four Fashion-MNIST IDX files (Debian package dataset-fashion-mnist, or ZOO_DATA_DIR).
data:
	@bash scripts/ensure-fashion-mnist

# Debian's chromium, for the test that opens the built docs in a headless browser.
browser:
	@bash scripts/ensure-chromium

# The docs site, generated from the registry, zoo.complexity and the weights index (site/).
docs: install
	$(BIN)/mkdocs build --strict

# The benchmarks (each prints one table; results in benchmarks/results/, shown by the docs).
# Run them on a quiet machine: they time things.
bench: install data
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/inference_latency.py
	$(BIN)/python benchmarks/export_parity.py
	$(BIN)/python benchmarks/groupnet_speed.py
	$(BIN)/python benchmarks/accuracy_cost.py

# The main job: the zoo table, a short Bi-Real training run on Fashion-MNIST, then its
# evaluation on the 10,000 test images with its BOPs / FLOPs / OPs / memory, and every
# published checkpoint loaded by tag and measured again on the same test images.
DEMO_DIR ?= runs/demo
DEMO_EPOCHS ?= 3
demo: install data
	$(ZOO) list
	rm -rf $(DEMO_DIR)
	$(ZOO) TrainBiRealNet20 dataset=FashionMNIST epochs=$(DEMO_EPOCHS) output_dir=$(DEMO_DIR)
	$(ZOO) evaluate $(DEMO_DIR)
	$(ZOO) weights evaluate

# Lint first (ruff, configured in pyproject.toml), then the tests; tests/test_docs.py
# builds the docs site with --strict and opens it in chromium.
# The multi-worker tests start training processes of their own: after the rest, alone,
# so that they never share the machine's memory with the xdist workers.
test: install data browser
	$(BIN)/ruff check .
	$(PYTEST) --ignore=tests/test_multi_worker.py $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/test_multi_worker.py $(PYTEST_ARGS)

# Everything but the few tests marked slow.
test-fast: install data browser
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs build *.egg-info

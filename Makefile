# Set-up, demo and tests on a fresh machine (Python >= 3.11). The data beside the checkout (../shared)
# provides the pretrained weights and the test audio; elsewhere the weights are downloaded once.
VENV   ?= .venv
PYTHON ?= python3
SHARED ?= $(abspath ../shared)
PY      = $(VENV)/bin/python
CLIP   ?= $(SHARED)/audio/456440__inspectorj__bird-whistling-robin-single-13.ogg
export AUDIOCLAS_SHARED = $(SHARED)

.PHONY: setup demo test test-fast lint browser image-tools bench image-test clean

setup: $(VENV)/.installed

# torch is installed first, pinned, so that nothing pulls a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	AUDIOCLAS_WEIGHTS=$${AUDIOCLAS_WEIGHTS:-$(wildcard $(SHARED)/weights/efficientat)} \
		$(VENV)/bin/audioclas predict "$(CLIP)" --timeline

# Lint, format and type checks first: CI fails on any of them before the suite runs. Then the suite, then both
# container images built and run (make image-test, then with TRAIN=1: about 6 and 8 minutes).
test: lint browser image-tools
	$(PY) -m pytest -q
	$(MAKE) image-test
	$(MAKE) image-test TRAIN=1

# The unit tests only: no weights, no network, no browser; seconds. Tests that read ../shared skip without it.
test-fast: setup
	$(PY) -m pytest -q -m unit

lint: setup
	$(VENV)/bin/ruff format --check
	$(VENV)/bin/ruff check
	$(VENV)/bin/mypy

# The web page is tested in Debian's Chromium (Playwright's own browser download needs the internet).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# make image-test builds with Debian's podman on a debootstrap'd base (no Docker engine).
image-tools:
	@command -v podman >/dev/null && command -v debootstrap >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq podman debootstrap >/dev/null)

bench: setup
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/predict_speed.py

# Builds the Dockerfile with podman (no Docker engine) on a debootstrap'd Debian base and runs the image's CLI,
# server and DEEPaaS from its mounted file system: needs root, podman, debootstrap, Debian's mirror and PyPI
# (scripts/image-test.sh). TRAIN=1: the training image, and a model trained through its REST service.
image-test: image-tools
	SHARED=$(SHARED) TRAIN=$(or $(TRAIN),0) scripts/image-test.sh

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

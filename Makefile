# Every target makes its own virtual environment from pyproject.toml and
# constraints.txt; nothing is installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo test lint fmt clean constraints bench image-test

help:
	@echo "make demo    run bugster-step notify against the local sandbox"
	@echo "make test    run the test suite (real servers on 127.0.0.1); with CI set, image-test too"
	@echo "make image-test  build the image with buildah and run it as each CI does"
	@echo "make lint    ruff, hadolint, and the Cloud Build schema check"
	@echo "make bench   measure start-up, Secret Manager cost, detection latency, politeness"
	@echo "make fmt     format the code with ruff"
	@echo "make constraints  re-pin constraints.txt"
	@echo "make clean   remove the virtual environment and caches"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--constraint constraints.txt --editable '.[dev]'
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m sandbox.demo

bench: $(STAMP)
	$(BIN)/python -m sandbox.bench

# In CI (CI set), the real image build and run is part of the test command,
# and a skip there is a failure.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -n "$$CI" ]; then \
		$(MAKE) --no-print-directory image-test BUGSTER_STEP_IMAGE_TEST=require; \
	fi

# Build the Dockerfile for real and run the image as Cloud Build, GitLab and
# Jenkins do (tests/image; needs root: installs buildah, podman and friends with
# apt-get, else skips). BUGSTER_STEP_IMAGE_TEST=require makes a skip a failure.
image-test: $(STAMP)
	BUGSTER_STEP_IMAGE_TEST=$${BUGSTER_STEP_IMAGE_TEST:-1} \
		$(BIN)/python -m pytest tests/image -m image $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check step tests sandbox
	$(BIN)/ruff format --check step tests sandbox
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.cloudbuild cloudbuild.example.yaml

fmt: $(STAMP)
	$(BIN)/ruff format step tests sandbox
	$(BIN)/ruff check --fix step tests sandbox

# Re-pin constraints.txt from a fresh resolve of pyproject.toml.
constraints:
	rm -rf .venv-pin
	$(PYTHON) -m venv .venv-pin
	.venv-pin/bin/python -m pip install --quiet --disable-pip-version-check '.[dev]'
	( echo "# Versions the tests and the image are built with. \`make constraints\` rewrites it."; \
	  .venv-pin/bin/python -m pip freeze --exclude-editable | grep -v '^bugster-step' ) > constraints.txt
	rm -rf .venv-pin

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

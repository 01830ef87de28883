# boltz-operator: every setup step is a target here; `make test` and `make demo` need nothing else.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
CLUSTER := $(PY) hack/cluster/cluster.py

.PHONY: help images images-standin test-images images-clean venv binaries cluster-up cluster-down cluster-status crds crds-check lint test unit integration bench demo demo-operator demo-down clean

help:
	@echo "make test        unit + integration tests on a real local control plane (builds what is missing)"
	@echo "make demo        local cluster + operator + the example caches, prediction and campaign (GPUs, Boltz and BoltzGen simulated)"
	@echo "make cluster-up / cluster-down / cluster-status"
	@echo "make bench       benchmarks (print figures)"
	@echo "make crds        regenerate crds/ from the pydantic models"
	@echo "make images      build the operator and worker images (Docker, else buildah); make test-images runs them"

# The virtualenv: the four packages (contract, worker, operator, the kubectl plugin) editable, test tools, every transitive version pinned by constraints.txt.
$(VENV)/.installed: pyproject.toml contract/pyproject.toml operator/pyproject.toml worker/pyproject.toml plugin/pyproject.toml requirements-dev.txt constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version}"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -r requirements-dev.txt -e contract -e "worker[parquet]" -e operator -e plugin
	touch $@

venv: $(VENV)/.installed

binaries:
	hack/cluster/build-binaries.sh >/dev/null

cluster-up: venv
	$(CLUSTER) up

cluster-down:
	python3 hack/cluster/cluster.py down

cluster-status:
	@python3 hack/cluster/cluster.py status

crds: venv
	$(PY) -m boltz_operator.crdgen

crds-check: venv
	$(PY) -m boltz_operator.crdgen --check

# ruff (lint and format check) over the repository and mypy over operator/, contract/, plugin/ and worker/, as
# pyproject.toml configures them. `$(VENV)/bin/ruff format .` applies the formatting.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

unit: venv
	$(PYTEST) tests/unit

integration: venv binaries
	$(PYTEST) tests/integration

test: venv binaries crds-check lint
	$(PYTEST) tests/unit tests/integration

bench: venv binaries
	$(PYTEST) tests/bench -s -p no:cacheprovider

demo: venv binaries
	$(PY) hack/demo.py

# The demo's operator again, in the foreground (Ctrl-C stops it): what you create after `make demo` is reconciled.
demo-operator: venv binaries
	$(PY) hack/demo.py operator

# The real boltz 2.2.1 in a venv of its own (it pins click and numpy against kopf), cached outside the repository
# ($$BOLTZ_CACHE_HOME, default ~/.cache/boltz-operator), for tests/integration/fidelity (which also build it).
.PHONY: boltz-venv
boltz-venv:
	hack/boltz-venv.sh

# The real boltzgen 0.3.2 in a venv of its own (it pins numpy==2.0.2), with torch borrowed from the boltz venv
# (built first if missing), cached the same way, for tests/integration/fidelity/test_boltzgen_spec_fidelity.py.
.PHONY: boltzgen-venv
boltzgen-venv:
	hack/boltzgen-venv.sh

# Debian's chromium at a pinned version, for the report tests (tests/integration/report), which install it themselves
# when missing (needs root and Debian's packages; without them those tests skip).
.PHONY: chromium
chromium:
	hack/browser/chromium.sh

# The three images from this checkout, on the Dockerfiles' pinned public base: with Docker where an engine answers,
# with buildah (no daemon; installed from Debian's packages if missing) otherwise. IMAGE_TAG=... names them.
images:
	hack/images/build.sh operator worker-boltz worker-boltzgen

# The same on the Debian stand-in base (hack/images/standin-base.sh), for machines that cannot pull the public one:
# what the image tests build.
images-standin:
	hack/images/build.sh --standin-base operator worker-boltz worker-boltzgen

# Only the image tests (part of `make test` too): build, then run each image as its pod would run it.
test-images: venv binaries
	$(PYTEST) tests/integration/chart/test_operator_image.py tests/integration/fidelity/test_worker_images.py -s

# Drop the images, their layer cache and the stand-in base (the next build is cold).
images-clean:
	hack/images/clean.sh

clean: cluster-down
	rm -rf $(VENV)

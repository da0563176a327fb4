# POD Gateway. `make run` and `make test` work from a fresh clone with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test serve bench lint venv image-test

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m pod_gateway.runner dev

serve: $(STAMP)
	$(PY) -m pod_gateway.runner serve

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Build the container image (deploy/Dockerfile) and start web + worker from it against this machine's
# PostgreSQL and Redis until /api/ready answers (deploy/image-test.sh; exit 77 says why it cannot run here).
image-test:
	deploy/image-test.sh

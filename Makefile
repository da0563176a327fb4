# POD Gateway. `make run` and `make test` work from a fresh clone with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test serve bench bench-scale lint venv image-test

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

# The review queue, search and stats at 10k / 100k / 1M images, on SQLite and then, when
# BENCH_DATABASE_URL names a scratch PostgreSQL database, on it (a few minutes each).
bench-scale: $(STAMP)
	env -u DATABASE_URL $(PY) -m benchmarks scale
	if [ -n "$(BENCH_DATABASE_URL)" ]; then DATABASE_URL="$(BENCH_DATABASE_URL)" $(PY) -m benchmarks scale; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Build the container image (deploy/Dockerfile) and start web + worker from it against this machine's
# PostgreSQL and Redis until /api/ready answers (deploy/image-test.sh; exit 77 says why it cannot run here).
image-test:
	deploy/image-test.sh

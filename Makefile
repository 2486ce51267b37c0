# Two commands: `make run` (set up and run everything) and `make test` (set up and run the tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test faults bench migrate clean

$(STAMP): requirements/base.txt requirements/dev.txt requirements/production.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/dev.txt
	@touch $@

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_schedules

run: migrate
	./scripts/celery/start_all.sh

# Tests use their own Redis database (/15 of the local server, or of a private one started here).
test: install
	@base="$$(./scripts/ensure_redis.sh)" && \
	  export TEST_REDIS_URL="$${TEST_REDIS_URL:-$$base/15}" && \
	  echo "tests: database=$${DATABASE_URL:-sqlite (var/)} redis=$$TEST_REDIS_URL" && \
	  $(BIN)/pytest $(PYTEST_ARGS)

# Every benchmark, each against a raw baseline measured in the same run; writes docs/benchmarks.md.
bench: install
	@base="$$(./scripts/ensure_redis.sh)" && \
	  export BENCH_REDIS_URL="$${BENCH_REDIS_URL:-$$base/14}" TEST_REDIS_URL="$${BENCH_REDIS_URL:-$$base/14}" && \
	  $(BIN)/python bench/run_all.py $(BENCH_ARGS)

# The fault-injection suite alone (it also runs inside `make test`).
faults: install
	@base="$$(./scripts/ensure_redis.sh)" && \
	  export TEST_REDIS_URL="$${TEST_REDIS_URL:-$$base/15}" && \
	  $(BIN)/pytest -m faults -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var/test.sqlite3 .pytest_cache

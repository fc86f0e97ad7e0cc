# Segment Planner: `make demo` and `make test` are the two commands the README promises.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Django 6 needs Python 3.12+; the machine's default python3 may be older (pyenv has 3.12).
PYTHON ?= $(shell for c in python3.13 python3.12 \
	$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -rV) \
	python3; do \
	  p=$$(command -v $$c 2>/dev/null) || continue; \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; \
	done)
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := var/demo
DEMO_USERS ?= 50000
PG_URL ?= postgres://postgres@127.0.0.1:5432/segment_planner
export ALLOW_INSECURE_KEY := 1

.PHONY: help install demo test test-sqlite test-postgres bench soak lint worker serve screenshots

help:
	@echo "make demo   - set up, load the demo dataset, start a worker and serve http://127.0.0.1:8000"
	@echo "make test   - set up and run the whole suite (SQLite, and PostgreSQL + Redis when reachable)"
	@echo "make bench  - benchmarks into bench/results.jsonl (BENCH_SCALE=small for a quick pass)"
	@echo "make soak   - 10 min of mixed load with faults on gunicorn + PostgreSQL + Redis + worker (SOAK_SECONDS=90 for a short pass)"
	@echo "make lint   - ruff and the import contracts (lint-imports)"

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12+ not found (tried python3.13, python3.12, pyenv)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The demo's webhooks may go to receivers on this machine (127.0.0.1); production keeps
# private targets off (README "Webhooks").
demo: export WEBHOOK_ALLOW_PRIVATE_TARGETS := 1
# Static files as production serves them: content-hashed names, gzip twins, long cache headers.
demo: export STATIC_HASHED := 1
demo: install
	mkdir -p var
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py collectstatic --noinput -v 0
	DEBUG=1 $(PY) manage.py setup_demo
	test -f $(DEMO_DIR)/events.csv || DEBUG=1 $(PY) manage.py generate_demo_data --out $(DEMO_DIR) --users $(DEMO_USERS) --seed 7
	DEBUG=1 $(PY) manage.py import_events --workspace demo --dataset "Demo events" --events $(DEMO_DIR)/events.csv --users $(DEMO_DIR)/users.csv
	DEBUG=1 $(PY) manage.py create_demo_segments
	DEBUG=1 $(PY) manage.py refresh_segments --workspace demo
	DEBUG=1 $(PY) manage.py create_demo_plan
	DEBUG=1 $(PY) manage.py create_demo_experiments
	DEBUG=1 $(PY) manage.py create_demo_analyses
	@echo "== worker (filesystem broker, no server needed) and web server at http://127.0.0.1:8000 =="
	@echo "== log in as demo / demo-pass-2026 (also analyst, council, viewer; same password) =="
	DEBUG=1 $(VENV)/bin/celery -A config worker --pool=solo --loglevel=INFO > var/worker.log 2>&1 & \
	  worker=$$!; DEBUG=1 $(VENV)/bin/celery -A config beat --loglevel=INFO \
	    --schedule var/celerybeat-schedule > var/beat.log 2>&1 & \
	  beat=$$!; trap "kill $$worker $$beat 2>/dev/null" EXIT; \
	  DEBUG=1 $(PY) manage.py runserver 127.0.0.1:8000 --noreload

# With PostgreSQL (CI sets DATABASE_URL) the two passes run side by side (scripts/test_both.sh);
# the PostgreSQL pass runs the tests that touch the database (tests/conftest.py).
test: install
	@if [[ "$${DATABASE_URL:-}" == postgres* ]]; then PY=$(PY) bash scripts/test_both.sh; \
	 else $(MAKE) test-sqlite; \
	   echo "DATABASE_URL is not PostgreSQL: the PostgreSQL pass is skipped (CI sets it)"; fi

test-sqlite: install
	env -u DATABASE_URL $(PY) -m pytest -q

test-postgres: install
	DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} $(PY) -m pytest -q

bench: install
	$(PY) bench/run_all.py

# Not a benchmark: bench/soak.py (README there); needs PostgreSQL on 127.0.0.1:5432 and
# redis-server on PATH (it runs its own on a private port).
soak: install
	$(PY) bench/soak.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

screenshots: install
	$(PY) scripts/screenshots.py

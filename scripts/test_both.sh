#!/usr/bin/env bash
# `make test` with PostgreSQL reachable: the SQLite and the PostgreSQL passes side by side, one
# core each, each with its own var folder (test database, event stores) and its own Redis
# database for the worker tests, so they never share state. Tests that touch the database run in
# both passes; the others (pure cores) are split between them (PURE_TESTS, tests/conftest.py).
# Each pass streams its lines with a prefix; the exit status is the first failure's.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export PYTHONUNBUFFERED=1  # lines reach the prefixing sed as they are written
BROKER=${CELERY_TEST_BROKER_URL:-redis://127.0.0.1:6379/15}
BROKER_BASE=${BROKER%/*}
PG=${DATABASE_URL:?the PostgreSQL pass needs DATABASE_URL}
mkdir -p var/test-sqlite var/test-postgres

env -u DATABASE_URL VAR_DIR=var/test-sqlite CELERY_TEST_BROKER_URL="$BROKER_BASE/14" PURE_TESTS=half-a \
  "$PY" -m pytest -q -p no:cacheprovider "$@" 2>&1 | sed -u 's/^/[sqlite] /' &
sqlite=$!
DATABASE_URL="$PG" VAR_DIR=var/test-postgres CELERY_TEST_BROKER_URL="$BROKER_BASE/15" PURE_TESTS=half-b \
  "$PY" -m pytest -q -p no:cacheprovider "$@" 2>&1 | sed -u 's/^/[postgres] /' &
postgres=$!

wait "$sqlite"; sqlite_rc=$?
wait "$postgres"; postgres_rc=$?
echo "SQLite pass: exit $sqlite_rc; PostgreSQL pass: exit $postgres_rc"
[ "$sqlite_rc" -eq 0 ] || exit "$sqlite_rc"
exit "$postgres_rc"

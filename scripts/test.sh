#!/usr/bin/env bash
# The whole check, as CI runs it: install, lint, type-check, layering contract, migrations,
# then the test suite on SQLite and on PostgreSQL, browser tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

# Browser tests drive Debian's Chromium (never a downloaded browser build).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing Debian chromium for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  else
    echo "warning: /usr/bin/chromium missing; install Debian's chromium package" >&2
  fi
fi

# Data sets of unstated licence are never in the repository: the tests read them from
# SIYU_SHARED_DATA, or ../shared/data when it exists, and skip them with a reason otherwise.
if [ -z "${SIYU_SHARED_DATA:-}" ] && [ -d ../shared/data ]; then
  SIYU_SHARED_DATA="$(cd ../shared/data && pwd)"
  export SIYU_SHARED_DATA
fi
PY=.venv/bin
echo "== ruff";   $PY/ruff check siyu tests bench
echo "== mypy";   $PY/mypy siyu
echo "== import-linter"; $PY/lint-imports
echo "== migrations match the models"
tmpdb="$(mktemp -d)/check.db"
SIYU_DATABASE_URL="sqlite:///$tmpdb" $PY/siyu db check
rm -rf "$(dirname "$tmpdb")"

PG_URL="${SIYU_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
workers="${PYTEST_WORKERS:-2}"
echo "== tests on SQLite"
$PY/pytest -q -n "$workers" -p no:cacheprovider "$@"
if $PY/python -c "import sys, psycopg; psycopg.connect('postgresql://postgres@127.0.0.1:5432/test', connect_timeout=3).close()" 2>/dev/null; then
  echo "== tests on PostgreSQL"
  SIYU_TEST_DATABASE_URL="$PG_URL" $PY/pytest -q -n "$workers" -p no:cacheprovider "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL on 127.0.0.1:5432 is required in CI" >&2
  exit 1
else
  echo "warning: PostgreSQL not reachable on 127.0.0.1:5432; skipped the PostgreSQL run" >&2
fi

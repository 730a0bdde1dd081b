#!/usr/bin/env bash
# The whole test suite: lint, types, import layers, then pytest (unit, end-to-end on the sandbox,
# integration against the Go-built Kubernetes control plane, which is built or reused from cache).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash tests/install-deps.sh   # Debian's PostgreSQL and Chromium for the tests, when missing
export DRILL_TEST_ARTIFACTS="${DRILL_TEST_ARTIFACTS:-$PWD/reports/test-artifacts}"   # screenshots kept here
echo "== ruff"
.venv/bin/ruff check orchestrator tests scripts
.venv/bin/ruff format --check orchestrator tests scripts
echo "== mypy (strict on orchestrator/)"
.venv/bin/mypy
echo "== import layers"
.venv/bin/lint-imports
echo "== test control plane"
bash tests/cluster/cluster.sh start
pg_dir=$(mktemp -d /tmp/drill-test-pg-XXXXXX)
trap 'bash tests/pg.sh stop "$pg_dir"; bash tests/cluster/cluster.sh stop' EXIT
echo "== test PostgreSQL"
DRILL_TEST_PG_URL=$(bash tests/pg.sh start "$pg_dir")
export DRILL_TEST_PG_URL
echo "== pytest"
.venv/bin/pytest "$@"

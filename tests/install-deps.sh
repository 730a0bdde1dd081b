#!/usr/bin/env bash
# What the tests need from the machine beyond the venv: Debian's PostgreSQL server (for tests/pg.sh).
# Installs only what is missing; apt-get update runs at most once.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: PostgreSQL is missing; run as root: apt-get update && apt-get install -y postgresql" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y postgresql

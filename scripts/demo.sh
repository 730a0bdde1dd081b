#!/usr/bin/env bash
# Set everything up and run a whole no-automation drill on the local sandbox (no cluster, no Slack).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/drill demo "$@"

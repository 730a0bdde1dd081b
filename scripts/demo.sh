#!/usr/bin/env bash
# Set everything up and run a whole no-automation drill on the local sandbox (no cluster, no Slack);
# --kubernetes: the Kubernetes example on the test control plane (scripts/demo-kubernetes.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--kubernetes" ]; then
  shift
  exec bash scripts/demo-kubernetes.sh "$@"   # the same on the test Kubernetes control plane
fi
bash scripts/setup.sh
exec .venv/bin/drill demo "$@"

#!/usr/bin/env bash
# The no-automation drill of drills/kubernetes/ end to end on the test control plane (tests/cluster),
# with the example Remediator operator running and a simulated responder:
#   bash scripts/demo.sh --kubernetes [--auto-respond STEPS]
# Builds the control plane the first time (tens of minutes on 2 cores; cached outside the repo), starts
# it (or reuses a running one), installs the real upstream CRDs and the example shop (namespace shop),
# starts the operator, runs `drill plan` then `drill run`, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
auto="ack=2s,diagnose=4s,mitigate=6s,resolve=9s"
if [ "${1:-}" = "--auto-respond" ]; then auto="$2"; fi

bash scripts/setup.sh >/dev/null
started_cluster=0
if ! bash tests/cluster/cluster.sh status >/dev/null 2>&1; then
  echo "== starting the test control plane (built first if not in the cache)"
  bash tests/cluster/cluster.sh start
  started_cluster=1
fi
eval "$(bash tests/cluster/cluster.sh env)"
export KUBECONFIG

echo "== CRDs (Argo CD, Flux, KEDA, VPA from their upstream releases) and the example shop"
crds="$(bash tests/cluster/fetch-crds.sh | tail -1)"
for f in "$crds"/*.yaml examples/remediator/crd.yaml; do
  kubectl apply --server-side --force-conflicts -f "$f" >/dev/null
done
kubectl wait --for condition=established --timeout=60s crd --all >/dev/null
kubectl apply -f drills/kubernetes/manifests/app.yaml >/dev/null
kubectl -n shop patch deployment web --type merge -p '{"spec":{"replicas":3}}' >/dev/null
kubectl -n shop rollout status deployment/web --timeout=120s

echo "== the Remediator operator (the automation this drill switches off)"
log="$(mktemp /tmp/drill-remediator-XXXXXX.log)"
.venv/bin/python examples/remediator/remediator.py --kubeconfig "$KUBECONFIG" --namespace shop 2>"$log" &
operator=$!
cleanup() {
  kill "$operator" 2>/dev/null || true
  wait "$operator" 2>/dev/null || true
  if [ "$started_cluster" = 1 ]; then bash tests/cluster/cluster.sh stop >/dev/null; fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do grep -q "listed" "$log" && break; sleep 0.1; done

echo "== drill plan"
.venv/bin/drill plan drills/kubernetes/no-automation.yaml
echo "== drill run"
set +e
.venv/bin/drill run drills/kubernetes/no-automation.yaml --auto-respond "$auto"
code=$?
set -e
echo "== what the operator did during the drill ($log)"
cat "$log"
exit "$code"

#!/usr/bin/env bash
# Test Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler (one multi-call binary built by build.sh) and kwok simulating a few nodes.
#
#   cluster.sh start    build if needed, start (or reuse a running healthy one), wait until ready
#   cluster.sh stop     stop every process it started (safe when nothing runs)
#   cluster.sh status   exit 0 when running and ready, 1 otherwise
#   cluster.sh env      print shell exports (KUBECONFIG, DRILL_KUBE_SERVER, ...)
#   cluster.sh stop-apiserver   stop ONLY kube-apiserver of a running cluster (SIGTERM: it stops listening at
#                               once; SIGKILL after DRILL_KUBE_APISERVER_STOP_GRACE=3 s, as it lingers on open
#                               watches); etcd and the other components keep running and retry (an API outage)
#   cluster.sh start-apiserver  start kube-apiserver again with the same flags as `start`, wait for /readyz
#                               (bounded by DRILL_KUBE_START_TIMEOUT); a no-op when it runs and is ready. On
#                               failure it prints the apiserver's log tail and leaves the rest running.
#   While the apiserver is stopped, `status` fails and `start` would restart the whole cluster from scratch:
#   use start-apiserver to end the outage.
#
# State directory ${DRILL_KUBE_STATE_DIR:-/tmp/drill-kube}: pki/, etcd/, logs/, pids/,
# kubeconfig, admin-token, audit.log. It is wiped on a fresh start (only if it holds our marker).
#
# Ports (127.0.0.1 only), all overridable:
#   DRILL_KUBE_APISERVER_PORT=16443  DRILL_KUBE_ETCD_CLIENT_PORT=12379  DRILL_KUBE_ETCD_PEER_PORT=12380
#   DRILL_KUBE_KCM_PORT=16444        DRILL_KUBE_SCHEDULER_PORT=16445
# Other knobs: DRILL_KUBE_NODES=3 (kwok nodes), DRILL_KUBE_START_TIMEOUT=120 (seconds).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${DRILL_KUBE_STATE_DIR:-/tmp/drill-kube}"
API_PORT="${DRILL_KUBE_APISERVER_PORT:-16443}"
ETCD_PORT="${DRILL_KUBE_ETCD_CLIENT_PORT:-12379}"
ETCD_PEER_PORT="${DRILL_KUBE_ETCD_PEER_PORT:-12380}"
KCM_PORT="${DRILL_KUBE_KCM_PORT:-16444}"
SCHED_PORT="${DRILL_KUBE_SCHEDULER_PORT:-16445}"
NODES="${DRILL_KUBE_NODES:-3}"
TIMEOUT="${DRILL_KUBE_START_TIMEOUT:-120}"
STOP_GRACE="${DRILL_KUBE_APISERVER_STOP_GRACE:-3}"
SERVER="https://127.0.0.1:$API_PORT"
SERVICE_CIDR="10.96.0.0/16"
MARKER=".drill-kube-state"
COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler kwok"
STOP_ON_FAIL=1  # fail_start stops the whole cluster (not for start-apiserver)

log() { echo "cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------- process bookkeeping
pidfile() { echo "$STATE/pids/$1.pid"; }

# alive NAME: the recorded pid runs and is still our process (its cmdline mentions the state dir)
alive() {
  local f pid
  f="$(pidfile "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$STATE" || return 1
  # a zombie is not alive
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]
}

# launch NAME CMD...: start detached (own session), stdout+stderr to logs/NAME.log
launch() {
  local name="$1"; shift
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$(pidfile "$name")"
}

tail_log() {
  local name="$1"
  echo "----- last lines of $STATE/logs/$name.log -----" >&2
  tail -n 40 "$STATE/logs/$name.log" >&2 2>/dev/null || true
  echo "-----" >&2
}

fail_start() {
  local what="$1" name="${2:-}"
  log "start failed: $what"
  if [ -n "$name" ]; then
    tail_log "$name"
  else
    for c in $COMPONENTS; do alive "$c" || { [ -f "$STATE/logs/$c.log" ] && tail_log "$c"; }; done
  fi
  [ "$STOP_ON_FAIL" = 0 ] || do_stop
  exit 1
}

# ---------------------------------------------------------------- API helpers
admin_token() { cat "$STATE/admin-token"; }

# api PATH [curl args...]: admin request, body on stdout, fails on HTTP >= 400
api() {
  local path="$1"; shift
  curl -sS --fail --max-time 10 --cacert "$STATE/pki/ca.crt" \
    -H "Authorization: Bearer $(admin_token)" "$@" "$SERVER$path"
}

api_ready() { [ "$(api /readyz 2>/dev/null)" = "ok" ]; }

nodes_ready() {
  local n ready
  ready="$(api /api/v1/nodes 2>/dev/null | jq -r '[.items[]
      | select(.metadata.annotations["kwok.x-k8s.io/node"] == "fake")
      | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length' 2>/dev/null)" || return 1
  [ -n "$ready" ] && [ "$ready" -ge "$NODES" ]
}

default_sa_exists() { api /api/v1/namespaces/default/serviceaccounts/default >/dev/null 2>&1; }

healthy() {
  [ -f "$STATE/$MARKER" ] && [ -f "$STATE/admin-token" ] || return 1
  for c in $COMPONENTS; do alive "$c" || return 1; done
  api_ready && default_sa_exists && nodes_ready
}

# wait_for DESCRIPTION DEADLINE FUNCTION: bounded poll; fails with log tails when a process dies
wait_for() {
  local what="$1" deadline="$2" fn="$3"
  while ! "$fn"; do
    for c in $COMPONENTS; do
      if [ -f "$(pidfile "$c")" ] && ! alive "$c"; then fail_start "$c exited while waiting for $what" "$c"; fi
    done
    [ "$(date +%s)" -lt "$deadline" ] || fail_start "timed out after ${TIMEOUT}s waiting for $what"
    sleep 0.3
  done
}

# ---------------------------------------------------------------- setup
gen_pki() {
  local p="$STATE/pki"
  mkdir -p "$p"
  (
    cd "$p"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 \
      -subj "/CN=drill-test-ca" >/dev/null 2>&1
    cat > apiserver.ext <<EOF
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" >/dev/null 2>&1
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver.crt -days 30 -extfile apiserver.ext >/dev/null 2>&1
    # service-account signing key pair
    openssl genrsa -out sa.key 2048 >/dev/null 2>&1
    openssl rsa -in sa.key -pubout -out sa.pub >/dev/null 2>&1
    chmod 600 ./*.key
  ) || die "PKI generation with openssl failed"
}

rand_token() { openssl rand -hex 24; }

# write_kubeconfig FILE USER TOKEN
write_kubeconfig() {
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: drill-test
  cluster:
    server: $SERVER
    certificate-authority: $STATE/pki/ca.crt
users:
- name: $2
  user:
    token: $3
contexts:
- name: drill-test
  context:
    cluster: drill-test
    user: $2
    namespace: default
current-context: drill-test
EOF
  chmod 600 "$1"
}

setup_state() {
  if [ -e "$STATE" ]; then
    if [ -f "$STATE/$MARKER" ]; then
      rm -rf "$STATE"
    elif [ -n "$(ls -A "$STATE" 2>/dev/null)" ]; then
      die "$STATE exists, is not empty and is not a drill-kube state dir; refusing to wipe it"
    fi
  fi
  mkdir -p "$STATE"/{logs,pids}
  chmod 700 "$STATE"
  touch "$STATE/$MARKER"
  gen_pki
  local admin kcm sched kwok
  admin="$(rand_token)"; kcm="$(rand_token)"; sched="$(rand_token)"; kwok="$(rand_token)"
  echo "$admin" > "$STATE/admin-token"
  chmod 600 "$STATE/admin-token"
  # token,user,uid,"group1,group2"
  cat > "$STATE/tokens.csv" <<EOF
$admin,drill-admin,uid-drill-admin,"system:masters"
$kcm,system:kube-controller-manager,uid-kcm
$sched,system:kube-scheduler,uid-scheduler
$kwok,kwok,uid-kwok,"system:masters"
EOF
  chmod 600 "$STATE/tokens.csv"
  write_kubeconfig "$STATE/kubeconfig" drill-admin "$admin"
  write_kubeconfig "$STATE/kcm.kubeconfig" system:kube-controller-manager "$kcm"
  write_kubeconfig "$STATE/scheduler.kubeconfig" system:kube-scheduler "$sched"
  write_kubeconfig "$STATE/kwok.kubeconfig" kwok "$kwok"
  # Audit: every write (by any user) at Metadata level; not reads, events, node-lease heartbeats,
  # nor the namespace controller's sweep of deleted namespaces.
  cat > "$STATE/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  resources:
  - group: ""
    resources: ["events"]
  - group: "events.k8s.io"
    resources: ["events"]
- level: None
  namespaces: ["kube-node-lease"]
# the namespace controller empties a deleted namespace with one deletecollection per resource type
- level: None
  users: ["system:serviceaccount:kube-system:namespace-controller"]
  verbs: ["deletecollection"]
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
EOF
}

create_node() {
  local name="$1"
  api /api/v1/nodes -X POST -H 'Content-Type: application/json' --data-binary @- >/dev/null <<EOF
{"apiVersion":"v1","kind":"Node","metadata":{"name":"$name",
 "annotations":{"kwok.x-k8s.io/node":"fake","node.alpha.kubernetes.io/ttl":"0"},
 "labels":{"type":"kwok","kubernetes.io/hostname":"$name","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64"}},
 "spec":{}}
EOF
}

# ---------------------------------------------------------------- commands
# launch_apiserver BIN: kube-apiserver with the cluster's flags (used by start and start-apiserver)
launch_apiserver() {
  local bin="$1"
  launch kube-apiserver "$bin/kubecluster" kube-apiserver \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file="$STATE/pki/apiserver.crt" --tls-private-key-file="$STATE/pki/apiserver.key" \
    --client-ca-file="$STATE/pki/ca.crt" \
    --token-auth-file="$STATE/tokens.csv" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$STATE/pki/sa.pub" \
    --service-account-signing-key-file="$STATE/pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --endpoint-reconciler-type=none \
    --allow-privileged=true \
    --audit-policy-file="$STATE/audit-policy.yaml" --audit-log-path="$STATE/audit.log" \
    --audit-log-format=json --audit-log-mode=blocking \
    --profiling=false --v=1
}

do_start() {
  if healthy; then
    log "already running and ready (state $STATE, server $SERVER)"
    return 0
  fi
  do_stop
  local port
  for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$API_PORT" "$KCM_PORT" "$SCHED_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port 127.0.0.1:$port is already in use (another cluster? see the DRILL_KUBE_*_PORT variables)"
    fi
  done
  local bin
  bin="$(bash "$here/build.sh" | tail -n 1)"
  [ -x "$bin/kubecluster" ] && [ -x "$bin/kwok" ] || die "build.sh did not produce binaries in '$bin'"
  local t0 deadline
  t0=$(date +%s)
  deadline=$((t0 + TIMEOUT))
  setup_state
  echo "$bin" > "$STATE/bin-dir"

  launch etcd "$bin/kubecluster" etcd \
    --name drill --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "drill=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn
  etcd_ready() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
  wait_for "etcd health" "$deadline" etcd_ready

  launch_apiserver "$bin"
  wait_for "kube-apiserver /readyz" "$deadline" api_ready

  launch kube-controller-manager "$bin/kubecluster" kube-controller-manager \
    --kubeconfig="$STATE/kcm.kubeconfig" \
    --authentication-kubeconfig="$STATE/kcm.kubeconfig" --authorization-kubeconfig="$STATE/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$STATE/pki/sa.key" \
    --root-ca-file="$STATE/pki/ca.crt" \
    --cluster-signing-cert-file="$STATE/pki/ca.crt" --cluster-signing-key-file="$STATE/pki/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --controllers='*' \
    --profiling=false --v=1

  launch kube-scheduler "$bin/kubecluster" kube-scheduler \
    --kubeconfig="$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/scheduler.kubeconfig" --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" \
    --leader-elect=false --profiling=false --v=1

  # kwok stages (tests/cluster/kwok): nodes initialise and heartbeat with leases, pods become
  # Ready, Job pods complete, deleted pods go away.
  local stage_args=() f
  for f in "$here"/kwok/*.yaml; do stage_args+=(-c "$f"); done
  launch kwok "$bin/kwok" \
    --kubeconfig="$STATE/kwok.kubeconfig" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --cidr=10.244.0.0/16 \
    --node-lease-duration-seconds=40 \
    "${stage_args[@]}"

  local i
  for ((i = 0; i < NODES; i++)); do
    create_node "kwok-node-$i" || fail_start "could not create node kwok-node-$i" kube-apiserver
  done
  wait_for "$NODES kwok nodes Ready" "$deadline" nodes_ready
  wait_for "ServiceAccount default/default" "$deadline" default_sa_exists
  log "ready in $(( $(date +%s) - t0 ))s: server $SERVER, kubeconfig $STATE/kubeconfig, audit log $STATE/audit.log"
}

do_stop() {
  [ -d "$STATE/pids" ] || return 0
  local c pid pids=()
  # reverse order: clients first, etcd last
  for c in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if alive "$c"; then
      pid="$(cat "$(pidfile "$c")")"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  local deadline=$(( $(date +%s) + 15 ))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]; do
      if [ "$(date +%s)" -ge "$deadline" ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
      sleep 0.1
    done
  done
  rm -f "$STATE"/pids/*.pid
  [ "${#pids[@]}" -eq 0 ] || log "stopped ${#pids[@]} processes"
}

# stop_pid PID GRACE: SIGTERM, then SIGKILL if it is still there after GRACE s; returns once it is gone
stop_pid() {
  local pid="$1" deadline=$(( $(date +%s) + $2 )) killed=0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      [ "$killed" = 0 ] || break
      kill -KILL "$pid" 2>/dev/null || true
      killed=1 deadline=$(( $(date +%s) + 5 ))
    fi
    sleep 0.1
  done
}

# An API server outage: only kube-apiserver stops; etcd, the controllers, the scheduler and kwok keep running.
do_stop_apiserver() {
  [ -f "$STATE/$MARKER" ] || die "no cluster state in $STATE: nothing to stop"
  if ! alive kube-apiserver; then
    rm -f "$(pidfile kube-apiserver)"
    log "kube-apiserver is not running"
    return 0
  fi
  local pid
  pid="$(cat "$(pidfile kube-apiserver)")"
  # On SIGTERM it stops listening at once (the outage starts) and flushes its audit log, then lingers while
  # the other components' watch connections stay open: killed after the grace.
  stop_pid "$pid" "$STOP_GRACE"
  rm -f "$(pidfile kube-apiserver)"
  log "kube-apiserver stopped (pid $pid)"
}

do_start_apiserver() {
  [ -f "$STATE/$MARKER" ] && [ -f "$STATE/bin-dir" ] || die "no cluster state in $STATE: use start"
  alive etcd || die "etcd is not running: use start (it restarts the whole cluster)"
  if alive kube-apiserver && api_ready; then
    log "kube-apiserver already running and ready (pid $(cat "$(pidfile kube-apiserver)"))"
    return 0
  fi
  if alive kube-apiserver; then  # running but not ready: wait for it like a fresh one
    log "kube-apiserver runs (pid $(cat "$(pidfile kube-apiserver)")) but is not ready yet"
  else
    local bin
    bin="$(cat "$STATE/bin-dir")"
    [ -x "$bin/kubecluster" ] || die "no kubecluster binary in '$bin'"
    ! (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null || die "port 127.0.0.1:$API_PORT is already in use"
    launch_apiserver "$bin"
  fi
  local t0
  t0=$(date +%s)
  STOP_ON_FAIL=0
  wait_for "kube-apiserver /readyz" "$((t0 + TIMEOUT))" api_ready
  log "kube-apiserver ready in $(( $(date +%s) - t0 ))s (pid $(cat "$(pidfile kube-apiserver)"))"
}

do_status() {
  local c rc=0
  for c in $COMPONENTS; do
    if alive "$c"; then echo "$c: running (pid $(cat "$(pidfile "$c")"))"; else echo "$c: not running"; rc=1; fi
  done
  if healthy; then echo "ready: $SERVER"; else echo "not ready"; rc=1; fi
  return $rc
}

do_env() {
  cat <<EOF
export KUBECONFIG=$STATE/kubeconfig
export DRILL_KUBE_STATE_DIR=$STATE
export DRILL_KUBE_SERVER=$SERVER
export DRILL_KUBE_AUDIT_LOG=$STATE/audit.log
export DRILL_KUBE_ADMIN_TOKEN_FILE=$STATE/admin-token
EOF
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  env) do_env ;;
  stop-apiserver) do_stop_apiserver ;;
  start-apiserver) do_start_apiserver ;;
  *) echo "usage: $0 start|stop|status|env|stop-apiserver|start-apiserver" >&2; exit 2 ;;
esac

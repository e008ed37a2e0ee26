#!/usr/bin/env bash
# `make run`: the local control plane, the CRD, a sample project pod whose exec
# runs in a real git repository on this machine, the operator, a sample
# Session with its web UI on, and `kubectl session open` serving that web UI on
# a local URL. Ctrl-C stops the operator, the port-forward and the demo web UI.
# RDEV_RUN_EXIT=1 exits (and stops them) as soon as the web UI's URL serves.
# RDEV_CLUSTER_DIR / RDEV_CLUSTER_NAME pick the cluster (default: .cluster, rdev).
# The web UI is the real Claude Code UI when Node >= 20 and npm are here
# (installed once by images/project/install-webui.sh, cached by hack/webui.sh);
# otherwise, or with RDEV_DEMO_WEBUI=standin, a stand-in that serves the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export RDEV_CLUSTER_DIR="${RDEV_CLUSTER_DIR:-$ROOT/.cluster}"
CLUSTER_DIR="$RDEV_CLUSTER_DIR"
START=$SECONDS
bash hack/controlplane.sh up
export KUBECONFIG="$CLUSTER_DIR/kubeconfig"
DEMO="$CLUSTER_DIR/demo"
PLUGIN="$ROOT/.venv/bin/kubectl-session"

# Bounded polling: `until_ok TRIES CMD...` runs CMD every 0.25 s until it succeeds.
until_ok() {
  local tries=$1 i
  shift
  for ((i = 0; i < tries; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  echo "run: gave up waiting for: $*" >&2
  return 1
}

kubectl apply --server-side -f crds/sessions.rdev.io.yaml >/dev/null
kubectl wait --for=condition=Established crd/sessions.rdev.io --timeout=60s >/dev/null

if [[ ! -d "$DEMO/repo" ]]; then
  echo "run: creating a demo repository in $DEMO"
  mkdir -p "$DEMO/sessions"
  git init -q --bare -b main "$DEMO/origin.git"
  git clone -q "$DEMO/origin.git" "$DEMO/seed" 2>/dev/null
  (
    cd "$DEMO/seed"
    git checkout -q -b main
    echo "# demo" >README.md
    git add README.md
    git -c user.email=demo@rdev.io -c user.name=demo commit -q -m "initial commit"
    git push -q origin main
    git checkout -q -b feature/hello
    echo "<h1>hello from a session</h1>" >index.html
    git add index.html
    git -c user.email=demo@rdev.io -c user.name=demo commit -q -m "hello page"
    git push -q origin feature/hello
  )
  git clone -q "$DEMO/origin.git" "$DEMO/repo"
fi

kubectl get ns demo >/dev/null 2>&1 || kubectl create ns demo >/dev/null
until_ok 240 kubectl -n demo get sa default
kubectl apply -f - >/dev/null <<YAML
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Exec
metadata: {name: demo-0, namespace: demo}
spec:
  execs:
  - local: {workDir: $DEMO/repo}
---
apiVersion: v1
kind: Pod
metadata:
  name: demo-0
  namespace: demo
  labels: {rdev.io/project: demo}
  annotations:
    rdev.io/repo-path: $DEMO/repo
    rdev.io/worktree-root: $DEMO/sessions
spec:
  automountServiceAccountToken: false
  containers: [{name: dev, image: "project:dev"}]
YAML
kubectl -n demo wait --for=condition=Ready pod/demo-0 --timeout=60s >/dev/null
# kwok loads Exec objects from a watch: until it has, the pod's exec runs
# elsewhere and the first checkout would fail. Wait until it runs in the repo.
REPO_REAL="$(cd "$DEMO/repo" && pwd -P)"
exec_in_repo() { [[ "$(kubectl -n demo exec demo-0 -- pwd -P 2>/dev/null)" == "$REPO_REAL" ]]; }
until_ok 240 exec_in_repo

free_port() { "$ROOT/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# kwok runs the pod's processes here: the demo web UI listens on a local port of
# its own, and a kwok PortForward maps the same pod port to it.
# The port is kept per cluster, so a web UI left running by an earlier run still matches.
[[ -s "$DEMO/webui.port" ]] || echo "${RDEV_DEMO_WEBUI_PORT:-$(free_port)}" >"$DEMO/webui.port"
WEBUI_LOCAL_PORT="${RDEV_DEMO_WEBUI_PORT:-$(cat "$DEMO/webui.port")}"
export RDEV_NAMESPACES=demo
# The pod's web UI port is the local one: the operator's health check (an exec,
# run here by kwok) then reaches the UI, and the PortForward maps it 1:1.
export RDEV_WEBUI_PORT="$WEBUI_LOCAL_PORT"
EXPECT="hello from a session"
if [[ -z "${RDEV_WEBUI_COMMAND:-}" && "${RDEV_DEMO_WEBUI:-}" != "standin" ]]; then
  if REAL_UI="$(bash hack/webui.sh)"; then
    export RDEV_WEBUI_COMMAND="$REAL_UI" RDEV_WEBUI_HEALTH_PATH=/health
    EXPECT="Claude Code UI"
    echo "run: the web UI is Claude Code UI ($REAL_UI)"
  else
    echo "run: using the stand-in web UI (the real one cannot be installed here; see above)"
  fi
fi
export RDEV_WEBUI_HEALTH_PATH="${RDEV_WEBUI_HEALTH_PATH:-}"  # the stand-in has no /health
export RDEV_WEBUI_COMMAND="${RDEV_WEBUI_COMMAND:-$ROOT/.venv/bin/python $ROOT/hack/demo/webui.py --listen $WEBUI_LOCAL_PORT}"
export RDEV_METRICS_PORT="${RDEV_METRICS_PORT:-8000}" RDEV_HEALTH_PORT="${RDEV_HEALTH_PORT:-8080}"
# A web UI stopped with an earlier run is found dead and started again within seconds.
export RDEV_WEBUI_CHECK_INTERVAL="${RDEV_WEBUI_CHECK_INTERVAL:-5s}"
.venv/bin/python -m session_operator >"$CLUSTER_DIR/operator.log" 2>&1 &
OPERATOR=$!
OPEN=""
cleanup() {
  [[ -z "$OPEN" ]] || kill "$OPEN" 2>/dev/null || true
  kill "$OPERATOR" 2>/dev/null || true
  [[ -z "$OPEN" ]] || wait "$OPEN" 2>/dev/null || true
  wait "$OPERATOR" 2>/dev/null || true
  # The web UI is detached from the exec that started it: stop it too.
  local pidfile="$DEMO/sessions/.rdev/hello/webui.pid"
  [[ ! -f "$pidfile" ]] || kill "$(cat "$pidfile")" 2>/dev/null || true
}
trap cleanup EXIT
echo "run: operator started (pid $OPERATOR, log $CLUSTER_DIR/operator.log, metrics :$RDEV_METRICS_PORT)"

# A session ended by an earlier run (checkin, expiry) is replaced by a fresh one.
PHASE="$(kubectl -n demo get sess hello -o jsonpath='{.status.phase}' 2>/dev/null || true)"
if [[ "$PHASE" == "Ended" || "$PHASE" == "Expired" || "$PHASE" == "Failed" ]]; then
  echo "run: session hello is $PHASE; creating it again"
  kubectl -n demo delete sess hello --timeout=60s >/dev/null
fi
kubectl apply -f hack/demo/session.yaml
"$PLUGIN" -n demo wait hello --for Ready --timeout 120s >/dev/null

# The web UI on, its pod port forwarded to it, and a local URL for it.
kubectl -n demo patch sess hello --type merge -p '{"spec":{"webUI":true}}' >/dev/null
kubectl -n demo wait --for=jsonpath='{.status.webUI}'=Running session/hello --timeout=60s >/dev/null
kubectl apply -f - >/dev/null <<YAML
apiVersion: kwok.x-k8s.io/v1alpha1
kind: PortForward
metadata: {name: demo-0, namespace: demo}
spec:
  forwards:
  - ports: [$WEBUI_LOCAL_PORT]
    target: {port: $WEBUI_LOCAL_PORT, address: 127.0.0.1}
YAML
rm -f "$CLUSTER_DIR/open.url"  # an earlier run's URL must not be taken for this one's
"$PLUGIN" -n demo open hello --web-ui --port-only >"$CLUSTER_DIR/open.url" 2>"$CLUSTER_DIR/open.log" &
OPEN=$!
has_url() { [[ -s "$CLUSTER_DIR/open.url" ]]; }
until_ok 120 has_url
URL="$(head -n 1 "$CLUSTER_DIR/open.url")"
# kwok picks the PortForward up from a watch: the URL serves once it has.
serves() {
  local page
  page="$(curl -fsS --max-time 5 "$URL/")" && [[ "$page" == *"$EXPECT"* ]]
}
until_ok 120 serves
kubectl -n demo get sess
echo
echo "run: the web UI of session hello serves at $URL ($((SECONDS - START))s after start)"
echo "     (kubectl session open hello -n demo, running in the background; log $CLUSTER_DIR/open.log)"
echo
echo "Try (kubectl finds the plugin on PATH; or run $PLUGIN directly):"
echo "  export KUBECONFIG=$KUBECONFIG PATH=$ROOT/.venv/bin:\$PATH"
echo "  kubectl session list -n demo"
echo "  kubectl session describe hello -n demo"
echo "  kubectl session exec hello -n demo -- git status --short"
echo "  kubectl session clone hello -n demo        # git clone rdev://demo/hello: push and pull"
echo "  kubectl session logs hello -n demo"
echo "  kubectl session extend hello -n demo --by 2h"
echo "  kubectl session checkin hello -n demo --wait"
if [[ "${RDEV_RUN_EXIT:-}" == "1" ]]; then
  exit 0
fi
echo "Operator and port-forward running; Ctrl-C to stop them (make cluster-down removes the cluster)."
wait "$OPERATOR"

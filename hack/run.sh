#!/usr/bin/env bash
# `make run`: the local control plane, the CRD, a sample project pod whose exec
# runs in a real git repository on this machine, the operator, and a sample
# Session. Prints `kubectl get sess` once it is Active; Ctrl-C stops the operator.
# RDEV_RUN_EXIT=1 exits (and stops the operator) as soon as the Session is Active.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
bash hack/controlplane.sh up
export KUBECONFIG="$ROOT/.cluster/kubeconfig"
DEMO="$ROOT/.cluster/demo"

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
for _ in $(seq 1 120); do kubectl -n demo get sa default >/dev/null 2>&1 && break; sleep 0.5; done
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

export RDEV_NAMESPACES=demo
export RDEV_WEBUI_COMMAND="${RDEV_WEBUI_COMMAND:-$ROOT/.venv/bin/python $ROOT/hack/demo/webui.py}"
export RDEV_METRICS_PORT="${RDEV_METRICS_PORT:-8000}" RDEV_HEALTH_PORT="${RDEV_HEALTH_PORT:-8080}"
.venv/bin/python -m session_operator >"$ROOT/.cluster/operator.log" 2>&1 &
OPERATOR=$!
cleanup() {
  kill "$OPERATOR" 2>/dev/null || true
  wait "$OPERATOR" 2>/dev/null || true
}
trap cleanup EXIT
echo "run: operator started (pid $OPERATOR, log .cluster/operator.log, metrics :$RDEV_METRICS_PORT)"

kubectl apply -f hack/demo/session.yaml
kubectl -n demo wait --for=condition=Ready session/hello --timeout=120s >/dev/null
kubectl -n demo get sess
echo
echo "The Session is Active. Its worktree: $DEMO/sessions/hello"
echo "Try: export KUBECONFIG=$KUBECONFIG"
echo "     kubectl -n demo patch sess hello --type merge -p '{\"spec\":{\"webUI\":true}}'"
echo "     kubectl -n demo patch sess hello --type merge -p '{\"spec\":{\"checkin\":{}}}'"
if [[ "${RDEV_RUN_EXIT:-}" == "1" ]]; then
  exit 0
fi
echo "Operator running; Ctrl-C to stop it (make cluster-down removes the cluster)."
wait "$OPERATOR"

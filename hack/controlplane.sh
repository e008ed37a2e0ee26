#!/usr/bin/env bash
# Builds (once per version, cached outside the repo) and runs a real Kubernetes
# control plane for tests and local runs: kube-apiserver, kube-controller-manager,
# kube-scheduler and etcd built from Go modules, with kwok simulating nodes,
# pods and exec. Nothing here downloads a prebuilt binary.
#
#   hack/controlplane.sh install   build or reuse the binaries, print their folder
#   hack/controlplane.sh up        start the cluster, write .cluster/kubeconfig
#   hack/controlplane.sh down      stop every process and remove the state
#   hack/controlplane.sh bin-dir   print the folder the binaries live in
set -euo pipefail

KUBE_VERSION="${RDEV_KUBE_VERSION:-1.36.1}"   # kwok v0.8.0 was made for 1.36.1
ETCD_VERSION="${RDEV_ETCD_VERSION:-3.6.8}"    # the etcd that Kubernetes 1.36.1 pins
KWOK_VERSION="${RDEV_KWOK_VERSION:-0.8.0}"
# ShardedListAndWatch (alpha since 1.36, KEP-5866) lets sharded operators ask the
# API server for a slice of the namespaces. Set RDEV_KUBE_FEATURE_GATES= (empty)
# for a control plane without it, e.g. to see a sharded operator refuse to start.
FEATURE_GATES="${RDEV_KUBE_FEATURE_GATES-ShardedListAndWatch=true}"
CACHE_ROOT="${RDEV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rdev-controlplane}"
BIN_DIR="$CACHE_ROOT/k8s-v$KUBE_VERSION-etcd-v$ETCD_VERSION-kwok-v$KWOK_VERSION/bin"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${RDEV_CLUSTER_DIR:-$ROOT/.cluster}"
CLUSTER_NAME="${RDEV_CLUSTER_NAME:-rdev}"
KWOK_WORKDIR="$CLUSTER_DIR/kwok"

log() { echo "controlplane: $*" >&2; }

have_all() {
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler etcd kwok kwokctl; do
    [[ -x "$BIN_DIR/$b" ]] || return 1
  done
}

build_kube() {
  local mod minor
  mod="$(mktemp -d)"
  minor="${KUBE_VERSION#*.}"; minor="${minor%%.*}"
  log "building Kubernetes v$KUBE_VERSION components in $mod"
  (
    cd "$mod"
    go mod init rdev.local/kubebuild >/dev/null 2>&1
    # k8s.io/kubernetes pins its staging modules at v0.0.0 with local replaces,
    # which do not apply to a dependent module: pin each to its release.
    local gomod
    gomod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$KUBE_VERSION.mod"
    go mod download "k8s.io/kubernetes@v$KUBE_VERSION"
    {
      echo "require k8s.io/kubernetes v$KUBE_VERSION"
      echo "replace ("
      sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 v0.'"$minor.${KUBE_VERSION##*.}"'#p' "$gomod"
      echo ")"
    } >>go.mod
    cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
    go mod tidy >/dev/null
    local ld="-s -w"
    local pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    local c
    for c in kube-apiserver kube-controller-manager kube-scheduler; do
      log "go build $c"
      CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$BIN_DIR/$c" "k8s.io/kubernetes/cmd/$c"
    done
  )
  rm -rf "$mod"
}

build_etcd() {
  log "building etcd v$ETCD_VERSION"
  local mod
  mod="$(mktemp -d)"
  (
    cd "$mod"
    go mod init rdev.local/etcdbuild >/dev/null 2>&1
    # etcd's server module replaces its sibling modules with local paths, which
    # `go install pkg@version` refuses: pin each sibling to the same release.
    cat >>go.mod <<MOD
require go.etcd.io/etcd/server/v3 v$ETCD_VERSION
replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v$ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 v$ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 v$ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 v$ETCD_VERSION
)
MOD
    cat >tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3/etcdmain"
GO
    go mod tidy >/dev/null
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$mod"
}

build_kwok() {
  log "building kwok and kwokctl v$KWOK_VERSION"
  local ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION"
  CGO_ENABLED=0 GOBIN="$BIN_DIR" go install -trimpath -ldflags "$ld" \
    "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@v$KWOK_VERSION"
}

install() {
  mkdir -p "$BIN_DIR"
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
    log "using kube-apiserver and etcd from KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
    ln -sf "$KUBEBUILDER_ASSETS/kube-apiserver" "$BIN_DIR/kube-apiserver"
    ln -sf "$KUBEBUILDER_ASSETS/etcd" "$BIN_DIR/etcd"
  fi
  local start=$SECONDS
  # Kubernetes pins a Go at least as new as its go.mod says; fall back to a newer toolchain.
  export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
  [[ -x "$BIN_DIR/kube-apiserver" && -x "$BIN_DIR/kube-controller-manager" && -x "$BIN_DIR/kube-scheduler" ]] || build_kube
  [[ -x "$BIN_DIR/etcd" ]] || build_etcd
  [[ -x "$BIN_DIR/kwok" && -x "$BIN_DIR/kwokctl" ]] || build_kwok
  have_all
  log "binaries ready in $BIN_DIR ($((SECONDS - start))s)"
}

kwokctl_() {
  KWOK_WORKDIR="$KWOK_WORKDIR" "$BIN_DIR/kwokctl" --name "$CLUSTER_NAME" "$@"
}

write_config() {
  # Bind every component to loopback; point kwokctl at the machine's kubectl so
  # it never tries to download one.
  cat >"$CLUSTER_DIR/kwokctl.yaml" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  bindAddress: 127.0.0.1
  kubectlBinary: $(command -v kubectl)
YAML
  if [[ -n "${RDEV_AUDIT_POLICY:-}" ]]; then
    cat >>"$CLUSTER_DIR/kwokctl.yaml" <<YAML
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - {key: audit-policy-file, value: ${RDEV_AUDIT_POLICY}}
  - {key: audit-log-path, value: $CLUSTER_DIR/audit.log}
YAML
  fi
}

wait_ready() {
  local i
  for i in $(seq 1 240); do
    if kubectl --kubeconfig "$CLUSTER_DIR/kubeconfig" get --raw /readyz >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  log "API server did not become ready; logs in $KWOK_WORKDIR/clusters/$CLUSTER_NAME/logs"
  return 1
}

up() {
  have_all || install >/dev/null
  command -v kubectl >/dev/null || { log "kubectl is required on PATH"; exit 1; }
  mkdir -p "$CLUSTER_DIR"
  local start=$SECONDS
  if [[ -d "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" ]]; then
    log "cluster $CLUSTER_NAME exists; starting any stopped component"
    kwokctl_ start cluster >&2
  else
    write_config
    kwokctl_ create cluster \
      --config "$CLUSTER_DIR/kwokctl.yaml" \
      --kubeconfig "$CLUSTER_DIR/kubeconfig" \
      --runtime binary \
      --kube-apiserver-binary "$BIN_DIR/kube-apiserver" \
      --kube-controller-manager-binary "$BIN_DIR/kube-controller-manager" \
      --kube-scheduler-binary "$BIN_DIR/kube-scheduler" \
      --etcd-binary "$BIN_DIR/etcd" \
      --kwok-controller-binary "$BIN_DIR/kwok" \
      --kube-authorization=true \
      --kube-admission=true \
      ${FEATURE_GATES:+--kube-feature-gates "$FEATURE_GATES"} \
      --enable-crds Exec,ClusterExec,PortForward,ClusterPortForward >&2
  fi
  kwokctl_ get kubeconfig >"$CLUSTER_DIR/kubeconfig"
  wait_ready
  # kwok simulates whatever Nodes exist; make sure there is one for pods.
  kubectl --kubeconfig "$CLUSTER_DIR/kubeconfig" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-0}
spec:
  podCIDR: 10.244.0.0/16
YAML
  log "cluster up in $((SECONDS - start))s; kubeconfig: $CLUSTER_DIR/kubeconfig"
}

# Processes started for this cluster carry its work folder in their arguments.
cluster_pids() {
  pgrep -f -- "$KWOK_WORKDIR/" || true
}

# TERM whatever kwokctl left running, then KILL what outlives the bound, so no
# component survives the removal of its state.
stop_leftovers() {
  local pids i
  pids="$(cluster_pids)"
  [[ -n "$pids" ]] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for i in $(seq 1 "${RDEV_DOWN_GRACE_TICKS:-20}"); do
    pids="$(cluster_pids)"
    [[ -n "$pids" ]] || return 0
    sleep 0.5
  done
  log "killing processes that outlived SIGTERM: $(echo $pids)"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  for i in $(seq 1 20); do
    [[ -n "$(cluster_pids)" ]] || return 0
    sleep 0.5
  done
  log "processes still running after SIGKILL: $(echo "$(cluster_pids)")"
  return 1
}

down() {
  if [[ -x "$BIN_DIR/kwokctl" && -d "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" ]]; then
    timeout 120 env KWOK_WORKDIR="$KWOK_WORKDIR" "$BIN_DIR/kwokctl" --name "$CLUSTER_NAME" \
      delete cluster --kubeconfig "$CLUSTER_DIR/kubeconfig" >&2 2>/dev/null || true
  fi
  stop_leftovers
  rm -rf "$CLUSTER_DIR"
}

case "${1:-}" in
  install) install; echo "$BIN_DIR" ;;
  up) up ;;
  down) down ;;
  bin-dir) echo "$BIN_DIR" ;;
  *) echo "usage: $0 install|up|down|bin-dir" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The Prometheus Operator's CRDs (ServiceMonitor, PrometheusRule, ...) that
# manifests/components/monitoring needs, taken from the prometheus-operator Go
# module at a pinned version: fetched once through the Go module proxy into the
# Go module cache (as hack/controlplane.sh gets Kubernetes), then read offline.
#
#   hack/monitoring-crds.sh download          fetch the module (part of `make setup`)
#   hack/monitoring-crds.sh paths [PLURAL...] print CRD files, one a line
#                                             (default: servicemonitors prometheusrules)
#   hack/monitoring-crds.sh dir               print the folder holding all its CRDs
#   hack/monitoring-crds.sh copy DEST         copy all its CRDs into DEST
#   hack/monitoring-crds.sh version           print the pinned version
#
# Install the CRDs on a cluster (they are large: server-side apply):
#   kubectl apply --server-side $(sed 's/^/-f /' <(hack/monitoring-crds.sh paths))
set -euo pipefail

PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
MODULE=github.com/prometheus-operator/prometheus-operator
CRD_SUBDIR=example/prometheus-operator-crd

log() { echo "monitoring-crds: $*" >&2; }

# The module's folder in the module cache; downloads it the first time only
# (a version already in the cache is read without the network).
module_dir() {
  command -v go >/dev/null || { log "go is required on PATH"; exit 1; }
  local tmp out dir
  tmp="$(mktemp -d)"
  # Outside any module and workspace, so nothing in the caller's folder interferes.
  if ! out="$(cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" \
    go mod download -json "$MODULE@$PROMETHEUS_OPERATOR_VERSION" 2>&1)"; then
    rm -rf "$tmp"
    log "go mod download $MODULE@$PROMETHEUS_OPERATOR_VERSION failed:"
    echo "$out" >&2
    exit 1
  fi
  rm -rf "$tmp"
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$out")"
  if [[ -z "$dir" || ! -d "$dir/$CRD_SUBDIR" ]]; then
    log "no $CRD_SUBDIR in $MODULE@$PROMETHEUS_OPERATOR_VERSION (go said: $out)"
    exit 1
  fi
  echo "$dir"
}

crd_dir() { echo "$(module_dir)/$CRD_SUBDIR"; }

paths() {
  local dir plural
  dir="$(crd_dir)"
  (($# > 0)) || set -- servicemonitors prometheusrules
  for plural in "$@"; do
    local file="$dir/monitoring.coreos.com_${plural}.yaml"
    [[ -f "$file" ]] || { log "no CRD for '$plural' in $dir"; exit 1; }
    echo "$file"
  done
}

copy() {
  local dest="${1:?usage: $0 copy DEST}" dir
  dir="$(crd_dir)"
  mkdir -p "$dest"
  cp "$dir"/*.yaml "$dest"/
  chmod u+w "$dest"/*.yaml  # the module cache is read-only
  ls "$dest"/*.yaml
}

case "${1:-}" in
  download) module_dir >/dev/null && log "$MODULE@$PROMETHEUS_OPERATOR_VERSION is in the module cache" ;;
  paths) shift; paths "$@" ;;
  dir) crd_dir ;;
  copy) shift; copy "$@" ;;
  version) echo "$PROMETHEUS_OPERATOR_VERSION" ;;
  *) echo "usage: $0 download|paths [PLURAL...]|dir|copy DEST|version" >&2; exit 2 ;;
esac

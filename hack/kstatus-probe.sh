#!/usr/bin/env bash
# Builds (once per version and source, cached beside the control-plane binaries)
# the kstatus probe: hack/kstatus-probe/main.go compiled against
# sigs.k8s.io/cli-utils, the library Flux, kpt and cli-utils judge health with.
# Like hack/controlplane.sh: a temporary module, Go modules only, no prebuilt binary.
#
#   hack/kstatus-probe.sh install   build or reuse the probe, print its path
#   hack/kstatus-probe.sh path      print where the probe is (built or not)
#
# The probe reads Session JSON on stdin and prints kstatus's verdict per object.
set -euo pipefail

CLI_UTILS_VERSION="${RDEV_CLI_UTILS_VERSION:-0.37.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/hack/kstatus-probe/main.go"
CACHE_ROOT="${RDEV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rdev-controlplane}"
# Keyed by the library version and the probe's source, so an edit rebuilds it.
SRC_SUM="$(sha256sum "$SRC" | cut -c1-12)"
BIN="$CACHE_ROOT/kstatus-probe-cli-utils-v$CLI_UTILS_VERSION-$SRC_SUM/kstatus-probe"

log() { echo "kstatus-probe: $*" >&2; }

# Run quietly; on failure show what the command said.
quiet() {
  local out
  out="$("$@" 2>&1)" || { log "$* failed:"; echo "$out" >&2; return 1; }
}

build() {
  command -v go >/dev/null || { log "go is required on PATH"; exit 1; }
  local mod
  mod="$(mktemp -d)"
  log "building against sigs.k8s.io/cli-utils v$CLI_UTILS_VERSION in $mod"
  (
    cd "$mod"
    export GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
    go mod init rdev.local/kstatusprobe >/dev/null 2>&1
    cp "$SRC" main.go
    quiet go get "sigs.k8s.io/cli-utils@v$CLI_UTILS_VERSION"
    quiet go mod tidy
    mkdir -p "$(dirname "$BIN")"
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" .
    mv "$BIN.tmp" "$BIN"
  )
  rm -rf "$mod"
}

case "${1:-}" in
  install)
    [[ -x "$BIN" ]] || build
    echo "$BIN"
    ;;
  path) echo "$BIN" ;;
  *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The README's test command: lint, types, the CRD is current, then the whole
# suite on a fresh local control plane, which is always stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
$BIN/ruff check operator tests bench
$BIN/ruff format --check operator tests bench
$BIN/mypy
$BIN/python -m session_operator.crd --check
$BIN/python -m session_operator.docsgen --check
bash hack/controlplane.sh down
trap 'bash hack/controlplane.sh down' EXIT
bash hack/controlplane.sh up
export KUBECONFIG="$PWD/.cluster/kubeconfig"
export RDEV_TEST_USE_CLUSTER=1
$BIN/pytest -q -p no:cacheprovider "$@" tests

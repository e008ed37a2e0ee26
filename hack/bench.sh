#!/usr/bin/env bash
# Benchmark of the Session operator on a second local control plane ("bench"),
# side by side with the default one (.cluster), which it never touches.
#
#   hack/bench.sh --quick            N=50, 25/100 Active, a queue of 20 (make bench-quick)
#   hack/bench.sh --full             N=500, 500/2,000 Active + resume, a queue of 100 (make bench)
#   hack/bench.sh --quick --n 20     any N; other flags go to bench/run.py (--help)
#   hack/bench.sh --quick --keep     leave the bench cluster up afterwards (a warm start next time)
#   hack/bench.sh --quick --no-audit start the cluster without the audit log (counts then
#                                    come from apiserver_request_total, less exactly)
#   hack/bench.sh --shards           1 replica against 4 shards, and a failover: 8,000
#                                    Active Sessions in 80 namespaces (make bench-shards);
#                                    --sessions N to scale down, other flags to
#                                    bench/shards.py (--help)
#   hack/bench.sh down               stop the bench cluster
#
# The cluster is started if it is not up, with bench/audit-policy.yaml unless
# --no-audit; it is torn down at the end unless --keep. Results go to
# bench/results/<mode>.json and .png; a table is printed on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

# The cluster: RDEV_BENCH_CLUSTER_{NAME,DIR}, else RDEV_CLUSTER_{NAME,DIR} (as for
# hack/controlplane.sh), else "bench" in .cluster-bench. Never the default .cluster:
# the run tears its cluster down at the end.
export RDEV_CLUSTER_NAME="${RDEV_BENCH_CLUSTER_NAME:-${RDEV_CLUSTER_NAME:-bench}}"
export RDEV_CLUSTER_DIR="${RDEV_BENCH_CLUSTER_DIR:-${RDEV_CLUSTER_DIR:-$PWD/.cluster-bench}}"
if [[ "$(realpath -m "$RDEV_CLUSTER_DIR")" == "$(realpath -m "$PWD/.cluster")" ]]; then
  echo "bench: refusing to use the default cluster ($RDEV_CLUSTER_DIR); set RDEV_BENCH_CLUSTER_DIR" >&2
  exit 2
fi
PY=.venv/bin/python

mode=quick keep=0 audit=1
args=()
while (($#)); do
  case "$1" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --shards) mode=shards ;;
    --keep) keep=1 ;;
    --no-audit) audit=0 ;;
    down) bash hack/controlplane.sh down; exit 0 ;;
    *) args+=("$1") ;;
  esac
  shift
done

[[ -x $PY ]] || { echo "bench: $PY missing; run make setup" >&2; exit 2; }
# The optional "bench" extra (matplotlib for the plot, py-spy for --profile).
if [[ $mode != shards ]] && ! "$PY" -c "import matplotlib" >/dev/null 2>&1; then
  .venv/bin/pip install --quiet -e ".[bench]"
fi

up() {
  kubectl --kubeconfig "$RDEV_CLUSTER_DIR/kubeconfig" get --raw /readyz >/dev/null 2>&1
}

started=0
if up; then
  echo "bench: reusing the running cluster $RDEV_CLUSTER_NAME ($RDEV_CLUSTER_DIR)" >&2
else
  if ((audit)); then
    export RDEV_AUDIT_POLICY="$PWD/bench/audit-policy.yaml"
  fi
  if [[ $mode == shards ]]; then
    # The shards serve their slices through the API server's sharded watch; the audit
    # log is how bench/shards.py tells which replica wrote what, so it is not optional.
    [[ -n ${RDEV_AUDIT_POLICY:-} ]] || { echo "bench: --shards needs the audit log" >&2; exit 2; }
    export RDEV_KUBE_FEATURE_GATES="ShardedListAndWatch=true"
  fi
  timeout 600 bash hack/controlplane.sh up
  started=1
fi

cleanup() {
  if ((keep)); then
    echo "bench: cluster $RDEV_CLUSTER_NAME left running (hack/bench.sh down stops it)" >&2
  else
    bash hack/controlplane.sh down
  fi
}
trap cleanup EXIT

# The quick run is bounded at 15 minutes, the full one at 2 hours and the shards'
# at 4; run.py and shards.py bound every wait of their own and stop every process
# they started.
limit=$(case $mode in full) echo 7200 ;; shards) echo 14400 ;; *) echo 900 ;; esac)
rc=0
if [[ $mode == shards ]]; then
  timeout --signal=INT --kill-after=60 "$limit" \
    "$PY" bench/shards.py --cluster-dir "$RDEV_CLUSTER_DIR" "${args[@]}" || rc=$?
else
  timeout --signal=INT --kill-after=60 "$limit" \
    "$PY" bench/run.py --mode "$mode" --cluster-dir "$RDEV_CLUSTER_DIR" "${args[@]}" || rc=$?
fi
((started)) && echo "bench: the cluster was started cold for this run" >&2
exit "$rc"

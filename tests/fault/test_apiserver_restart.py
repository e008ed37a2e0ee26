"""Restart the API server and etcd under a running operator: it reconnects and converges.

Runs on a control plane of its own, so that killing its API server cannot
disturb the other tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from kubernetes import client, config

from conftest import OperatorProcess
from kubehelpers import (
    ROOT,
    create_project_pod,
    create_session,
    install_crd,
    kill_webuis,
    make_repo,
    patch_session,
    session_manifest,
    wait_condition,
    wait_for,
    worktrees,
)

pytestmark = pytest.mark.fault


@pytest.fixture
def own_cluster(fresh_cluster: tuple[dict[str, str], str]) -> tuple[dict[str, str], str]:
    env, kubeconfig = fresh_cluster
    install_crd(kubeconfig)
    return env, kubeconfig


def _restart_api_server(env: dict[str, str]) -> None:
    pids = Path(env["RDEV_CLUSTER_DIR"]) / "kwok" / "clusters" / env["RDEV_CLUSTER_NAME"] / "pids"
    for component in ("kube-apiserver", "etcd"):
        pidfile = pids / f"{component}.pid"
        os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        pidfile.unlink()  # kwokctl starts only the components without a pid file
    script = str(ROOT / "hack" / "controlplane.sh")
    subprocess.run(["bash", script, "up"], env=env, check=True, timeout=300, capture_output=True)


def _exec_count(metrics: str, step: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("rdev_exec_total{") and f'step="{step}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_operator_survives_api_server_and_etcd_restart(own_cluster, tmp_path):
    env, kubeconfig = own_cluster
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    api = client.ApiClient(cfg)
    core = client.CoreV1Api(api)
    namespace = "fault"
    core.create_namespace({"metadata": {"name": namespace}})
    wait_for(lambda: core.read_namespaced_service_account("default", namespace), timeout=60)
    repo = make_repo(tmp_path / "r")
    op = OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log").start()
    try:
        create_project_pod(api, namespace, "one", repo, name="one")
        create_session(api, namespace, session_manifest("a", "one", branch="feature-a"))
        wait_condition(api, namespace, "a", "Ready")
        _restart_api_server(env)
        # A change made after the restart reaches the operator through re-established watches.
        wait_for(lambda: core.list_namespace(), timeout=60, what="API server back")
        patch_session(api, namespace, "a", {"previewPort": 9090})

        def port_moved() -> bool:
            svc = core.read_namespaced_service("a-preview", namespace)
            return bool(svc.spec.ports[0].port == 9090)

        wait_for(port_moved, timeout=120, what="Service port updated after restart")
        repo2 = make_repo(tmp_path / "r2")
        create_project_pod(api, namespace, "two", repo2, name="two")
        create_session(api, namespace, session_manifest("b", "two", branch="feature-b"))
        wait_condition(api, namespace, "b", "Ready", timeout=120)
        # Nothing redone: one worktree each, one worktree-add per session.
        assert [w for w in worktrees(repo["repo"]) if w != str(repo["repo"])] == [
            str(repo["sessions"] / "a")
        ]
        assert _exec_count(op.metrics(), "checkout") == 2
        assert op.proc is not None and op.proc.poll() is None
    finally:
        op.stop()
        kill_webuis(repo["sessions"])

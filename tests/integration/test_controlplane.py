"""The local control plane is a real Kubernetes: version, CEL, exec, garbage collection."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from kubehelpers import ROOT, create_project_pod, git, gone, session_manifest, wait_for

PINNED = "v1.36.1"


def test_kubectl_version_reports_pinned_server(kubeconfig):
    out = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "version", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert json.loads(out.stdout)["serverVersion"]["gitVersion"] == PINNED


def test_crd_rejects_cel_violation_with_its_message(api, namespace):
    custom = client.CustomObjectsApi(api)
    body = session_manifest("both", "shop", branch="a", newBranch="b")
    body["metadata"]["namespace"] = namespace
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object("rdev.io", "v1alpha1", namespace, "sessions", body)
    assert err.value.status == 422
    assert "exactly one of branch or newBranch must be set" in err.value.body


def test_exec_into_project_pod_runs_git_in_its_repository(api, namespace, repo):
    pod = create_project_pod(api, namespace, "shop", repo)
    core = client.CoreV1Api(api)
    out = stream(
        core.connect_get_namespaced_pod_exec,
        pod["metadata"]["name"],
        namespace,
        command=["git", "rev-parse", "HEAD"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert out.strip() == git("rev-parse", "HEAD", cwd=repo["repo"])


def test_garbage_collector_removes_orphans(api, namespace):
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "child",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner.metadata.uid,
                    }
                ],
            }
        },
    )
    core.delete_namespaced_config_map("owner", namespace)

    wait_for(
        lambda: gone(core.read_namespaced_config_map, "child", namespace),
        timeout=60,
        what="garbage collection of the child",
    )


def _processes_mentioning(marker: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", "--", marker], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_down_stops_every_process_the_cluster_started(tmp_path):
    """`down` ends every component, SIGKILLs one that ignores SIGTERM, then removes the state."""
    cluster_dir = tmp_path / "cluster"
    env = {
        **os.environ,
        "RDEV_CLUSTER_NAME": f"down{uuid.uuid4().hex[:4]}",
        "RDEV_CLUSTER_DIR": str(cluster_dir),
        "RDEV_DOWN_GRACE_TICKS": "4",
    }
    script = str(ROOT / "hack" / "controlplane.sh")
    marker = f"{cluster_dir / 'kwok'}/"
    stubborn = None
    try:
        subprocess.run(
            ["bash", script, "up"], env=env, check=True, timeout=300, capture_output=True
        )
        started = _processes_mentioning(marker)
        assert len(started) >= 4, started  # etcd, apiserver, controller-manager, kwok, ...
        # A component stuck in shutdown: ignores SIGTERM, lives under the cluster's folder.
        stubborn = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal, sys, time\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "print('ready', flush=True)\n"
                "time.sleep(600)\n",
                marker + "stuck",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert stubborn.stdout is not None
        assert stubborn.stdout.readline().strip() == "ready"

        down = subprocess.run(
            ["bash", script, "down"], env=env, timeout=240, capture_output=True, text=True
        )

        assert down.returncode == 0, down.stderr
        assert "outlived SIGTERM" in down.stderr
        assert stubborn.wait(timeout=10) == -signal.SIGKILL
        assert _processes_mentioning(marker) == []
        assert not cluster_dir.exists()
    finally:
        if stubborn is not None and stubborn.poll() is None:
            stubborn.kill()
            stubborn.wait(timeout=10)
        subprocess.run(["bash", script, "down"], env=env, check=False, timeout=240)

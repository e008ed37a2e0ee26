"""The local control plane is a real Kubernetes: version, CEL, exec, garbage collection."""

from __future__ import annotations

import json
import subprocess

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from kubehelpers import create_project_pod, git, gone, session_manifest, wait_for

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

"""One active Session per project; the others queue and proceed on their own."""

from __future__ import annotations

from kubernetes import client

from kubehelpers import (
    create_project_pod,
    create_session,
    patch_session,
    session_manifest,
    wait_condition,
    wait_for,
)


def test_second_session_waits_and_proceeds_after_checkin(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("first", "shop", branch="feature-a"))
    wait_condition(api, namespace, "first", "Ready")
    create_session(api, namespace, session_manifest("second", "shop", branch="feature-b"))
    s = wait_condition(api, namespace, "second", "Ready", "False", "ProjectBusy")
    assert s["status"]["phase"] == "Pending"
    assert "first" in next(c for c in s["status"]["conditions"] if c["type"] == "Ready")["message"]
    patch_session(api, namespace, "first", {"checkin": {"skipReview": True}})
    wait_condition(api, namespace, "second", "Ready", timeout=60)


def test_queue_moves_on_when_the_holder_is_deleted(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("first", "shop", branch="feature-a"))
    wait_condition(api, namespace, "first", "Ready")
    create_session(api, namespace, session_manifest("second", "shop", branch="feature-b"))
    wait_condition(api, namespace, "second", "Ready", "False", "ProjectBusy")
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        "rdev.io", "v1alpha1", namespace, "sessions", "first"
    )
    wait_condition(api, namespace, "second", "Ready", timeout=60)


def test_stalled_session_does_not_block_the_queue(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("broken", "shop", branch="missing"))
    wait_condition(api, namespace, "broken", "Stalled", "True", "BranchNotFound")
    create_session(api, namespace, session_manifest("works", "shop", branch="feature-a"))
    wait_condition(api, namespace, "works", "Ready")

    def pod_label() -> str | None:
        pods = client.CoreV1Api(api).list_namespaced_pod(namespace).items
        return pods[0].metadata.labels.get("rdev.io/session")

    assert wait_for(lambda: pod_label() == "works", timeout=10, what="pod label")

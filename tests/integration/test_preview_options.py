"""Operator settings that shape the preview: URL template, Ingress, workspace refresh."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from kubehelpers import (
    create_project_pod,
    create_session,
    get_session,
    gone,
    patch_session,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)


def test_url_template_ingress_and_feature_label(api, namespace, repo, operator_factory):
    operator_factory(
        RDEV_PREVIEW_URL_TEMPLATE="https://{session}--{namespace}.preview.example.com",
        RDEV_INGRESS_CLASS="nginx",
        RDEV_INGRESS_HOST_TEMPLATE="{session}--{namespace}.preview.example.com",
    )
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s", "shop", branch="feature-a", featureSlug="cart")
    )
    s = wait_condition(api, namespace, "s", "Ready")
    assert s["status"]["previewURL"] == f"https://s--{namespace}.preview.example.com"
    svc = client.CoreV1Api(api).read_namespaced_service("s-preview", namespace)
    assert svc.metadata.labels["rdev.io/feature"] == "cart"
    net = client.NetworkingV1Api(api)
    ingress = net.read_namespaced_ingress("s-preview", namespace)
    assert ingress.spec.ingress_class_name == "nginx"
    assert ingress.spec.rules[0].host == f"s--{namespace}.preview.example.com"
    assert ingress.spec.rules[0].http.paths[0].backend.service.name == "s-preview"
    patch_session(api, namespace, "s", {"checkin": {"skipReview": True}})
    s = wait_phase(api, namespace, "s", "Ended")
    assert "review" not in s["status"]

    wait_for(
        lambda: gone(net.read_namespaced_ingress, "s-preview", namespace),
        timeout=30,
        what="Ingress removed at the end",
    )


def test_workspace_changes_refresh_on_schedule(api, namespace, repo, operator_factory):
    operator_factory(RDEV_CHANGES_INTERVAL="2s")
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", newBranch="topic/z"))
    s = wait_condition(api, namespace, "s", "Ready")
    path = Path(s["status"]["checkoutPath"])
    (path / "a.txt").write_text("new\n")
    (path / "README.md").write_text("edited\n")

    def counted() -> bool:
        changes = (get_session(api, namespace, "s").get("status") or {}).get("changes") or {}
        return changes.get("untrackedFiles") == 1 and changes.get("uncommittedFiles") == 1

    wait_for(counted, timeout=30, what="status.changes refreshed")

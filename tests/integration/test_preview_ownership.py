"""The operator changes and deletes only the preview objects it owns; the web UI's NetworkPolicy."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from kubehelpers import (
    condition,
    create_project_pod,
    create_session,
    event_reasons,
    get_session,
    gone,
    patch_session,
    session_gone,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)

WEBUI_PORT = 3001
INGRESS_ENV = {
    "RDEV_INGRESS_CLASS": "nginx",
    "RDEV_INGRESS_HOST_TEMPLATE": "{session}--{namespace}.preview.example.com",
}


def snapshot(obj: Any) -> dict[str, Any]:
    """What the operator must leave alone on an object it does not own."""
    return {
        "spec": obj.spec.to_dict(),
        "labels": obj.metadata.labels,
        "ownerReferences": obj.metadata.owner_references,
        "resourceVersion": obj.metadata.resource_version,
        "uid": obj.metadata.uid,
    }


def delete_session(api: client.ApiClient, namespace: str, name: str) -> None:
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        "rdev.io", "v1alpha1", namespace, "sessions", name
    )
    wait_for(
        lambda: session_gone(api, namespace, name),
        timeout=60,
        what=f"Session {name} deleted (finalizer done)",
    )


def assert_stalled_on(api: client.ApiClient, namespace: str, kind: str, name: str) -> None:
    s = wait_condition(api, namespace, "s", "Stalled", "True", "PreviewNameTaken")
    message = condition(s, "Stalled")["message"]
    assert f"{kind} {name}" in message and "rename" in message, message
    assert condition(s, "Ready")["status"] == "False"
    wait_for(
        lambda: "PreviewNameTaken" in event_reasons(api, namespace, "s"),
        timeout=30,
        what="PreviewNameTaken Event",
    )


def test_foreign_service_of_the_preview_name_is_never_changed(
    api, namespace, repo, operator_factory
):
    core = client.CoreV1Api(api)
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "s-preview", "labels": {"app": "theirs"}},
            "spec": {
                "selector": {"app": "theirs"},
                "ports": [{"name": "web", "port": 9999, "targetPort": 9999}],
            },
        },
    )
    before = snapshot(core.read_namespaced_service("s-preview", namespace))
    operator_factory()
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))

    assert_stalled_on(api, namespace, "Service", "s-preview")
    assert snapshot(core.read_namespaced_service("s-preview", namespace)) == before

    delete_session(api, namespace, "s")
    assert snapshot(core.read_namespaced_service("s-preview", namespace)) == before


def test_foreign_ingress_of_the_preview_name_is_never_changed(
    api, namespace, repo, operator_factory
):
    net = client.NetworkingV1Api(api)
    core = client.CoreV1Api(api)
    net.create_namespaced_ingress(
        namespace,
        {
            "metadata": {"name": "s-preview"},
            "spec": {
                "ingressClassName": "theirs",
                "rules": [
                    {
                        "host": "theirs.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": "theirs", "port": {"number": 80}}
                                    },
                                }
                            ]
                        },
                    }
                ],
            },
        },
    )
    before = snapshot(net.read_namespaced_ingress("s-preview", namespace))
    operator_factory(**INGRESS_ENV)
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))

    assert_stalled_on(api, namespace, "Ingress", "s-preview")
    assert snapshot(net.read_namespaced_ingress("s-preview", namespace)) == before
    # The Service of that name is ours: made as usual.
    svc = core.read_namespaced_service("s-preview", namespace)
    assert svc.metadata.owner_references[0].name == "s"

    delete_session(api, namespace, "s")
    assert snapshot(net.read_namespaced_ingress("s-preview", namespace)) == before
    wait_for(
        lambda: gone(core.read_namespaced_service, "s-preview", namespace),
        timeout=30,
        what="our Service removed",
    )


def admits_web_ui_port(rule: Any) -> bool:
    for port in rule.ports or []:
        if port.protocol == "TCP" and port.port <= WEBUI_PORT <= (port.end_port or port.port):
            return True
    return False


def read_policy(api: client.ApiClient, namespace: str) -> Any:
    return client.NetworkingV1Api(api).read_namespaced_network_policy("s-webui", namespace)


def wait_web_ui(api: client.ApiClient, namespace: str, state: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        s = get_session(api, namespace, "s")
        st = s.get("status") or {}
        current = st.get("observedGeneration") == s["metadata"]["generation"]
        return s if current and st.get("webUI") == state else None

    return wait_for(reached, timeout=60, what=f"web UI {state}")


def policy_gone(api: client.ApiClient, namespace: str) -> None:
    net = client.NetworkingV1Api(api)
    wait_for(
        lambda: gone(net.read_namespaced_network_policy, "s-webui", namespace),
        timeout=30,
        what="NetworkPolicy removed",
    )


def test_web_ui_network_policy_admits_nobody_by_default(api, namespace, repo, operator_factory):
    operator_factory()
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a", webUI=True))
    s = wait_web_ui(api, namespace, "Running")

    policy = read_policy(api, namespace)
    (owner,) = policy.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == ("Session", "s", s["metadata"]["uid"])
    assert owner.controller is True
    assert policy.metadata.labels["app.kubernetes.io/managed-by"] == "rdev-session-operator"
    assert policy.spec.pod_selector.match_labels == {"rdev.io/session": "s"}
    assert policy.spec.policy_types == ["Ingress"]
    assert not [r for r in policy.spec.ingress if admits_web_ui_port(r)]
    # Every other port stays open to everyone.
    (rule,) = policy.spec.ingress
    assert rule._from is None
    assert {p.protocol for p in rule.ports} == {"TCP", "UDP", "SCTP"}

    # Changed or deleted by hand: put back at the next web UI check (2 s in tests).
    net = client.NetworkingV1Api(api)
    net.patch_namespaced_network_policy("s-webui", namespace, {"spec": {"ingress": [{}]}})
    wait_for(
        lambda: read_policy(api, namespace).spec.ingress == policy.spec.ingress,
        timeout=30,
        what="NetworkPolicy rules restored",
    )
    net.delete_namespaced_network_policy("s-webui", namespace)
    wait_for(
        lambda: read_policy(api, namespace).metadata.uid != policy.metadata.uid,
        timeout=30,
        what="NetworkPolicy made again",
    )

    patch_session(api, namespace, "s", {"webUI": False})
    wait_web_ui(api, namespace, "Stopped")
    policy_gone(api, namespace)

    patch_session(api, namespace, "s", {"webUI": True})
    wait_web_ui(api, namespace, "Running")
    read_policy(api, namespace)
    patch_session(api, namespace, "s", {"checkin": {"skipReview": True}})
    wait_phase(api, namespace, "s", "Ended")
    policy_gone(api, namespace)  # by the operator: the Session, its owner, is still there


def test_web_ui_network_policy_admits_the_configured_peers(api, namespace, repo, operator_factory):
    peer = {"namespaceSelector": {"matchLabels": {"rdev.io/gateway": "true"}}}
    operator_factory(RDEV_WEBUI_ALLOWED_FROM=json.dumps([peer]))
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a", webUI=True))
    wait_web_ui(api, namespace, "Running")

    (ui,) = [r for r in read_policy(api, namespace).spec.ingress if admits_web_ui_port(r)]
    assert [p.to_dict() for p in ui.ports] == [
        {"protocol": "TCP", "port": WEBUI_PORT, "end_port": None}
    ]
    assert [api.sanitize_for_serialization(f) for f in ui._from] == [peer]

    delete_session(api, namespace, "s")
    policy_gone(api, namespace)

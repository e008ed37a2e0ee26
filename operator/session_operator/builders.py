"""Pure builders for what the operator creates: names, labels, Service, Ingress, policy, URL.

No I/O here, so every child object can be checked by a unit test and the same
input always yields the same object (deterministic names make retries safe).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rdev_api import GROUP, KIND, VERSION
from rdev_api.names import (
    DEFAULT_CONTAINER_ANNOTATION,
    FEATURE_LABEL,
    MANAGED_BY_LABEL,
    MANAGER,
    PREVIEW_PORT_NAME,
    PROJECT_LABEL,
    REPO_PATH_ANNOTATION,
    SESSION_LABEL,
    WORKTREE_ROOT_ANNOTATION,
    service_name,
    webui_policy_name,
)


def child_labels(session: str, project: str, feature: str | None) -> dict[str, str]:
    labels = {SESSION_LABEL: session, PROJECT_LABEL: project, MANAGED_BY_LABEL: MANAGER}
    if feature:
        labels[FEATURE_LABEL] = feature
    return labels


def owner_reference(name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether ``obj`` names the Session with this UID among its owners: only then is it ours."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return bool(uid) and any(ref.get("uid") == uid for ref in refs)


def uid_guard(uid: str) -> list[dict[str, Any]]:
    """JSON-patch ops that make the API server refuse the patch unless the object has this UID.

    Put before a patch of an object that was checked for ownership, so that a
    replacement made since the check is never changed.
    """
    return [{"op": "test", "path": "/metadata/uid", "value": uid}]


def spec_patch(desired: dict[str, Any], current: dict[str, Any]) -> list[dict[str, Any]]:
    """JSON-patch ops setting the spec fields of ``desired`` that ``current`` lacks or differs in.

    Only those fields: nothing else on the object (its labels, owners or other
    spec fields) is touched. ``add`` replaces a member that exists.
    """
    have = current.get("spec") or {}
    return [
        {"op": "add", "path": f"/spec/{field}", "value": value}
        for field, value in desired["spec"].items()
        if have.get(field) != value
    ]


def pick_port(web_ui_running: bool, web_ui_port: int, preview_port: int) -> int:
    """The web UI's port while it runs, else the app preview's."""
    return web_ui_port if web_ui_running else preview_port


def child_metadata(
    name: str, session: str, namespace: str, uid: str, project: str, feature: str | None
) -> dict[str, Any]:
    """Every child's metadata: its name, the Session's labels and ownerReference."""
    return {
        "name": name,
        "namespace": namespace,
        "labels": child_labels(session, project, feature),
        "ownerReferences": [owner_reference(session, uid)],
    }


def preview_ports(port: int) -> list[dict[str, Any]]:
    return [{"name": PREVIEW_PORT_NAME, "protocol": "TCP", "port": port, "targetPort": port}]


def preview_service(
    *,
    session: str,
    namespace: str,
    uid: str,
    project: str,
    feature: str | None,
    port: int,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(
            service_name(session), session, namespace, uid, project, feature
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": {SESSION_LABEL: session},
            "ports": preview_ports(port),
        },
    }


def service_port_patch(port: int) -> list[dict[str, Any]]:
    """A JSON patch that swaps the port in place (no recreate).

    A strategic-merge patch would merge ports by number and add a second
    ``preview`` port instead of replacing the first.
    """
    return [
        {
            "op": "replace",
            "path": "/spec/ports",
            "value": preview_ports(port),
        }
    ]


def service_port(service: dict[str, Any]) -> int | None:
    for entry in (service.get("spec") or {}).get("ports") or []:
        if entry.get("name") == PREVIEW_PORT_NAME:
            target = entry.get("targetPort")
            if entry.get("port") == target:
                return int(entry["port"])
            return None
    return None


def template_values(session: str, namespace: str, project: str, port: int) -> dict[str, str]:
    return {
        "session": session,
        "namespace": namespace,
        "project": project,
        "service": service_name(session),
        "port": str(port),
    }


def preview_url(template: str, session: str, namespace: str, project: str, port: int) -> str:
    if template:
        return template.format(**template_values(session, namespace, project, port))
    return f"http://{service_name(session)}.{namespace}.svc.cluster.local:{port}"


def preview_ingress(
    *,
    session: str,
    namespace: str,
    uid: str,
    project: str,
    feature: str | None,
    host: str,
    ingress_class: str,
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": child_metadata(
            service_name(session), session, namespace, uid, project, feature
        ),
        "spec": {
            "ingressClassName": ingress_class,
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {
                                        "name": service_name(session),
                                        "port": {"name": PREVIEW_PORT_NAME},
                                    }
                                },
                            }
                        ]
                    },
                }
            ],
        },
    }


def webui_network_policy(
    *,
    session: str,
    namespace: str,
    uid: str,
    project: str,
    feature: str | None,
    port: int,
    allowed_from: Sequence[Mapping[str, object]],
) -> dict[str, Any]:
    """Admit the web UI port only from ``allowed_from`` (none: nobody); every other port stays open.

    Selecting the pod isolates it for ingress, so what was open before is admitted
    again from everyone: TCP below and above the port (``endPort`` ranges) and all
    UDP and SCTP. A port-forward enters the pod's network namespace directly and
    is not affected.
    """
    tcp_open = [
        {"protocol": "TCP", "port": low, "endPort": high}
        for low, high in ((1, port - 1), (port + 1, 65535))
        if low <= high
    ]
    ingress: list[dict[str, Any]] = []
    if allowed_from:
        ingress.append({"from": list(allowed_from), "ports": [{"protocol": "TCP", "port": port}]})
    ingress.append({"ports": [*tcp_open, {"protocol": "UDP"}, {"protocol": "SCTP"}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(
            webui_policy_name(session), session, namespace, uid, project, feature
        ),
        "spec": {
            "podSelector": {"matchLabels": {SESSION_LABEL: session}},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def pod_session_label_patch(session: str | None) -> dict[str, Any]:
    """Merge patch that sets (or, with None, removes) the pod's session label."""
    return {"metadata": {"labels": {SESSION_LABEL: session}}}


def pick_container(pod: dict[str, Any], wanted: str | None) -> str | None:
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    if wanted:
        return wanted if wanted in names else None
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get(
        DEFAULT_CONTAINER_ANNOTATION
    )
    if default and default in names:
        return str(default)
    return names[0] if names else None


def pod_paths(pod: dict[str, Any], repo_path: str, worktree_root: str) -> tuple[str, str]:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return (
        annotations.get(REPO_PATH_ANNOTATION) or repo_path,
        annotations.get(WORKTREE_ROOT_ANNOTATION) or worktree_root,
    )

"""Pure builders for a session's credential: its ServiceAccount, Role, RoleBinding, Secret,
TokenRequest and kubeconfig, and when its token must be renewed.

No I/O, so each object is checked by a unit test, and the same input always
yields the same object (one deterministic name for all four, see names.py).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import yaml

from rdev_api import GROUP, PLURAL
from rdev_api.names import (
    CREDENTIAL_KEY,
    TOKEN_EXPIRES_ANNOTATION,
    TOKEN_REQUESTED_ANNOTATION,
    credential_name,
)

from .builders import child_metadata

# The shortest life the API server gives a TokenRequest (expirationSeconds >= 600).
MIN_TOKEN_S = 600
# A token that expires before the session is renewed this long before it does.
RENEW_BEFORE = timedelta(minutes=5)


def _meta(
    session: str, namespace: str, uid: str, project: str, feature: str | None
) -> dict[str, Any]:
    return child_metadata(credential_name(session), session, namespace, uid, project, feature)


def service_account(
    *, session: str, namespace: str, uid: str, project: str, feature: str | None
) -> dict[str, Any]:
    """No token of its own is mounted anywhere: the only token is the one bound to the Secret."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(session, namespace, uid, project, feature),
        "automountServiceAccountToken": False,
    }


def role_rules(session: str, pod: str) -> list[dict[str, Any]]:
    """Exactly: read and watch this Session, read its pod, exec into its pod.

    Exec is a websocket GET, authorised as ``create`` since Kubernetes 1.30 and
    as ``get`` before (and by kubectl's SPDY fallback): both, on that pod only.
    """
    return [
        {
            "apiGroups": [GROUP],
            "resources": [PLURAL],
            "resourceNames": [session],
            "verbs": ["get", "watch"],
        },
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": [pod], "verbs": ["get"]},
        {
            "apiGroups": [""],
            "resources": ["pods/exec"],
            "resourceNames": [pod],
            "verbs": ["create", "get"],
        },
    ]


def role(
    *, session: str, namespace: str, uid: str, project: str, feature: str | None, pod: str
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(session, namespace, uid, project, feature),
        "rules": role_rules(session, pod),
    }


def role_binding(
    *, session: str, namespace: str, uid: str, project: str, feature: str | None
) -> dict[str, Any]:
    name = credential_name(session)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(session, namespace, uid, project, feature),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }


def secret(
    *, session: str, namespace: str, uid: str, project: str, feature: str | None
) -> dict[str, Any]:
    """Created empty: the token is bound to this Secret's UID, so it can only come after."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(session, namespace, uid, project, feature),
        "type": "Opaque",
    }


def token_seconds(session_expires: datetime, now: datetime) -> int:
    """Until the session's end, or the API server's minimum (10 min), whichever is later."""
    return max(int((session_expires - now).total_seconds()) + 1, MIN_TOKEN_S)


def token_request(session: str, secret_name: str, secret_uid: str, seconds: int) -> dict[str, Any]:
    """A token for the session's ServiceAccount that dies with its Secret (boundObjectRef)."""
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": seconds,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Secret",
                "name": secret_name,
                "uid": secret_uid,
            },
        },
    }


def kubeconfig(
    *, server: str, ca_data: str | None, token: str, namespace: str, session: str
) -> str:
    """A kubeconfig for the session's identity, its namespace as the default."""
    name = credential_name(session)
    cluster: dict[str, Any] = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = ca_data
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
    }
    return yaml.safe_dump(config, sort_keys=False)


def secret_fill_patch(
    secret_uid: str, config: str, expires_at: str, requested_until: str
) -> list[dict[str, Any]]:
    """JSON patch writing the kubeconfig and its token's expiry into that very Secret."""
    data = base64.b64encode(config.encode()).decode("ascii")
    return [
        {"op": "test", "path": "/metadata/uid", "value": secret_uid},
        {"op": "add", "path": "/data", "value": {CREDENTIAL_KEY: data}},
        {
            "op": "add",
            "path": "/metadata/annotations",
            "value": {
                TOKEN_EXPIRES_ANNOTATION: expires_at,
                TOKEN_REQUESTED_ANNOTATION: requested_until,
            },
        },
    ]


def token_times(secret_body: dict[str, Any]) -> tuple[str, str] | None:
    """When the token in this Secret expires and the session end it was asked for;
    None when it holds none (never minted, or interrupted before it was written)."""
    if CREDENTIAL_KEY not in (secret_body.get("data") or {}):
        return None
    annotations = (secret_body.get("metadata") or {}).get("annotations") or {}
    expires = annotations.get(TOKEN_EXPIRES_ANNOTATION)
    requested = annotations.get(TOKEN_REQUESTED_ANNOTATION)
    return (expires, requested) if expires and requested else None


def renew_due(
    token: tuple[datetime, datetime] | None, session_expires: datetime, now: datetime
) -> bool:
    """A new token is needed: none yet; the session was extended since it was asked for;
    or it ends before the session (the API server capped it) within RENEW_BEFORE."""
    if token is None:
        return True
    expires, requested = token
    if session_expires > requested:
        return True
    return expires < session_expires and expires - now <= RENEW_BEFORE

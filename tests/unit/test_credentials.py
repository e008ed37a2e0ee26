"""The session credential's objects, kubeconfig and renewal rule (session_operator.credentials)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import yaml

from rdev_api import names
from session_operator import credentials

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
COMMON = {"session": "s1", "namespace": "team", "uid": "u-1", "project": "shop", "feature": None}


def test_every_object_has_one_name_the_labels_and_the_owner() -> None:
    built = [
        credentials.service_account(**COMMON),
        credentials.role(**COMMON, pod="shop-0"),
        credentials.role_binding(**COMMON),
        credentials.secret(**COMMON),
    ]
    assert [o["kind"] for o in built] == ["ServiceAccount", "Role", "RoleBinding", "Secret"]
    for obj in built:
        meta = obj["metadata"]
        assert (meta["name"], meta["namespace"]) == ("s1-credential", "team")
        assert meta["labels"][names.SESSION_LABEL] == "s1"
        assert meta["labels"][names.MANAGED_BY_LABEL] == names.MANAGER
        (owner,) = meta["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Session", "s1", "u-1")
        assert owner["controller"] is True
    assert built[0]["automountServiceAccountToken"] is False
    assert "data" not in built[3], "the Secret is created empty: the token comes after it"


def test_role_allows_exactly_this_session_and_its_pod() -> None:
    rules = credentials.role(**COMMON, pod="shop-0")["rules"]
    assert rules == [
        {
            "apiGroups": ["rdev.io"],
            "resources": ["sessions"],
            "resourceNames": ["s1"],
            "verbs": ["get", "watch"],
        },
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["shop-0"], "verbs": ["get"]},
        {
            "apiGroups": [""],
            "resources": ["pods/exec"],
            "resourceNames": ["shop-0"],
            "verbs": ["create", "get"],
        },
    ]
    for rule in rules:
        assert rule["resourceNames"], "never a rule without resourceNames"
        assert "*" not in rule["verbs"] + rule["resources"]


def test_role_binding_binds_the_role_to_the_account() -> None:
    rb = credentials.role_binding(**COMMON)
    assert rb["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "s1-credential",
    }
    subject = {"kind": "ServiceAccount", "name": "s1-credential", "namespace": "team"}
    assert rb["subjects"] == [subject]


def test_token_lives_until_the_session_ends_or_ten_minutes() -> None:
    assert credentials.token_seconds(NOW + timedelta(hours=2), NOW) == 7201
    assert credentials.token_seconds(NOW + timedelta(minutes=3), NOW) == 600
    assert credentials.token_seconds(NOW - timedelta(minutes=3), NOW) == 600
    request = credentials.token_request("s1", "s1-credential", "secret-uid", 900)
    assert request["spec"] == {
        "expirationSeconds": 900,
        "boundObjectRef": {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": "s1-credential",
            "uid": "secret-uid",
        },
    }


def test_kubeconfig_points_at_the_server_with_the_ca_and_namespace() -> None:
    text = credentials.kubeconfig(
        server="https://k8s.example.com",
        ca_data="Q0E=",
        token="tok",
        namespace="team",
        session="s1",
    )
    doc = yaml.safe_load(text)
    (cluster,) = doc["clusters"]
    assert cluster["cluster"] == {
        "server": "https://k8s.example.com",
        "certificate-authority-data": "Q0E=",
    }
    assert doc["users"][0]["user"] == {"token": "tok"}
    (context,) = doc["contexts"]
    assert context["context"]["namespace"] == "team"
    assert doc["current-context"] == context["name"] == "s1-credential"
    without_ca = credentials.kubeconfig(
        server="https://x", ca_data=None, token="t", namespace="n", session="s"
    )
    assert "certificate-authority-data" not in without_ca


def test_fill_patch_is_guarded_by_the_secret_uid_and_records_the_times() -> None:
    patch = credentials.secret_fill_patch("uid-9", "cfg", "2026-01-01T13:00:00Z", "T")
    assert patch[0] == {"op": "test", "path": "/metadata/uid", "value": "uid-9"}
    secret = {"data": patch[1]["value"], "metadata": {"annotations": patch[2]["value"]}}
    assert base64.b64decode(secret["data"][names.CREDENTIAL_KEY]) == b"cfg"
    assert credentials.token_times(secret) == ("2026-01-01T13:00:00Z", "T")
    assert credentials.token_times({"metadata": {}}) is None  # created, never filled
    assert credentials.token_times({"data": {}, "metadata": secret["metadata"]}) is None


def test_renewal() -> None:
    end = NOW + timedelta(hours=1)
    assert credentials.renew_due(None, end, NOW)
    # Asked for this end and lasting to it: nothing to do.
    assert not credentials.renew_due((end, end), end, NOW)
    # The session was extended after the token was asked for: a new one now.
    assert credentials.renew_due((end, end), end + timedelta(hours=1), NOW)
    # A short session: the 10-minute token outlives it.
    short = NOW + timedelta(minutes=2)
    assert not credentials.renew_due((NOW + timedelta(minutes=10), short), short, NOW)
    # Capped by the API server: renewed only close to its end, not on every reconcile.
    capped = (NOW + timedelta(minutes=30), end)
    assert not credentials.renew_due(capped, end, NOW)
    assert credentials.renew_due(capped, end, NOW + timedelta(minutes=26))

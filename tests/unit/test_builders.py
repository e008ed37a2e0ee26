"""Builders: the objects the operator creates, as plain dicts."""

from __future__ import annotations

from typing import Any

import pytest

from rdev_api import names
from session_operator import builders
from session_operator.settings import Settings


def test_service_body() -> None:
    svc = builders.preview_service(
        session="s1", namespace="ns", uid="u-1", project="shop", feature="cart", port=8080
    )
    assert svc["apiVersion"] == "v1" and svc["kind"] == "Service"
    meta = svc["metadata"]
    assert meta["name"] == "s1-preview"
    assert meta["namespace"] == "ns"
    assert meta["labels"] == {
        "rdev.io/session": "s1",
        "rdev.io/project": "shop",
        "rdev.io/feature": "cart",
        "app.kubernetes.io/managed-by": "rdev-session-operator",
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "rdev.io/v1alpha1",
            "kind": "Session",
            "name": "s1",
            "uid": "u-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert svc["spec"] == {
        "type": "ClusterIP",
        "selector": {"rdev.io/session": "s1"},
        "ports": [{"name": "preview", "protocol": "TCP", "port": 8080, "targetPort": 8080}],
    }


def test_service_without_feature_has_no_feature_label() -> None:
    svc = builders.preview_service(
        session="s1", namespace="ns", uid="u", project="shop", feature=None, port=1
    )
    assert "rdev.io/feature" not in svc["metadata"]["labels"]


def test_service_is_deterministic() -> None:
    kw: dict[str, Any] = dict(
        session="s1", namespace="ns", uid="u", project="p", feature=None, port=3001
    )
    assert builders.preview_service(**kw) == builders.preview_service(**kw)


def test_port_patch_is_a_json_patch_replacing_ports() -> None:
    patch = builders.service_port_patch(3001)
    assert patch == [
        {
            "op": "replace",
            "path": "/spec/ports",
            "value": [{"name": "preview", "protocol": "TCP", "port": 3001, "targetPort": 3001}],
        }
    ]
    assert isinstance(patch, list)  # the client sends a list as application/json-patch+json


def test_service_port_reads_back() -> None:
    svc = builders.preview_service(
        session="s", namespace="n", uid="u", project="p", feature=None, port=4000
    )
    assert builders.service_port(svc) == 4000
    svc["spec"]["ports"][0]["targetPort"] = 4001
    assert builders.service_port(svc) is None
    assert builders.service_port({"spec": {"ports": [{"name": "other", "port": 1}]}}) is None
    assert builders.service_port({}) is None


def test_pick_port() -> None:
    assert builders.pick_port(True, 3001, 8080) == 3001
    assert builders.pick_port(False, 3001, 8080) == 8080


def test_preview_url_default_is_in_cluster() -> None:
    url = builders.preview_url("", "s1", "ns", "shop", 8080)
    assert url == "http://s1-preview.ns.svc.cluster.local:8080"


def test_preview_url_template() -> None:
    template = "https://{session}-{port}.{namespace}.{project}.example.com/{service}"
    url = builders.preview_url(template, "s1", "ns", "shop", 3001)
    assert url == "https://s1-3001.ns.shop.example.com/s1-preview"


def test_template_values() -> None:
    assert builders.template_values("s", "n", "p", 1) == {
        "session": "s",
        "namespace": "n",
        "project": "p",
        "service": "s-preview",
        "port": "1",
    }


def test_ingress() -> None:
    ing = builders.preview_ingress(
        session="s1",
        namespace="ns",
        uid="u",
        project="shop",
        feature=None,
        host="s1.example.com",
        ingress_class="nginx",
    )
    assert ing["apiVersion"] == "networking.k8s.io/v1" and ing["kind"] == "Ingress"
    assert ing["metadata"]["name"] == "s1-preview"
    assert ing["metadata"]["ownerReferences"][0]["uid"] == "u"
    assert ing["spec"]["ingressClassName"] == "nginx"
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "s1.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/" and path["pathType"] == "Prefix"
    # By port name, so that toggling the web UI needs no Ingress change.
    assert path["backend"] == {"service": {"name": "s1-preview", "port": {"name": "preview"}}}


def pod(containers: list[str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "annotations": annotations or {}},
        "spec": {"containers": [{"name": c} for c in containers]},
    }


@pytest.mark.parametrize(
    ("containers", "annotations", "wanted", "expected"),
    [
        (["app", "dev"], {}, None, "app"),
        (["app", "dev"], {"kubectl.kubernetes.io/default-container": "dev"}, None, "dev"),
        (["app", "dev"], {"kubectl.kubernetes.io/default-container": "gone"}, None, "app"),
        (["app", "dev"], {"kubectl.kubernetes.io/default-container": "dev"}, "app", "app"),
        (["app", "dev"], {}, "missing", None),
        ([], {}, None, None),
    ],
)
def test_pick_container(
    containers: list[str], annotations: dict[str, str], wanted: str | None, expected: str | None
) -> None:
    assert builders.pick_container(pod(containers, annotations), wanted) == expected


def test_pick_container_tolerates_sparse_pods() -> None:
    assert builders.pick_container({}, None) is None
    assert builders.pick_container({"metadata": None, "spec": None}, None) is None


def test_pod_paths_annotations_override_defaults() -> None:
    annotated = pod(["dev"], {"rdev.io/repo-path": "/r", "rdev.io/worktree-root": "/w"})
    assert builders.pod_paths(annotated, "/default/repo", "/default/wt") == ("/r", "/w")
    assert builders.pod_paths(pod(["dev"]), "/default/repo", "/default/wt") == (
        "/default/repo",
        "/default/wt",
    )
    only_repo = pod(["dev"], {"rdev.io/repo-path": "/r"})
    assert builders.pod_paths(only_repo, "/d", "/w0") == ("/r", "/w0")


def test_paths() -> None:
    assert names.checkout_path("/w/", "s1") == "/w/s1"
    assert names.checkout_path("/w", "s1") == "/w/s1"
    assert names.run_dir("/w/", "s1") == "/w/.rdev/s1"
    assert not names.run_dir("/w", "s1").startswith(names.checkout_path("/w", "s1") + "/")


def test_pod_label_patch() -> None:
    assert builders.pod_session_label_patch("s1") == {
        "metadata": {"labels": {"rdev.io/session": "s1"}}
    }
    assert builders.pod_session_label_patch(None) == {
        "metadata": {"labels": {"rdev.io/session": None}}
    }


def test_service_name_fits_for_longest_session_name() -> None:
    assert len(names.service_name("a" * 55)) == 63


# Ownership and guarded patches -------------------------------------------------------
def test_owned_by_needs_this_sessions_uid() -> None:
    svc = builders.preview_service(
        session="s1", namespace="ns", uid="u-1", project="p", feature=None, port=1
    )
    assert builders.owned_by(svc, "u-1")
    assert not builders.owned_by(svc, "u-2")
    assert not builders.owned_by(svc, "")
    assert not builders.owned_by({"metadata": {"name": "s1-preview"}}, "u-1")
    assert not builders.owned_by({"metadata": {"ownerReferences": None}}, "u-1")


def test_uid_guard_is_a_json_patch_test() -> None:
    assert builders.uid_guard("u-9") == [{"op": "test", "path": "/metadata/uid", "value": "u-9"}]


def test_spec_patch_sets_only_differing_spec_fields() -> None:
    desired = {"spec": {"a": 1, "b": [1, 2], "c": {"x": 1}}}
    current = {
        "metadata": {"ownerReferences": [{"uid": "other"}]},
        "spec": {"a": 1, "b": [1], "extra": True},
    }
    assert builders.spec_patch(desired, current) == [
        {"op": "add", "path": "/spec/b", "value": [1, 2]},
        {"op": "add", "path": "/spec/c", "value": {"x": 1}},
    ]
    assert builders.spec_patch(desired, {"spec": dict(desired["spec"])}) == []
    assert len(builders.spec_patch(desired, {})) == 3


# The web UI's NetworkPolicy ------------------------------------------------------------
def policy(port: int = 3001, allowed_from: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return builders.webui_network_policy(
        session="s1",
        namespace="ns",
        uid="u-1",
        project="shop",
        feature="cart",
        port=port,
        allowed_from=allowed_from or [],
    )


def test_webui_policy_metadata_is_like_the_services() -> None:
    np = policy()
    svc = builders.preview_service(
        session="s1", namespace="ns", uid="u-1", project="shop", feature="cart", port=1
    )
    assert np["apiVersion"] == "networking.k8s.io/v1" and np["kind"] == "NetworkPolicy"
    assert np["metadata"]["name"] == "s1-webui" == names.webui_policy_name("s1")
    assert np["metadata"]["namespace"] == "ns"
    assert np["metadata"]["labels"] == svc["metadata"]["labels"]
    assert np["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "rdev-session-operator"
    assert np["metadata"]["ownerReferences"] == svc["metadata"]["ownerReferences"]
    assert np["spec"]["podSelector"] == {"matchLabels": {"rdev.io/session": "s1"}}
    assert np["spec"]["policyTypes"] == ["Ingress"]


def test_webui_policy_admits_nobody_to_the_port_by_default() -> None:
    (rule,) = policy(3001)["spec"]["ingress"]
    assert "from" not in rule  # from everyone, but only on the other ports:
    assert rule["ports"] == [
        {"protocol": "TCP", "port": 1, "endPort": 3000},
        {"protocol": "TCP", "port": 3002, "endPort": 65535},
        {"protocol": "UDP"},
        {"protocol": "SCTP"},
    ]


def test_webui_policy_admits_the_configured_peers_to_the_port_only() -> None:
    peers = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gw"}}},
        {"podSelector": {"matchLabels": {"app": "proxy"}}},
    ]
    ui, others = policy(3001, peers)["spec"]["ingress"]
    assert ui == {"from": peers, "ports": [{"protocol": "TCP", "port": 3001}]}
    assert "from" not in others


@pytest.mark.parametrize(
    ("port", "tcp"),
    [
        (1, [{"protocol": "TCP", "port": 2, "endPort": 65535}]),
        (65535, [{"protocol": "TCP", "port": 1, "endPort": 65534}]),
        (
            2,
            [
                {"protocol": "TCP", "port": 1, "endPort": 1},
                {"protocol": "TCP", "port": 3, "endPort": 65535},
            ],
        ),
    ],
)
def test_webui_policy_port_ranges_at_the_edges(port: int, tcp: list[dict[str, Any]]) -> None:
    (rule,) = policy(port)["spec"]["ingress"]
    assert rule["ports"][:-2] == tcp


def test_webui_policy_takes_the_settings_peers() -> None:
    settings = Settings(
        webui_allowed_from=[{"namespaceSelector": {"matchLabels": {"team": "a"}}}]  # type: ignore[list-item]
    )
    np = policy(3001, [p.as_peer() for p in settings.webui_allowed_from])
    assert np["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"team": "a"}}}
    ]

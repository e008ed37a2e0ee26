"""The store keeps only what the operator reads: big labels and annotations stay out."""

from __future__ import annotations

import json
import sys

from rdev_api import Body
from session_operator.store import Store, slim_pod, slim_service, slim_session

BULK = {f"example.com/note-{i}": "x" * 1024 for i in range(256)}  # 256 KiB of annotations


def size(body: Body) -> int:
    return len(json.dumps(body))


def test_a_session_with_256_kib_of_annotations_slims_to_a_few_hundred_bytes() -> None:
    body = {
        "apiVersion": "rdev.io/v1alpha1",
        "kind": "Session",
        "metadata": {
            "name": "s1",
            "namespace": "ns",
            "uid": "uid-1",
            "generation": 1,
            "resourceVersion": "42",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"team": "shop", **{f"l{i}": "v" * 60 for i in range(50)}},
            "annotations": {
                **BULK,
                "rdev.io/created-by": "alice",
                "kubectl.kubernetes.io/last-applied-configuration": "{" + "y" * 4000 + "}",
            },
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "finalizers": ["rdev.io/finalizer"],
        },
        "spec": {"project": "shop", "branch": "feature-a"},
    }
    assert size(body) > 256 * 1024
    slim = slim_session(body)
    assert size(slim) < 400
    assert slim["metadata"]["annotations"] == {"rdev.io/created-by": "alice"}
    assert "labels" not in slim["metadata"]
    assert slim["spec"] == body["spec"]
    store = Store()
    store.sessions.put(body)
    cached = store.sessions.get(("ns", "s1"))
    assert cached is not None and size(cached) < 400


def test_a_pod_keeps_the_labels_and_annotations_the_steps_read() -> None:
    pod = {
        "metadata": {
            "name": "p1",
            "namespace": "ns",
            "labels": {"rdev.io/project": "shop", "rdev.io/session": "s1", "app": "shop"},
            "annotations": {
                **BULK,
                "rdev.io/repo-path": "/r",
                "rdev.io/worktree-root": "/w",
                "kubectl.kubernetes.io/default-container": "dev",
            },
        },
        "spec": {"containers": [{"name": "dev", "image": "x", "env": [{"name": "A"}]}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    slim = slim_pod(pod)
    assert slim["metadata"]["labels"] == {"rdev.io/project": "shop", "rdev.io/session": "s1"}
    assert slim["metadata"]["annotations"] == {
        "rdev.io/repo-path": "/r",
        "rdev.io/worktree-root": "/w",
        "kubectl.kubernetes.io/default-container": "dev",
    }
    assert size(slim) < 600
    store = Store()
    store.pods.put(pod)
    assert [p["metadata"]["name"] for p in store.pods.by_project("ns", "shop")] == ["p1"]


def test_a_service_keeps_its_owner_and_the_labels_the_operator_reads() -> None:
    owner = [{"kind": "Session", "name": "s1", "uid": "uid-1", "controller": True}]
    service = {
        "metadata": {
            "name": "s1-preview",
            "namespace": "ns",
            "ownerReferences": owner,
            "labels": {
                "app.kubernetes.io/managed-by": "rdev-session-operator",
                "rdev.io/session": "s1",
                "rdev.io/project": "shop",
            },
            "annotations": BULK,
        },
        "spec": {"ports": [{"name": "preview", "port": 3000}], "selector": {"a": "b"}},
    }
    slim = slim_service(service)
    assert slim["metadata"]["ownerReferences"] == owner
    assert slim["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "rdev-session-operator",
        "rdev.io/session": "s1",
    }
    assert "annotations" not in slim["metadata"]
    assert slim["spec"]["ports"] == service["spec"]["ports"]


def test_what_the_store_keeps_is_fresh_and_shares_keys_and_short_strings() -> None:
    """Kept data holds no dict or list of the parsed event (so its memory can be
    reused whole), and every Session shares one copy of each key and short value."""
    raw = json.loads(
        '{"metadata": {"name": "s", "namespace": "n", "managedFields": [{"x": 1}]},'
        ' "spec": {"project": "shop"},'
        ' "status": {"phase": "Active", "conditions": [{"type": "Ready", "status": "True",'
        ' "message": "a long message that no other Session has, word for word"}]}}'
    )
    kept = slim_session(raw)
    assert kept["spec"] == raw["spec"] and kept["status"] == raw["status"]
    assert kept["status"] is not raw["status"]
    assert kept["status"]["conditions"] is not raw["status"]["conditions"]
    assert kept["status"]["conditions"][0] is not raw["status"]["conditions"][0]
    assert "managedFields" not in kept["metadata"]
    condition = kept["status"]["conditions"][0]
    assert next(k for k in condition if k == "status") is sys.intern("status")
    assert condition["status"] is sys.intern("True")
    assert kept["status"]["phase"] is sys.intern("Active")

"""A Session's whole life through the real API server, operator and pod exec."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from kubehelpers import (
    create_project_pod,
    create_session,
    delete_session,
    get_session,
    git,
    patch_session,
    process_alive,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)
from rdev_api import GROUP, PLURAL, VERSION


def test_session_becomes_active_with_worktree_and_service(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s1", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s1", "Ready")
    status = s["status"]
    assert status["phase"] == "Active"
    path = Path(status["checkoutPath"])
    assert path == repo["sessions"] / "s1"
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=path) == "feature-a"
    assert status["commit"] == git("rev-parse", "HEAD", cwd=path)
    svc = client.CoreV1Api(api).read_namespaced_service("s1-preview", namespace)
    assert [(p.name, p.port, p.target_port) for p in svc.spec.ports] == [("preview", 8080, 8080)]
    assert svc.spec.selector == {"rdev.io/session": "s1"}
    assert status["servicePort"] == 8080
    assert status["previewURL"] == f"http://s1-preview.{namespace}.svc.cluster.local:8080"
    assert status["webUI"] == "Stopped"
    assert svc.metadata.owner_references[0].name == "s1"


def test_web_ui_toggle_switches_port_and_process(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s2", "shop", newBranch="topic/x"))
    wait_condition(api, namespace, "s2", "Ready")
    patch_session(api, namespace, "s2", {"webUI": True})

    def running() -> dict | None:
        s = get_session(api, namespace, "s2")
        st = s.get("status") or {}
        ok = st.get("webUI") == "Running" and st.get("servicePort") == 3001
        return s if ok and st.get("observedGeneration") == s["metadata"]["generation"] else None

    wait_for(running, timeout=60, what="web UI running")
    svc = client.CoreV1Api(api).read_namespaced_service("s2-preview", namespace)
    uid_before = svc.metadata.uid
    assert svc.spec.ports[0].port == 3001
    pidfile = repo["sessions"] / ".rdev" / "s2" / "webui.pid"
    pid = int(pidfile.read_text())
    assert process_alive(pid)
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"PORT=3001" in environ

    patch_session(api, namespace, "s2", {"webUI": False})

    def stopped() -> bool:
        st = get_session(api, namespace, "s2").get("status") or {}
        return st.get("webUI") == "Stopped" and st.get("servicePort") == 8080

    wait_for(stopped, timeout=60, what="web UI stopped")
    wait_for(lambda: not process_alive(pid), timeout=20, what="web UI process gone")
    svc = client.CoreV1Api(api).read_namespaced_service("s2-preview", namespace)
    assert svc.spec.ports[0].port == 8080
    assert svc.metadata.uid == uid_before  # patched, never recreated


def test_checkin_ends_session_and_keeps_work(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s3", "shop", newBranch="topic/keep", webUI=True)
    )
    s = wait_condition(api, namespace, "s3", "Ready")
    path = Path(s["status"]["checkoutPath"])
    (path / "work.txt").write_text("uncommitted\n")
    patch_session(api, namespace, "s3", {"checkin": {"autoMerge": True}})
    s = wait_phase(api, namespace, "s3", "Ended")
    status = s["status"]
    head = git("rev-parse", "HEAD", cwd=path)
    # The branch's commits go to origin for review; the uncommitted file stays behind.
    assert status["review"] == {
        "requested": True,
        "autoMerge": True,
        "pushed": True,
        "commit": head,
        "branch": "topic/keep",
    }
    assert status["endedAt"]
    assert status["changes"]["untrackedFiles"] == 1
    assert (path / "work.txt").read_text() == "uncommitted\n"
    core = client.CoreV1Api(api)
    wait_for(
        lambda: (
            "s3-preview"
            not in [x.metadata.name for x in core.list_namespaced_service(namespace).items]
        ),
        timeout=30,
        what="Service deleted",
    )
    # Ended: no Ready (kstatus reads Current); the reason is on Reconciling.
    assert all(c["type"] != "Ready" for c in status["conditions"])
    summary = next(c for c in status["conditions"] if c["type"] == "Reconciling")
    assert (summary["status"], summary["reason"]) == ("False", "CheckedIn")


def test_a_session_is_created_and_deleted_with_no_metadata_writes_but_the_finalizer(
    api, namespace, repo, operator
):
    """The operator's only writes to a Session's object are its finalizer, added and
    removed: no kopf progress or marker annotations (one patch each that nothing reads)."""
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s4", "shop", newBranch="topic/quiet"))
    first = wait_condition(api, namespace, "s4", "Ready")
    custom = client.CustomObjectsApi(api)
    seen: list[dict[str, Any]] = []
    stream = watch.Watch()

    def follow() -> None:
        for event in stream.stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector="metadata.name=s4",
            resource_version=first["metadata"]["resourceVersion"],
            timeout_seconds=60,
        ):
            seen.append(event["object"])
            if event["type"] == "DELETED":
                return

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    delete_session(api, namespace, "s4")
    reader.join(timeout=60)
    assert not reader.is_alive(), "the Session was not deleted within 60 s"
    stream.stop()
    assert seen, "the watch saw nothing"
    for body in [first, *seen]:
        annotations = body["metadata"].get("annotations") or {}
        assert not [k for k in annotations if k.startswith("rdev.io/") and "created-by" not in k]

"""Uncommitted work survives checkin, expiry and deletion, whatever the order."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from kubehelpers import (
    create_project_pod,
    create_session,
    patch_session,
    session_gone,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
    worktrees,
)

pytestmark = pytest.mark.fault


def test_uncommitted_changes_survive_checkin_expiry_and_delete(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    custom = client.CustomObjectsApi(api)
    files: list[Path] = []
    for name, spec, end in (
        ("checked", {"newBranch": "safe/one"}, "checkin"),
        ("expired", {"newBranch": "safe/two", "expiresIn": "1h"}, "expiry"),
        ("deleted", {"newBranch": "safe/three"}, "delete"),
    ):
        create_session(api, namespace, session_manifest(name, "shop", **spec))
        s = wait_condition(api, namespace, name, "Ready", timeout=60)
        path = Path(s["status"]["checkoutPath"])
        (path / "README.md").write_text(f"edited in {name}\n")
        (path / "notes.txt").write_text("untracked\n")
        files += [path / "README.md", path / "notes.txt"]
        if end == "checkin":
            patch_session(api, namespace, name, {"checkin": {"skipReview": True}})
            s = wait_phase(api, namespace, name, "Ended")
        elif end == "expiry":
            patch_session(api, namespace, name, {"expiresIn": "1s"})
            s = wait_phase(api, namespace, name, "Expired")
        assert end == "delete" or s["status"]["changes"] == {
            **s["status"]["changes"],
            "uncommittedFiles": 1,
            "untrackedFiles": 1,
        }
        custom.delete_namespaced_custom_object("rdev.io", "v1alpha1", namespace, "sessions", name)
        wait_for(lambda n=name: session_gone(api, namespace, n), timeout=60, what=f"{name} deleted")
    for file in files:
        assert file.exists(), f"{file} was lost"
    assert len([w for w in worktrees(repo["repo"]) if w != str(repo["repo"])]) == 3

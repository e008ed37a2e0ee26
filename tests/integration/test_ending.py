"""Expiry, deletion and data safety: nothing anyone wrote is ever lost."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from kubehelpers import (
    condition,
    create_project_pod,
    create_session,
    delete_session,
    git,
    patch_session,
    session_gone,
    session_manifest,
    wait_condition,
    wait_events,
    wait_for,
    wait_phase,
    worktrees,
)


def test_short_expiry_ends_session_without_review(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s", "shop", branch="feature-a", expiresIn="4s")
    )
    s = wait_phase(api, namespace, "s", "Expired", timeout=60)
    assert "review" not in s["status"]
    assert condition(s, "Ready") is None  # ended: kstatus reads Current
    assert condition(s, "Reconciling")["reason"] == "Expired"
    assert Path(s["status"]["checkoutPath"]).is_dir()  # the worktree stays


def test_changing_expires_in_moves_the_deadline(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Ready")
    first = s["status"]["expiresAt"]
    patch_session(api, namespace, "s", {"expiresIn": "2s"})
    s = wait_phase(api, namespace, "s", "Expired", timeout=60)
    assert s["status"]["expiresAt"] < first


def test_expired_and_deleted_session_keeps_uncommitted_work(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s", "shop", newBranch="topic/a", expiresIn="6s")
    )
    s = wait_condition(api, namespace, "s", "Ready")
    path = Path(s["status"]["checkoutPath"])
    (path / "README.md").write_text("changed\n")
    s = wait_phase(api, namespace, "s", "Expired", timeout=60)
    assert s["status"]["changes"]["uncommittedFiles"] == 1
    delete_session(api, namespace, "s")
    wait_for(lambda: session_gone(api, namespace, "s"), timeout=60, what="session gone")
    assert (path / "README.md").read_text() == "changed\n"
    assert str(path) in worktrees(repo["repo"])
    wait_events(api, namespace, "s", "WorktreeKept")


def test_delete_keeps_unpushed_commits(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", newBranch="topic/b"))
    s = wait_condition(api, namespace, "s", "Ready")
    path = Path(s["status"]["checkoutPath"])
    (path / "new.txt").write_text("x\n")
    git("add", "new.txt", cwd=path)
    git("commit", "-q", "-m", "local only", cwd=path)
    delete_session(api, namespace, "s")
    wait_for(lambda: session_gone(api, namespace, "s"), timeout=60, what="session gone")
    assert (path / "new.txt").exists()
    wait_events(api, namespace, "s", "WorktreeKept")


def test_delete_of_clean_session_removes_worktree_but_keeps_branch(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a", webUI=True))
    s = wait_condition(api, namespace, "s", "Ready")
    path = s["status"]["checkoutPath"]
    delete_session(api, namespace, "s")
    wait_for(lambda: session_gone(api, namespace, "s"), timeout=60, what="session gone")
    assert path not in worktrees(repo["repo"])
    assert not Path(path).exists()
    assert git("rev-parse", "--verify", "refs/heads/feature-a", cwd=repo["repo"])
    wait_events(api, namespace, "s", "WorktreeRemoved")
    labels = client.CoreV1Api(api).list_namespaced_pod(namespace).items[0].metadata.labels
    assert "rdev.io/session" not in labels


def test_delete_with_project_pod_gone_does_not_block(api, namespace, repo, operator):
    pod = create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", newBranch="topic/c"))
    s = wait_condition(api, namespace, "s", "Ready")
    path = Path(s["status"]["checkoutPath"])
    (path / "wip.txt").write_text("wip\n")
    core = client.CoreV1Api(api)
    core.delete_namespaced_pod(pod["metadata"]["name"], namespace, grace_period_seconds=0)
    # The session waits for its own pod, where its work is; it never moves.
    s = wait_condition(api, namespace, "s", "Ready", "False", "ProjectPodNotReady", timeout=60)
    assert s["status"]["phase"] == "Active"
    delete_session(api, namespace, "s")
    wait_for(lambda: session_gone(api, namespace, "s"), timeout=60, what="session gone")
    assert (path / "wip.txt").exists()

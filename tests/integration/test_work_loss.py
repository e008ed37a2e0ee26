"""The routes by which work could be lost, each closed: on the real control plane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubehelpers import (
    condition,
    create_project_pod,
    create_session,
    delete_session,
    events_for,
    git,
    make_repo,
    patch_session,
    session_gone,
    session_manifest,
    wait_condition,
    wait_events,
    wait_for,
    wait_phase,
    worktrees,
)


def _kept_messages(api: Any, namespace: str, name: str) -> list[str]:
    return [e.message for e in events_for(api, namespace, name) if e.reason == "WorktreeKept"]


def _ignored_env(path: Path) -> str:
    (path / ".gitignore").write_text(".env\n")
    git("add", ".gitignore", cwd=path)
    git("commit", "-q", "-m", "ignore .env", cwd=path)
    git("push", "-q", "origin", "HEAD", cwd=path)
    (path / ".env").write_text("TOKEN=only-here\n")
    return "1 ignored file (.env)"


def _skip_worktree_edit(path: Path) -> str:
    git("update-index", "--skip-worktree", "README.md", cwd=path)
    (path / "README.md").write_text("edited where status cannot see\n")
    return "1 hidden edit (README.md)"


def _stash(path: Path) -> str:
    (path / "README.md").write_text("stashed\n")
    git("stash", "-q", cwd=path)
    return "1 stash"


WORK = {"ignored": _ignored_env, "skip-worktree": _skip_worktree_edit, "stash": _stash}


@pytest.mark.parametrize("kind", list(WORK))
@pytest.mark.parametrize("end", ["delete", "expiry", "checkin"])
def test_hidden_work_keeps_the_worktree(api, namespace, repo, operator, kind, end):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", newBranch=f"topic/{kind}"))
    s = wait_condition(api, namespace, "s", "Ready")
    path = Path(s["status"]["checkoutPath"])
    held = WORK[kind](path)
    if end == "expiry":
        patch_session(api, namespace, "s", {"expiresIn": "1s"})
        wait_phase(api, namespace, "s", "Expired", timeout=60)
    elif end == "checkin":
        patch_session(api, namespace, "s", {"checkin": {"skipReview": True}})
        wait_phase(api, namespace, "s", "Ended", timeout=60)
    if end != "delete":
        # The end says what the worktree holds, and keeps it.
        wait_for(
            lambda: any(held in m for m in _kept_messages(api, namespace, "s")),
            timeout=30,
            what=f"WorktreeKept naming {held}",
        )
    delete_session(api, namespace, "s")
    wait_for(lambda: session_gone(api, namespace, "s"), timeout=60, what="session gone")
    assert str(path) in worktrees(repo["repo"])
    kept = f"worktree {path} kept: it holds {held}"
    wait_events(api, namespace, "s", "WorktreeKept", match=lambda e: e.message == kept)
    assert "WorktreeRemoved" not in [e.reason for e in events_for(api, namespace, "s")]


def _hold_terminating(api: Any, namespace: str, name: str) -> None:
    core = client.CoreV1Api(api)
    core.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": ["test.rdev.io/hold"]}})
    core.delete_namespaced_pod(name, namespace)
    wait_for(
        lambda: core.read_namespaced_pod(name, namespace).metadata.deletion_timestamp,
        timeout=30,
        what=f"pod {name} terminating",
    )


def _release(api: Any, namespace: str, name: str) -> None:
    core = client.CoreV1Api(api)
    try:
        core.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": None}})
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def test_a_session_stays_on_its_pod_while_that_pod_is_not_ready(
    api, namespace, repo, tmp_path, operator
):
    first = create_project_pod(api, namespace, "shop", repo, name="shop-a")
    s = create_session(api, namespace, session_manifest("s", "shop", newBranch="topic/stay"))
    s = wait_condition(api, namespace, "s", "Ready")
    assert s["status"]["podName"] == "shop-a"
    path = Path(s["status"]["checkoutPath"])
    (path / "wip.txt").write_text("uncommitted\n")
    other = make_repo(tmp_path / "other")
    create_project_pod(api, namespace, "shop", other, name="shop-b")
    try:
        _hold_terminating(api, namespace, first["metadata"]["name"])
        s = wait_condition(api, namespace, "s", "Ready", "False", "ProjectPodNotReady", timeout=60)
        assert s["status"]["phase"] == "Active"  # keeps its phase and its turn
        assert s["status"]["podName"] == "shop-a"
        assert "shop-a" in condition(s, "Ready")["message"]
        assert condition(s, "Reconciling")["status"] == "True"
        # A younger Session does not take the project meanwhile.
        create_session(api, namespace, session_manifest("t", "shop", branch="feature-b"))
        t = wait_condition(api, namespace, "t", "Ready", "False", "ProjectBusy", timeout=60)
        assert t["status"]["phase"] == "Pending"
        s = wait_condition(api, namespace, "s", "Ready", "False", "ProjectPodNotReady")
        assert worktrees(other["repo"]) == [str(other["repo"].resolve())]
        assert (path / "wip.txt").exists()
        labels = client.CoreV1Api(api).read_namespaced_pod("shop-b", namespace).metadata.labels
        assert "rdev.io/session" not in labels
    finally:
        _release(api, namespace, "shop-a")


def test_a_session_whose_pod_is_long_gone_stalls_naming_where_the_work_was(
    api, namespace, repo, operator_factory
):
    operator_factory(RDEV_POD_GONE_GRACE="3s")
    create_project_pod(api, namespace, "shop", repo, name="shop-a")
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Ready")
    path = s["status"]["checkoutPath"]
    client.CoreV1Api(api).delete_namespaced_pod("shop-a", namespace, grace_period_seconds=0)
    s = wait_condition(api, namespace, "s", "Stalled", "True", "ProjectPodGone", timeout=60)
    assert s["status"]["phase"] == "Active" and s["status"]["podName"] == "shop-a"
    message = condition(s, "Ready")["message"]
    assert "shop-a" in message and path in message
    warnings = wait_events(api, namespace, "s", "ProjectPodGone")
    assert warnings[0].type == "Warning"


@pytest.mark.parametrize("where", ["local", "origin"])
def test_new_branch_never_takes_over_an_existing_branch(api, namespace, repo, operator, where):
    create_project_pod(api, namespace, "shop", repo)
    if where == "local":
        git("branch", "topic/theirs", "origin/feature-a", cwd=repo["repo"])
    else:
        git(
            "push",
            "-q",
            str(repo["origin"]),
            "origin/feature-a:refs/heads/topic/theirs",
            cwd=repo["repo"],
        )
    before = git("for-each-ref", "refs/heads", cwd=repo["repo"])
    create_session(api, namespace, session_manifest("s", "shop", newBranch="topic/theirs"))
    s = wait_condition(api, namespace, "s", "Stalled", "True", "BranchExists", timeout=60)
    assert s["status"]["phase"] == "Failed"
    expected = "locally" if where == "local" else "on origin"
    assert expected in condition(s, "Ready")["message"]
    assert git("for-each-ref", "refs/heads", cwd=repo["repo"]) == before
    assert worktrees(repo["repo"]) == [str(repo["repo"].resolve())]


def test_a_recreated_session_does_not_adopt_a_worktree_holding_work(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Ready")
    path = Path(s["status"]["checkoutPath"])
    (path / "notes.txt").write_text("mine\n")
    delete_session(api, namespace, "s")
    wait_for(lambda: session_gone(api, namespace, "s"), timeout=60, what="session gone")
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Stalled", "True", "CheckoutExists", timeout=60)
    message = condition(s, "Ready")["message"]
    assert str(path) in message and "1 untracked file" in message
    assert (path / "notes.txt").read_text() == "mine\n"
    # Once the work is taken care of, the new Session adopts the empty worktree.
    (path / "notes.txt").unlink()
    wait_condition(api, namespace, "s", "Ready", timeout=60)

"""Idle timeout, warnings before a session stops, and a checkin that hands the work to review."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from kubehelpers import (
    condition,
    create_project_pod,
    create_session,
    events_for,
    git,
    patch_session,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)

ENV_GIT = ["-c", "user.email=t@example.com", "-c", "user.name=t"]


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _events(api, namespace, name, reason):
    return [e for e in events_for(api, namespace, name) if e.reason == reason]


# Idle timeout -------------------------------------------------------------------
def test_idle_session_ends_with_idle_timeout_near_its_deadline(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s", "shop", branch="feature-a", idleTimeout="5s")
    )
    s = wait_condition(api, namespace, "s", "Ready")
    last = _ts(s["status"]["lastActivityAt"])
    s = wait_phase(api, namespace, "s", "Expired", timeout=60)
    assert condition(s, "Ready") is None  # ended: kstatus reads Current
    assert condition(s, "Reconciling")["reason"] == "IdleTimeout"
    ended = _ts(s["status"]["endedAt"])
    assert 5 <= (ended - last).total_seconds() <= 60
    assert Path(s["status"]["checkoutPath"]).is_dir()  # the worktree stays
    assert "review" not in s["status"]  # an idle stop never pushes or asks for review


def test_activity_postpones_the_idle_stop(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s", "shop", branch="feature-a", idleTimeout="6s")
    )
    s = wait_condition(api, namespace, "s", "Ready")
    first = s["status"]["lastActivityAt"]
    (Path(s["status"]["checkoutPath"]) / "notes.txt").write_text("working\n")

    def moved():
        got = wait_condition(api, namespace, "s", "Ready", timeout=5)
        return got if got["status"]["lastActivityAt"] != first else None

    s = wait_for(moved, timeout=30, what="lastActivityAt to move")
    assert s["status"]["phase"] == "Active"
    second = _ts(s["status"]["lastActivityAt"])
    assert (second - _ts(first)).total_seconds() >= 6  # seen at the first deadline
    s = wait_phase(api, namespace, "s", "Expired", timeout=60)
    assert condition(s, "Ready") is None  # ended: kstatus reads Current
    assert condition(s, "Reconciling")["reason"] == "IdleTimeout"
    assert (_ts(s["status"]["endedAt"]) - second).total_seconds() >= 6
    assert (Path(s["status"]["checkoutPath"]) / "notes.txt").exists()


# Warnings before a session stops ------------------------------------------------------
def test_expiring_soon_once_per_deadline_and_again_after_an_extend(
    api, namespace, repo, operator_factory
):
    operator_factory(RDEV_EXPIRY_WARNING="1h")
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s", "shop", branch="feature-a", expiresIn="30m")
    )
    wait_condition(api, namespace, "s", "Ready")
    s = wait_for(
        lambda: (
            (got := wait_condition(api, namespace, "s", "Ready", timeout=5))["status"].get(
                "expiresSoon"
            )
            and got
        ),
        timeout=30,
        what="expiresSoon",
    )
    wait_for(lambda: _events(api, namespace, "s", "ExpiringSoon"), timeout=30, what="warning")
    (event,) = _events(api, namespace, "s", "ExpiringSoon")
    assert event.type == "Warning"
    assert "kubectl session extend" in event.message
    assert s["status"]["expiresAt"] in event.message

    # More reconciles of the same deadline warn no more.
    patch_session(api, namespace, "s", {"webUI": True})
    wait_for(
        lambda: (
            wait_condition(api, namespace, "s", "WebUIReady", timeout=5)["status"]["webUI"]
            == "Running"
        ),
        timeout=30,
        what="web UI running",
    )
    assert len(_events(api, namespace, "s", "ExpiringSoon")) == 1

    # Extended out of the window: no longer expiring soon.
    patch_session(api, namespace, "s", {"expiresIn": "3h"})
    wait_for(
        lambda: (
            wait_condition(api, namespace, "s", "Ready", timeout=5)["status"].get("expiresSoon")
            is False
        ),
        timeout=30,
        what="expiresSoon false",
    )
    # Brought back close: a new deadline, a new warning.
    patch_session(api, namespace, "s", {"expiresIn": "45m"})
    wait_for(
        lambda: len(_events(api, namespace, "s", "ExpiringSoon")) == 2,
        timeout=30,
        what="second warning",
    )


def test_idle_deadline_warns_too(api, namespace, repo, operator_factory):
    operator_factory(RDEV_EXPIRY_WARNING="1h")
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s", "shop", branch="feature-a", idleTimeout="20m")
    )
    wait_for(lambda: _events(api, namespace, "s", "ExpiringSoon"), timeout=30, what="warning")
    (event,) = _events(api, namespace, "s", "ExpiringSoon")
    assert "idleTimeout" in event.message


# Checkin hands the work to review --------------------------------------------------------
def _commit_in(path: Path, name: str) -> str:
    (path / name).write_text("work\n")
    git("add", name, cwd=path)
    git(*ENV_GIT, "commit", "-q", "-m", f"add {name}", cwd=path)
    return git("rev-parse", "HEAD", cwd=path)


def test_checkin_pushes_the_branch_for_review(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", newBranch="topic/review"))
    s = wait_condition(api, namespace, "s", "Ready")
    path = Path(s["status"]["checkoutPath"])
    head = _commit_in(path, "done.txt")
    (path / "draft.txt").write_text("not committed\n")  # stays in the worktree only
    patch_session(api, namespace, "s", {"checkin": {"autoMerge": True}})
    s = wait_phase(api, namespace, "s", "Ended", timeout=60)
    review = s["status"]["review"]
    assert review == {
        "requested": True,
        "autoMerge": True,
        "pushed": True,
        "commit": head,
        "branch": "topic/review",
    }
    assert git("rev-parse", "refs/heads/topic/review", cwd=repo["origin"]) == head
    assert "draft.txt" not in git("ls-tree", "-r", "--name-only", head, cwd=repo["origin"])
    assert (path / "draft.txt").read_text() == "not committed\n"
    assert s["status"]["changes"]["untrackedFiles"] == 1


def test_rejected_push_ends_the_session_with_nothing_lost(api, namespace, repo, operator):
    hook = repo["origin"] / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are closed today' >&2\nexit 1\n")
    hook.chmod(0o755)
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", newBranch="topic/closed"))
    s = wait_condition(api, namespace, "s", "Ready")
    path = Path(s["status"]["checkoutPath"])
    head = _commit_in(path, "done.txt")
    (path / "draft.txt").write_text("not committed\n")
    patch_session(api, namespace, "s", {"checkin": {}})
    s = wait_phase(api, namespace, "s", "Ended", timeout=60)
    review = s["status"]["review"]
    assert review["requested"] is True and review["pushed"] is False
    assert review["commit"] == head
    # Events follow the status write: wait for it, bounded.
    wait_for(lambda: _events(api, namespace, "s", "PushFailed"), timeout=30, what="PushFailed")
    (failed,) = _events(api, namespace, "s", "PushFailed")
    assert failed.type == "Warning"
    assert "pushes are closed today" in failed.message
    assert git("rev-parse", "HEAD", cwd=path) == head
    assert (path / "draft.txt").exists()
    assert s["status"]["changes"]["unpushedCommits"] == 1


def test_skip_review_pushes_nothing(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", newBranch="topic/quiet"))
    s = wait_condition(api, namespace, "s", "Ready")
    _commit_in(Path(s["status"]["checkoutPath"]), "done.txt")
    patch_session(api, namespace, "s", {"checkin": {"skipReview": True}})
    s = wait_phase(api, namespace, "s", "Ended", timeout=60)
    assert "review" not in s["status"]
    refs = git("for-each-ref", "--format=%(refname)", cwd=repo["origin"])
    assert "refs/heads/topic/quiet" not in refs
    assert not _events(api, namespace, "s", "BranchPushed")

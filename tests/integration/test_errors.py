"""Every waiting and failure reason, through the real API server and pod exec."""

from __future__ import annotations

from kubehelpers import (
    condition,
    create_project_pod,
    create_session,
    event_reasons,
    git,
    session_manifest,
    wait_condition,
    wait_for,
)


def _stalled_with(session: dict, reason: str) -> None:
    stalled = condition(session, "Stalled")
    ready = condition(session, "Ready")
    assert stalled and stalled["status"] == "True" and stalled["reason"] == reason
    assert ready and ready["status"] == "False" and ready["reason"] == reason
    assert session["status"]["phase"] == "Failed"


def test_project_not_found_then_pod_appears(api, namespace, repo, operator):
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Ready", "False", "ProjectNotFound")
    assert s["status"]["phase"] == "Pending"
    assert condition(s, "Reconciling")["status"] == "True"
    assert condition(s, "Stalled")["status"] == "False"
    create_project_pod(api, namespace, "shop", repo)
    wait_condition(api, namespace, "s", "Ready")  # woken by the pod's watch event


def test_project_not_running(api, namespace, repo, operator):
    create_project_pod(
        api, namespace, "shop", repo, wait=False, extra_spec={"nodeSelector": {"no": "such-node"}}
    )
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Ready", "False", "ProjectNotRunning")
    assert s["status"]["phase"] == "Pending"


def test_branch_not_found_then_pushed(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="later"))
    s = wait_condition(api, namespace, "s", "Stalled", "True", "BranchNotFound")
    _stalled_with(s, "BranchNotFound")
    wait_for(lambda: "BranchNotFound" in event_reasons(api, namespace, "s"), what="event")
    seed = repo["base"] / "seed"
    git("checkout", "-q", "-b", "later", cwd=seed)
    git("push", "-q", "origin", "later", cwd=seed)
    s = wait_condition(api, namespace, "s", "Ready", timeout=60)  # re-checked slowly
    assert condition(s, "Stalled")["status"] == "False"


def test_branch_protected(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="main"))
    s = wait_condition(api, namespace, "s", "Stalled", "True", "BranchProtected")
    _stalled_with(s, "BranchProtected")


def test_checkout_exists_when_branch_is_checked_out_elsewhere(api, namespace, repo, operator):
    git("checkout", "-q", "feature-b", cwd=repo["repo"])
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-b"))
    s = wait_condition(api, namespace, "s", "Stalled", "True", "CheckoutExists")
    _stalled_with(s, "CheckoutExists")


def test_exec_failure_is_reported_and_retried(api, namespace, repo, operator):
    create_project_pod(
        api, namespace, "shop", repo, annotations={"rdev.io/repo-path": "/nonexistent/repo"}
    )
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Ready", "False", "ExecFailed")
    assert condition(s, "Reconciling")["status"] == "True"
    wait_for(lambda: "ExecFailed" in event_reasons(api, namespace, "s"), what="ExecFailed event")


def test_progress_deadline_names_the_stuck_step(api, namespace, repo, operator_factory):
    # A fetch that hangs: origin over "ssh" whose command never returns.
    git("config", "core.sshCommand", "sleep 30", cwd=repo["repo"])
    git("remote", "set-url", "origin", "ssh://git.invalid/repo", cwd=repo["repo"])
    operator_factory(RDEV_EXEC_TIMEOUT="2s", RDEV_PROGRESS_DEADLINE="3s")
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Stalled", "True", "ProgressDeadlineExceeded")
    assert "stuck at step: fetch" in condition(s, "Stalled")["message"]
    assert s["status"]["phase"] == "Failed"

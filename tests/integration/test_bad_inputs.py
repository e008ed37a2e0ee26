"""Odd input found by trying the operator as a new user would, each fixed at its depth."""

from __future__ import annotations

from kubernetes import client

from kubehelpers import (
    condition,
    create_project_pod,
    create_session,
    events_for,
    git,
    session_manifest,
    wait_condition,
    wait_for,
)


def test_missing_container_stalls_with_container_not_found(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="a", container="nope"))
    s = wait_condition(api, namespace, "s", "Stalled", "True", "ContainerNotFound")
    assert s["status"]["phase"] == "Failed"
    message = condition(s, "Stalled")["message"]
    assert "no container nope" in message


def test_a_tag_given_as_branch_stalls_and_says_it_is_a_tag(api, namespace, repo, operator):
    git("tag", "v1.0", "origin/feature-a", cwd=repo["repo"])
    git("push", "-q", "origin", "v1.0", cwd=repo["repo"])
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="v1.0"))
    s = wait_condition(api, namespace, "s", "Stalled", "True", "BranchNotFound")
    assert "v1.0 names a tag, not a branch" in condition(s, "Stalled")["message"]
    assert "checkoutPath" not in s["status"]


def test_a_commit_given_as_branch_stalls_and_says_it_is_a_commit(api, namespace, repo, operator):
    sha = git("rev-parse", "origin/feature-a", cwd=repo["repo"])
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch=sha[:12]))
    s = wait_condition(api, namespace, "s", "Stalled", "True", "BranchNotFound")
    assert "names a commit, not a branch" in condition(s, "Stalled")["message"]


def test_exec_failures_say_the_exit_code_and_the_last_lines(api, namespace, repo, operator):
    create_project_pod(
        api, namespace, "shop", repo, annotations={"rdev.io/repo-path": "/nonexistent/repo"}
    )
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Ready", "False", "ExecFailed")
    message = condition(s, "Ready")["message"]
    assert "exit code 10:" in message
    assert message.split("exit code 10:", 1)[1].strip()  # something after the colon


def test_identical_failures_are_counted_on_a_few_event_objects(
    api, namespace, repo, operator_factory
):
    operator_factory(RDEV_WEBUI_COMMAND="false", RDEV_RETRY_INTERVAL="100ms")
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a", webUI=True))

    def failures() -> list[client.CoreV1Event]:
        return [e for e in events_for(api, namespace, "s") if e.reason == "WebUIFailed"]

    # Failed starts back off (0.1 s doubling), so about ten fit in 90 s.
    wait_for(
        lambda: sum(e.count or 1 for e in failures()) >= 8,
        timeout=90,
        what="8 WebUIFailed occurrences",
    )
    assert len(failures()) <= 3

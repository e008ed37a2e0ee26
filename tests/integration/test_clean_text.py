"""Text that leaves a pod or the cluster is clean: no credentials, no terminal control.

git's stderr reaches conditions and Events only redacted and without escape
sequences, and ``kubectl session`` prints none of what a status or an Event holds.
"""

from __future__ import annotations

import json
from pathlib import Path

from kubernetes import client

from kubehelpers import (
    GROUP,
    PLURAL,
    VERSION,
    condition,
    create_project_pod,
    create_session,
    events_for,
    git,
    patch_session,
    plugin,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)

SECRET = "s3cr3t"
ENV_GIT = ["-c", "user.email=t@example.com", "-c", "user.name=t"]
# What a server-side hook might print: its config, a header, and terminal escapes.
HOOK = rf"""#!/bin/sh
echo 'Authorization: Bearer {SECRET}' >&2
printf 'mirror https://ci:{SECRET}@mirror.example/x.git is down, token={SECRET} ' >&2
printf '\033]0;pwned\007\033[31mpushes are closed\033[0m\n' >&2
exit 1
"""


def leaks(api, namespace: str, name: str) -> list[str]:
    """Everything the operator wrote about the Session that holds a secret or an ESC."""
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    texts = [json.dumps(obj.get("status") or {}, ensure_ascii=False)]
    texts += [e.message or "" for e in events_for(api, namespace, name)]
    return [t for t in texts if SECRET in t or "\x1b" in t]


def test_a_failed_push_reports_git_redacted_and_without_escapes(api, namespace, repo, operator):
    hook = repo["origin"] / "hooks" / "pre-receive"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", newBranch="topic/closed"))
    s = wait_condition(api, namespace, "s", "Ready")
    path = Path(s["status"]["checkoutPath"])
    (path / "done.txt").write_text("work\n")
    git("add", "done.txt", cwd=path)
    git(*ENV_GIT, "commit", "-q", "-m", "done", cwd=path)
    patch_session(api, namespace, "s", {"checkin": {}})
    s = wait_phase(api, namespace, "s", "Ended", timeout=60)
    assert s["status"]["review"]["pushed"] is False

    def push_failed():
        return [e for e in events_for(api, namespace, "s") if e.reason == "PushFailed"]

    (failed,) = wait_for(push_failed, timeout=30, what="PushFailed")
    assert "remote: Authorization: *** | remote: mirror https://***@mirror.example/x.git" in (
        failed.message
    )
    assert "is down, token=*** pushes are closed" in failed.message
    assert leaks(api, namespace, "s") == []
    assert SECRET not in operator.logs()


def test_a_failed_fetch_condition_is_redacted(api, namespace, repo, operator, tmp_path):
    # git prints the remote's path when it cannot fetch from it.
    gone = tmp_path / f"token={SECRET}" / "x.git"
    git("remote", "set-url", "origin", str(gone), cwd=repo["repo"])
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Ready", status="False", reason="ExecFailed")
    message = condition(s, "Ready")["message"]
    assert "git fetch failed" in message and "token=***" in message
    wait_for(lambda: events_for(api, namespace, "s"), timeout=30, what="an Event")
    assert leaks(api, namespace, "s") == []


def test_the_plugin_prints_no_escape_sequences(api, kubeconfig, namespace):
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    esc = "\x1b]0;pwned\x07\x1b[2J\x1b[31m"
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "s",
        {
            "status": {
                "phase": "Provisioning",
                "branch": f"feature-a{esc}",
                "podName": f"pod{esc}",
                "createdBy": f"bob{esc}",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": f"ExecFailed{esc}",
                        "message": f"git said {esc}no\nsecond line",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    },
                    {
                        "type": "Stalled",
                        "status": "True",
                        "reason": "BranchNotFound",
                        "message": f"stalled {esc}here",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    },
                ],
            }
        },
    )
    client.CoreV1Api(api).create_namespaced_event(
        namespace,
        {
            "metadata": {"generateName": "s."},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Session",
                "name": "s",
                "namespace": namespace,
            },
            "type": "Warning",
            "reason": "PushFailed",
            "message": f"denied {esc}\x9b1m",
            "source": {"component": "test"},
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:00:00Z",
            "count": 1,
        },
    )
    args = ("-n", namespace)
    described = plugin(kubeconfig, "describe", "s", *args)
    assert described.returncode == 0, described.stderr
    assert "git said no second line" in described.stdout
    assert "denied" in described.stdout
    listed = plugin(kubeconfig, "list", *args)
    assert listed.returncode == 0, listed.stderr
    assert "feature-a" in listed.stdout
    waited = plugin(kubeconfig, "wait", "s", "--timeout", "10s", *args)
    assert waited.returncode == 1
    assert "stalled here" in waited.stderr
    for done in (described, listed, waited):
        out = done.stdout + done.stderr
        assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out

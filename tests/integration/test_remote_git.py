"""git over the API server: ``git clone rdev://<namespace>/<session>`` on the real control plane.

git runs the ``git-remote-rdev`` console script (installed beside this interpreter, as
``pip install -e .`` puts it) with the test's kubeconfig; the helper execs
git-upload-pack / git-receive-pack in the project pod, which kwok runs as real local
processes in the session's real worktree.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubectl_session import remote as helper
from kubectl_session.kubeapi import connect
from kubehelpers import (
    create_project_pod,
    create_session,
    get_session,
    git,
    ok,
    patch_session,
    plugin,
    process_alive,
    service_account_kubeconfig,
    session_manifest,
    wait_for,
    wait_phase,
)

BIN = Path(sys.executable).parent
HELPER = BIN / "git-remote-rdev"
BRANCH = "topic/one"
AUTHOR = ["-c", "user.email=me@example.com", "-c", "user.name=me"]


@dataclass
class Remote:
    """An Active session s1 on branch topic/one, and where to clone it."""

    kubeconfig: str
    namespace: str
    worktree: Path
    repo: Path
    base: Path

    @property
    def url(self) -> str:
        return f"rdev://{self.namespace}/s1"

    def env(self, kubeconfig: str | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": kubeconfig or self.kubeconfig,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "GIT_TERMINAL_PROMPT": "0",
        }

    def git(
        self, *args: str, cwd: Path | None = None, kubeconfig: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *AUTHOR, *args],
            cwd=cwd or self.base,
            env=self.env(kubeconfig),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def clone(self, into: str = "mine") -> Path:
        done = self.git("clone", self.url, into)
        assert done.returncode == 0, done.stderr
        return self.base / into


def refused(done: subprocess.CompletedProcess[str], text: str) -> str:
    assert done.returncode != 0, f"{done.args} succeeded: {done.stdout} {done.stderr}"
    assert text in done.stderr, done.stderr
    return done.stderr


@pytest.fixture
def remote(api, kubeconfig, namespace, repo, operator) -> Remote:
    assert HELPER.exists(), f"git-remote-rdev is not in {BIN}: pip install -e . (make setup)"
    create_project_pod(api, namespace, "shop", repo)
    create_session(
        api, namespace, session_manifest("s1", "shop", newBranch=BRANCH, fromRef="feature-a")
    )
    s1 = wait_phase(api, namespace, "s1", "Active", timeout=90)
    return Remote(
        kubeconfig, namespace, Path(s1["status"]["checkoutPath"]), repo["repo"], repo["base"]
    )


def commit(where: Path, name: str, text: str) -> str:
    (where / name).write_text(text)
    git("add", name, cwd=where)
    git(*AUTHOR, "commit", "-q", "-m", f"add {name}", cwd=where)
    return git("rev-parse", "HEAD", cwd=where)


def test_clone_push_and_pull_through_the_api_server(api, remote):
    s1 = get_session(api, remote.namespace, "s1")
    assert s1["status"]["cloneURL"] == remote.url
    mine = remote.clone()
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=mine) == BRANCH
    assert (mine / "feature-a.txt").read_text() == "feature-a\n"
    # Only the session's branch is offered, not the project's others.
    remotes = git("for-each-ref", "--format=%(refname)", "refs/remotes", cwd=mine).split()
    assert remotes == ["refs/remotes/origin/HEAD", f"refs/remotes/origin/{BRANCH}"]

    head = commit(mine, "local.txt", "from my machine\n")
    ok(remote.git("push", cwd=mine))
    assert (remote.worktree / "local.txt").read_text() == "from my machine\n"
    assert git("rev-parse", "HEAD", cwd=remote.worktree) == head
    assert git("status", "--porcelain", cwd=remote.worktree) == ""

    in_pod = commit(remote.worktree, "pod.txt", "from the pod\n")
    # A forced push would drop the session's commit: refused, nothing moves.
    commit(mine, "other.txt", "not on top of the pod's commit\n")
    refused(remote.git("push", "--force", cwd=mine), "non-fast-forward")
    assert git("rev-parse", "HEAD", cwd=remote.worktree) == in_pod
    ok(remote.git("reset", "-q", "--hard", head, cwd=mine))

    ok(remote.git("pull", "--ff-only", cwd=mine))
    assert git("rev-parse", "HEAD", cwd=mine) == in_pod
    assert (mine / "pod.txt").read_text() == "from the pod\n"


def test_a_push_into_a_worktree_with_changes_is_refused(remote):
    mine = remote.clone()
    commit(mine, "local.txt", "from my machine\n")
    (remote.worktree / "feature-a.txt").write_text("edited in the pod\n")
    (remote.worktree / "new-1.txt").write_text("untracked\n")
    (remote.worktree / "new-2.txt").write_text("untracked\n")
    before = git("rev-parse", "HEAD", cwd=remote.worktree)

    refused(remote.git("push", cwd=mine), "has 3 uncommitted or untracked files")
    assert git("rev-parse", "HEAD", cwd=remote.worktree) == before
    assert git("rev-parse", BRANCH, cwd=remote.repo) == before
    assert not (remote.worktree / "local.txt").exists()
    assert (remote.worktree / "feature-a.txt").read_text() == "edited in the pod\n"


def test_a_push_to_another_ref_is_refused(remote):
    mine = remote.clone()
    commit(mine, "local.txt", "from my machine\n")
    for ref in ("refs/heads/other", "refs/heads/main", "refs/tags/v1"):
        stderr = refused(remote.git("push", "origin", f"HEAD:{ref}", cwd=mine), ref)
        assert f"takes pushes to its branch {BRANCH} only" in stderr
    assert git("branch", "--list", "other", cwd=remote.repo) == ""
    assert git("tag", "--list", cwd=remote.repo) == ""
    assert git("rev-parse", "main", cwd=remote.repo) == git(
        "rev-parse", "origin/main", cwd=remote.repo
    )


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The helper's one line among git's own."""
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_missing_session_and_an_ended_one(api, remote):
    missing = remote.git("clone", f"rdev://{remote.namespace}/nope", "nope")
    assert missing.returncode != 0
    assert error_line(missing) == f"error: session nope not found in namespace {remote.namespace}"

    mine = remote.clone()
    commit(mine, "local.txt", "from my machine\n")
    patch_session(api, remote.namespace, "s1", {"checkin": {"skipReview": True}})
    ended = wait_phase(api, remote.namespace, "s1", "Ended", timeout=90)
    assert "cloneURL" not in ended["status"]
    pushed = remote.git("push", cwd=mine)
    assert pushed.returncode != 0
    assert error_line(pushed) == (
        f"error: session s1 in namespace {remote.namespace} has ended (phase Ended):"
        " no more fetches or pushes"
    )
    cloned = plugin(remote.kubeconfig, "clone", "s1", "late", "-n", remote.namespace)
    assert cloned.returncode == 1
    assert cloned.stderr == "error: session s1 is not Active (phase Ended)\n"


def restricted_kubeconfig(
    api: client.ApiClient, kubeconfig: str, namespace: str, name: str, rules: list[Any], path: Path
) -> str:
    """A kubeconfig for a ServiceAccount holding only ``rules`` in ``namespace``."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )
    return service_account_kubeconfig(api, kubeconfig, namespace, name, path)


def test_missing_rights_are_named(api, remote):
    read_session = {"apiGroups": ["rdev.io"], "resources": ["sessions"], "verbs": ["get"]}
    reader = restricted_kubeconfig(
        api, remote.kubeconfig, remote.namespace, "reader", [read_session],
        remote.base / "reader.kubeconfig",
    )  # fmt: skip
    nobody = restricted_kubeconfig(
        api, remote.kubeconfig, remote.namespace, "nobody", [], remote.base / "nobody.kubeconfig"
    )
    ns = remote.namespace

    def attempt(kubeconfig: str) -> str:
        done = remote.git("clone", remote.url, "denied", kubeconfig=kubeconfig)
        assert done.returncode != 0
        assert not (remote.base / "denied" / ".git").exists()
        return error_line(done)

    # RBAC is read by the API server's cache: the new grant may take a moment.
    wait_for(lambda: "pods/exec" in attempt(reader), timeout=30, what="the reader's Role in effect")
    assert attempt(reader).startswith(f"error: cannot create pods/exec in namespace {ns}")
    assert attempt(nobody).startswith(f"error: cannot get sessions.rdev.io in namespace {ns}")


def test_plugin_clone_and_create_print_the_next_commands(api, remote):
    env_free = {k: v for k, v in os.environ.items() if k != "PATH"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubectl_session",
            "clone",
            "s1",
            "viaplugin",
            "-n",
            remote.namespace,
        ],
        cwd=remote.base,
        env={**env_free, "KUBECONFIG": remote.kubeconfig, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ok(done)
    cloned = remote.base / "viaplugin"
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=cloned) == BRANCH
    assert git("remote", "get-url", "origin", cwd=cloned) == remote.url

    out = ok(
        plugin(
            remote.kubeconfig, "create", "s2", "-n", remote.namespace, "--project", "shop",
            "--new-branch", "topic/two",
        )
    )  # fmt: skip
    ns = remote.namespace
    lines = [line.split("#")[0].strip() for line in out.splitlines()]
    assert lines[1:] == [
        "Next:",
        f"kubectl session open s2 -n {ns}",
        f"kubectl session clone s2 -n {ns}",
        f"kubectl session exec s2 -n {ns} -- git status",
    ]
    assert f"git clone rdev://{ns}/s2" in out

    out = ok(
        plugin(
            remote.kubeconfig, "create", "s3", "-n", ns, "--project", "shop",
            "--new-branch", "topic/three", "--credential",
        )
    )  # fmt: skip
    assert f"kubectl session credential s3 -n {ns} -o s3.kubeconfig" in out
    assert get_session(api, ns, "s3")["spec"]["credential"] is True

    described = ok(plugin(remote.kubeconfig, "describe", "s1", "-n", ns))
    assert f"Clone URL:      rdev://{ns}/s1" in described


def test_the_relay_ends_when_git_hangs_up_though_kwok_keeps_stdin_open(
    api, kubeconfig, namespace, repo
):
    """kwok's exec does not pass the v5 close of stdin on to the process: the relay still
    returns once git has hung up and the grace has passed."""
    pod = create_project_pod(api, namespace, "shop", repo)["metadata"]["name"]
    target = connect(kubeconfig, None, namespace)
    ws = helper.Workspace(pod, None, str(repo["repo"]), "main")
    sock = helper._open(target, helper.SessionURL(namespace, "x"), ws, ["sh", "-c", READS])
    assert sock.subprotocol == "v5.channel.k8s.io"
    out = io.BytesIO()
    started = time.monotonic()
    pid = 0
    try:
        helper.relay(sock, pod, io.BytesIO(b"hello"), out, io.BytesIO(), None, grace_s=2)
        assert time.monotonic() - started < 20
        first, _, rest = out.getvalue().partition(b"\n")
        pid = int(first)
        assert rest == b"hello"
    finally:
        if pid and process_alive(pid):
            os.kill(pid, signal.SIGKILL)


READS = "echo $$; exec cat"  # its pid, then its input until the end of it

"""git-remote-rdev without a cluster: URLs, git's helper commands, pkt-lines, argv, refusals."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from kubectl_session import remote
from kubectl_session.cli import git_env
from kubectl_session.kubeapi import PluginError
from kubectl_session.render import describe, next_commands
from rdev_api.names import clone_url

ZERO, ONE = "0" * 40, "1" * 40


@pytest.mark.parametrize(
    ("url", "namespace", "name"),
    [
        ("rdev://team-a/hello", "team-a", "hello"),
        ("rdev://team-a/hello/", "team-a", "hello"),
        ("rdev://a/b-1", "a", "b-1"),
    ],
)
def test_urls_name_a_namespace_and_a_session(url: str, namespace: str, name: str) -> None:
    assert remote.parse_url(url) == remote.SessionURL(namespace, name)
    assert remote.parse_url(clone_url(namespace, name)) == remote.SessionURL(namespace, name)


@pytest.mark.parametrize(
    "url",
    [
        "https://team-a/hello",
        "rdev://team-a",
        "rdev://team-a/hello/extra",
        "rdev://Team-A/hello",
        "rdev://team-a/-x",
        "rdev:///hello",
        "rdev://team-a/hello?x=1",
        "rdev://team-a/" + "a" * 64,
        "rdev://team-a/he\x1b[2Jllo",
    ],
)
def test_other_urls_are_refused_plainly(url: str) -> None:
    with pytest.raises(PluginError, match="not an rdev URL") as info:
        remote.parse_url(url)
    assert "\x1b" not in str(info.value)


def session(phase: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "s1"}, "status": {"phase": phase, **status}}


WHERE = remote.SessionURL("team-a", "s1")
PLACED = {"podName": "shop-1", "container": "dev", "checkoutPath": "/w/s1", "branch": "topic/x"}


def test_an_active_session_gives_its_worktree() -> None:
    ws = remote.workspace(session("Active", **PLACED), WHERE)
    assert ws == remote.Workspace("shop-1", "dev", "/w/s1", "topic/x")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (session("Ended", **PLACED), "has ended (phase Ended)"),
        (session("Expired"), "has ended (phase Expired)"),
        (session("Provisioning"), "is not Active (phase Provisioning)"),
        ({"metadata": {}}, "is not Active (phase Pending)"),
        (session("Active"), "has no worktree in a pod yet"),
        (
            {"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Active", **PLACED}},
            "is not Active",
        ),
    ],
)
def test_a_session_without_a_live_worktree_is_one_line(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(PluginError, match=re.escape(message)) as info:
        remote.workspace(obj, WHERE)
    assert "\n" not in str(info.value)
    assert "session s1 in namespace team-a" in str(info.value)


def test_the_services_run_as_argv_with_only_the_branch_visible() -> None:
    ws = remote.Workspace("p", None, "/w/s1", "topic/x")
    hidden = ["-c", "transfer.hideRefs=refs/", "-c", "transfer.hideRefs=!refs/heads/topic/x"]
    assert remote.git_argv(remote.UPLOAD_PACK, ws) == [
        "git", *hidden, "upload-pack", "--", "/w/s1",
    ]  # fmt: skip
    assert remote.git_argv(remote.RECEIVE_PACK, ws) == [
        "git", *hidden, "-c", "receive.denyCurrentBranch=updateInstead",
        "-c", "receive.denyNonFastForwards=true", "receive-pack", "--", "/w/s1",
    ]  # fmt: skip


def test_changes_count_every_listed_file() -> None:
    assert remote.count_changes(b"") == 0
    assert remote.count_changes(b" M a.txt\n?? b.txt\nR  c -> d\n") == 3


def pkt(text: bytes) -> bytes:
    return b"%04x" % (len(text) + 4) + text


def test_the_refs_of_a_push_are_read_from_its_commands() -> None:
    stream = (
        pkt(f"{ZERO} {ONE} refs/heads/topic/x\0report-status side-band-64k\n".encode())
        + pkt(f"{ONE} {ZERO} refs/tags/v1\n".encode())
        + b"0000"
        + b"PACK\0\0\0\2 binary pack data 0000 "
        + pkt(f"{ZERO} {ONE} refs/heads/late\n".encode())
    )
    # Split anywhere: the commands arrive in pieces of any size.
    for cut in range(1, len(stream), 7):
        watch = remote.PushedRefs()
        watch.feed(stream[:cut])
        watch.feed(stream[cut:])
        assert watch.refs == ["refs/heads/topic/x", "refs/tags/v1"]
        assert watch.done


def test_a_stream_that_is_no_pkt_line_stops_the_watch() -> None:
    watch = remote.PushedRefs()
    watch.feed(b"zzzz" + pkt(f"{ZERO} {ONE} refs/heads/x\n".encode()))
    assert watch.done and watch.refs == []


def test_git_asks_for_capabilities_and_gets_connect() -> None:
    out = io.BytesIO()
    code = remote.serve("rdev://team-a/s1", io.BytesIO(b"capabilities\n\n"), out, io.BytesIO())
    assert (code, out.getvalue()) == (0, b"connect\n\n")


def test_other_commands_and_services_are_refused() -> None:
    with pytest.raises(PluginError, match="does not support 'list'"):
        remote.serve("rdev://team-a/s1", io.BytesIO(b"list\n"), io.BytesIO(), io.BytesIO())
    with pytest.raises(PluginError, match="cannot run 'git-upload-archive'"):
        remote.serve(
            "rdev://team-a/s1",
            io.BytesIO(b"connect git-upload-archive\n"),
            io.BytesIO(),
            io.BytesIO(),
        )


RUN_MAIN = "import sys; from kubectl_session.remote import main; sys.exit(main())"


def test_the_console_script_reports_a_bad_url_on_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-c", RUN_MAIN, "origin", "rdev://only-one"],
        input=b"capabilities\n",
        capture_output=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "error: not an rdev URL: 'rdev://only-one' (want rdev://<namespace>/<name>)"
    ]


def test_git_finds_the_helper_next_to_the_interpreter() -> None:
    env = git_env({"PATH": "/usr/bin"})
    first = env["PATH"].split(os.pathsep)
    assert os.path.dirname(sys.executable) in first
    assert first[-1] == "/usr/bin"


def test_next_commands_name_the_session_and_the_credential_only_when_asked() -> None:
    plain = [line.split("#")[0].strip() for line in next_commands("s1", "team-a", {})]
    assert plain == [
        "Next:",
        "kubectl session open s1 -n team-a",
        "kubectl session clone s1 -n team-a",
        "kubectl session exec s1 -n team-a -- git status",
    ]
    asked = next_commands("s1", "team-a", {"credential": True})
    assert asked[-1].split("#")[0].strip() == (
        "kubectl session credential s1 -n team-a -o s1.kubeconfig"
    )
    assert not any("credential" in line for line in next_commands("s1", "t", {"credential": "x"}))


def test_describe_shows_the_clone_url_and_the_credential_secret() -> None:
    from datetime import UTC, datetime

    obj = {
        "metadata": {"name": "s1", "namespace": "team-a"},
        "spec": {"project": "shop", "branch": "b"},
        "status": {
            "phase": "Active",
            "cloneURL": "rdev://team-a/s1",
            "credentialSecret": "s1-cred",
        },
    }
    text = describe(obj, [], datetime.now(UTC))
    assert "Clone URL:      rdev://team-a/s1" in text
    assert "Credential:     Secret s1-cred (key kubeconfig)" in text
    assert "Clone URL" not in describe({**obj, "status": {"phase": "Ended"}}, [], datetime.now(UTC))


def test_the_exec_request_carries_the_argv_word_by_word() -> None:
    argv = remote.git_argv(remote.UPLOAD_PACK, remote.Workspace("p", "dev", "/w/a b;c", "x"))
    query = remote.exec_query(argv, "dev", True)
    assert [value for key, value in query if key == "command"] == argv
    assert ("stdin", "true") in query and ("container", "dev") in query
    assert ("stdin", "false") in remote.exec_query(["true"], None, False)
    assert not any(key == "container" for key, _ in remote.exec_query(["true"], None, False))


def test_a_refused_exec_names_the_verb_and_resource() -> None:
    refused = ApiException(status=0, reason="Handshake status 403 Forbidden -+-+- {} -+-+- x")
    assert str(remote._exec_error(refused, WHERE, "shop-1")).startswith(
        "cannot create pods/exec in namespace team-a (forbidden)"
    )
    gone = ApiException(status=0, reason="Handshake status 404 Not Found -+-+- pod forbidden")
    assert "cannot create" not in str(remote._exec_error(gone, WHERE, "forbidden"))

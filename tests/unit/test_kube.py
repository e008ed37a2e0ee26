"""The operator's API client: which answers are worth retrying, paths, exec queries."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

import kopf
import pytest
from yarl import URL

from session_operator.kube import (
    NETWORK_POLICIES,
    PODS,
    SESSIONS,
    Connection,
    KubeError,
    api_path,
)
from session_operator.podexec import exec_query


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (0, True),
        (429, True),
        (500, True),
        (503, True),
        (400, False),
        (403, False),
        (404, False),
        (409, False),
        (422, False),
    ],
)
def test_transient_statuses(status: int, transient: bool) -> None:
    assert KubeError(status, "x").transient is transient


def test_paths_name_collections_objects_and_subresources() -> None:
    assert api_path(PODS, "ns", "p", "exec") == "/api/v1/namespaces/ns/pods/p/exec"
    assert api_path(SESSIONS, None) == "/apis/rdev.io/v1alpha1/sessions"
    assert api_path(SESSIONS, "ns", "s", "status") == (
        "/apis/rdev.io/v1alpha1/namespaces/ns/sessions/s/status"
    )
    assert api_path(NETWORK_POLICIES, "ns") == (
        "/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["git", "-C", "/r", "checkout", "--", "feat/a+b"],
        ["sh", "-c", 'echo "$1" && x=1; y&z', "sh", "a b=c&d#e?f%g"],
        ["printf", "%s", "ünïcødé \u202e", ""],
    ],
)
def test_exec_query_carries_each_argument_exactly(argv: list[str]) -> None:
    """Every argv element arrives as one ``command`` value, whatever it holds."""
    url = URL("https://h/api/v1/namespaces/n/pods/p/exec").with_query(exec_query(argv, "c"))
    pairs = parse_qsl(url.raw_query_string, keep_blank_values=True)
    assert [v for k, v in pairs if k == "command"] == argv
    assert ("container", "c") in pairs and ("stdin", "false") in pairs


def test_the_connection_names_the_replica_and_carries_the_login() -> None:
    async def check() -> None:
        info = kopf.ConnectionInfo(server="https://127.0.0.1:1/", token="t0k")
        conn = Connection(info, user_agent="rdev-session-operator-shard-1-of-2/python")
        try:
            assert conn.server == "https://127.0.0.1:1"
            assert conn.headers["Authorization"] == "Bearer t0k"
            assert conn.headers["User-Agent"].startswith("rdev-session-operator-shard-1-of-2")
            assert conn.session.trust_env is False  # no netrc/proxy lookups per request
            with pytest.raises(KubeError) as caught:  # nothing listens: no answer, transient
                await conn.request("GET", "/api")
            assert caught.value.transient
        finally:
            await conn.close()

    asyncio.run(check())

"""Which API answers are worth retrying at start-up."""

from __future__ import annotations

import pytest

from session_operator.kube import KubeError


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


def test_clients_skip_per_request_environment_lookups() -> None:
    """The pool and SSL context stay; only the per-call netrc/proxy thread hops go."""
    import asyncio

    from kubernetes_asyncio import client
    from kubernetes_asyncio.stream import WsApiClient

    from session_operator.kube import skip_env_lookups

    async def check() -> None:
        cfg = client.Configuration(host="https://127.0.0.1:1")
        for api in (client.ApiClient(cfg), WsApiClient(configuration=cfg)):
            before = api.rest_client.pool_manager
            connector = before.connector
            assert before.trust_env is True  # what kubernetes_asyncio does by default
            skip_env_lookups(api)
            after = api.rest_client.pool_manager
            assert after.trust_env is False
            assert after.connector is connector
            assert before.closed
            await api.close()
            assert connector.closed

    asyncio.run(check())

"""Every Kubernetes call the operator makes (except exec, see podexec.py), on the event loop.

kubernetes_asyncio, with one ApiClient for the whole process: one aiohttp
session, one SSL context and one keep-alive connection pool, so a request costs
what a minimal client's does (no TLS context per call, no thread per blocked
request). Bodies are plain dicts in the API's own camelCase (raw JSON in and
out, no model objects), so builders and tests share one shape. 409 on create
and 404 on delete mean "already done".
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
from collections.abc import Awaitable
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from rdev_api import GROUP, PLURAL, VERSION, Body

log = logging.getLogger(__name__)
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
REQUEST_TIMEOUT_S = 30.0


class KubeError(Exception):
    """A call the API server refused; ``status`` is the HTTP status."""

    def __init__(self, status: int, text: str):
        super().__init__(f"{status}: {text[:300]}")
        self.status = status

    @property
    def transient(self) -> bool:
        """No answer, throttled, or a server error: worth trying again shortly."""
        return self.status in (0, 429) or self.status >= 500


def skip_env_lookups(api_client: Any) -> None:
    """Give the client an aiohttp session that does not consult the environment per request.

    kubernetes_asyncio opens its session with ``trust_env=True``, so every request
    and every exec websocket looks up ``~/.netrc`` and the proxy variables in a
    worker thread: two thread hops a call, about a fifth of the operator's CPU in
    the benchmark's profile. The kubeconfig's proxy (``Configuration.proxy``) is
    still passed with each request. Must run on the event loop.
    """
    rest = api_client.rest_client
    connector = rest.pool_manager.connector
    rest.pool_manager.detach()  # the connector (pool, SSL context) moves to the new session
    rest.pool_manager = aiohttp.ClientSession(
        connector=connector, trust_env=False, read_bufsize=2**21
    )


async def load_kube_config() -> client.Configuration:
    """In-cluster identity, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        await config.load_kube_config(client_configuration=cfg)
    return cfg


def ca_data(cfg: client.Configuration) -> str | None:
    """The CA the operator trusts the API server with, base64 (as a kubeconfig holds it).

    Both loaders leave it in a file (in a pod the ServiceAccount's ca.crt, from a
    kubeconfig a temporary copy of its data); read once at start-up.
    """
    path = getattr(cfg, "ssl_ca_cert", None)
    if not path:
        return None
    with open(path, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


async def _send(call: Awaitable[Any], ok_statuses: tuple[int, ...] = ()) -> tuple[int, Body | None]:
    """Run a generated API call with ``_preload_content=False``; (status, JSON body).

    Statuses in ``ok_statuses`` (besides 2xx) return with no body; others raise.
    """
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            resp = await call
            async with resp:
                data = await resp.read()
    except ApiException as exc:  # raised before the request for bad parameters
        raise KubeError(exc.status or 0, str(exc.reason)) from None
    except TimeoutError:
        raise KubeError(0, f"no answer from the API server within {REQUEST_TIMEOUT_S:g}s") from None
    if 200 <= resp.status < 300:
        return resp.status, dict(json.loads(data)) if data else None
    if resp.status in ok_statuses:
        return resp.status, None
    raise KubeError(resp.status, data.decode("utf-8", "replace"))


async def _read(read: Any, namespace: str, name: str) -> Body | None:
    """A child as it is; None when there is none."""
    return (await _send(read(name, namespace, _preload_content=False), (404,)))[1]


async def _create(create: Any, body: Body) -> Body | None:
    """Create; None when the name is taken (409): the caller reads it and checks the owner."""
    call = create(body["metadata"]["namespace"], body, _preload_content=False)
    return (await _send(call, (409,)))[1]


async def _patch(patch_call: Any, namespace: str, name: str, patch: Any) -> Body | None:
    """A JSON patch (a list) or a merge patch (a dict); None when the object is gone."""
    content = JSON_PATCH if isinstance(patch, list) else MERGE
    call = patch_call(name, namespace, patch, _preload_content=False, _content_type=content)
    return (await _send(call, (404,)))[1]


def owner_guard(uid: str) -> list[dict[str, Any]]:
    """A JSON patch that changes nothing and succeeds only on an object this Session owns.

    It is how the operator reads back its own credential objects: no ``get`` on
    Secrets, and a patch of anyone else's object fails (422) before it returns any.
    """
    return [{"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": uid}]


async def _delete(delete: Any, namespace: str, name: str, uid: str) -> bool:
    """Delete only the object with this UID; False when the name holds another one (409)."""
    body = {"preconditions": {"uid": uid}}
    call = delete(name, namespace, body=body, _preload_content=False)
    status, _ = await _send(call, (404, 409))
    return status != 409


def _in(namespace: str | None) -> str:
    """The path segment of a namespaced collection; empty for all namespaces."""
    return f"/namespaces/{namespace}" if namespace else ""


class Kube:
    def __init__(self, cfg: client.Configuration, pool_size: int = 32, user_agent: str = ""):
        cfg.connection_pool_maxsize = max(pool_size, 4)
        self.cfg = cfg
        self.api_client = client.ApiClient(cfg)
        skip_env_lookups(self.api_client)
        if user_agent:
            # Names the replica (and its shard) in audit logs and in managedFields.
            self.api_client.user_agent = user_agent
        # Typed as Any: raw dicts in and out, and the stubs omit ``_content_type``.
        self.core: Any = client.CoreV1Api(self.api_client)
        self.custom: Any = client.CustomObjectsApi(self.api_client)
        self.net: Any = client.NetworkingV1Api(self.api_client)
        self.rbac: Any = client.RbacAuthorizationV1Api(self.api_client)
        # Where a session credential's kubeconfig points unless RDEV_CREDENTIAL_SERVER says.
        self.server: str = cfg.host or ""
        self.ca_data = ca_data(cfg)
        self.instance = os.environ.get("POD_NAME") or socket.gethostname()

    async def close(self) -> None:
        await self.api_client.close()

    # Sessions -------------------------------------------------------------
    async def patch_session_status(self, namespace: str, name: str, status: Body) -> Body | None:
        call = self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": status},
            _preload_content=False,
            _content_type=MERGE,
        )
        return (await _send(call, (404,)))[1]

    async def _list(self, path: str, **params: str) -> list[Body]:
        """GET a collection; raw, because the generated client does not pass ``shardSelector``
        for custom objects. Empty parameters are left out."""
        query = [(key, value) for key, value in params.items() if value]
        call = self.api_client.call_api(
            path,
            "GET",
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
        body = (await _send(call))[1] or {}
        return list(body.get("items") or [])

    async def list_sessions(self, namespace: str | None, shard: str = "") -> list[Body]:
        path = f"/apis/{GROUP}/{VERSION}{_in(namespace)}/{PLURAL}"
        return await self._list(path, shardSelector=shard)

    async def list_pods(self, namespace: str | None, selector: str, shard: str = "") -> list[Body]:
        path = f"/api/v1{_in(namespace)}/pods"
        return await self._list(path, labelSelector=selector, shardSelector=shard)

    async def list_services(
        self, namespace: str | None, selector: str, shard: str = "", field: str = ""
    ) -> list[Body]:
        path = f"/api/v1{_in(namespace)}/services"
        return await self._list(
            path, labelSelector=selector, fieldSelector=field, shardSelector=shard
        )

    async def ensure_cluster_peering(self, name: str) -> bool:
        """Create kopf's ClusterKopfPeering; False when its CRD is not installed yet."""
        body = {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": name},
        }
        call = self.custom.create_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", body, _preload_content=False
        )
        status, _ = await _send(call, (404, 409))
        return status != 404

    async def get_cluster_peering(self, name: str) -> Body | None:
        call = self.custom.get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", name, _preload_content=False
        )
        return (await _send(call, (404,)))[1]

    # Pods -----------------------------------------------------------------
    async def patch_pod(self, namespace: str, name: str, patch: Body) -> bool:
        call = self.core.patch_namespaced_pod(
            name, namespace, patch, _preload_content=False, _content_type=MERGE
        )
        return (await _send(call, (404,)))[0] != 404

    # Children: the preview Service and Ingress, the web UI's NetworkPolicy ------
    # One call per kind and verb; _read, _create, _patch and _delete say what each verb returns.
    async def get_service(self, namespace: str, name: str) -> Body | None:
        return await _read(self.core.read_namespaced_service, namespace, name)

    async def get_ingress(self, namespace: str, name: str) -> Body | None:
        return await _read(self.net.read_namespaced_ingress, namespace, name)

    async def get_network_policy(self, namespace: str, name: str) -> Body | None:
        return await _read(self.net.read_namespaced_network_policy, namespace, name)

    async def create_service(self, body: Body) -> Body | None:
        return await _create(self.core.create_namespaced_service, body)

    async def create_ingress(self, body: Body) -> Body | None:
        return await _create(self.net.create_namespaced_ingress, body)

    async def create_network_policy(self, body: Body) -> Body | None:
        return await _create(self.net.create_namespaced_network_policy, body)

    async def patch_service(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await _patch(self.core.patch_namespaced_service, namespace, name, patch)

    async def patch_ingress(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await _patch(self.net.patch_namespaced_ingress, namespace, name, patch)

    async def patch_network_policy(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await _patch(self.net.patch_namespaced_network_policy, namespace, name, patch)

    async def delete_service(self, namespace: str, name: str, uid: str) -> bool:
        return await _delete(self.core.delete_namespaced_service, namespace, name, uid)

    async def delete_ingress(self, namespace: str, name: str, uid: str) -> bool:
        return await _delete(self.net.delete_namespaced_ingress, namespace, name, uid)

    async def delete_network_policy(self, namespace: str, name: str, uid: str) -> bool:
        return await _delete(self.net.delete_namespaced_network_policy, namespace, name, uid)

    # Events (built and counted by events.EventRecorder) ---------------------
    async def create_event(self, namespace: str, body: Body) -> None:
        await _send(self.core.create_namespaced_event(namespace, body, _preload_content=False))

    async def patch_event(self, namespace: str, name: str, patch: Body) -> bool:
        """Patch an Event; False when it is gone (expired or deleted)."""
        call = self.core.patch_namespaced_event(
            name, namespace, patch, _preload_content=False, _content_type=MERGE
        )
        return (await _send(call, (404,)))[0] != 404

    # A session's credential: ServiceAccount, Role, RoleBinding, Secret, token -----------
    # Created, patched (the owner check of kube.owner_guard, and the Secret's kubeconfig)
    # and deleted; never read or listed (the operator holds no get on Secrets).
    async def create_service_account(self, body: Body) -> Body | None:
        return await _create(self.core.create_namespaced_service_account, body)

    async def create_role(self, body: Body) -> Body | None:
        return await _create(self.rbac.create_namespaced_role, body)

    async def create_role_binding(self, body: Body) -> Body | None:
        return await _create(self.rbac.create_namespaced_role_binding, body)

    async def create_secret(self, body: Body) -> Body | None:
        return await _create(self.core.create_namespaced_secret, body)

    async def patch_service_account(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await _patch(self.core.patch_namespaced_service_account, namespace, name, patch)

    async def patch_role(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await _patch(self.rbac.patch_namespaced_role, namespace, name, patch)

    async def patch_role_binding(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await _patch(self.rbac.patch_namespaced_role_binding, namespace, name, patch)

    async def patch_secret(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await _patch(self.core.patch_namespaced_secret, namespace, name, patch)

    async def delete_service_account(self, namespace: str, name: str, uid: str) -> bool:
        return await _delete(self.core.delete_namespaced_service_account, namespace, name, uid)

    async def delete_role(self, namespace: str, name: str, uid: str) -> bool:
        return await _delete(self.rbac.delete_namespaced_role, namespace, name, uid)

    async def delete_role_binding(self, namespace: str, name: str, uid: str) -> bool:
        return await _delete(self.rbac.delete_namespaced_role_binding, namespace, name, uid)

    async def delete_secret(self, namespace: str, name: str, uid: str) -> bool:
        return await _delete(self.core.delete_namespaced_secret, namespace, name, uid)

    async def create_token(self, namespace: str, name: str, body: Body) -> Body | None:
        """A TokenRequest for a ServiceAccount; None when it (or the bound object) is gone."""
        call = self.core.create_namespaced_service_account_token(
            name, namespace, body, _preload_content=False
        )
        return (await _send(call, (404,)))[1]

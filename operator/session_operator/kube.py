"""Every Kubernetes call the operator makes (except exec, see podexec.py), on the event loop.

Plain aiohttp, the HTTP library kopf already runs on: one session, one SSL
context and one keep-alive connection pool for the whole process, raw JSON in
and out in the API's own camelCase (no model objects), so builders and tests
share one shape. The credentials come from the same login kopf uses
(``login``), so the operator and kopf are one identity. 409 on create and 404
on delete mean "already done".

Why not a generated client: kubernetes_asyncio imports about 860 model modules
(some 45 MB resident before the first request) and serialises every call
through them; the operator needs eleven kinds and four verbs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import aiohttp
import kopf

from rdev_api import GROUP, PLURAL, VERSION, Body

log = logging.getLogger(__name__)
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
JSON = "application/json"
REQUEST_TIMEOUT_S = 30.0
# Objects per LIST answer. A page is parsed whole, and the memory of its peak stays with
# the process: 2,000 project pods primed at 500 a page left 77 MB resident, at 100 a page
# 67 MB, in the same time (bench/README.md, "The fixed part").
LIST_PAGE = 100
# The server ends each watch after WATCH_S (a little spread, so that the streams of
# a restart do not all end together); the next one continues from the last version.
# Bookmarks come about every minute, so a stream silent for WATCH_IDLE_S is dead.
WATCH_S = 300
WATCH_IDLE_S = 90.0
RESUME_FROM = 8  # the newest connections whose TLS sessions may be offered again

# Where each kind lives: (API prefix, plural). One entry per kind the operator touches.
SESSIONS = (f"/apis/{GROUP}/{VERSION}", PLURAL)
PODS = ("/api/v1", "pods")
SERVICES = ("/api/v1", "services")
EVENTS = ("/api/v1", "events")
SECRETS = ("/api/v1", "secrets")
SERVICE_ACCOUNTS = ("/api/v1", "serviceaccounts")
INGRESSES = ("/apis/networking.k8s.io/v1", "ingresses")
NETWORK_POLICIES = ("/apis/networking.k8s.io/v1", "networkpolicies")
ROLES = ("/apis/rbac.authorization.k8s.io/v1", "roles")
ROLE_BINDINGS = ("/apis/rbac.authorization.k8s.io/v1", "rolebindings")
PEERINGS = "/apis/kopf.dev/v1/clusterkopfpeerings"
Kind = tuple[str, str]


class KubeError(Exception):
    """A call the API server refused; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, text: str):
        super().__init__(f"{status}: {text[:300]}")
        self.status = status

    @property
    def transient(self) -> bool:
        """No answer, throttled, or a server error: worth trying again shortly."""
        return self.status in (0, 429) or self.status >= 500

    @property
    def gone(self) -> bool:
        """410: the version a watch asked to continue from is too old; list again."""
        return self.status == 410


class Stale(Exception):
    """A patch conditioned on the object as read (a JSON patch test) found it changed."""


class Page(NamedTuple):
    """One LIST answer: its items and the version of the whole listing (the first page's)."""

    items: list[Body]
    version: str


class WatchEvent(NamedTuple):
    type: str  # ADDED, MODIFIED, DELETED or BOOKMARK
    object: Body


def login() -> kopf.ConnectionInfo:
    """In-cluster identity, else the kubeconfig (KUBECONFIG or ~/.kube/config).

    kopf's own minimal login functions, shared with kopf's login handler (main.py):
    bearer token, client certificate or basic auth; no exec plugins.
    """
    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise kopf.LoginError("no ServiceAccount token and no kubeconfig to log in with")
    return info


def ca_data(info: kopf.ConnectionInfo) -> str | None:
    """The CA the operator trusts the API server with, base64 (as a kubeconfig holds it)."""
    if info.ca_data:
        data = info.ca_data
        return data.decode("ascii") if isinstance(data, bytes) else data
    if not info.ca_path:
        return None
    with open(info.ca_path, "rb") as handle:
        return base64.b64encode(handle.read()).decode("ascii")


def resuming(context: ssl.SSLContext) -> ssl.SSLContext:
    """``context``, offering each new connection the TLS session of the one before.

    Every exec stream is a connection of its own (a websocket cannot share one),
    and its full TLS handshake was an exec's largest CPU cost in the operator; a
    resumed session skips checking the server's certificate chain (measured here:
    2.0 -> 1.5 CPU-ms per connection). asyncio cannot be handed a session, so
    this context's ``wrap_bio`` (which asyncio calls once per connection) passes
    it. A ticket the server no longer honours just means a full handshake.
    """
    plain = context.wrap_bio
    recent: deque[ssl.SSLObject] = deque(maxlen=RESUME_FROM)

    def wrap_bio(
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        if session is None and not server_side:
            # The newest connection whose handshake is done (a session is None until then).
            session = next((o.session for o in reversed(recent) if o.session is not None), None)
        made = plain(incoming, outgoing, server_side, server_hostname, session)
        recent.append(made)
        return made

    context.wrap_bio = wrap_bio  # type: ignore[method-assign]
    return context


class Connection:
    """One aiohttp session with the login's credentials; re-logs in once on a 401.

    A ServiceAccount's projected token is rotated on disk by the kubelet: a 401
    means the token in hand expired, so the login is read again and the request
    repeated once.
    """

    def __init__(self, info: kopf.ConnectionInfo, pool_size: int = 32, user_agent: str = ""):
        self.info = info
        self.server = info.server.rstrip("/")
        self.headers = dict(info.as_http_headers())
        if user_agent:
            # Names the replica (and its shard) in audit logs and in managedFields.
            self.headers["User-Agent"] = user_agent
        self.context = resuming(info.as_ssl_context())
        self.session = self._session(max(pool_size, 4), self.context)
        self._streams: aiohttp.ClientSession | None = None

    @property
    def streams(self) -> aiohttp.ClientSession:
        """The watches' pool, made on the first watch (exec clients never watch).

        Watches hold their connections for minutes, one per feed (three per namespace
        served): in the request pool, enough of them leave no connection for a request,
        and every reconcile waits for a watch to end. Their number is fixed by the
        configuration, so their pool has no limit.
        """
        if self._streams is None:
            self._streams = self._session(0, self.context)
        return self._streams

    @staticmethod
    def _session(limit: int, context: ssl.SSLContext) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit, ssl=context),
            # No ~/.netrc or proxy variables looked up per request (a thread hop each).
            trust_env=False,
            read_bufsize=2**21,
        )

    def relogin(self) -> bool:
        """Read the credentials again; True when they changed (worth a retry)."""
        try:
            fresh = login().as_http_headers()
        except (OSError, kopf.LoginError) as exc:
            log.warning("logging in again failed: %s", exc)
            return False
        changed = fresh.get("Authorization") != self.headers.get("Authorization")
        self.headers.update(fresh)
        return changed

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: list[tuple[str, str]] | None = None,
        content_type: str = JSON,
        ok: tuple[int, ...] = (),
    ) -> tuple[int, Body | None]:
        """(status, JSON body); statuses in ``ok`` (besides 2xx) give no body, others raise."""
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        for attempt in (1, 2):
            headers = dict(self.headers)
            if data is not None:
                headers["Content-Type"] = content_type
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    async with self.session.request(
                        method,
                        self.server + path,
                        params=params,
                        data=data,
                        headers=headers,
                        proxy=self.info.proxy_url,
                    ) as resp:
                        status, raw = resp.status, await resp.read()
            except TimeoutError:
                raise KubeError(
                    0, f"no answer from the API server within {REQUEST_TIMEOUT_S:g}s"
                ) from None
            except (aiohttp.ClientError, OSError) as exc:
                raise KubeError(0, f"no answer from the API server: {exc}") from None
            if status == 401 and attempt == 1 and self.relogin():
                continue
            break
        if 200 <= status < 300:
            return status, dict(json.loads(raw)) if raw else None
        if status in ok:
            return status, None
        raise KubeError(status, raw.decode("utf-8", "replace"))

    async def stream(
        self, path: str, params: list[tuple[str, str]], idle_s: float
    ) -> AsyncIterator[Body]:
        """GET a stream of JSON lines (a watch); each line parsed. Ends when the server ends it.

        Raises KubeError like ``request``: no answer, a refusal, or a stream silent
        for ``idle_s`` (status 0).
        """
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=REQUEST_TIMEOUT_S, sock_read=idle_s
        )
        for attempt in (1, 2):
            try:
                async with self.streams.get(
                    self.server + path,
                    params=params,
                    headers=self.headers,
                    proxy=self.info.proxy_url,
                    timeout=timeout,
                ) as resp:
                    if resp.status == 401 and attempt == 1 and self.relogin():
                        continue
                    if resp.status != 200:
                        raise KubeError(resp.status, (await resp.read()).decode("utf-8", "replace"))
                    tail = b""
                    async for chunk in resp.content.iter_any():
                        lines = (tail + chunk).split(b"\n")
                        tail = lines.pop()
                        for line in lines:
                            if line.strip():
                                yield json.loads(line)
                    return
            except TimeoutError:
                raise KubeError(0, f"the watch was silent for {idle_s:g}s") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise KubeError(0, f"the watch broke off: {exc}") from None

    async def close(self) -> None:
        await self.session.close()
        if self._streams is not None:
            await self._streams.close()


def api_path(kind: Kind, namespace: str | None, name: str = "", sub: str = "") -> str:
    """A collection (in all namespaces when ``namespace`` is empty), object or subresource."""
    api, plural = kind
    path = f"{api}/namespaces/{namespace}/{plural}" if namespace else f"{api}/{plural}"
    return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


def owner_guard(uid: str) -> list[dict[str, Any]]:
    """A JSON patch that changes nothing and succeeds only on an object this Session owns.

    It is how the operator reads back its own credential objects: no ``get`` on
    Secrets, and a patch of anyone else's object fails (422) before it returns any.
    """
    return [{"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": uid}]


class Kube:
    def __init__(self, info: kopf.ConnectionInfo, pool_size: int = 32, user_agent: str = ""):
        self.conn = Connection(info, pool_size, user_agent)
        # Where a session credential's kubeconfig points unless RDEV_CREDENTIAL_SERVER says.
        self.server: str = self.conn.server
        self.ca_data = ca_data(info)
        self.instance = os.environ.get("POD_NAME") or socket.gethostname()

    async def close(self) -> None:
        await self.conn.close()

    # The verbs: _read, _create, _patch and _delete say what each returns. -----------
    async def _read(self, kind: Kind, namespace: str, name: str) -> Body | None:
        """A child as it is; None when there is none."""
        return (await self.conn.request("GET", api_path(kind, namespace, name), ok=(404,)))[1]

    async def _create(self, kind: Kind, body: Body) -> Body | None:
        """Create; None when the name is taken (409): the caller reads it and checks the owner."""
        path = api_path(kind, body["metadata"]["namespace"])
        return (await self.conn.request("POST", path, body, ok=(409,)))[1]

    async def _patch(
        self, kind: Kind, namespace: str, name: str, patch: Any, sub: str = ""
    ) -> Body | None:
        """A JSON patch (a list) or a merge patch (a dict); None when the object is gone."""
        content = JSON_PATCH if isinstance(patch, list) else MERGE
        path = api_path(kind, namespace, name, sub)
        return (await self.conn.request("PATCH", path, patch, content_type=content, ok=(404,)))[1]

    async def _delete(self, kind: Kind, namespace: str, name: str, uid: str) -> bool:
        """Delete only the object with this UID; False when the name holds another one (409)."""
        body = {"preconditions": {"uid": uid}}
        path = api_path(kind, namespace, name)
        status, _ = await self.conn.request("DELETE", path, body, ok=(404, 409))
        return status != 409

    async def _list(self, kind: Kind, namespace: str | None, **params: str) -> AsyncIterator[Page]:
        """GET a collection, a page of LIST_PAGE at a time; empty parameters are left out.

        Pages bound what one answer holds: the caller keeps what it needs of each page
        before the next is read, so a start-up LIST of thousands of objects never sits
        in memory whole (Python's heap keeps its high-water mark).
        """
        query = [(key, value) for key, value in params.items() if value]
        query.append(("limit", str(LIST_PAGE)))
        token = version = ""
        while True:
            page = query + ([("continue", token)] if token else [])
            body = (await self.conn.request("GET", api_path(kind, namespace), params=page))[1]
            meta = (body or {}).get("metadata") or {}
            version = version or str(meta.get("resourceVersion") or "")
            yield Page(list((body or {}).get("items") or []), version)
            token = str(meta.get("continue") or "")
            if not token:
                return

    async def _watch(
        self, kind: Kind, namespace: str | None, version: str, **params: str
    ) -> AsyncIterator[WatchEvent]:
        """Watch a collection from ``version`` (a LIST's or the last event's), with bookmarks.

        Raises KubeError with status 410 (``gone``) when that version is too old.
        """
        query = [(key, value) for key, value in params.items() if value]
        query += [
            ("watch", "true"),
            ("resourceVersion", version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(WATCH_S + random.randrange(WATCH_S // 5))),  # noqa: S311
        ]
        async for line in self.conn.stream(api_path(kind, namespace), query, WATCH_IDLE_S):
            kind_of_event = str(line.get("type") or "")
            obj = line.get("object") or {}
            if kind_of_event == "ERROR":
                raise KubeError(int(obj.get("code") or 0), str(obj.get("message") or obj))
            yield WatchEvent(kind_of_event, obj)

    # Sessions -------------------------------------------------------------
    async def patch_session_status(self, namespace: str, name: str, status: Body) -> Body | None:
        return await self._patch(SESSIONS, namespace, name, {"status": status}, "status")

    async def add_finalizer(self, body: Body, finalizer: str) -> Body | None:
        """Add ``finalizer`` to the Session as read; None when it is gone.

        The patch holds only if the object is still the version read (a JSON patch
        test of resourceVersion), so a finalizer someone added meanwhile is never
        overwritten: Stale then says read again.
        """
        meta = body["metadata"]
        current = list(meta.get("finalizers") or [])
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
            {"op": "add", "path": "/metadata/finalizers", "value": [*current, finalizer]},
        ]
        return await self._conditional(meta, patch)

    async def remove_finalizer(self, body: Body, finalizer: str) -> Body | None:
        """Remove ``finalizer`` from the Session as read; None when it is gone.

        Only that entry goes, and only if it still stands where it was read (a JSON
        patch test of it): others' finalizers are never touched. Stale: read again.
        """
        meta = body["metadata"]
        index = list(meta.get("finalizers") or []).index(finalizer)
        path = f"/metadata/finalizers/{index}"
        patch = [{"op": "test", "path": path, "value": finalizer}, {"op": "remove", "path": path}]
        return await self._conditional(meta, patch)

    async def _conditional(self, meta: Body, patch: list[Body]) -> Body | None:
        """A Session JSON patch whose test may fail (422, or 409): Stale, read it again."""
        try:
            return await self._patch(SESSIONS, meta["namespace"], meta["name"], patch)
        except KubeError as exc:
            if exc.status in (409, 422):
                raise Stale(str(exc)) from None
            raise

    def list_sessions(self, namespace: str | None, shard: str = "") -> AsyncIterator[Page]:
        return self._list(SESSIONS, namespace, shardSelector=shard)

    def watch_sessions(
        self, version: str, namespace: str | None, shard: str = ""
    ) -> AsyncIterator[WatchEvent]:
        return self._watch(SESSIONS, namespace, version, shardSelector=shard)

    def list_pods(
        self, namespace: str | None, selector: str, shard: str = ""
    ) -> AsyncIterator[Page]:
        return self._list(PODS, namespace, labelSelector=selector, shardSelector=shard)

    def watch_pods(
        self, version: str, namespace: str | None, selector: str, shard: str = ""
    ) -> AsyncIterator[WatchEvent]:
        return self._watch(PODS, namespace, version, labelSelector=selector, shardSelector=shard)

    def list_services(
        self, namespace: str | None, selector: str, shard: str = "", field: str = ""
    ) -> AsyncIterator[Page]:
        return self._list(
            SERVICES, namespace, labelSelector=selector, fieldSelector=field, shardSelector=shard
        )

    def watch_services(
        self, version: str, namespace: str | None, selector: str, shard: str = ""
    ) -> AsyncIterator[WatchEvent]:
        return self._watch(
            SERVICES, namespace, version, labelSelector=selector, shardSelector=shard
        )

    async def ensure_cluster_peering(self, name: str) -> bool:
        """Create kopf's ClusterKopfPeering; False when its CRD is not installed yet."""
        body = {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": name},
        }
        status, _ = await self.conn.request("POST", PEERINGS, body, ok=(404, 409))
        return status != 404

    async def get_cluster_peering(self, name: str) -> Body | None:
        return (await self.conn.request("GET", f"{PEERINGS}/{name}", ok=(404,)))[1]

    # Pods -----------------------------------------------------------------
    async def patch_pod(self, namespace: str, name: str, patch: Body) -> bool:
        return await self._patch(PODS, namespace, name, patch) is not None

    # Children: the preview Service and Ingress, the web UI's NetworkPolicy ------
    async def get_service(self, namespace: str, name: str) -> Body | None:
        return await self._read(SERVICES, namespace, name)

    async def get_ingress(self, namespace: str, name: str) -> Body | None:
        return await self._read(INGRESSES, namespace, name)

    async def get_network_policy(self, namespace: str, name: str) -> Body | None:
        return await self._read(NETWORK_POLICIES, namespace, name)

    async def create_service(self, body: Body) -> Body | None:
        return await self._create(SERVICES, body)

    async def create_ingress(self, body: Body) -> Body | None:
        return await self._create(INGRESSES, body)

    async def create_network_policy(self, body: Body) -> Body | None:
        return await self._create(NETWORK_POLICIES, body)

    async def patch_service(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await self._patch(SERVICES, namespace, name, patch)

    async def patch_ingress(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await self._patch(INGRESSES, namespace, name, patch)

    async def patch_network_policy(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await self._patch(NETWORK_POLICIES, namespace, name, patch)

    async def delete_service(self, namespace: str, name: str, uid: str) -> bool:
        return await self._delete(SERVICES, namespace, name, uid)

    async def delete_ingress(self, namespace: str, name: str, uid: str) -> bool:
        return await self._delete(INGRESSES, namespace, name, uid)

    async def delete_network_policy(self, namespace: str, name: str, uid: str) -> bool:
        return await self._delete(NETWORK_POLICIES, namespace, name, uid)

    # Events (built and counted by events.EventRecorder) ---------------------
    async def create_event(self, namespace: str, body: Body) -> None:
        await self.conn.request("POST", api_path(EVENTS, namespace), body)

    async def patch_event(self, namespace: str, name: str, patch: Body) -> bool:
        """Patch an Event; False when it is gone (expired or deleted)."""
        return await self._patch(EVENTS, namespace, name, patch) is not None

    # A session's credential: ServiceAccount, Role, RoleBinding, Secret, token -----------
    # Created, patched (the owner check of kube.owner_guard, and the Secret's kubeconfig)
    # and deleted; never read or listed (the operator holds no get on Secrets).
    async def create_service_account(self, body: Body) -> Body | None:
        return await self._create(SERVICE_ACCOUNTS, body)

    async def create_role(self, body: Body) -> Body | None:
        return await self._create(ROLES, body)

    async def create_role_binding(self, body: Body) -> Body | None:
        return await self._create(ROLE_BINDINGS, body)

    async def create_secret(self, body: Body) -> Body | None:
        return await self._create(SECRETS, body)

    async def patch_service_account(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await self._patch(SERVICE_ACCOUNTS, namespace, name, patch)

    async def patch_role(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await self._patch(ROLES, namespace, name, patch)

    async def patch_role_binding(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await self._patch(ROLE_BINDINGS, namespace, name, patch)

    async def patch_secret(self, namespace: str, name: str, patch: Any) -> Body | None:
        return await self._patch(SECRETS, namespace, name, patch)

    async def delete_service_account(self, namespace: str, name: str, uid: str) -> bool:
        return await self._delete(SERVICE_ACCOUNTS, namespace, name, uid)

    async def delete_role(self, namespace: str, name: str, uid: str) -> bool:
        return await self._delete(ROLES, namespace, name, uid)

    async def delete_role_binding(self, namespace: str, name: str, uid: str) -> bool:
        return await self._delete(ROLE_BINDINGS, namespace, name, uid)

    async def delete_secret(self, namespace: str, name: str, uid: str) -> bool:
        return await self._delete(SECRETS, namespace, name, uid)

    async def create_token(self, namespace: str, name: str, body: Body) -> Body | None:
        """A TokenRequest for a ServiceAccount; None when it (or the bound object) is gone."""
        path = api_path(SERVICE_ACCOUNTS, namespace, name, "token")
        return (await self.conn.request("POST", path, body, ok=(404,)))[1]

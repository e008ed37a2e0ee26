"""A small asyncio Kubernetes client (aiohttp) for the benchmark and the floor.

It speaks to the API server directly: JSON requests, watches and ``pods/exec``
over a websocket (``v4.channel.k8s.io``). Every request it makes is counted by
(verb, resource), so the benchmark can subtract its own traffic from the API
server's metrics, and the floor can report exactly what it sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import yaml

from rdev_api import Body
from rdev_api.execresult import parse_exit_status

STDOUT, STDERR, ERROR = 1, 2, 3
_PATH = re.compile(r"^/(?:api/v1|apis/[^/]+/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<rest>.*)$")


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, text: str):
        super().__init__(f"{method} {path}: {status} {text[:300]}")
        self.status = status


def resource_of(path: str) -> tuple[str, str]:
    """(resource, subresource) of an API path, as the API server's metrics label them."""
    match = _PATH.match(path.split("?", 1)[0])
    if not match:
        return ("", "")
    parts = match.group("rest").split("/")
    if match.group("ns") is None and parts[:1] == ["namespaces"]:
        # the namespace object itself, e.g. /api/v1/namespaces/x
        return ("namespaces", parts[2] if len(parts) > 2 else "")
    resource = parts[0]
    sub = parts[2] if len(parts) > 2 else ""
    return (resource, sub)


def verb_of(method: str, path: str, params: dict[str, Any] | None, apply: bool) -> str:
    parts = _PATH.match(path.split("?", 1)[0])
    named = bool(parts and len(parts.group("rest").split("/")) > 1)
    if method == "GET":
        if params and params.get("watch"):
            return "WATCH"
        return "GET" if named else "LIST"
    if method == "PATCH" and apply:
        return "APPLY"
    return method


class Kube:
    """One identity (client certificate or bearer token) and one user agent."""

    def __init__(
        self,
        server: str,
        ssl_ctx: ssl.SSLContext,
        *,
        token: str | None = None,
        user_agent: str = "rdev-bench",
        limit: int = 64,
    ):
        self.server = server.rstrip("/")
        self.ssl_ctx = ssl_ctx
        self.token = token
        self.user_agent = user_agent
        self.limit = limit
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._session: aiohttp.ClientSession | None = None

    # Construction ------------------------------------------------------------
    @classmethod
    def from_kubeconfig(cls, path: Path, secrets_dir: Path, **kwargs: Any) -> Kube:
        cfg = yaml.safe_load(path.read_text())
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        secrets_dir.mkdir(parents=True, exist_ok=True)
        ca = _material(cluster, "certificate-authority", secrets_dir / "ca.crt")
        ssl_ctx = ssl.create_default_context(cafile=str(ca))
        token = user.get("token")
        if user.get("client-certificate-data") or user.get("client-certificate"):
            cert = _material(user, "client-certificate", secrets_dir / "client.crt")
            key = _material(user, "client-key", secrets_dir / "client.key")
            ssl_ctx.load_cert_chain(str(cert), str(key))
        return cls(cluster["server"], ssl_ctx, token=token, **kwargs)

    def with_token(self, token: str, user_agent: str, limit: int = 64) -> Kube:
        """Same server and CA, another identity (a ServiceAccount token)."""
        ctx = ssl.create_default_context()
        ctx.load_verify_locations(cadata=self.ca_pem())
        return Kube(self.server, ctx, token=token, user_agent=user_agent, limit=limit)

    def ca_pem(self) -> str:
        certs = self.ssl_ctx.get_ca_certs(binary_form=True)
        return "".join(ssl.DER_cert_to_PEM_cert(c) for c in certs)

    # Plumbing ------------------------------------------------------------------
    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            headers = {"User-Agent": self.user_agent}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._session = aiohttp.ClientSession(
                headers=headers,
                connector=aiohttp.TCPConnector(ssl=self.ssl_ctx, limit=self.limit),
                read_bufsize=1 << 20,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _count(self, method: str, path: str, params: dict[str, Any] | None, apply: bool) -> None:
        resource, sub = resource_of(path)
        self.counts[(verb_of(method, path, params, apply), resource, sub)] += 1

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
        allow: Sequence[int] = (),
        timeout: float = 60.0,
    ) -> Body | None:
        """JSON in, JSON out; statuses in ``allow`` return None instead of raising.

        429 (a CRD's storage still initialising, or API priority and fairness)
        is retried a few times after the delay the server asks for.
        """
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        for attempt in range(10):
            self._count(method, path, params, content_type.startswith("application/apply-patch"))
            async with self.session.request(
                method,
                self.server + path,
                data=data,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                text = await resp.text()
                if resp.status == 429 and attempt < 9:
                    await asyncio.sleep(min(float(resp.headers.get("Retry-After") or 1), 5.0))
                    continue
                if resp.status in allow:
                    return None
                if resp.status >= 300:
                    raise ApiError(resp.status, method, path, text)
                return json.loads(text) if text else {}
        raise AssertionError("unreachable")

    async def raw(self, path: str, timeout: float = 30.0) -> str:
        async with self.session.get(
            self.server + path, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            if resp.status >= 300:
                raise ApiError(resp.status, "GET", path, await resp.text())
            return await resp.text()

    async def watch(
        self, path: str, resource_version: str, *, timeout_s: int = 1800
    ) -> AsyncIterator[Body]:
        """Yield watch events until the server ends the stream (or 410 Gone is raised)."""
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        self._count("GET", path, params, False)
        async with self.session.get(
            self.server + path,
            params=params,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_s + 30),
        ) as resp:
            if resp.status >= 300:
                raise ApiError(resp.status, "WATCH", path, await resp.text())
            while True:
                line = await resp.content.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)

    async def exec(
        self,
        namespace: str,
        pod: str,
        argv: Sequence[str],
        *,
        container: str | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, str, str]:
        """Run argv in a pod over the websocket exec protocol; (exit code, stdout, stderr)."""
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/exec"
        self._count("CONNECT", path, None, False)
        query: list[tuple[str, str]] = [("command", a) for a in argv]
        query += [("stdout", "true"), ("stderr", "true")]
        if container:
            query.append(("container", container))
        url = self.server.replace("https://", "wss://", 1) + path + "?" + urlencode(query)
        out: dict[int, list[bytes]] = {STDOUT: [], STDERR: [], ERROR: []}
        async with asyncio.timeout(timeout):
            async with self.session.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY and msg.data:
                        out.setdefault(msg.data[0], []).append(msg.data[1:])
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                        break
        text = {k: b"".join(v).decode(errors="replace") for k, v in out.items()}
        return parse_exit_status(text[ERROR]), text[STDOUT], text[STDERR]


def _material(section: Body, key: str, dest: Path) -> Path:
    if section.get(f"{key}-data"):
        dest.write_bytes(base64.b64decode(section[f"{key}-data"]))
        dest.chmod(0o600)
        return dest
    return Path(section[key])


def now() -> float:
    return time.time()

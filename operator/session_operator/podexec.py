"""Run an argv in a pod through the real ``pods/exec`` API (websocket), on the event loop.

One kubernetes_asyncio ``WsApiClient`` for the process: every exec opens its
websocket through the same aiohttp session and SSL context (a handshake per
stream, but no new context, certificate load or thread). The command is an
argv array, never a shell string, and every exec is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.stream import WsApiClient

from . import metrics
from .execresult import ExecError, ExecResult, parse_exit_status
from .kube import skip_env_lookups

STDOUT, STDERR, ERROR = 1, 2, 3
__all__ = ["ExecError", "ExecResult", "PodExec", "parse_exit_status"]


class PodExec:
    def __init__(self, cfg: client.Configuration, timeout_s: float):
        self.ws_client = WsApiClient(configuration=cfg)
        skip_env_lookups(self.ws_client)
        self.core: Any = client.CoreV1Api(self.ws_client)  # the stubs say str; it is a ws context
        self.timeout_s = timeout_s

    async def close(self) -> None:
        await self.ws_client.close()

    async def run(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        step: str,
        timeout_s: float | None = None,
    ) -> ExecResult:
        timeout = timeout_s or self.timeout_s
        started = time.monotonic()
        outcome = "error"
        try:
            try:
                async with asyncio.timeout(timeout):
                    result = await self._run(namespace, pod, container, list(argv))
            except TimeoutError:
                outcome = "timeout"
                raise ExecError(
                    f"{step}: command did not finish within {timeout:g}s", timed_out=True
                ) from None
            outcome = "ok" if result.ok else "nonzero"
            return result
        finally:
            metrics.EXEC_DURATION.labels(step=step).observe(time.monotonic() - started)
            metrics.EXEC_TOTAL.labels(step=step, outcome=outcome).inc()

    async def _run(
        self, namespace: str, pod: str, container: str | None, argv: list[str]
    ) -> ExecResult:
        kwargs = {"container": container} if container else {}
        try:
            connect = await self.core.connect_get_namespaced_pod_exec(
                pod,
                namespace,
                command=argv,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
                **kwargs,
            )
            out: list[bytes] = []
            err: list[bytes] = []
            status: list[bytes] = []
            sinks = {STDOUT: out, STDERR: err, ERROR: status}
            async with connect as ws:
                async for msg in ws:
                    if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                        data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                        if len(data) > 1 and data[0] in sinks:
                            sinks[data[0]].append(data[1:])
                    elif msg.type == aiohttp.WSMsgType.ERROR:
                        raise ExecError(f"exec into pod {pod} failed: {ws.exception()}")
        except aiohttp.WSServerHandshakeError as exc:
            gone = exc.status == 404 or "not found" in str(exc.message).lower()
            raise ExecError(
                f"exec into pod {pod} failed: {exc.status} {exc.message}", pod_gone=gone
            ) from None
        except ApiException as exc:
            raise ExecError(f"exec into pod {pod} failed: {exc.status} {exc.reason}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ExecError(f"exec into pod {pod} failed: {exc}") from None
        return ExecResult(
            returncode=parse_exit_status(b"".join(status).decode("utf-8", "replace")),
            stdout=b"".join(out).decode("utf-8", "replace"),
            stderr=b"".join(err).decode("utf-8", "replace"),
        )

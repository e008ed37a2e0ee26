"""Run an argv in a pod through the real ``pods/exec`` API (websocket), on the event loop.

One aiohttp session for the process (kube.Connection): every exec opens its
websocket (``v4.channel.k8s.io``) through the same SSL context and credentials
(a handshake per stream, but no new context, certificate load or thread). The command is an
argv array, never a shell string, and every exec is bounded twice over:

- in time, by ``timeout`` in the pod (``bounded``): abandoning a websocket does
  not stop a non-TTY exec, so without it a hung ``git fetch`` would outlive
  the operator's deadline and pile up. GNU ``timeout`` signals the command's
  whole process group (git's helpers too); busybox (1.35 and later accepts
  this form) signals the command only. TERM first, so git removes its lock
  files, then KILL. The operator's own deadline sits just after the pod's;
- in size, by ``Frames``: at most ``exec_output_limit`` bytes are ever kept.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence

import aiohttp
import kopf

from rdev_api import shards
from rdev_api.execresult import ExecError, ExecResult, Frames, parse_exit_status

from . import metrics
from .kube import PODS, Connection, api_path
from .settings import Settings, format_size

__all__ = ["ExecError", "ExecResult", "PodExec", "bounded", "parse_exit_status", "timed_out"]

KILL_AFTER_S = 3  # TERM at the deadline, KILL this long after if the command ignored it
GRACE_S = 2  # the operator stops waiting this long after the pod's KILL
TIMED_OUT = 124  # what GNU and busybox timeout exit with when the command ran out of time
_KILLED = frozenset({128 + 9, 128 + 15})  # KILL or TERM: busybox execs the command itself
_OUTPUT_LIMIT: int = Settings.model_fields["exec_output_limit"].default
# The exec subprotocol: channel byte, then data; channel 3 carries the exit status.
PROTOCOL = "v4.channel.k8s.io"


def exec_query(argv: Sequence[str], container: str | None) -> list[tuple[str, str]]:
    """The exec request's query: one ``command`` per argv element, never a shell string."""
    query = [("command", arg) for arg in argv]
    query += [("stdout", "true"), ("stderr", "true"), ("stdin", "false"), ("tty", "false")]
    if container:
        query.append(("container", container))
    return query


def bounded(argv: Sequence[str], timeout_s: float) -> tuple[list[str], float]:
    """``argv`` under the pod's ``timeout``, and how long the operator waits for it.

    Whole seconds, short options: the form GNU coreutils, busybox and toybox share.
    """
    seconds = max(1, math.ceil(timeout_s))
    argv = ["timeout", "-s", "TERM", "-k", str(KILL_AFTER_S), str(seconds), *argv]
    return argv, seconds + KILL_AFTER_S + GRACE_S


def timed_out(returncode: int, elapsed_s: float, timeout_s: float) -> bool:
    """Whether the pod's ``timeout`` stopped the command (not the command failing)."""
    return returncode == TIMED_OUT or (returncode in _KILLED and elapsed_s >= timeout_s)


class PodExec:
    def __init__(
        self,
        info: kopf.ConnectionInfo,
        timeout_s: float,
        output_limit: int = _OUTPUT_LIMIT,
        user_agent: str = "",
        pool_size: int = 32,
    ):
        # A session of its own: a stream holds its connection for the command's
        # life, and must not take the API calls' connections.
        self.conn = Connection(info, pool_size, user_agent)
        self.timeout_s = timeout_s
        self.output_limit = output_limit

    @classmethod
    def from_settings(
        cls, info: kopf.ConnectionInfo, settings: Settings, pool_size: int = 32
    ) -> PodExec:
        return cls(
            info,
            settings.exec_timeout.total_seconds(),
            settings.exec_output_limit,
            shards.user_agent(settings.shard_index, settings.shards),
            pool_size,
        )

    async def close(self) -> None:
        await self.conn.close()

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
        command, deadline = bounded(argv, timeout)
        started = time.monotonic()
        outcome = "error"
        try:
            try:
                async with asyncio.timeout(deadline):
                    result = await self._run(namespace, pod, container, command, step)
                late = timed_out(result.returncode, time.monotonic() - started, timeout)
            except TimeoutError:
                late = True
            if late:
                outcome = "timeout"
                raise ExecError(
                    f"{step}: command did not finish within {timeout:g}s", timed_out=True
                )
            outcome = "ok" if result.ok else "nonzero"
            return result
        finally:
            metrics.bound().exec_duration(step).observe(time.monotonic() - started)
            metrics.bound().exec_total(step, outcome).inc()

    async def _run(
        self, namespace: str, pod: str, container: str | None, argv: list[str], step: str
    ) -> ExecResult:
        for attempt in (1, 2):
            try:
                return await self._stream(namespace, pod, container, argv, step)
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 401 and attempt == 1 and self.conn.relogin():
                    continue
                gone = exc.status == 404 or "not found" in str(exc.message).lower()
                raise ExecError(
                    f"exec into pod {pod} failed: {exc.status} {exc.message}", pod_gone=gone
                ) from None
            except (aiohttp.ClientError, OSError) as exc:
                raise ExecError(f"exec into pod {pod} failed: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _stream(
        self, namespace: str, pod: str, container: str | None, argv: list[str], step: str
    ) -> ExecResult:
        conn = self.conn
        frames = Frames(self.output_limit)
        async with conn.session.ws_connect(
            conn.server + api_path(PODS, namespace, pod, "exec"),
            params=exec_query(argv, container),
            protocols=(PROTOCOL,),
            headers=conn.headers,
            proxy=conn.info.proxy_url,
        ) as ws:
            async for msg in ws:
                if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                    if not frames.add(data):
                        # Leaving the block closes the stream; nothing more is read.
                        raise ExecError(
                            f"{step}: output exceeded the {format_size(self.output_limit)} limit"
                        )
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    raise ExecError(f"exec into pod {pod} failed: {ws.exception()}")
        return frames.result()

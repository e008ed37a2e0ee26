"""The ports a reconcile talks through: the API server, Events and exec (protocols only).

kube.Kube, events.EventRecorder and podexec.PodExec implement them; unit tests
pass their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from rdev_api import Body
from rdev_api.execresult import ExecResult


class KubePort(Protocol):
    async def patch_session_status(
        self, namespace: str, name: str, status: Body
    ) -> Body | None: ...
    async def patch_pod(self, namespace: str, name: str, patch: Body) -> bool: ...
    async def get_child(self, kind: str, namespace: str, name: str) -> Body | None: ...
    async def create_child(self, body: Body) -> Body | None: ...
    async def patch_child(
        self, kind: str, namespace: str, name: str, patch: Any
    ) -> Body | None: ...
    async def delete_child(self, kind: str, namespace: str, name: str, uid: str) -> bool: ...


class EventPort(Protocol):
    async def post_event(self, session: Body, kind: str, reason: str, message: str) -> None: ...


class ExecPort(Protocol):
    async def run(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        step: str,
        timeout_s: float | None = None,
    ) -> ExecResult: ...

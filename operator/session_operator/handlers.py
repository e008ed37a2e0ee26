"""kopf handlers: thin glue between watch events and the reconcile layer.

Each Session gets one long-lived async daemon that runs the level-based
reconcile in a worker thread and then sleeps until something relevant changes:
its spec (a new generation), its project's pods, its preview Service, a peer
Session of the same project, or its next deadline (expiry, checks, retries).
Status writes and identical re-applies change no generation, so they wake
nothing: no reconcile hot loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import kopf

from . import GROUP, PLURAL, VERSION, metrics
from .builders import MANAGED_BY_LABEL, MANAGER, PROJECT_LABEL, SESSION_LABEL
from .cache import Key, ObjectCache, key_of, slim_session
from .podexec import ExecError
from .reconcile import Reconciler

log = logging.getLogger(__name__)
Body = dict[str, Any]


@dataclass
class Runtime:
    """Everything the handlers share; built once in ``__main__`` (no work at import)."""

    reconciler: Reconciler
    executor: ThreadPoolExecutor
    delete_retries: int
    retry_base_s: float
    sessions: ObjectCache
    pods: ObjectCache
    services: ObjectCache
    wakers: dict[Key, asyncio.Event] = field(default_factory=dict)
    seen: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    reconciles: int = 0

    def wake(self, key: Key) -> None:
        event = self.wakers.get(key)
        if event is not None:
            event.set()

    def wake_project(self, namespace: str, project: str | None) -> None:
        if not project:
            return
        for body in self.sessions.by_project(namespace, project):
            self.wake(key_of(body))

    def prime(self, namespaces: tuple[str, ...]) -> dict[str, int]:
        """LIST what the watches will stream, so the first reconciles see a full picture."""
        kube = self.reconciler.kube
        lister = getattr(kube, "list_objects", None)
        if lister is None:
            return {}
        counts = {"sessions": 0, "pods": 0, "services": 0}
        selectors = {
            "sessions": ("", self.sessions),
            "pods": (PROJECT_LABEL, self.pods),
            "services": (f"{MANAGED_BY_LABEL}={MANAGER}", self.services),
        }
        for kind, (selector, cache) in selectors.items():
            for namespace in namespaces or (None,):
                for item in lister(kind, namespace, selector):
                    cache.put(item)
                    counts[kind] += 1
        return counts


RUNTIME: Runtime | None = None


def runtime() -> Runtime:
    if RUNTIME is None:
        raise RuntimeError("the operator runtime is not configured")
    return RUNTIME


def _plain(body: Any) -> Body:
    return dict(body) if not isinstance(body, dict) else body


def _deep(body: Any) -> Body:
    """A plain, slim copy of a kopf body (kopf's views are live and not thread-safe)."""
    return slim_session(copy.deepcopy(dict(body)))


def _raw(body: Any) -> Body:
    """The event's object as a plain dict; the caches keep slim copies of it."""
    return dict(body)


def phase_counts(rt: Runtime) -> dict[str, int]:
    counts: dict[str, int] = {}
    for body in rt.sessions.values():
        phase = (body.get("status") or {}).get("phase") or "Unknown"
        counts[phase] = counts.get(phase, 0) + 1
    return counts


def register_phase_gauge(rt: Runtime) -> None:
    """Count phases when Prometheus scrapes, not on every watch event."""

    def counter(phase: str) -> Callable[[], float]:
        return lambda: float(phase_counts(rt).get(phase, 0))

    for phase in ("Pending", "Provisioning", "Active", "Ending", "Ended", "Expired", "Failed"):
        metrics.SESSIONS.labels(phase=phase).set_function(counter(phase))


# Sessions -------------------------------------------------------------------
@kopf.on.event(GROUP, VERSION, PLURAL)
async def session_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    rt = runtime()
    plain = _raw(body)
    key = key_of(plain)
    project = (plain.get("spec") or {}).get("project")
    if event.get("type") == "DELETED":
        rt.sessions.remove(key)
        rt.seen.pop(key, None)
        rt.wake_project(key[0], project)
        return
    rt.sessions.put(plain)
    # Compare with what the previous *event* showed, not with the cache: the
    # reconcile writes its own results through to the cache before their
    # events arrive, which would hide the transitions peers wait for.
    meta = plain["metadata"]
    state = (
        meta.get("generation"),
        bool(meta.get("deletionTimestamp")),
        (plain.get("status") or {}).get("phase"),
        _stalled(plain),
    )
    seen = rt.seen.get(key)
    rt.seen[key] = state
    if seen is None or seen[:2] != state[:2]:
        rt.wake(key)
    if seen is None or seen[1:] != state[1:]:
        # The project's queue may have moved: let the waiting Sessions look.
        for other in rt.sessions.by_project(key[0], project or ""):
            if key_of(other) != key:
                rt.wake(key_of(other))


def _stalled(body: Body) -> bool:
    return any(
        c.get("type") == "Stalled" and c.get("status") == "True"
        for c in (body.get("status") or {}).get("conditions") or []
    )


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=30.0)
async def session_daemon(body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
    rt = runtime()
    plain = _deep(body)
    key = key_of(plain)
    if rt.sessions.get(key) is None:
        rt.sessions.put(plain)
    wake = rt.wakers.setdefault(key, asyncio.Event())
    loop = asyncio.get_running_loop()
    try:
        while not stopped:
            wake.clear()
            latest = rt.sessions.get(key)
            if latest is None or latest["metadata"].get("deletionTimestamp"):
                return
            rt.reconciles += 1
            outcome = await loop.run_in_executor(rt.executor, rt.reconciler.reconcile, latest)
            if stopped:
                return
            waiter = asyncio.ensure_future(wake.wait())
            stopper = asyncio.ensure_future(stopped.wait())
            try:
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=outcome.requeue_after,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                for task in (waiter, stopper):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
    finally:
        if rt.wakers.get(key) is wake:
            rt.wakers.pop(key, None)


@kopf.on.delete(GROUP, VERSION, PLURAL, retries=None, backoff=5.0)
async def session_delete(body: kopf.Body, retry: int, logger: Any, **_: Any) -> None:
    rt = runtime()
    plain = _deep(body)
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(rt.executor, rt.reconciler.delete, plain)
    except ExecError as exc:
        if retry + 1 >= rt.delete_retries:
            # Never hold the finalizer forever: the worktree stays where it is.
            message = f"giving up on cleaning the worktree after {retry + 1} attempts: {exc}"
            logger.warning(message)
            await loop.run_in_executor(
                rt.executor,
                rt.reconciler.kube.post_event,
                plain,
                "Warning",
                "WorktreeKept",
                message,
            )
            return
        raise kopf.TemporaryError(str(exc), delay=rt.retry_base_s * (retry + 1)) from exc


# Project pods and preview Services --------------------------------------------
@kopf.on.event("", "v1", "pods", labels={PROJECT_LABEL: kopf.PRESENT})
async def pod_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    rt = runtime()
    plain = _raw(body)
    key = key_of(plain)
    project = (plain["metadata"].get("labels") or {}).get(PROJECT_LABEL)
    if event.get("type") == "DELETED":
        old = rt.pods.remove(key)
        rt.wake_project(key[0], project)
        return
    old = rt.pods.put(plain)
    if old is None or _pod_state(old) != _pod_state(plain):
        rt.wake_project(key[0], project)


def _pod_state(pod: Body) -> tuple[Any, ...]:
    from .reconcile import pod_ready

    labels = (pod.get("metadata") or {}).get("labels") or {}
    return (pod_ready(pod), labels.get(PROJECT_LABEL), labels.get(SESSION_LABEL))


@kopf.on.event("", "v1", "services", labels={MANAGED_BY_LABEL: MANAGER})
async def service_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    rt = runtime()
    plain = _raw(body)
    key = key_of(plain)
    session = (plain["metadata"].get("labels") or {}).get(SESSION_LABEL)
    if event.get("type") == "DELETED":
        rt.services.remove(key)
        if session:
            # Someone removed a live session's Service: put it back.
            owner = rt.sessions.get((key[0], session))
            if owner and (owner.get("status") or {}).get("phase") == "Active":
                rt.wake((key[0], session))
        return
    rt.services.put(plain)

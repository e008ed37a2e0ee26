"""The operator's runtime, built once at start-up and handed to the handlers in kopf's memo.

``App`` owns the API and exec clients, the store, the work queue, the
controller and its workers. Watch events reach ``observe_*``, which update the
store and enqueue what the mappers say; workers reconcile keys off the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rdev_api import Body
from rdev_api.models import Phase
from rdev_api.names import MANAGED_BY_LABEL, MANAGER, PROJECT_LABEL, SESSION_LABEL

from . import metrics
from .backoff import BACKOFF_CAP_S, Backoff
from .context import Env
from .controller import Controller
from .kube import Kube, KubeError, load_kube_config
from .mappers import (
    map_pod,
    map_service_deleted,
    map_session,
    pod_state,
    session_state,
)
from .podexec import PodExec
from .queue import WorkQueue
from .settings import Settings
from .store import Key, Store, key_of

log = logging.getLogger("session_operator")
# How long start-up keeps retrying LISTs the API server answers with 429 or 5xx.
START_PATIENCE_S = 60.0


class Gate:
    """Whether this instance may act: kopf's peering rule, read from the peering object.

    kopf pauses its own watches when a peer with a higher (or the same)
    priority is alive; the work queue's timers are ours, so the workers wait on
    the same rule. Standalone instances are always open.
    """

    def __init__(self, priority: int | None) -> None:
        self.priority = priority
        self.open = asyncio.Event()
        if priority is None:
            self.open.set()

    def decide(self, peering: Body | None, now: datetime) -> bool:
        if self.priority is None:
            return True
        if peering is None:
            return False
        same = 0
        for info in (peering.get("status") or {}).values():
            if not isinstance(info, dict):
                continue
            seen = info.get("lastseen")
            try:
                last = datetime.fromisoformat(str(seen)) if seen else now
            except ValueError:
                continue
            if last.tzinfo is None:
                last = last.replace(tzinfo=UTC)
            if (now - last).total_seconds() >= int(info.get("lifetime") or 60):
                continue  # dead
            priority = int(info.get("priority") or 0)
            if priority > self.priority:
                return False
            if priority == self.priority:
                same += 1
        return same <= 1  # ourselves only


@dataclass
class App:
    settings: Settings
    kube: Kube
    execs: PodExec
    env: Env
    queue: WorkQueue[Key]
    controller: Controller
    gate: Gate
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def create(cls, settings: Settings, priority: int | None) -> App:
        cfg = await load_kube_config()
        # Fair across namespaces: a key's group is its namespace (see queue.py).
        queue: WorkQueue[Key] = WorkQueue(
            Backoff(settings.retry_interval.total_seconds(), BACKOFF_CAP_S),
            group_of=lambda key: key[0],
            workers=settings.workers,
        )
        assert queue.capacity is not None
        kube = Kube(cfg, pool_size=queue.capacity + 8)
        execs = PodExec.from_settings(cfg, settings)
        env = Env(settings=settings, kube=kube, execs=execs, store=Store())
        app = cls(settings, kube, execs, env, queue, Controller(env, queue), Gate(priority))
        app.register_phase_gauge()
        return app

    @property
    def store(self) -> Store:
        return self.env.store

    # Start and stop ---------------------------------------------------------
    async def start(self, namespaces: tuple[str, ...], peering: str) -> None:
        """Fill the store, queue every Session once, and start the workers.

        Priming before any reconcile means a resumed Session sees its pod, its
        Service and its project's queue, and decides it needs nothing.
        """
        backoff: Backoff[None] = Backoff(0.5, 8.0)
        deadline = asyncio.get_running_loop().time() + START_PATIENCE_S
        while True:
            try:
                if peering and not await self.kube.ensure_cluster_peering(peering):
                    log.warning("the kopf peering CRDs are not installed; waiting for them")
                counts = await self.prime(namespaces)
                break
            except KubeError as exc:
                # An API server that restarts or re-initialises a CRD's storage answers
                # 429/5xx for a moment: retry here rather than wait for kopf's 60 s
                # activity backoff. Both calls are idempotent.
                delay = backoff.when(None)
                if not exc.transient or asyncio.get_running_loop().time() + delay > deadline:
                    raise
                log.warning("start-up listing failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
        log.info("caches primed: %s", counts)
        self.tasks.append(asyncio.create_task(self._work()))
        if self.gate.priority is not None and peering:
            self.tasks.append(asyncio.create_task(self._watch_gate(peering, namespaces)))

    async def stop(self) -> None:
        await self.queue.shutdown()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.kube.close()
        await self.execs.close()

    async def _work(self) -> None:
        workers = [self._worker() for _ in range(self.queue.capacity or self.settings.workers)]
        await asyncio.gather(*workers)

    async def _worker(self) -> None:
        while True:
            await self.gate.open.wait()
            key = await self.queue.get()
            if key is None:
                return
            if not self.gate.open.is_set():
                self.queue.done(key)
                self.queue.add(key)  # for whoever acts, after the pause
                continue
            try:
                result = await self.controller.reconcile(key)
            finally:
                self.queue.done(key)
            self.controller.schedule(key, result)

    async def _watch_gate(self, peering: str, namespaces: tuple[str, ...]) -> None:
        interval = max(self.settings.peering_lifetime.total_seconds() / 4, 1.0)
        while True:
            try:
                body = await self.kube.get_cluster_peering(peering)
                allowed = self.gate.decide(body, datetime.now(UTC))
            except Exception as exc:  # keep the last decision while the API is away
                log.warning("could not read the peering object: %s", exc)
                allowed = self.gate.open.is_set()
            if allowed and not self.gate.open.is_set():
                log.info("resuming: this instance acts now")
                await self.prime(namespaces)
                self.gate.open.set()
            elif not allowed and self.gate.open.is_set():
                log.info("pausing: a peer with a higher priority acts")
                self.gate.open.clear()
            await asyncio.sleep(interval)

    async def prime(self, namespaces: tuple[str, ...]) -> dict[str, int]:
        """LIST what the watches stream, then queue every Session once."""
        counts = {"sessions": 0, "pods": 0, "services": 0}
        selectors = {
            "sessions": ("", self.store.sessions),
            "pods": (PROJECT_LABEL, self.store.pods),
            "services": (f"{MANAGED_BY_LABEL}={MANAGER}", self.store.services),
        }
        for kind, (selector, cache) in selectors.items():
            for namespace in namespaces or (None,):
                for item in await self.kube.list_objects(kind, namespace, selector):
                    cache.put(item)
                    counts[kind] += 1
        for body in self.store.sessions.values():
            self.queue.add(key_of(body))
        return counts

    # Watch events -------------------------------------------------------------
    def observe_session(self, event_type: str | None, body: Body) -> None:
        key = key_of(body)
        old = self.store.watched_sessions.get(key)
        if event_type == "DELETED":
            self.store.sessions.remove(key)
            self.store.watched_sessions.pop(key, None)
            new = None
        else:
            self.store.sessions.put(body)
            new = session_state(body)
            self.store.watched_sessions[key] = new
        for target in map_session(key, old, new, self.store):
            self.queue.add(target)

    def observe_pod(self, event_type: str | None, body: Body) -> None:
        key = key_of(body)
        old = self.store.watched_pods.get(key)
        cached = self.store.pods.get(key)
        known = pod_state(cached) if cached is not None else None
        if event_type == "DELETED":
            self.store.pods.remove(key)
            self.store.watched_pods.pop(key, None)
            new = None
        else:
            self.store.pods.put(body)
            new = pod_state(body)
            self.store.watched_pods[key] = new
        for target in map_pod(key[0], old, new, self.store, known):
            self.queue.add(target)

    def observe_service(self, event_type: str | None, body: Body) -> None:
        key = key_of(body)
        if event_type != "DELETED":
            self.store.services.put(body)
            return
        if self.store.services.remove(key) is None:
            return  # the operator's own deletion: it dropped the Service from the store first
        session = ((body.get("metadata") or {}).get("labels") or {}).get(SESSION_LABEL)
        for target in map_service_deleted(key[0], session, self.store):
            self.queue.add(target)

    # Metrics ------------------------------------------------------------------
    def phase_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for body in self.store.sessions.values():
            phase = (body.get("status") or {}).get("phase") or "Unknown"
            counts[phase] = counts.get(phase, 0) + 1
        return counts

    def register_phase_gauge(self) -> None:
        """Count phases when Prometheus scrapes, not on every watch event."""

        def counter(phase: str) -> Callable[[], float]:
            return lambda: float(self.phase_counts().get(phase, 0))

        for phase in Phase:
            metrics.SESSIONS.labels(phase=phase).set_function(counter(phase))

        def expiring() -> float:
            return float(
                sum(
                    1
                    for body in self.store.sessions.values()
                    if (body.get("status") or {}).get("expiresSoon")
                )
            )

        metrics.SESSIONS_EXPIRING_SOON.set_function(expiring)
        metrics.ACTIVE.set_function(lambda: 1.0 if self.gate.open.is_set() else 0.0)

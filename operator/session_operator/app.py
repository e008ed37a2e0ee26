"""The operator's runtime, wired once at start-up and handed to the handlers in kopf's memo.

``App`` owns the API and exec clients, the store, the work queue, the
controller, the informer (store and watch events, informer.py), the leader gate
(peering.py) and the workers (workers.py); it starts and stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from rdev_api import shards

from . import metrics
from .backoff import BACKOFF_CAP_S, Backoff
from .context import Env
from .controller import Controller
from .events import EventRecorder
from .informer import Informer
from .kube import Kube, KubeError, login
from .peering import Gate
from .podexec import PodExec
from .queue import WorkQueue
from .settings import Settings
from .store import Key, Store
from .workers import work

log = logging.getLogger("session_operator")
# How long start-up keeps retrying LISTs the API server answers with 429 or 5xx,
# and how start-up's retries are paced.
START_PATIENCE_S = 60.0
START_BACKOFF_S = (0.5, 8.0)
# What the sharding check lists: a Service every cluster has, in a namespace it always has.
PROBE_NAMESPACE = "default"
PROBE_SERVICE = "kubernetes"


@dataclass
class App:
    settings: Settings
    kube: Kube
    execs: PodExec
    env: Env
    queue: WorkQueue[Key]
    controller: Controller
    informer: Informer
    gate: Gate
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def create(cls, settings: Settings, priority: int | None) -> App:
        info = login()
        # Fair across namespaces: a key's group is its namespace (see queue.py).
        queue: WorkQueue[Key] = WorkQueue(
            Backoff(settings.retry_interval.total_seconds(), BACKOFF_CAP_S),
            group_of=lambda key: key[0],
            workers=settings.workers,
        )
        assert queue.capacity is not None
        count, index = settings.shards, settings.shard_index
        kube = Kube(info, pool_size=queue.capacity + 8, user_agent=shards.user_agent(index, count))
        execs = PodExec.from_settings(info, settings, pool_size=queue.capacity + 8)
        store = Store()
        events = EventRecorder(kube, kube.instance)
        env = Env(settings=settings, kube=kube, events=events, execs=execs, store=store)
        gate = Gate(priority)
        informer = Informer(kube, store, queue, settings.shard_selector)
        controller = Controller(env, queue)
        informer.on_session_gone = controller.forget
        app = cls(settings, kube, execs, env, queue, controller, informer, gate)
        metrics.bind(str(index))
        metrics.register_gauges(store, gate.open.is_set, str(index))
        return app

    async def start(self, namespaces: tuple[str, ...], peering: str) -> None:
        """Fill the store, queue every Session once, start the watches and the workers.

        Priming before any reconcile means a resumed Session sees its pod, its
        Service and its project's queue, and decides it needs nothing. A standby
        watches too (its store is current when it starts to act); only its workers
        wait for the gate.
        """
        backoff: Backoff[None] = Backoff(*START_BACKOFF_S)
        deadline = asyncio.get_running_loop().time() + START_PATIENCE_S
        while True:
            try:
                if peering and not await self.kube.ensure_cluster_peering(peering):
                    log.warning("the kopf peering CRDs are not installed; waiting for them")
                counts = await self.informer.prime(namespaces)
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
        self.tasks.append(asyncio.create_task(self.informer.run(namespaces)))
        workers = self.queue.capacity or self.settings.workers
        self.tasks.append(
            asyncio.create_task(work(self.queue, self.controller, self.gate, workers))
        )
        if self.gate.priority is not None and peering:
            interval = max(self.settings.peering_lifetime.total_seconds() / 4, 1.0)
            watch = self.gate.watch(self.kube, peering, interval, self.informer.resync)
            self.tasks.append(asyncio.create_task(watch))

    async def stop(self) -> None:
        await self.queue.shutdown()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.kube.close()
        await self.execs.close()


class ShardingRefused(Exception):
    """The API server ignores ``shardSelector``: every shard would handle every namespace."""


async def check_server_shards(settings: Settings) -> None:
    """Refuse to run sharded against a server that returns what the shard selector excludes.

    The probe is the ``kubernetes`` Service in ``default``, which every cluster has: a
    LIST of it with a range one hash wide around the hash of ``default`` must return it,
    and one with the rest of the ring must come back empty. A server without
    ``ShardedListAndWatch`` ignores the parameter and returns it both times, and then
    N replicas would all act on every Session. A probe that cannot be made refuses too.
    """
    probe = shards.fnv1a64(PROBE_NAMESPACE)
    inside = shards.selector(probe, probe + 1)
    rest = (probe + 1, shards.RING) if probe + 1 < shards.RING else (0, probe)
    outside = shards.selector(*rest)
    head = f"RDEV_SHARDS={settings.shards}"
    kube = Kube(
        login(),
        user_agent=shards.user_agent(settings.shard_index, settings.shards),
    )
    try:
        found = [await _probe(kube, selector) for selector in (inside, outside)]
    except KubeError as exc:
        raise ShardingRefused(
            f"{head} but the sharding check could not list Service {PROBE_NAMESPACE}/"
            f"{PROBE_SERVICE}: {exc}"
        ) from None
    finally:
        await kube.close()
    if not found[0]:
        raise ShardingRefused(
            f"{head} but the sharding check found no Service {PROBE_NAMESPACE}/{PROBE_SERVICE}"
            " to probe with: shard by RDEV_NAMESPACES per replica"
        )
    if found[1]:
        raise ShardingRefused(
            f"{head} but the API server ignores shardSelector: enable"
            " the ShardedListAndWatch feature gate (alpha, Kubernetes 1.36+), or shard by"
            " RDEV_NAMESPACES per replica"
        )


async def _probe(kube: Kube, selector: str) -> bool:
    """Whether the probe Service is listed under ``selector``; transient errors are retried."""
    backoff: Backoff[None] = Backoff(*START_BACKOFF_S)
    deadline = asyncio.get_running_loop().time() + START_PATIENCE_S
    while True:
        try:
            pages = kube.list_services(
                PROBE_NAMESPACE, "", selector, field=f"metadata.name={PROBE_SERVICE}"
            )
            return any([page.items async for page in pages])
        except KubeError as exc:
            delay = backoff.when(None)
            if not exc.transient or asyncio.get_running_loop().time() + delay > deadline:
                raise
            await asyncio.sleep(delay)

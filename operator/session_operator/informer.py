"""The operator's view of the cluster: one LIST, then a watch that continues from it.

Per watched collection (Sessions; project pods; the operator's own Services; in
each namespace served, or cluster-wide) a feed LISTs once at start-up
(``prime``), so that a resumed Session sees its pod, its Service and its
project's queue before its first reconcile, and then watches from that LIST's
resourceVersion (``run``): each event updates the store and enqueues what the
mappers say, a key per Session whose reconcile could change. A watch that ends
continues from the last version it saw; one whose version is too old (410)
LISTs again and reconciles the store with it.

Why not kopf's watches: kopf runs its per-object machinery (a worker task, a
logger, handler matching and invocation) for every event of every kind; the
store needs only the event itself. That machinery was a fifth of the operator's
CPU per Session lifecycle (bench/README.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from rdev_api import Body
from rdev_api.names import MANAGED_BY_LABEL, MANAGER, PROJECT_LABEL, SESSION_LABEL

from . import metrics
from .backoff import Backoff
from .kube import Kube, KubeError, Page, WatchEvent
from .mappers import map_pod, map_service_deleted, map_session, pod_state, session_state
from .queue import WorkQueue
from .store import Key, ObjectCache, Store, key_of

S = TypeVar("S")
log = logging.getLogger(__name__)

# What the watches stream: the pods of projects and the operator's own Services.
POD_SELECTOR = PROJECT_LABEL
SERVICE_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGER}"
# How a broken watch is retried: soon, then at most 5 s apart (one cheap request each;
# the store must not stay stale long after an API server comes back).
WATCH_BACKOFF_S = (0.5, 5.0)


@dataclass(frozen=True)
class Feed:
    """One watched collection: how to list it, watch it, and take in what it shows."""

    what: str  # "sessions", "pods" or "services"
    namespace: str | None  # None: every namespace (of this shard)
    cache: ObjectCache
    list: Callable[[], AsyncIterator[Page]]
    watch: Callable[[str], AsyncIterator[WatchEvent]]
    # (event type, body, wake): wake=False fills the store without enqueueing anything.
    observe: Callable[[str | None, Body, bool], None]


class Informer:
    def __init__(self, kube: Kube, store: Store, queue: WorkQueue[Key], shard: str = "") -> None:
        self.kube = kube
        self.store = store
        self.queue = queue
        self.shard = shard  # the shardSelector of this replica's namespaces; empty: all
        # Told the key of every Session that is gone from the API (Controller.forget).
        self.on_session_gone: Callable[[Key], None] = lambda key: None
        self.versions: dict[tuple[str, str | None], str] = {}

    def feeds(self, namespaces: tuple[str, ...]) -> list[Feed]:
        kube, store, shard = self.kube, self.store, self.shard
        labelled = (  # the kinds watched by label: pods of projects, the operator's Services
            ("pods", store.pods, kube.list_pods, kube.watch_pods, POD_SELECTOR, self.observe_pod),
            (
                "services",
                store.services,
                kube.list_services,
                kube.watch_services,
                SERVICE_SELECTOR,
                self.observe_service,
            ),
        )
        out = []
        for ns in namespaces or (None,):
            out.append(
                Feed(
                    "sessions",
                    ns,
                    store.sessions,
                    partial(kube.list_sessions, ns, shard),
                    partial(kube.watch_sessions, namespace=ns, shard=shard),
                    self.observe_session,
                )
            )
            for what, cache, lister, watcher, selector, observe in labelled:
                listing = partial(lister, ns, selector, shard)
                watching = partial(watcher, namespace=ns, selector=selector, shard=shard)
                out.append(Feed(what, ns, cache, listing, watching, observe))
        return out

    async def prime(self, namespaces: tuple[str, ...]) -> dict[str, int]:
        """LIST what the watches stream (this shard's slice), then queue every Session once."""
        counts = {"sessions": 0, "pods": 0, "services": 0}
        for feed in self.feeds(namespaces):
            version, count = await self.fill(feed, wake=False)
            self.versions[(feed.what, feed.namespace)] = version
            counts[feed.what] += count
        await self.resync()
        return counts

    async def resync(self) -> None:
        """Queue every Session once (start-up, and when this replica starts to act)."""
        for body in self.store.sessions.values():
            self.queue.add(key_of(body))

    async def run(self, namespaces: tuple[str, ...]) -> None:
        """Watch every feed from where ``prime`` listed it, until cancelled."""
        feeds = self.feeds(namespaces)
        await asyncio.gather(
            *(self.follow(f, self.versions.get((f.what, f.namespace), "")) for f in feeds)
        )

    async def fill(self, feed: Feed, *, wake: bool) -> tuple[str, int]:
        """LIST ``feed`` into the store; with ``wake``, as events (a re-list after a 410).

        A re-list also drops what the store holds of the feed that the LIST no longer
        shows (deleted while no watch ran), as a DELETED event would.
        """
        seen: set[Key] = set()
        version = ""
        async for page in feed.list():
            version = page.version
            for item in page.items:
                feed.observe("MODIFIED" if wake else None, item, wake)  # slimmed: the page goes
                seen.add(key_of(item))
        if wake:
            for body in feed.cache.values():
                key = key_of(body)
                if key not in seen and feed.namespace in (None, key[0]):
                    feed.observe("DELETED", body, True)
        return version, len(seen)

    async def follow(self, feed: Feed, version: str) -> None:
        """Watch ``feed`` from ``version`` for ever: continue after each end, re-list on 410."""
        backoff: Backoff[None] = Backoff(*WATCH_BACKOFF_S)
        where = f"{feed.what} in {feed.namespace or 'all namespaces'}"
        while True:
            try:
                if not version:
                    version, _ = await self.fill(feed, wake=True)
                async for event in feed.watch(version):
                    meta = event.object.get("metadata") or {}
                    version = str(meta.get("resourceVersion") or version)
                    if event.type != "BOOKMARK":
                        self._take(feed, event)
                backoff.forget(None)
            except KubeError as exc:
                if exc.gone:
                    log.info("the watch of %s is too far behind; listing again", where)
                    version = ""
                    continue
                delay = backoff.when(None)
                log.warning("the watch of %s broke off (%s); again in %.1fs", where, exc, delay)
                await asyncio.sleep(delay)
            except Exception:  # say, a line that is not JSON: never stop watching
                delay = backoff.when(None)
                log.exception("the watch of %s failed; listing again in %.1fs", where, delay)
                version = ""
                await asyncio.sleep(delay)

    def _take(self, feed: Feed, event: WatchEvent) -> None:
        try:
            feed.observe(event.type, event.object, True)
        except Exception:  # a bug must not end the watch: the next event may set it right
            log.exception("taking in a %s event of %s failed", event.type, feed.what)

    def observe_session(self, event_type: str | None, body: Body, wake: bool = True) -> None:
        if event_type is not None:
            metrics.bound().watch_events["session"].inc()
        key, old, new = _ingest(
            self.store.sessions, self.store.watched_sessions, event_type, body, session_state
        )
        if wake:
            for target in map_session(key, old, new, self.store):
                self.queue.add(target)
        if event_type == "DELETED":
            self.on_session_gone(key)

    def observe_pod(self, event_type: str | None, body: Body, wake: bool = True) -> None:
        if event_type is not None:
            metrics.bound().watch_events["pod"].inc()
        cached = self.store.pods.get(key_of(body))
        known = pod_state(cached) if cached is not None else None
        key, old, new = _ingest(
            self.store.pods, self.store.watched_pods, event_type, body, pod_state
        )
        if wake:
            for target in map_pod(key[0], old, new, self.store, known):
                self.queue.add(target)

    def observe_service(self, event_type: str | None, body: Body, wake: bool = True) -> None:
        if event_type is not None:
            metrics.bound().watch_events["service"].inc()
        key = key_of(body)
        if event_type != "DELETED":
            self.store.services.put(body)
            return
        if self.store.services.remove(key) is None or not wake:
            return  # the operator's own deletion: it dropped the Service from the store first
        session = ((body.get("metadata") or {}).get("labels") or {}).get(SESSION_LABEL)
        for target in map_service_deleted(key[0], session, self.store):
            self.queue.add(target)


def _ingest(
    cache: ObjectCache,
    watched: dict[Key, S],
    event_type: str | None,
    body: Body,
    state: Callable[[Body], S],
) -> tuple[Key, S | None, S | None]:
    """Apply one watch event to the cache; return the key and its watched state before and after."""
    key = key_of(body)
    old = watched.get(key)
    if event_type == "DELETED":
        cache.remove(key)
        watched.pop(key, None)
        return key, old, None
    cache.put(body)
    new = watched[key] = state(body)
    return key, old, new

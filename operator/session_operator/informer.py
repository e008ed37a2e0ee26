"""The operator's view of the cluster: priming the store, and ingesting watch events.

Start-up LISTs what the watches stream (``prime``) so that a resumed Session
sees its pod, its Service and its project's queue before its first reconcile.
Watch events (through kopf, see handlers.py) update the store and enqueue what
the mappers say: a key per Session whose reconcile could change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rdev_api import Body
from rdev_api.names import MANAGED_BY_LABEL, MANAGER, PROJECT_LABEL, SESSION_LABEL

from . import metrics
from .kube import Kube
from .mappers import map_pod, map_service_deleted, map_session, pod_state, session_state
from .queue import WorkQueue
from .store import Key, ObjectCache, Store, key_of

S = TypeVar("S")

# What the watches stream: the pods of projects and the operator's own Services.
POD_SELECTOR = PROJECT_LABEL
SERVICE_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGER}"


class Informer:
    def __init__(self, kube: Kube, store: Store, queue: WorkQueue[Key], shard: str = "") -> None:
        self.kube = kube
        self.store = store
        self.queue = queue
        self.shard = shard  # the shardSelector of this replica's namespaces; empty: all
        # Told the UID of every Session that is gone (kopfstate.MemoryProgressStorage).
        self.on_session_gone: Callable[[str], None] = lambda uid: None

    async def prime(self, namespaces: tuple[str, ...]) -> dict[str, int]:
        """LIST what the watches stream (this shard's slice), then queue every Session once."""
        counts = {"sessions": 0, "pods": 0, "services": 0}
        for namespace in namespaces or (None,):
            listings = (
                ("sessions", self.store.sessions, self.kube.list_sessions(namespace, self.shard)),
                ("pods", self.store.pods, self.kube.list_pods(namespace, POD_SELECTOR, self.shard)),
                (
                    "services",
                    self.store.services,
                    self.kube.list_services(namespace, SERVICE_SELECTOR, self.shard),
                ),
            )
            for what, cache, pages in listings:
                async for page in pages:
                    for item in page:
                        cache.put(item)  # slimmed: the page's full bodies go with it
                    counts[what] += len(page)
        for body in self.store.sessions.values():
            self.queue.add(key_of(body))
        return counts

    def observe_session(self, event_type: str | None, body: Body) -> None:
        metrics.bound().watch_events["session"].inc()
        key, old, new = _ingest(
            self.store.sessions, self.store.watched_sessions, event_type, body, session_state
        )
        for target in map_session(key, old, new, self.store):
            self.queue.add(target)
        if event_type == "DELETED":
            self.on_session_gone(str((body.get("metadata") or {}).get("uid", "")))

    def observe_pod(self, event_type: str | None, body: Body) -> None:
        metrics.bound().watch_events["pod"].inc()
        cached = self.store.pods.get(key_of(body))
        known = pod_state(cached) if cached is not None else None
        key, old, new = _ingest(
            self.store.pods, self.store.watched_pods, event_type, body, pod_state
        )
        for target in map_pod(key[0], old, new, self.store, known):
            self.queue.add(target)

    def observe_service(self, event_type: str | None, body: Body) -> None:
        metrics.bound().watch_events["service"].inc()
        key = key_of(body)
        if event_type != "DELETED":
            self.store.services.put(body)
            return
        if self.store.services.remove(key) is None:
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

"""The informer's feeds: one LIST, then a watch from its version; a re-list on 410."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from asynchelpers import aio
from rdev_api import Body, shards
from session_operator.backoff import Backoff
from session_operator.informer import Informer
from session_operator.kube import KubeError, Page, WatchEvent
from session_operator.queue import WorkQueue
from session_operator.store import Key, Store


def session(name: str, rv: int, namespace: str = "ns") -> Body:
    meta = {"name": name, "namespace": namespace, "uid": f"u-{name}", "resourceVersion": str(rv)}
    return {"metadata": {**meta, "generation": 1}, "spec": {"project": "p"}, "status": {}}


class RecordingKube:
    """Serves LISTs and watches of Sessions from scripts; records every call's parameters."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.listing: list[Body] = []
        self.list_version = "10"
        # Each watch call takes the next script: events, then an error (or None: it ends).
        self.watches: list[tuple[list[WatchEvent], Exception | None]] = []
        self.watched_from: list[str] = []
        self.idle = asyncio.Event()

    def _list(self, **call: Any) -> AsyncIterator[Page]:
        self.calls.append({"verb": "list", **call})

        async def pages() -> AsyncIterator[Page]:
            yield Page(list(self.listing), self.list_version)

        return pages()

    def _watch(self, version: str, **call: Any) -> AsyncIterator[WatchEvent]:
        self.calls.append({"verb": "watch", **call})
        self.watched_from.append(version)

        async def events() -> AsyncIterator[WatchEvent]:
            if not self.watches:
                self.idle.set()
                await asyncio.Event().wait()  # a quiet stream, until cancelled
            script, error = self.watches.pop(0)
            for event in script:
                yield event
            if error is not None:
                raise error

        return events()

    def list_sessions(self, namespace: str | None, shard: str = "") -> AsyncIterator[Page]:
        return self._list(kind="sessions", namespace=namespace, shard=shard)

    def watch_sessions(
        self, version: str, namespace: str | None, shard: str = ""
    ) -> AsyncIterator[WatchEvent]:
        return self._watch(version, kind="sessions", namespace=namespace, shard=shard)

    # Pods and Services: the same calls with a label selector (what the informer passes).
    def list_pods(self, namespace: str | None, selector: str, shard: str = "") -> Any:
        return self._list(kind="pods", namespace=namespace, selector=selector, shard=shard)

    def list_services(self, namespace: str | None, selector: str, shard: str = "") -> Any:
        return self._list(kind="services", namespace=namespace, selector=selector, shard=shard)

    def watch_pods(self, version: str, **call: Any) -> Any:
        return self._watch(version, kind="pods", **call)

    def watch_services(self, version: str, **call: Any) -> Any:
        return self._watch(version, kind="services", **call)


def informer(kube: RecordingKube, shard: str = "") -> tuple[Informer, WorkQueue[Key]]:
    queue: WorkQueue[Key] = WorkQueue(Backoff(1.0, 10.0))
    return Informer(kube, Store(), queue, shard), queue  # type: ignore[arg-type]


@aio
async def test_every_list_and_watch_asks_for_the_shard() -> None:
    wanted = shards.shard_selector(2, 4)
    for namespaces in ((), ("a", "b")):
        kube = RecordingKube()
        feeds = informer(kube, wanted)[0].feeds(namespaces)
        assert len(feeds) == 3 * max(len(namespaces), 1)
        for feed in feeds:
            feed.list()
            feed.watch("7")
        assert len(kube.calls) == 2 * len(feeds)
        assert all(call["shard"] == wanted for call in kube.calls), kube.calls
        assert {call["namespace"] for call in kube.calls} == set(namespaces or (None,))


@aio
async def test_the_watch_continues_from_the_listing_and_from_each_event() -> None:
    kube = RecordingKube()
    kube.listing = [session("a", 5)]
    kube.watches = [
        ([WatchEvent("ADDED", session("b", 11)), WatchEvent("BOOKMARK", session("", 14))], None),
    ]
    inf, queue = informer(kube)
    feed = inf.feeds(())[0]
    version, count = await inf.fill(feed, wake=False)
    assert (version, count) == ("10", 1)
    assert len(queue) == 0  # filling at start-up wakes nothing; prime queues every Session
    follow = asyncio.create_task(inf.follow(feed, version))
    await asyncio.wait_for(kube.idle.wait(), 5)
    follow.cancel()
    assert kube.watched_from == ["10", "14"]  # the bookmark's version, not the event's
    assert inf.store.sessions.get(("ns", "b")) is not None
    assert len(queue) == 2  # b appeared, and a is next in line for the project


@aio
async def test_a_watch_too_far_behind_lists_again_and_drops_what_is_gone() -> None:
    kube = RecordingKube()
    kube.listing = [session("a", 5), session("b", 6)]
    inf, _ = informer(kube)
    feed = inf.feeds(())[0]
    version, _ = await inf.fill(feed, wake=False)
    # b is deleted and c created while the watch is away; the server says 410.
    kube.watches = [([], KubeError(410, "too old resource version"))]
    kube.listing, kube.list_version = [session("a", 5), session("c", 20)], "21"
    gone: list[Key] = []
    inf.on_session_gone = gone.append
    follow = asyncio.create_task(inf.follow(feed, version))
    await asyncio.wait_for(kube.idle.wait(), 5)
    follow.cancel()
    assert kube.watched_from == ["10", "21"]
    names = sorted(b["metadata"]["name"] for b in inf.store.sessions.values())
    assert names == ["a", "c"]
    assert gone == [("ns", "b")]


@aio
async def test_a_broken_watch_is_retried_from_where_it_was() -> None:
    kube = RecordingKube()
    kube.watches = [([WatchEvent("ADDED", session("a", 12))], KubeError(0, "connection reset"))]
    inf, _ = informer(kube)
    feed = inf.feeds(())[0]
    follow = asyncio.create_task(inf.follow(feed, "10"))
    await asyncio.wait_for(kube.idle.wait(), 5)
    follow.cancel()
    assert kube.watched_from == ["10", "12"]  # after the backoff, from the last event


@aio
async def test_a_watch_that_fails_oddly_lists_again_and_goes_on() -> None:
    kube = RecordingKube()
    kube.listing = [session("a", 5)]
    kube.watches = [([], ValueError("a line that is not JSON"))]
    inf, _ = informer(kube)
    feed = inf.feeds(())[0]
    follow = asyncio.create_task(inf.follow(feed, "3"))
    await asyncio.wait_for(kube.idle.wait(), 5)
    follow.cancel()
    assert kube.watched_from == ["3", "10"]  # listed again (version 10), then watched on
    assert inf.store.sessions.get(("ns", "a")) is not None

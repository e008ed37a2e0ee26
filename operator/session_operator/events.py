"""Events on Sessions: a pure builder, and a recorder that posts what it builds.

Identical Events are folded into one object with a count, as client-go's
recorder does: a Session failing the same way for hours would otherwise write a
new Event object on every retry. The first occurrence creates an Event; repeats
within the window patch its ``count`` and ``lastTimestamp``. Memory is bounded:
the least recently seen keys are dropped first.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from rdev_api import API_VERSION, KIND, Body

from .kube import KubeError

log = logging.getLogger(__name__)
COMPONENT = "rdev-session-operator"
MAX_MESSAGE = 1024

# What makes two Events identical (client-go: source, object, type, reason, message); the
# message by a 64-bit digest, so that thousands of remembered Events do not each keep
# up to a KiB of text.
EventKey = tuple[str, str, str, str, str, bytes]


@dataclass
class Seen:
    name: str
    count: int
    at: float  # monotonic time of the last occurrence


class EventAggregator:
    def __init__(self, window_s: float = 600.0, capacity: int = 4096) -> None:
        self.window_s = window_s
        self.capacity = capacity
        self._seen: OrderedDict[EventKey, Seen] = OrderedDict()

    def repeat_of(self, key: EventKey, now: float) -> Seen | None:
        """The Event object to count this occurrence on, if it is a recent repeat."""
        seen = self._seen.get(key)
        if seen is None or now - seen.at > self.window_s:
            return None
        seen.count += 1
        seen.at = now
        self._seen.move_to_end(key)
        return seen

    def created(self, key: EventKey, name: str, now: float) -> None:
        self._seen[key] = Seen(name=name, count=1, at=now)
        self._seen.move_to_end(key)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def forget(self, key: EventKey) -> None:
        self._seen.pop(key, None)

    def __len__(self) -> int:
        return len(self._seen)


def event_body(
    session: Body, kind: str, reason: str, message: str, *, name: str, now: str, instance: str
) -> Body:
    """A core/v1 Event about ``session`` (pure: the recorder picks the name and time)."""
    meta = session["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": kind,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance[:128],
        "firstTimestamp": now,
        "lastTimestamp": now,
        "eventTime": None,
        "count": 1,
    }


class EventWriter(Protocol):
    """The two calls the recorder needs (kube.Kube)."""

    async def create_event(self, namespace: str, body: Body) -> None: ...
    async def patch_event(self, namespace: str, name: str, patch: Body) -> bool: ...


class EventRecorder:
    """Posts Events on Sessions; repeats are counted on one object.

    Failures are logged, never raised: an Event is never worth a failed reconcile.
    """

    def __init__(self, writer: EventWriter, instance: str) -> None:
        self.writer = writer
        self.instance = instance
        self.seen = EventAggregator()

    async def post_event(self, session: Body, kind: str, reason: str, message: str) -> None:
        meta = session["metadata"]
        namespace = meta["namespace"]
        message = message[:MAX_MESSAGE]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        digest = hashlib.blake2b(message.encode(), digest_size=8).digest()
        key = (namespace, meta["name"], str(meta.get("uid")), kind, reason, digest)
        clock = time.monotonic()
        try:
            repeat = self.seen.repeat_of(key, clock)
            if repeat is not None:
                patch = {"count": repeat.count, "lastTimestamp": now}
                if await self.writer.patch_event(namespace, repeat.name, patch):
                    return
                self.seen.forget(key)  # expired or deleted: start a new one
            name = f"{meta['name']}.{secrets.token_hex(8)}"
            body = event_body(
                session, kind, reason, message, name=name, now=now, instance=self.instance
            )
            await self.writer.create_event(namespace, body)
            self.seen.created(key, name, clock)
        except (KubeError, OSError) as exc:
            log.warning("could not post event %s on %s: %s", reason, meta["name"], exc)

"""Watch the Sessions of one namespace and timestamp when each meets a predicate.

Every event is stamped with the wall clock the moment it is read from the watch
stream, so latencies have sub-millisecond resolution (creationTimestamp has one
second). Waiters register a predicate over a set of names; each name is stamped
the first time its latest object satisfies it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubeapi import ApiError, Kube, now
from rdev_api import Body

Pred = Callable[[Body | None], bool]
GROUP, VERSION, PLURAL = "rdev.io", "v1alpha1", "sessions"
log = logging.getLogger("bench.tracker")


def cond(obj: Body | None, kind: str) -> Body | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def is_ready(obj: Body | None) -> bool:
    c = cond(obj, "Ready")
    return bool(c and c.get("status") == "True")


def phase(obj: Body | None) -> str | None:
    return ((obj or {}).get("status") or {}).get("phase")


def observed(obj: Body | None) -> bool:
    if not obj:
        return False
    seen = (obj.get("status") or {}).get("observedGeneration")
    return bool(seen == obj["metadata"].get("generation"))


def webui_is(state: str, port: int) -> Pred:
    def pred(obj: Body | None) -> bool:
        st = (obj or {}).get("status") or {}
        return observed(obj) and st.get("webUI") == state and st.get("servicePort") == port

    return pred


def gone(obj: Body | None) -> bool:
    return obj is None


@dataclass
class _Waiter:
    pending: set[str]
    pred: Pred
    stamps: dict[str, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class SessionTracker:
    def __init__(self, kube: Kube, namespace: str):
        self.kube = kube
        self.namespace = namespace
        self.objects: dict[str, Body] = {}
        self.waiters: list[_Waiter] = []
        self.not_ready_flips: list[tuple[float, str]] = []  # Ready True -> not True
        self.events = 0
        self._task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()

    @property
    def path(self) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        synced = asyncio.ensure_future(self._synced.wait())
        await asyncio.wait({synced, self._task}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            self._task.result()  # raises what stopped it
        if not synced.done():
            synced.cancel()
            raise TimeoutError(f"no Session list from {self.namespace} in 60s")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _list(self) -> str:
        for _ in range(100):  # a CRD just installed may take a moment to be served
            listing = await self.kube.request("GET", self.path, allow=(404,))
            if listing is not None:
                break
            await asyncio.sleep(0.3)
        else:
            raise RuntimeError(f"{self.path} is not served")
        self.objects = {o["metadata"]["name"]: o for o in listing.get("items", [])}
        self._synced.set()
        for w in self.waiters:
            self._check_all(w, now())
        return str(listing["metadata"]["resourceVersion"])

    async def _run(self) -> None:
        rv = await self._list()
        while True:
            try:
                async for event in self.kube.watch(self.path, rv):
                    t = now()
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            rv = await self._list()
                            break
                        raise ApiError(int(obj.get("code") or 500), "WATCH", self.path, str(obj))
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if kind == "BOOKMARK":
                        continue
                    self.events += 1
                    self._apply(kind, obj, t)
            except ApiError as exc:
                if exc.status == 410:
                    rv = await self._list()
                    continue
                log.warning("session watch failed: %s; re-listing", exc)
                await asyncio.sleep(0.5)
                rv = await self._list()
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                log.warning("session watch broke: %r; resuming", exc)
                await asyncio.sleep(0.2)

    def _apply(self, kind: str | None, obj: Body, t: float) -> None:
        name = obj["metadata"]["name"]
        old = self.objects.get(name)
        if kind == "DELETED":
            self.objects.pop(name, None)
            new: Body | None = None
        else:
            self.objects[name] = obj
            new = obj
        if is_ready(old) and not is_ready(new) and new is not None:
            self.not_ready_flips.append((t, name))
        for w in self.waiters:
            if name in w.pending and w.pred(new):
                w.pending.discard(name)
                w.stamps[name] = t
                if not w.pending:
                    w.done.set()

    def _check_all(self, w: _Waiter, t: float) -> None:
        for name in list(w.pending):
            if w.pred(self.objects.get(name)):
                w.pending.discard(name)
                w.stamps[name] = t
        if not w.pending:
            w.done.set()

    def waiter(self, names: Iterable[str], pred: Pred) -> _Waiter:
        """Register before acting, so no event is missed; then ``await wait(w, ...)``."""
        w = _Waiter(pending=set(names), pred=pred)
        self.waiters.append(w)
        self._check_all(w, now())
        return w

    async def wait(self, w: _Waiter, timeout: float) -> dict[str, float]:
        """Stamps of every name that met the predicate; missing names timed out."""
        try:
            await asyncio.wait_for(w.done.wait(), timeout=timeout)
        except TimeoutError:
            log.warning("timed out after %.0fs: %d names still pending", timeout, len(w.pending))
        finally:
            self.waiters.remove(w)
        return dict(w.stamps)

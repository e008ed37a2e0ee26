"""Leader gating: whether this replica acts, by kopf's peering rule.

kopf pauses its own watches when a peer with a higher (or the same) priority is
alive; the work queue's timers are the operator's own, so its workers wait on
the same rule, read here from the peering object. Standalone instances are
always open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from rdev_api import Body

from .kube import Kube

log = logging.getLogger("session_operator")


class Gate:
    """Open while this instance may act; ``decide`` is the rule, ``watch`` keeps it current."""

    def __init__(self, priority: int | None) -> None:
        self.priority = priority
        self.open = asyncio.Event()
        if priority is None:
            self.open.set()

    def decide(self, peering: Body | None, now: datetime) -> bool:
        """True when no live peer has a higher priority, nor the same one (but ourselves)."""
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

    async def watch(
        self,
        kube: Kube,
        peering: str,
        interval_s: float,
        on_resume: Callable[[], Awaitable[object]],
    ) -> None:
        """Re-read the peering object every ``interval_s``; ``on_resume`` runs before opening."""
        while True:
            try:
                body = await kube.get_cluster_peering(peering)
                allowed = self.decide(body, datetime.now(UTC))
            except Exception as exc:  # keep the last decision while the API is away
                log.warning("could not read the peering object: %s", exc)
                allowed = self.open.is_set()
            if allowed and not self.open.is_set():
                log.info("resuming: this instance acts now")
                await on_resume()
                self.open.set()
            elif not allowed and self.open.is_set():
                log.info("pausing: a peer with a higher priority acts")
                self.open.clear()
            await asyncio.sleep(interval_s)

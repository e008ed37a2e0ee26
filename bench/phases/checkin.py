"""The rest of a lifecycle after the burst: web UI on, web UI off, checkin, delete.

Each step is sent for all Sessions at once and timed until the watch has seen
every one of them done; checkin throughput is N over the time from the first
checkin to the last ``Ended``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness import Harness
from kubeapi import now
from phases.burst import lifecycle_timeout
from rdev_api.names import PREVIEW_PORT, WEBUI_PORT
from tracker import Pred, SessionTracker, phase, webui_is


@dataclass
class Step:
    start: float  # the first request sent
    done: float  # the last Session seen done
    count: int  # Sessions done

    @property
    def seconds(self) -> float:
        return round(self.done - self.start, 3)


@dataclass
class Steps:
    webui_on: Step
    webui_off: Step
    checkin: Step
    delete: Step

    @property
    def checkin_throughput_sessions_per_s(self) -> float:
        c = self.checkin
        return round(c.count / (c.done - c.start), 2) if c.count else 0.0


class _Lifecycle:
    def __init__(self, h: Harness, ns: str, tracker: SessionTracker, names: list[str], prefix: str):
        self.h, self.ns, self.tracker, self.names, self.prefix = h, ns, tracker, names, prefix
        self.timeout = lifecycle_timeout(len(names))

    async def patch(self, label: str, spec: dict[str, Any], pred: Pred) -> Step:
        """Patch every spec and wait until ``pred`` holds for each."""
        w = self.tracker.waiter(self.names, pred)
        t = await self.h.patch_all(self.ns, self.names, spec)
        return self.done(label, t, await self.tracker.wait(w, self.timeout))

    async def delete(self) -> Step:
        t, stamps = await self.h.delete_all(self.ns, self.tracker, self.names, self.timeout)
        return self.done("delete", t, stamps)

    def done(self, label: str, start: float, stamps: dict[str, float]) -> Step:
        step = Step(start, max(stamps.values()) if stamps else now(), len(stamps))
        self.h.phase(f"{self.prefix}: {label}", step.start, step.done)
        return step


async def run(h: Harness, ns: str, tracker: SessionTracker, names: list[str], prefix: str) -> Steps:
    life = _Lifecycle(h, ns, tracker, names, prefix)
    return Steps(
        webui_on=await life.patch("webUI on", {"webUI": True}, webui_is("Running", WEBUI_PORT)),
        webui_off=await life.patch(
            "webUI off", {"webUI": False}, webui_is("Stopped", PREVIEW_PORT)
        ),
        checkin=await life.patch("checkin", {"checkin": {}}, lambda o: phase(o) == "Ended"),
        delete=await life.delete(),
    )

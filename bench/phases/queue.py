"""Phase 4: Q Sessions of one project: one holds it, the rest wait (ProjectBusy).

Each checkin hands the project to the next in line; what one handover costs
(reconciles from rdev_reconcile_total, requests from the audit log) must not
grow with the queue behind it (mappers.py enqueues the Session that changed and
the next one, never the whole queue).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import apistats
import report
from harness import OPERATOR_USER, Harness
from kubeapi import now
from phases.setup import QUEUE_PROJECT
from result import Queue
from tracker import cond, is_ready, phase


async def run(h: Harness) -> Queue:
    assert h.tracker and h.op
    tracker, q = h.tracker, h.args.queue
    names = [f"q-{i:04d}" for i in range(q)]
    await h.sampler.wait_idle(timeout=30)
    start = now()
    for name in names:  # one by one: the queue's order is the creation order
        await h.create(h.ns, name, QUEUE_PROJECT)

    def busy(o: dict[str, Any] | None) -> bool:
        ready = cond(o, "Ready")
        return bool(ready and ready.get("reason") == "ProjectBusy")

    def settled() -> bool:
        objs = [tracker.objects.get(n) for n in names]
        return sum(map(is_ready, objs)) == 1 and sum(map(busy, objs)) == q - 1

    if await _until(settled, 60 + q) is None:
        raise RuntimeError(f"queue of {q}: not one Active and {q - 1} ProjectBusy in time")
    queued_at = now()
    h.phase(f"queue: {q} queued", start, queued_at)
    reconciles = await _reconciles_settled(h)
    handovers: list[dict[str, Any]] = []
    remaining = list(names)
    t_first = now()
    for _ in range(q):
        holder = next(n for n in remaining if is_ready(tracker.objects.get(n)))
        remaining.remove(holder)
        t0 = now()
        await h.patch(h.ns, holder, {"checkin": {}})

        def handed(holder: str = holder) -> bool:
            if phase(tracker.objects.get(holder)) != "Ended":
                return False
            return not remaining or any(is_ready(tracker.objects.get(n)) for n in remaining)

        done = await _until(handed, 60)
        if done is None:
            raise RuntimeError(f"queue: no handover from {holder} within 60s")
        after = await _reconciles_settled(h)
        handovers.append(
            {
                "from": holder,
                "t0": t0,
                "t1": now(),
                "handover_s": done - t0,
                "reconciles": after - reconciles,
                "last": not remaining,
            }
        )
        reconciles = after
    h.phase(f"queue: {q} checkins one by one", t_first, now())
    await asyncio.sleep(1.0)
    h.audit.read()
    for ho in handovers:
        s = apistats.summarize(h.audit.select(OPERATOR_USER, ho["t0"], ho["t1"]), 1)
        ho.update(requests=s["requests"], writes=s["writes"], execs=s["execs"])
    result = _result(q, _summary([ho for ho in handovers if not ho["last"]]))

    # The queue's Sessions go before the idle phase (the resume counts Active ones).
    t, _ = await h.delete_all(h.ns, tracker, names, timeout=60 + q)
    h.phase("queue: delete", t, now())
    return result


def _result(q: int, hs: dict[str, Any]) -> Queue:
    result = Queue(queue_sessions=q, queue_handovers=hs)
    if hs:
        result.queue_reconciles_per_handover = hs["reconciles_mean"]
        result.queue_reconciles_per_handover_max = hs["reconciles_max"]
        result.queue_requests_per_handover_start = hs["start"]["requests"]
        result.queue_requests_per_handover_end = hs["end"]["requests"]
        if hs["start"]["requests"]:
            result.queue_requests_end_to_start = round(
                hs["end"]["requests"] / hs["start"]["requests"], 2
            )
        result.queue_handover_p50_s = hs["handover_p50_s"]
    return result


async def _reconciles_settled(h: Harness, timeout: float = 10.0) -> float:
    """rdev_reconcile_total once it stops moving (the handover's trailing reconciles)."""
    assert h.op
    deadline = time.monotonic() + timeout
    last = await h.op.counter("rdev_reconcile_total")
    while time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        current = await h.op.counter("rdev_reconcile_total")
        if current == last:
            return current
        last = current
    return last


async def _until(pred: Callable[[], bool], timeout: float) -> float | None:
    """Poll the tracker's objects until ``pred`` holds; the time it did, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return now()
        await asyncio.sleep(0.02)
    return None


def _summary(handovers: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-handover cost overall, and at the start vs the end of the queue (a fifth each)."""
    if not handovers:
        return {}
    k = max(3, len(handovers) // 5)

    def mean(hs: list[dict[str, Any]], key: str) -> float:
        return round(float(sum(h[key] for h in hs)) / max(len(hs), 1), 2)

    def part(hs: list[dict[str, Any]]) -> dict[str, float]:
        return {key: mean(hs, key) for key in ("reconciles", "requests", "writes", "execs")}

    times = [h["handover_s"] for h in handovers]
    return {
        "count": len(handovers),
        "reconciles_mean": mean(handovers, "reconciles"),
        "reconciles_max": max(h["reconciles"] for h in handovers),
        "start": part(handovers[:k]),
        "end": part(handovers[-k:]),
        "all": part(handovers),
        "handover_p50_s": report.rnd(report.percentile(times, 50)),
        "handover_max_s": report.rnd(max(times)),
        "per_handover": [
            [h["from"], h["reconciles"], h["requests"], h["writes"], h["execs"]] for h in handovers
        ],
    }

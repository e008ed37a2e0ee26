"""Phase 1: single Sessions one after another on an idle cluster (p50 to Ready)."""

from __future__ import annotations

import asyncio

import report
from harness import Harness, projects
from kubeapi import now
from result import Single
from tracker import is_ready


async def run(h: Harness) -> Single:
    assert h.tracker and h.op
    await h.sampler.wait_idle(timeout=30)
    start = now()
    lat: list[float] = []
    for i, project in enumerate(projects(h.single_pods)):
        name = f"s-{i:02d}"
        w = h.tracker.waiter([name], is_ready)
        t = now()
        await h.create(h.ns, name, project)
        stamps = await h.tracker.wait(w, timeout=60)
        if name in stamps:
            lat.append(stamps[name] - t)
        await asyncio.sleep(0.3)
    h.latencies["single (idle cluster)"] = lat
    h.phase("single", start, now())
    return Single(
        single_count=len(lat),
        p50_single_s=report.rnd(report.percentile(lat, 50)),
        max_single_s=report.rnd(max(lat) if lat else None),
    )

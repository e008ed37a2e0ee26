"""Phase 5a: idle RSS with many Active Sessions.

--idle-low Sessions made Active and a fresh operator's RSS once its CPU is
idle; then up to --idle Active, RSS again. The slope between the fresh readings
(with resume.py's) is the cost of one Active Session.
"""

from __future__ import annotations

import asyncio

import report
from harness import Harness, projects
from kubeapi import now
from phases.resume import active, reconciled
from result import Idle
from tracker import is_ready


async def run(h: Harness) -> Idle:
    count, low = h.args.idle, min(h.args.idle_low, h.args.idle)
    lat: list[float] = []
    ready, elapsed = 0, 0.0
    active_low = rss_low = sessions_low = None
    if 0 < low < count:
        ready, lat, elapsed = await _make_active(h, 0, low)
        # A fresh operator holding them (the earlier phases' heap is not in it),
        # to compare with the fresh one that resumes all of them (resume.py).
        active_low, rss_low = await _fresh_rss(h, "operator-low")
        sessions_low = low
    more, lat2, elapsed2 = await _make_active(h, ready if low < count else 0, count)
    lat += lat2
    burst = report.latency_stats(lat)
    burst["throughput_sessions_per_s"] = round(len(lat) / (elapsed + elapsed2), 2)
    h.latencies[f"operator burst of {count} (idle phase)"] = lat
    assert h.op
    t = now()
    idle_at = await h.sampler.wait_idle(window=3.0, max_cpu=0.03, timeout=180)
    st = h.op.status()
    h.phase("settle", t, now())
    return Idle(
        idle_active_low=active_low,
        idle_rss_mb_low=rss_low,
        idle_sessions_low=sessions_low,
        idle_sessions=count,
        idle_ready=ready + more,
        idle_create_s=round(elapsed + elapsed2, 2),
        idle_burst=burst,
        idle_rss_mb=round(st["rss_mb"], 1),
        idle_hwm_mb=round(st["hwm_mb"], 1),
        idle_settle_s=round(idle_at - t, 2),
    )


async def _make_active(h: Harness, first: int, count: int) -> tuple[int, list[float], float]:
    """Sessions i-<first>..i-<count-1> made Active; (ready, latencies, seconds)."""
    assert h.tracker
    project_of = projects(h.op_pods[:count])
    names = {i: f"i-{i:04d}" for i in range(first, count)}
    w = h.tracker.waiter(names.values(), is_ready)
    start = now()
    sent: dict[str, float] = {}

    async def create(i: int) -> None:
        sent[names[i]] = now()
        await h.create(h.ns, names[i], project_of[i])

    await h.fan_out(list(names), create)
    stamps = await h.tracker.wait(w, timeout=min(120 + 1.0 * len(names), 1800))
    ready_at = max(stamps.values()) if stamps else now()
    h.phase(f"create {first}..{count} Active", start, ready_at)
    lat = [stamps[k] - sent[k] for k in names.values() if k in stamps]
    return len(stamps), lat, ready_at - start


async def _fresh_rss(h: Harness, label: str) -> tuple[int, float]:
    """Restart the operator; (Active Sessions, its RSS once it resumed them and is idle)."""
    assert h.op
    sessions = active(h)
    t = now()
    await asyncio.to_thread(h.op.stop)
    op = await h.start_operator(label)
    await reconciled(op, sessions)
    await h.sampler.wait_idle(window=3.0, max_cpu=0.03, timeout=180)
    rss = round(op.status()["rss_mb"], 1)
    if h.args.tracemalloc:
        h.memory_low = await op.memory_snapshot()
    h.phase(f"fresh operator with {sessions} Active", t, now())
    return sessions, rss

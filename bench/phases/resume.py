"""Phase 5b: a fresh operator takes over every Active Session.

The operator is stopped and a fresh one started; ``resume_s`` is the time from
its start until rdev_reconcile_total reaches the number of Active Sessions, with
its execs (rdev_exec_total) and its writes (audit log) meanwhile: both must be
0. The watch checks that no Session left Ready=True.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import apistats
import memreport
import spyreport
from harness import OPERATOR_USER, RESULTS, Harness
from kubeapi import now
from operator_proc import OperatorProcess, PySpy, parse_metrics
from result import Idle, Resume
from tracker import is_ready


def active(h: Harness) -> int:
    """Sessions the watch last saw Ready=True."""
    assert h.tracker
    return len([o for o in h.tracker.objects.values() if is_ready(o)])


async def reconciled(op: OperatorProcess, count: int) -> tuple[float | None, float]:
    """Wait (bounded) until ``op`` has reconciled ``count`` times; (when, its count then)."""
    deadline = time.monotonic() + max(120.0, count * 0.2)
    reconciles = 0.0
    while time.monotonic() < deadline:
        reconciles = await op.counter("rdev_reconcile_total")
        if reconciles >= count:
            return now(), reconciles
        await asyncio.sleep(0.2)
    return None, reconciles


async def run(h: Harness, idle: Idle) -> Resume:
    assert h.tracker and h.op
    sessions = active(h)
    flips_before = len(h.tracker.not_ready_flips)
    t = now()
    stop_s = round(await asyncio.to_thread(h.op.stop), 2)
    h.phase("stop operator", t, now())
    op = await h.start_operator("operator-resumed")
    t_start = op.started_at
    healthy = now()
    spies, spy_out = [], RESULTS / f"{h.name}-resume-profile"
    if h.args.profile_resume:
        spies = [
            PySpy(op.pid, spy_out.with_suffix(".wall.txt"), idle=True),
            PySpy(op.pid, spy_out.with_suffix(".cpu.txt")),
        ]
    reconciled_at, reconciles = await reconciled(op, sessions)
    profile = None
    if spies and all([s.stop() for s in spies]):
        profile = {
            "wall": spyreport.wall_summary(spy_out.with_suffix(".wall.txt")),
            "cpu": spyreport.cpu_summary(spy_out.with_suffix(".cpu.txt")),
        }
    idle_at = await h.sampler.wait_idle(window=2.0, max_cpu=0.05, timeout=120)
    metrics = await op.metrics()
    st = op.status()
    await asyncio.sleep(1.0)
    h.audit.read()
    resumed = h.audit.select(OPERATOR_USER, t_start, now())
    result = Resume(
        operator_stop_s=stop_s,
        profile_resume=profile,
        resume_sessions=sessions,
        resume_s=round(reconciled_at - t_start, 2) if reconciled_at else None,
        resume_reconciles=reconciles,
        resume_healthy_s=round(healthy - t_start, 2),
        resume_cpu_idle_s=round(idle_at - t_start, 2),
        resume_cpu_s=round(st["cpu_s"], 2),
        resume_exec_calls=int(parse_metrics(metrics, "rdev_exec_total")),
        resume_rss_mb=round(st["rss_mb"], 1),
        resume_still_ready=active(h),
        resume_ready_flips=len(h.tracker.not_ready_flips) - flips_before,
    )
    if resumed:
        s: dict[str, Any] = apistats.summarize(resumed, sessions)
        result.resume_requests = {k: s[k] for k in ("requests", "writes", "execs", "reads",
                                                    "by_verb_resource", "by_client")}  # fmt: skip
        result.resume_writes = s["writes"]
    elif h.audit.available:
        result.resume_writes = 0
    h.phase("resume", t_start, reconciled_at or now())
    low, rss_low = idle.idle_active_low, idle.idle_rss_mb_low
    if low is not None and rss_low is not None and sessions > low:
        result.rss_kb_per_active_session = round(
            1024 * (result.resume_rss_mb - rss_low) / (sessions - low), 1
        )
        if h.memory_low is not None:
            high = await op.memory_snapshot()
            report = memreport.compare(h.memory_low, high, sessions - low)
            (RESULTS / f"{h.name}-memory.txt").write_text(memreport.table(report) + "\n")
            result.memory_per_session = report
    return result

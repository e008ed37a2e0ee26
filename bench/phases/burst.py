"""A burst of N creations to Ready=True, for the operator or the floor.

Latency is from the client-side create time to the moment the watch delivers
Ready=True; throughput is N over the time from the first create to the last
Ready. The operator's CPU and peak RSS, and the machine's CPU by process, are
read over the burst; py-spy may profile it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import Harness
from kubeapi import now
from operator_proc import PySpy, SystemCpu
from tracker import SessionTracker, is_ready


@dataclass
class Burst:
    names: list[str]
    latencies: list[float]
    start: float  # the first create
    create_send_s: float
    burst_s: float
    throughput_sessions_per_s: float
    system_cpu_s: dict[str, float]
    cpu_s: float | None = None  # the operator's, when it serves the burst
    peak_rss_mb: float | None = None
    profile_ok: bool | None = None  # None: not profiled

    @property
    def ready(self) -> int:
        return len(self.latencies)


async def run(
    h: Harness,
    ns: str,
    tracker: SessionTracker,
    projects: list[str],
    prefix: str,
    spy_out: Path | None = None,
) -> Burst:
    n = len(projects)
    names = [f"{prefix}-{i:04d}" for i in range(n)]
    sent: dict[str, float] = {}
    w = tracker.waiter(names, is_ready)
    cpu0 = h.op.status() if h.op else None
    system = SystemCpu(h.cluster_dir)
    sys0 = system.snapshot(h.op.pid if h.op else None)
    spies = []
    if spy_out and h.op:
        spies = [
            PySpy(h.op.pid, spy_out.with_suffix(".wall.txt"), idle=True),
            PySpy(h.op.pid, spy_out.with_suffix(".cpu.txt")),
        ]
    start = now()

    async def create(i: int) -> None:
        sent[names[i]] = now()
        await h.create(ns, names[i], projects[i])

    await h.fan_out(list(range(n)), create)
    created = now()
    stamps = await tracker.wait(w, lifecycle_timeout(n))
    end = max(stamps.values()) if stamps else now()
    profile_ok = all([s.stop() for s in spies]) if spies else None
    cpu_s = peak_rss_mb = None
    if cpu0 and h.op:
        cpu1 = h.op.status()
        cpu_s = round(cpu1["cpu_s"] - cpu0["cpu_s"], 2)
        peak_rss_mb = round(cpu1["hwm_mb"], 1)
    sys1 = system.snapshot(h.op.pid if h.op else None)
    lat = [stamps[k] - sent[k] for k in names if k in stamps]
    h.phase(f"{prefix}: burst create", start, end)
    return Burst(
        names=names,
        latencies=lat,
        start=start,
        create_send_s=round(created - start, 3),
        burst_s=round(end - start, 3),
        throughput_sessions_per_s=round(len(lat) / (end - start), 2) if lat else 0.0,
        system_cpu_s=SystemCpu.delta(sys0, sys1),
        cpu_s=cpu_s,
        peak_rss_mb=peak_rss_mb,
        profile_ok=profile_ok,
    )


def lifecycle_timeout(n: int) -> float:
    """The bound on each step of a lifecycle of n Sessions."""
    return 120 + 2.0 * n

"""Phase 3: the same lifecycle in another namespace, served by bench/floor.py.

The floor does every write the public contract requires in the fewest
requests; the operator's figures are read as ratios to it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import apistats
import report
from floor import Floor, FloorThread
from harness import FLOOR_USER, Harness, projects
from kubeapi import now
from phases import burst, checkin
from result import FloorLifecycle, OperatorLifecycle, Ratios


async def run(h: Harness, op: OperatorLifecycle | None) -> FloorLifecycle:
    """The floor's lifecycle, and ``op``'s figures over its own."""
    assert h.floor_tracker
    by_project = dict(zip(projects(h.floor_pods), h.floor_pods, strict=True))
    h.floor = FloorThread(Floor(h.floor_kube, h.floor_ns, by_project, h.webui_cmd, h.workers))
    await h.floor.start()
    floor_before = Counter(h.floor_kube.counts)
    cpu_before = h.floor.cpu_s()
    b = await burst.run(h, h.floor_ns, h.floor_tracker, list(by_project), "f")
    steps = await checkin.run(h, h.floor_ns, h.floor_tracker, b.names, "f")
    await asyncio.sleep(2.0)
    cpu_lifecycle = h.floor.cpu_s() - cpu_before
    end = now()
    await h.floor.stop()
    n = h.args.n
    h.latencies[f"floor burst of {n}"] = b.latencies
    sc = b.system_cpu_s
    noise = None
    if sc.get("machine total"):
        noise = round(100 * sc["other processes (noise)"] / sc["machine total"], 1)
    client = Counter(h.floor_kube.counts)
    client.subtract(floor_before)
    writes = sum(v for k, v in client.items() if apistats.metrics_is_write(k[0]))
    execs = sum(v for k, v in client.items() if k[0] == "CONNECT")
    h.audit.read()
    audited = h.audit.select(FLOOR_USER, b.start, end)
    summary: dict[str, Any] | None = apistats.summarize(audited, n) if audited else None
    floor = FloorLifecycle(
        **report.latency_stats(b.latencies, prefix="floor_"),
        floor_throughput_sessions_per_s=b.throughput_sessions_per_s,
        floor_client_cpu_ms_per_lifecycle=round(1000 * cpu_lifecycle / n, 2),
        floor_burst_noise_cpu_pct=noise,
        floor_burst_s=b.burst_s,
        floor_burst_system_cpu_s=sc,
        burst_cpu_ms_per_session={
            "operator": _cpu_per_session(op.burst_system_cpu_s if op else {}, "operator", n),
            "floor": _cpu_per_session(sc, "bench client", n),
        },
        floor_checkin_throughput_sessions_per_s=steps.checkin_throughput_sessions_per_s,
        floor_errors=h.floor.floor.errors[:10],
        floor_client_counts={
            f"{k[0]} {k[1]}{'/' + k[2] if k[2] else ''}": v for k, v in client.items() if v
        },
        floor_writes_per_session=(
            summary["writes_per_session"] if summary else round(writes / n, 2)
        ),
        floor_requests_per_session=(
            summary["requests_per_session"]
            if summary
            else round(sum(v for v in client.values() if v) / n, 2)
        ),
        floor_exec_per_session=summary["execs_per_session"] if summary else round(execs / n, 2),
        floor_requests=summary,
    )
    if op is not None:
        floor.ratios = _ratios(op, floor)
    return floor


def _ratios(op: OperatorLifecycle, floor: FloorLifecycle) -> Ratios:
    """Each operator figure over the floor's, as the targets compare them."""

    def ratio(ours: float | None, theirs: float | None) -> float | None:
        return round(ours / theirs, 2) if ours is not None and theirs else None

    out = Ratios(
        throughput_ratio_to_floor=ratio(
            op.throughput_sessions_per_s, floor.floor_throughput_sessions_per_s
        ),
        checkin_throughput_ratio_to_floor=ratio(
            op.checkin_throughput_sessions_per_s, floor.floor_checkin_throughput_sessions_per_s
        ),
        p99_ratio_to_floor=ratio(op.p99_ready_s, floor.floor_p99_ready_s),
        client_cpu_ratio_to_floor=ratio(
            op.client_cpu_ms_per_lifecycle, floor.floor_client_cpu_ms_per_lifecycle
        ),
    )
    if op.writes_per_session is not None and floor.floor_writes_per_session:
        out.writes_ratio_to_floor = ratio(op.writes_per_session, floor.floor_writes_per_session)
        out.requests_ratio_to_floor = ratio(
            op.requests_per_session, floor.floor_requests_per_session
        )
        out.exec_ratio_to_floor = ratio(op.exec_per_session, floor.floor_exec_per_session)
    return out


def _cpu_per_session(cpu: dict[str, float], client: str, n: int) -> dict[str, float]:
    """CPU milliseconds per created Session: the control plane's share and the client's."""
    parts = ("kube-apiserver", "etcd", "kwok-controller", "kube-controller-manager")
    out = {k: round(1000 * cpu.get(k, 0.0) / n, 1) for k in (*parts, client)}
    out["total"] = round(sum(out.values()), 1)
    return out

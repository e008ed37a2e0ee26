"""Phase 2: the operator's lifecycle of N Sessions (burst, web UI on/off, checkin, delete).

Its requests in this window are counted from the audit log (its own
ServiceAccount), exec streams separately; the API server's
apiserver_request_total is diffed too (all clients, minus this client).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import apistats
import report
import spyreport
from harness import OPERATOR_USER, RESULTS, Harness, projects
from kubeapi import now
from operator_proc import parse_labeled
from phases import burst, checkin
from result import OperatorLifecycle


async def run(h: Harness) -> OperatorLifecycle:
    assert h.tracker and h.op
    await h.sampler.wait_idle(timeout=30)
    before = await _apiserver_metrics(h)
    admin_before = Counter(h.admin.counts)
    exec_before = await h.op.counter("rdev_exec_total")
    m0 = await h.op.metrics()
    spy_out = RESULTS / f"{h.name}-profile" if h.args.profile else None
    cpu_before = h.op.status()["cpu_s"]
    n = h.args.n
    b = await burst.run(h, h.ns, h.tracker, projects(h.op_pods[:n]), "b", spy_out)
    steps = await checkin.run(h, h.ns, h.tracker, b.names, "b")
    await asyncio.sleep(2.0)  # trailing requests (events, finalizer) land in the window
    cpu_lifecycle = h.op.status()["cpu_s"] - cpu_before
    exec_after = await h.op.counter("rdev_exec_total")
    m1 = await h.op.metrics()
    after = await _apiserver_metrics(h)
    admin_delta = Counter(h.admin.counts)
    admin_delta.subtract(admin_before)
    end = now()
    h.latencies[f"operator burst of {n}"] = b.latencies
    sc = b.system_cpu_s
    busy = noise = None
    if sc.get("machine total"):
        busy = round(100 * sc["machine busy"] / sc["machine total"], 1)
        noise = round(100 * sc["other processes (noise)"] / sc["machine total"], 1)
    profile = None
    if spy_out and b.profile_ok:
        profile = {
            "wall": spyreport.wall_summary(spy_out.with_suffix(".wall.txt")),
            "cpu": spyreport.cpu_summary(spy_out.with_suffix(".cpu.txt")),
        }
    metrics = _apiserver_summary(apistats.diff(after, before), admin_delta, n)
    exec_from_metrics = round((exec_after - exec_before) / n, 2)
    counted = _counted(h, b.start, end, n, exec_from_metrics, metrics)
    return OperatorLifecycle(
        **report.latency_stats(b.latencies),
        ready_count=b.ready,
        client_cpu_ms_per_lifecycle=round(1000 * cpu_lifecycle / n, 2),
        throughput_sessions_per_s=b.throughput_sessions_per_s,
        checkin_throughput_sessions_per_s=steps.checkin_throughput_sessions_per_s,
        cpu_s=b.cpu_s,
        peak_rss_mb=b.peak_rss_mb,
        burst_s=b.burst_s,
        create_send_s=b.create_send_s,
        webui_on_s=steps.webui_on.seconds,
        webui_off_s=steps.webui_off.seconds,
        checkin_s=steps.checkin.seconds,
        delete_s=steps.delete.seconds,
        burst_system_cpu_s=sc,
        burst_machine_busy_pct=busy,
        burst_noise_cpu_pct=noise,
        exec_mean_ms_by_step=_exec_means(m0, m1),
        lifecycle_completed={
            "ready": b.ready,
            "webui_on_done": steps.webui_on.count,
            "webui_off_done": steps.webui_off.count,
            "ended": steps.checkin.count,
            "deleted": steps.delete.count,
        },
        profile_burst=profile,
        exec_per_session_from_operator_metrics=exec_from_metrics,
        apiserver_metrics=metrics,
        **counted,
    )


async def _apiserver_metrics(h: Harness) -> Counter[apistats.Key]:
    return apistats.parse_request_total(await h.admin.raw("/metrics"))


def _apiserver_summary(
    delta: Counter[apistats.Key], admin_delta: Counter[Any], n: int
) -> dict[str, Any]:
    """apiserver_request_total over the lifecycle: every client; this client's taken out."""
    all_total = sum(delta.values())
    bench_total = sum(v for v in admin_delta.values() if v > 0) + 2  # + the two scrapes
    writes = sum(v for k, v in delta.items() if apistats.metrics_is_write(k[0]))
    return {
        "all_clients_requests": all_total,
        "minus_bench_client_requests": all_total - bench_total,
        "minus_bench_client_per_session": round((all_total - bench_total) / n, 2),
        "all_clients_writes": writes,
        "by_verb_resource": {
            f"{k[0]} {k[1]}{'/' + k[2] if k[2] else ''}": v for k, v in delta.most_common()
        },
        "note": "includes kwok, controller-manager (EndpointSlices, GC) and the operator",
    }  # fmt: skip


def _counted(
    h: Harness, start: float, end: float, n: int, exec_from_metrics: float, metrics: dict[str, Any]
) -> dict[str, Any]:
    """Requests per Session: from the audit log (the operator's ServiceAccount, exactly), else
    from apiserver_request_total minus this client."""
    h.audit.read()
    if h.audit.requests or h.audit.available:
        s = apistats.summarize(h.audit.select(OPERATOR_USER, start, end), n)
        return {
            "writes_per_session": s["writes_per_session"],
            "requests_per_session": s["requests_per_session"],
            "exec_per_session": s["execs_per_session"],
            "reads_per_session": s["reads_per_session"],
            "operator_requests": s,
            "counted_from": "audit log (operator ServiceAccount)",
        }
    return {
        "exec_per_session": exec_from_metrics,
        "requests_per_session": metrics["minus_bench_client_per_session"],
        "writes_per_session": None,
        "counted_from": "apiserver_request_total minus the bench client (no audit log)",
    }


def _exec_means(before: str, after: str) -> dict[str, Any]:
    """Mean duration and count of the operator's execs by step, between two scrapes."""
    name = "rdev_exec_duration_seconds"
    s0, s1 = (
        parse_labeled(before, f"{name}_sum", "step"),
        parse_labeled(after, f"{name}_sum", "step"),
    )
    c0 = parse_labeled(before, f"{name}_count", "step")
    c1 = parse_labeled(after, f"{name}_count", "step")
    out: dict[str, Any] = {}
    for step, count in sorted(c1.items()):
        n = count - c0.get(step, 0.0)
        if n > 0:
            out[step] = {
                "count": int(n),
                "mean_ms": round(1000 * (s1[step] - s0.get(step, 0)) / n, 1),
            }
    return out

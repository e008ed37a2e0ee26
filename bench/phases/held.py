"""Phase 5b: a burst into the operator while it holds the idle phase's Active Sessions.

The operator's cost per event must not grow with what it holds: --held new
Sessions (projects after the idle phase's) are created at once and timed to
Ready, then the floor does the same in its namespace, on the same API server in
the same state (it holds the same objects; the floor itself holds nothing).
Both bursts stay Active (resume.py counts the operator's).
"""

from __future__ import annotations

import report
from floor import Floor, FloorThread
from harness import Harness, projects
from operator_proc import parse_labeled
from phases import burst
from result import Held, Idle


async def run(h: Harness, idle: Idle) -> Held:
    assert h.tracker and h.floor_tracker and h.op
    count, held = h.args.held, idle.idle_ready
    mine = projects(h.op_pods[h.args.idle : h.args.idle + count])
    execs0 = parse_labeled(await h.op.metrics(), "rdev_exec_total", "step")
    op = await burst.run(h, h.ns, h.tracker, mine, "h")
    execs1 = parse_labeled(await h.op.metrics(), "rdev_exec_total", "step")
    floor_pods = h.floor_pods[:count]
    by_project = dict(zip(projects(floor_pods), floor_pods, strict=True))
    h.floor = FloorThread(Floor(h.floor_kube, h.floor_ns, by_project, h.webui_cmd, h.workers))
    await h.floor.start()
    try:
        floor = await burst.run(h, h.floor_ns, h.floor_tracker, list(by_project), "fh")
    finally:
        await h.floor.stop()
    h.latencies[f"operator burst of {count} into {held} Active"] = op.latencies
    h.latencies[f"floor burst of {count} beside {held} Active"] = floor.latencies
    ratio = None
    if floor.throughput_sessions_per_s:
        ratio = round(op.throughput_sessions_per_s / floor.throughput_sessions_per_s, 2)
    return Held(
        held_sessions=held,
        held_burst_n=count,
        held_p99_ready_s=report.latency_stats(op.latencies)["p99_ready_s"],
        held_throughput_sessions_per_s=op.throughput_sessions_per_s,
        floor_held_p99_ready_s=report.latency_stats(floor.latencies)["p99_ready_s"],
        floor_held_throughput_sessions_per_s=floor.throughput_sessions_per_s,
        held_throughput_ratio_to_floor=ratio,
        held_cpu_ms_per_session=round(1000 * op.cpu_s / count, 2) if op.cpu_s else None,
        held_execs_by_step={
            step: n - execs0.get(step, 0.0)
            for step, n in sorted(execs1.items())
            if n > execs0.get(step, 0.0)
        },
        held_system_cpu_s=op.system_cpu_s,
        floor_held_system_cpu_s=floor.system_cpu_s,
    )

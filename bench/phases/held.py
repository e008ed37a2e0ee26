"""Phase 5b: a burst into the operator while it holds the idle phase's Active Sessions.

The operator's cost per event must not grow with what it holds: --held new
Sessions (projects after the idle phase's) are created at once and timed to
Ready, then the floor does the same in its namespace, on the same API server in
the same state. Both bursts stay Active (resume.py counts the operator's).

The same state includes the floor's namespace: before either burst the floor
makes as many Sessions Active there as the operator holds in its own. The
control plane's work per pod change grows with the Services of its namespace
(the endpoints controllers match the pod against each one's selector): with an
empty floor namespace, the controller-manager took 2.6 CPU-s in the operator's
burst of 200 into 2,000 and 0.9 in the floor's, on a machine already saturated.
"""

from __future__ import annotations

import asyncio
import time

import report
from floor import Floor, FloorThread
from harness import Harness, projects
from operator_proc import SystemCpu, parse_labeled
from phases import burst
from result import Held, Idle

# The control plane is quiet again after the floor's holding burst: under this share of
# the machine busy over a window, waited for at most QUIET_TIMEOUT_S.
QUIET_BUSY = 0.25
QUIET_WINDOW_S = 2.0
QUIET_TIMEOUT_S = 120.0


async def run(h: Harness, idle: Idle) -> Held:
    assert h.tracker and h.floor_tracker and h.op
    count, held = h.args.held, idle.idle_ready
    mine = projects(h.op_pods[h.args.idle : h.args.idle + count])
    floor_pods = h.floor_pods[:count]
    holding = h.floor_held_pods[:held]
    by_project = dict(zip(projects(floor_pods + holding), floor_pods + holding, strict=True))
    h.floor = FloorThread(Floor(h.floor_kube, h.floor_ns, by_project, h.webui_cmd, h.workers))
    await h.floor.start()
    try:
        await burst.run(h, h.floor_ns, h.floor_tracker, projects(holding), "fk")
        await _quiet(h)
        execs0 = parse_labeled(await h.op.metrics(), "rdev_exec_total", "step")
        op = await burst.run(h, h.ns, h.tracker, mine, "h")
        execs1 = parse_labeled(await h.op.metrics(), "rdev_exec_total", "step")
        floor = await burst.run(h, h.floor_ns, h.floor_tracker, projects(floor_pods), "fh")
    finally:
        await h.floor.stop()
    h.latencies[f"operator burst of {count} into {held} Active"] = op.latencies
    h.latencies[f"floor burst of {count} into {len(holding)} Active"] = floor.latencies
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
        floor_held_sessions=len(holding),
    )


async def _quiet(h: Harness) -> None:
    """Wait (bounded) until the machine is mostly idle: the burst before has settled."""
    system = SystemCpu(h.cluster_dir)
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    before = system.snapshot(None)
    while time.monotonic() < deadline:
        await asyncio.sleep(QUIET_WINDOW_S)
        after = system.snapshot(None)
        busy = after["machine busy"] - before["machine busy"]
        total = after["machine total"] - before["machine total"]
        if total > 0 and busy / total < QUIET_BUSY:
            return
        before = after

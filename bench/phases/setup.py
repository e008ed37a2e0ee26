"""Setup: identities, namespaces, a project pod (and git clone) a Session, trackers, operator."""

from __future__ import annotations

import asyncio
from typing import Any

import fixtures
from harness import Harness
from kubeapi import Kube, now
from result import Setup
from tracker import SessionTracker

QUEUE_PROJECT = "queue"


async def run(h: Harness) -> Setup:
    a = h.args
    h.work.mkdir(parents=True)
    h.admin = Kube.from_kubeconfig(
        h.kubeconfig, h.work / "secrets", user_agent="rdev-bench/admin", limit=64
    )
    await asyncio.to_thread(fixtures.install_crd, h.kubeconfig)
    await asyncio.to_thread(fixtures.install_identities, h.kubeconfig)
    await fixtures.ensure_service_cidr(h.admin)
    op_token = await fixtures.token_for(h.admin, "operator")
    h.op_kubeconfig = fixtures.write_token_kubeconfig(
        h.work / "operator.kubeconfig", h.admin, op_token, "operator"
    )
    floor_token = await fixtures.token_for(h.admin, "floor")
    h.floor_kube = h.admin.with_token(floor_token, "rdev-bench/floor", limit=64)
    for ns in (h.ns, h.floor_ns):
        await fixtures.create_namespace(h.admin, ns)
    await fixtures.install_cluster_exec(h.admin, f"rb-{h.run_id}", [h.ns, h.floor_ns], h.work)
    template = await asyncio.to_thread(fixtures.make_template, h.work)

    def pods_for(prefix: str, count: int, project_prefix: str) -> list[dict[str, Any]]:
        out = []
        for i in range(count):
            name = f"{prefix}-{i:04d}"
            paths = fixtures.make_repo(template, h.work / "pods" / name)
            out.append(fixtures.pod_manifest(name, f"{project_prefix}-{i:04d}", paths))
        return out

    started = now()
    h.single_pods = await asyncio.to_thread(pods_for, "sp", a.singles, "single")
    # The held burst's projects come after the idle phase's (still held) and, for the
    # floor, after its lifecycle's (ended and deleted by then: free again).
    held = a.held if a.idle else 0
    h.op_pods = await asyncio.to_thread(pods_for, "pp", max(a.n, a.idle + held), "proj")
    h.floor_pods = await asyncio.to_thread(pods_for, "fp", max(a.n, held), "fproj")
    # The projects of the Sessions the floor holds, as many as the operator holds, before
    # either takes the held burst (held.py).
    h.floor_held_pods = await asyncio.to_thread(pods_for, "fq", a.idle if held else 0, "fhold")
    h.queue_pods = []
    if a.queue:
        paths = await asyncio.to_thread(fixtures.make_repo, template, h.work / "pods" / "qp")
        h.queue_pods = [fixtures.pod_manifest("qp-0000", QUEUE_PROJECT, paths)]
    await fixtures.create_pods(h.admin, h.ns, h.single_pods + h.op_pods + h.queue_pods)
    await fixtures.create_pods(h.admin, h.floor_ns, h.floor_pods + h.floor_held_pods)
    total = len(h.single_pods) + len(h.op_pods) + len(h.queue_pods)
    await fixtures.wait_pods_ready(h.admin, h.ns, total, timeout=300 + total * 0.2)
    floor_total = len(h.floor_pods) + len(h.floor_held_pods)
    await fixtures.wait_pods_ready(h.admin, h.floor_ns, floor_total, 300 + floor_total * 0.2)
    result = Setup(pods=total + floor_total, setup_s=round(now() - started, 1))
    print(f"setup: {result.pods} project pods Ready in {result.setup_s}s")

    h.tracker = SessionTracker(h.admin, h.ns)
    await h.tracker.start()
    h.floor_tracker = SessionTracker(h.admin, h.floor_ns)
    await h.floor_tracker.start()
    h.sampler.start()
    await h.start_operator("operator")
    return result

"""What every phase of a run shares: its clients, trackers, operator process and timeline.

phases/setup.py fills in the clients, pods and trackers; each phase then reads
them and records its spans (``phase``) and latencies for the plot. ``teardown``
stops whatever was started, whichever phase failed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import apistats
import fixtures
from floor import FloorThread
from kubeapi import Kube, now
from operator_proc import OperatorProcess, Sampler
from tracker import GROUP, PLURAL, VERSION, SessionTracker, gone

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OPERATOR_USER = f"system:serviceaccount:{fixtures.SYSTEM_NS}:operator"
FLOOR_USER = f"system:serviceaccount:{fixtures.SYSTEM_NS}:floor"
MODES = {
    "quick": {"n": 50, "idle": 100, "idle_low": 25, "queue": 20, "held": 25},
    "full": {"n": 500, "idle": 2000, "idle_low": 500, "queue": 100, "held": 200},
}
MERGE = "application/merge-patch+json"
log = logging.getLogger("bench")


def session_body(name: str, project: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Session",
        "metadata": {"name": name},
        "spec": {"project": project, "newBranch": f"bench/{name}"},
    }


def projects(pods: Iterable[dict[str, Any]]) -> list[str]:
    """The project each pod serves, in order."""
    return [p["metadata"]["labels"]["rdev.io/project"] for p in pods]


TRACED = ("operator-low", "operator-resumed")  # the labels --tracemalloc applies to


class Harness:
    # Set by phases/setup.py.
    admin: Kube
    floor_kube: Kube
    op_kubeconfig: Path
    single_pods: list[dict[str, Any]]
    op_pods: list[dict[str, Any]]
    floor_pods: list[dict[str, Any]]
    floor_held_pods: list[dict[str, Any]]
    queue_pods: list[dict[str, Any]]

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.cluster_dir = Path(args.cluster_dir).resolve()
        self.kubeconfig = self.cluster_dir / "kubeconfig"
        self.run_id = time.strftime("%m%d%H%M%S")
        self.work = self.cluster_dir / "bench-work" / self.run_id
        self.ns = f"rb-{self.run_id}"
        self.floor_ns = f"rb-{self.run_id}-floor"
        self.phases: list[tuple[str, float, float]] = []
        self.latencies: dict[str, list[float]] = {}
        self.sampler = Sampler(interval=0.5)
        self.audit = apistats.AuditLog(self.cluster_dir / "audit.log")
        self.op: OperatorProcess | None = None
        self.memory_low: Path | None = None  # --tracemalloc: the fresh low operator's snapshot
        self.floor: FloorThread | None = None
        self.tracker: SessionTracker | None = None
        self.floor_tracker: SessionTracker | None = None
        self.t0 = now()
        self.webui_cmd = args.webui_command.split()

    @property
    def name(self) -> str:
        a = self.args
        return str(a.name or (a.mode if a.n == MODES[a.mode]["n"] else f"{a.mode}-n{a.n}"))

    @property
    def workers(self) -> int:
        """The operator's RDEV_WORKERS: the floor keeps as many Sessions in flight."""
        return int(dict(kv.split("=", 1) for kv in self.args.operator_env).get("RDEV_WORKERS", 16))

    def path(self, ns: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}"

    def phase(self, name: str, start: float, end: float) -> None:
        self.phases.append((name, start, end))
        print(f"  {name}: {end - start:.2f}s", flush=True)

    async def fan_out(self, items: list[Any], fn: Callable[[Any], Awaitable[None]]) -> None:
        sem = asyncio.Semaphore(self.args.concurrency)

        async def one(item: Any) -> None:
            async with sem:
                await fn(item)

        await asyncio.gather(*(one(i) for i in items))

    async def create(self, ns: str, name: str, project: str) -> None:
        await self.admin.request("POST", self.path(ns), session_body(name, project))

    async def patch(self, ns: str, name: str, spec: dict[str, Any]) -> None:
        await self.admin.request(
            "PATCH", f"{self.path(ns)}/{name}", {"spec": spec}, content_type=MERGE
        )

    async def patch_all(self, ns: str, names: list[str], spec: dict[str, Any]) -> float:
        """Patch every Session's spec; the time the first patch was sent."""
        first = now()
        await self.fan_out(names, lambda name: self.patch(ns, name, spec))
        return first

    async def delete_all(
        self, ns: str, tracker: SessionTracker, names: list[str], timeout: float
    ) -> tuple[float, dict[str, float]]:
        """Delete the Sessions and wait until they are gone; (start, stamps)."""
        w = tracker.waiter(names, gone)
        start = now()

        async def delete(name: str) -> None:
            await self.admin.request("DELETE", f"{self.path(ns)}/{name}", allow=(404,))

        await self.fan_out(names, delete)
        return start, await tracker.wait(w, timeout)

    async def start_operator(self, label: str) -> OperatorProcess:
        env = {"RDEV_WEBUI_COMMAND": self.args.webui_command, "RDEV_LOG_LEVEL": "INFO"}
        env.update(kv.split("=", 1) for kv in self.args.operator_env)
        # Only the fresh operators whose holdings are compared (idle.py, resume.py): traced
        # memory costs several times the CPU, so starting them takes longer too.
        traced = self.args.tracemalloc and label in TRACED
        snaps = self.work / "tracemalloc" if traced else None
        op = OperatorProcess(
            self.op_kubeconfig,
            self.ns,
            self.work / f"{label}.log",
            label=label,
            env_extra=env,
            tracemalloc_dir=snaps,
        ).start()
        self.op = op
        self.sampler.current = op
        await op.wait_healthy(timeout=600 if traced else 90)
        return op

    async def teardown(self) -> None:
        """Stop everything this run started; each step runs even if one before failed."""

        async def step(what: str, fn: Callable[[], Awaitable[Any]]) -> None:
            try:
                await fn()
            except Exception as exc:
                log.warning("teardown: %s failed: %r", what, exc)

        if self.floor:
            await step("floor", self.floor.stop)
        if self.op:
            await step("operator", lambda: asyncio.to_thread(self.op.stop))  # type: ignore[union-attr]
        await step("sampler", self.sampler.stop)
        for t in (self.tracker, self.floor_tracker):
            if t:
                await step("tracker", t.stop)
        killed = fixtures.kill_webuis(self.work)
        if killed:
            print(f"teardown: killed {killed} leftover web UI processes")
        if hasattr(self, "admin"):
            for ns in (self.ns, self.floor_ns):
                await step(f"namespace {ns}", partial(fixtures.delete_namespace, self.admin, ns))
            await step(
                "ClusterExec",
                lambda: self.admin.request(
                    "DELETE",
                    f"/apis/kwok.x-k8s.io/v1alpha1/clusterexecs/rb-{self.run_id}",
                    allow=(404,),
                ),
            )
            await step("admin client", self.admin.close)
        if hasattr(self, "floor_kube"):
            await step("floor client", self.floor_kube.close)
        if not self.args.keep_work:
            await asyncio.to_thread(shutil.rmtree, self.work, True)

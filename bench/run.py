"""Benchmark of the Session operator against a local control plane (hack/bench.sh runs it).

    .venv/bin/python bench/run.py --mode quick            # N=50
    .venv/bin/python bench/run.py --mode full             # N=500, 2,000 idle + resume
    .venv/bin/python bench/run.py --mode quick --n 5      # development

Phases, all against the cluster whose kubeconfig is in --cluster-dir:

1. single: ~10 Sessions one after another on an idle cluster (p50 to Ready).
2. lifecycle: a burst of N creations (latency to Ready=True, stamped by a watch
   against the client-side create time; throughput until all Ready), then
   webUI on, webUI off, checkin of all (throughput until all Ended), delete.
   The operator's requests in this window are counted from the audit log (its
   own ServiceAccount), exec streams separately; the API server's
   apiserver_request_total is diffed too (all clients, minus this client).
3. floor: the same lifecycle in another namespace, served by bench/floor.py,
   the fewest requests a Session needs; the operator's figures are its ratio.
4. queue: --queue Sessions of one project (one project pod) queued behind each
   other, then checked in one by one; reconciles (rdev_reconcile_total) and API
   requests (audit log) per handover, at the start and at the end of the queue.
5. idle and resume: --idle-low Sessions Active, idle RSS; then up to --idle
   (500 and 2,000 in the full run), idle RSS again: the slope is the cost of one
   Active Session. Then the operator is restarted and timed until it has
   reconciled them all (rdev_reconcile_total), with its execs and writes meanwhile.

Results: bench/results/<mode>.json and .png, and a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import shutil
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import apistats
import fixtures
import report
import spyreport
from floor import Floor, FloorThread
from kubeapi import Kube, now
from operator_proc import (
    OperatorProcess,
    PySpy,
    Sampler,
    SystemCpu,
    parse_labeled,
    parse_metrics,
)
from tracker import (
    GROUP,
    PLURAL,
    VERSION,
    SessionTracker,
    cond,
    gone,
    is_ready,
    phase,
    webui_is,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OPERATOR_USER = f"system:serviceaccount:{fixtures.SYSTEM_NS}:operator"
FLOOR_USER = f"system:serviceaccount:{fixtures.SYSTEM_NS}:floor"
MODES = {
    "quick": {"n": 50, "idle": 100, "idle_low": 25, "queue": 20},
    "full": {"n": 500, "idle": 2000, "idle_low": 500, "queue": 100},
}
QUEUE_PROJECT = "queue"
log = logging.getLogger("bench")


def session_body(name: str, project: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Session",
        "metadata": {"name": name},
        "spec": {"project": project, "newBranch": f"bench/{name}"},
    }


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.cluster_dir = Path(args.cluster_dir).resolve()
        self.kubeconfig = self.cluster_dir / "kubeconfig"
        self.run_id = time.strftime("%m%d%H%M%S")
        self.work = self.cluster_dir / "bench-work" / self.run_id
        self.ns = f"rb-{self.run_id}"
        self.floor_ns = f"rb-{self.run_id}-floor"
        self.result: dict[str, Any] = {"n": args.n}
        self.phases: list[tuple[str, float, float]] = []
        self.latencies: dict[str, list[float]] = {}
        self.sampler = Sampler(interval=0.5)
        self.audit = apistats.AuditLog(self.cluster_dir / "audit.log")
        self.op: OperatorProcess | None = None
        self.floor: FloorThread | None = None
        self.tracker: SessionTracker | None = None
        self.floor_tracker: SessionTracker | None = None
        self.t0 = now()
        self.webui_cmd = args.webui_command.split()

    # Helpers -------------------------------------------------------------------
    def path(self, ns: str) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}"

    async def fan_out(self, items: list[Any], fn: Callable[[Any], Awaitable[None]]) -> None:
        sem = asyncio.Semaphore(self.args.concurrency)

        async def one(item: Any) -> None:
            async with sem:
                await fn(item)

        await asyncio.gather(*(one(i) for i in items))

    async def patch_all(self, ns: str, names: list[str], spec: dict[str, Any]) -> float:
        first = now()

        async def one(name: str) -> None:
            await self.admin.request(
                "PATCH",
                f"{self.path(ns)}/{name}",
                {"spec": spec},
                content_type="application/merge-patch+json",
            )

        await self.fan_out(names, one)
        return first

    def phase(self, name: str, start: float, end: float) -> None:
        self.phases.append((name, start, end))
        print(f"  {name}: {end - start:.2f}s", flush=True)

    # Setup ---------------------------------------------------------------------
    async def setup(self) -> None:
        a = self.args
        self.work.mkdir(parents=True)
        self.admin = Kube.from_kubeconfig(
            self.kubeconfig, self.work / "secrets", user_agent="rdev-bench/admin", limit=64
        )
        await asyncio.to_thread(fixtures.install_crd, self.kubeconfig)
        await asyncio.to_thread(fixtures.install_identities, self.kubeconfig)
        await fixtures.ensure_service_cidr(self.admin)
        op_token = await fixtures.token_for(self.admin, "operator")
        self.op_kubeconfig = fixtures.write_token_kubeconfig(
            self.work / "operator.kubeconfig", self.admin, op_token, "operator"
        )
        floor_token = await fixtures.token_for(self.admin, "floor")
        self.floor_kube = self.admin.with_token(floor_token, "rdev-bench/floor", limit=64)
        for ns in (self.ns, self.floor_ns):
            await fixtures.create_namespace(self.admin, ns)
        await fixtures.install_cluster_exec(
            self.admin, f"rb-{self.run_id}", [self.ns, self.floor_ns], self.work
        )
        template = await asyncio.to_thread(fixtures.make_template, self.work)

        def pods_for(prefix: str, count: int, project_prefix: str) -> list[dict[str, Any]]:
            out = []
            for i in range(count):
                name = f"{prefix}-{i:04d}"
                paths = fixtures.make_repo(template, self.work / "pods" / name)
                out.append(fixtures.pod_manifest(name, f"{project_prefix}-{i:04d}", paths))
            return out

        started = now()
        self.single_pods = await asyncio.to_thread(pods_for, "sp", a.singles, "single")
        self.op_pods = await asyncio.to_thread(pods_for, "pp", max(a.n, a.idle), "proj")
        self.floor_pods = await asyncio.to_thread(pods_for, "fp", a.n, "fproj")
        self.queue_pods = []
        if a.queue:
            paths = await asyncio.to_thread(fixtures.make_repo, template, self.work / "pods" / "qp")
            self.queue_pods = [fixtures.pod_manifest("qp-0000", QUEUE_PROJECT, paths)]
        await fixtures.create_pods(
            self.admin, self.ns, self.single_pods + self.op_pods + self.queue_pods
        )
        await fixtures.create_pods(self.admin, self.floor_ns, self.floor_pods)
        total = len(self.single_pods) + len(self.op_pods) + len(self.queue_pods)
        await fixtures.wait_pods_ready(self.admin, self.ns, total, timeout=300 + total * 0.2)
        await fixtures.wait_pods_ready(self.admin, self.floor_ns, len(self.floor_pods), 300)
        self.result["pods"] = total + len(self.floor_pods)
        self.result["setup_s"] = round(now() - started, 1)
        print(f"setup: {self.result['pods']} project pods Ready in {self.result['setup_s']}s")

        self.tracker = SessionTracker(self.admin, self.ns)
        await self.tracker.start()
        self.floor_tracker = SessionTracker(self.admin, self.floor_ns)
        await self.floor_tracker.start()
        self.sampler.start()
        await self.start_operator("operator")

    async def start_operator(self, label: str) -> OperatorProcess:
        env = {"RDEV_WEBUI_COMMAND": self.args.webui_command, "RDEV_LOG_LEVEL": "INFO"}
        env.update(kv.split("=", 1) for kv in self.args.operator_env)
        op = OperatorProcess(
            self.op_kubeconfig, self.ns, self.work / f"{label}.log", label=label, env_extra=env
        ).start()
        self.op = op
        self.sampler.current = op
        await op.wait_healthy(timeout=90)
        return op

    # Phase 1: single Sessions on an idle cluster ----------------------------------
    async def singles(self) -> None:
        assert self.tracker and self.op
        await self.sampler.wait_idle(timeout=30)
        start = now()
        lat: list[float] = []
        for i, pod in enumerate(self.single_pods):
            name = f"s-{i:02d}"
            project = pod["metadata"]["labels"]["rdev.io/project"]
            w = self.tracker.waiter([name], is_ready)
            t = now()
            await self.admin.request("POST", self.path(self.ns), session_body(name, project))
            stamps = await self.tracker.wait(w, timeout=60)
            if name in stamps:
                lat.append(stamps[name] - t)
            await asyncio.sleep(0.3)
        self.latencies["single (idle cluster)"] = lat
        self.result["single_count"] = len(lat)
        self.result["p50_single_s"] = report.rnd(report.percentile(lat, 50))
        self.result["max_single_s"] = report.rnd(max(lat) if lat else None)
        self.phase("single", start, now())

    # Phase 2 and 3: a whole lifecycle for N Sessions -----------------------------------
    async def lifecycle(
        self,
        ns: str,
        tracker: SessionTracker,
        projects: list[str],
        prefix: str,
        spy_out: Path | None = None,
    ) -> dict[str, Any]:
        n = len(projects)
        names = [f"{prefix}-{i:04d}" for i in range(n)]
        timeout = 120 + 2.0 * n
        out: dict[str, Any] = {}
        sent: dict[str, float] = {}

        # create (burst) -> Ready
        w = tracker.waiter(names, is_ready)
        cpu0 = self.op.status() if self.op else None
        system = SystemCpu(self.cluster_dir)
        sys0 = system.snapshot(self.op.pid if self.op else None)
        spies = []
        if spy_out and self.op:
            spies = [
                PySpy(self.op.pid, spy_out.with_suffix(".wall.txt"), idle=True),
                PySpy(self.op.pid, spy_out.with_suffix(".cpu.txt")),
            ]
        start = now()

        async def create(i: int) -> None:
            sent[names[i]] = now()
            await self.admin.request("POST", self.path(ns), session_body(names[i], projects[i]))

        await self.fan_out(list(range(n)), create)
        created = now()
        stamps = await tracker.wait(w, timeout)
        end = max(stamps.values()) if stamps else now()
        if spies:
            out["profile_ok"] = all([s.stop() for s in spies])
        if cpu0 and self.op:
            cpu1 = self.op.status()
            out["cpu_s"] = round(cpu1["cpu_s"] - cpu0["cpu_s"], 2)
            out["peak_rss_mb"] = round(cpu1["hwm_mb"], 1)
        sys1 = system.snapshot(self.op.pid if self.op else None)
        out["system_cpu_s"] = SystemCpu.delta(sys0, sys1)
        lat = [stamps[k] - sent[k] for k in names if k in stamps]
        out["ready"] = len(lat)
        out["latencies"] = lat
        out["create_send_s"] = round(created - start, 3)
        out["burst_s"] = round(end - start, 3)
        out["throughput_sessions_per_s"] = round(len(lat) / (end - start), 2) if lat else 0.0
        self.phase(f"{prefix}: burst create", start, end)

        # webUI on, webUI off
        for label, spec, pred in (
            ("webUI on", {"webUI": True}, webui_is("Running", 3001)),
            ("webUI off", {"webUI": False}, webui_is("Stopped", 8080)),
        ):
            w = tracker.waiter(names, pred)
            t = await self.patch_all(ns, names, spec)
            stamps = await tracker.wait(w, timeout)
            done = max(stamps.values()) if stamps else now()
            key = label.replace(" ", "_").lower()
            out[f"{key}_s"] = round(done - t, 3)
            out[f"{key}_done"] = len(stamps)
            self.phase(f"{prefix}: {label}", t, done)

        # checkin -> Ended
        w = tracker.waiter(names, lambda o: phase(o) == "Ended")
        t = await self.patch_all(ns, names, {"checkin": {}})
        stamps = await tracker.wait(w, timeout)
        done = max(stamps.values()) if stamps else now()
        out["ended"] = len(stamps)
        out["checkin_s"] = round(done - t, 3)
        out["checkin_throughput_sessions_per_s"] = (
            round(len(stamps) / (done - t), 2) if stamps else 0.0
        )
        self.phase(f"{prefix}: checkin", t, done)

        # delete -> gone
        w = tracker.waiter(names, gone)
        t = now()

        async def delete(name: str) -> None:
            await self.admin.request("DELETE", f"{self.path(ns)}/{name}", allow=(404,))

        await self.fan_out(names, delete)
        stamps = await tracker.wait(w, timeout)
        done = max(stamps.values()) if stamps else now()
        out["deleted"] = len(stamps)
        out["delete_s"] = round(done - t, 3)
        self.phase(f"{prefix}: delete", t, done)
        out["window"] = (start, done)
        return out

    async def apiserver_metrics(self) -> Counter[apistats.Key]:
        return apistats.parse_request_total(await self.admin.raw("/metrics"))

    async def operator_lifecycle(self) -> None:
        assert self.tracker and self.op
        await self.sampler.wait_idle(timeout=30)
        projects = [p["metadata"]["labels"]["rdev.io/project"] for p in self.op_pods[: self.args.n]]
        before = await self.apiserver_metrics()
        admin_before = Counter(self.admin.counts)
        exec_before = await self.op.counter("rdev_exec_total")
        m0 = await self.op.metrics()
        spy_out = RESULTS / f"{self.name}-profile" if self.args.profile else None
        cpu_before = self.op.status()["cpu_s"]
        out = await self.lifecycle(self.ns, self.tracker, projects, "b", spy_out)
        await asyncio.sleep(2.0)  # trailing requests (events, finalizer) land in the window
        cpu_lifecycle = self.op.status()["cpu_s"] - cpu_before
        exec_after = await self.op.counter("rdev_exec_total")
        m1 = await self.op.metrics()
        after = await self.apiserver_metrics()
        admin_delta = Counter(self.admin.counts)
        admin_delta.subtract(admin_before)
        start, _ = out.pop("window")
        end = now()
        n = self.args.n
        lat = out.pop("latencies")
        self.latencies[f"operator burst of {n}"] = lat
        r = self.result
        r.update(report.latency_stats(lat))
        r["ready_count"] = out["ready"]
        r["client_cpu_ms_per_lifecycle"] = round(1000 * cpu_lifecycle / n, 2)
        for key in ("throughput_sessions_per_s", "checkin_throughput_sessions_per_s", "cpu_s",
                    "peak_rss_mb", "burst_s", "create_send_s", "webui_on_s", "webui_off_s",
                    "checkin_s", "delete_s"):  # fmt: skip
            r[key] = out.get(key)
        r["burst_system_cpu_s"] = sc = out["system_cpu_s"]
        if sc.get("machine total"):
            r["burst_machine_busy_pct"] = round(100 * sc["machine busy"] / sc["machine total"], 1)
            r["burst_noise_cpu_pct"] = round(
                100 * sc["other processes (noise)"] / sc["machine total"], 1
            )
        r["exec_mean_ms_by_step"] = _exec_means(m0, m1)
        r["lifecycle_completed"] = {
            k: out.get(k) for k in ("ready", "webui_on_done", "webui_off_done", "ended", "deleted")
        }
        if spy_out and out.get("profile_ok"):
            r["profile_burst"] = {
                "wall": spyreport.wall_summary(spy_out.with_suffix(".wall.txt")),
                "cpu": spyreport.cpu_summary(spy_out.with_suffix(".cpu.txt")),
            }
        r["exec_per_session_from_operator_metrics"] = round((exec_after - exec_before) / n, 2)

        # API server metrics: every client; take this client's requests out.
        delta = apistats.diff(after, before)
        all_total = sum(delta.values())
        bench_total = sum(v for v in admin_delta.values() if v > 0) + 2  # + the two scrapes
        writes = sum(v for k, v in delta.items() if apistats.metrics_is_write(k[0]))
        r["apiserver_metrics"] = {
            "all_clients_requests": all_total,
            "minus_bench_client_requests": all_total - bench_total,
            "minus_bench_client_per_session": round((all_total - bench_total) / n, 2),
            "all_clients_writes": writes,
            "by_verb_resource": {
                f"{k[0]} {k[1]}{'/' + k[2] if k[2] else ''}": v for k, v in delta.most_common()
            },
            "note": "includes kwok, controller-manager (EndpointSlices, GC) and the operator",
        }  # fmt: skip

        # Audit log: the operator's own ServiceAccount, exactly.
        self.audit.read()
        if self.audit.requests or self.audit.available:
            s = apistats.summarize(self.audit.select(OPERATOR_USER, start, end), n)
            r["writes_per_session"] = s["writes_per_session"]
            r["requests_per_session"] = s["requests_per_session"]
            r["exec_per_session"] = s["execs_per_session"]
            r["reads_per_session"] = s["reads_per_session"]
            r["operator_requests"] = s
            r["counted_from"] = "audit log (operator ServiceAccount)"
        else:
            r["exec_per_session"] = r["exec_per_session_from_operator_metrics"]
            r["requests_per_session"] = r["apiserver_metrics"]["minus_bench_client_per_session"]
            r["writes_per_session"] = None
            r["counted_from"] = "apiserver_request_total minus the bench client (no audit log)"

    async def floor_lifecycle(self) -> None:
        assert self.floor_tracker
        by_project = {p["metadata"]["labels"]["rdev.io/project"]: p for p in self.floor_pods}
        workers = int(
            dict(kv.split("=", 1) for kv in self.args.operator_env).get("RDEV_WORKERS", 16)
        )
        self.floor = FloorThread(
            Floor(self.floor_kube, self.floor_ns, by_project, self.webui_cmd, workers)
        )
        await self.floor.start()
        floor_before = Counter(self.floor_kube.counts)
        cpu_before = self.floor.cpu_s()
        out = await self.lifecycle(self.floor_ns, self.floor_tracker, list(by_project), "f")
        await asyncio.sleep(2.0)
        cpu_lifecycle = self.floor.cpu_s() - cpu_before
        start, _ = out.pop("window")
        end = now()
        await self.floor.stop()
        n = self.args.n
        lat = out.pop("latencies")
        self.latencies[f"floor burst of {n}"] = lat
        r = self.result
        r.update(report.latency_stats(lat, prefix="floor_"))
        r["floor_throughput_sessions_per_s"] = out["throughput_sessions_per_s"]
        r["floor_client_cpu_ms_per_lifecycle"] = round(1000 * cpu_lifecycle / n, 2)
        sc = out["system_cpu_s"]
        if sc.get("machine total"):
            r["floor_burst_noise_cpu_pct"] = round(
                100 * sc["other processes (noise)"] / sc["machine total"], 1
            )
        r["floor_burst_s"] = out["burst_s"]
        r["floor_burst_system_cpu_s"] = out["system_cpu_s"]
        r["burst_cpu_ms_per_session"] = {
            "operator": _cpu_per_session(r.get("burst_system_cpu_s") or {}, "operator", n),
            "floor": _cpu_per_session(out["system_cpu_s"], "bench client", n),
        }
        r["floor_checkin_throughput_sessions_per_s"] = out["checkin_throughput_sessions_per_s"]
        r["floor_errors"] = self.floor.floor.errors[:10]
        client = Counter(self.floor_kube.counts)
        client.subtract(floor_before)
        writes = sum(v for k, v in client.items() if apistats.metrics_is_write(k[0]))
        execs = sum(v for k, v in client.items() if k[0] == "CONNECT")
        r["floor_client_counts"] = {f"{k[0]} {k[1]}{'/' + k[2] if k[2] else ''}": v
                                    for k, v in client.items() if v}  # fmt: skip
        self.audit.read()
        audited = self.audit.select(FLOOR_USER, start, end)
        if audited:
            s = apistats.summarize(audited, n)
            r["floor_writes_per_session"] = s["writes_per_session"]
            r["floor_requests_per_session"] = s["requests_per_session"]
            r["floor_exec_per_session"] = s["execs_per_session"]
            r["floor_requests"] = s
        else:
            r["floor_writes_per_session"] = round(writes / n, 2)
            r["floor_exec_per_session"] = round(execs / n, 2)
            r["floor_requests_per_session"] = round(sum(v for v in client.values() if v) / n, 2)
        if r.get("writes_per_session") is not None and r["floor_writes_per_session"]:
            r["writes_ratio_to_floor"] = round(
                r["writes_per_session"] / r["floor_writes_per_session"], 2
            )
            r["requests_ratio_to_floor"] = round(
                r["requests_per_session"] / r["floor_requests_per_session"], 2
            )
            r["exec_ratio_to_floor"] = round(r["exec_per_session"] / r["floor_exec_per_session"], 2)
        _ratios(r)

    # Phase 4: one project's queue, handed over Session by Session ------------------
    async def reconciles_settled(self, timeout: float = 10.0) -> float:
        """rdev_reconcile_total once it stops moving (the handover's trailing reconciles)."""
        assert self.op
        deadline = time.monotonic() + timeout
        last = await self.op.counter("rdev_reconcile_total")
        while time.monotonic() < deadline:
            await asyncio.sleep(0.3)
            current = await self.op.counter("rdev_reconcile_total")
            if current == last:
                return current
            last = current
        return last

    async def until(self, pred: Callable[[], bool], timeout: float) -> float | None:
        """Poll the tracker's objects until ``pred`` holds; the time it did, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return now()
            await asyncio.sleep(0.02)
        return None

    async def queue(self) -> None:
        """Q Sessions of one project: one holds it, the rest wait (ProjectBusy).

        Each checkin hands the project to the next in line; what one handover
        costs must not grow with the queue behind it (mappers.py enqueues the
        Session that changed and the next one, never the whole queue).
        """
        assert self.tracker and self.op
        tracker, q = self.tracker, self.args.queue
        names = [f"q-{i:04d}" for i in range(q)]
        await self.sampler.wait_idle(timeout=30)
        start = now()
        for name in names:  # one by one: the queue's order is the creation order
            await self.admin.request("POST", self.path(self.ns), session_body(name, QUEUE_PROJECT))

        def busy(o: dict[str, Any] | None) -> bool:
            ready = cond(o, "Ready")
            return bool(ready and ready.get("reason") == "ProjectBusy")

        def settled() -> bool:
            objs = [tracker.objects.get(n) for n in names]
            return sum(map(is_ready, objs)) == 1 and sum(map(busy, objs)) == q - 1

        if await self.until(settled, 60 + q) is None:
            raise RuntimeError(f"queue of {q}: not one Active and {q - 1} ProjectBusy in time")
        queued_at = now()
        self.phase(f"queue: {q} queued", start, queued_at)
        reconciles = await self.reconciles_settled()
        handovers: list[dict[str, Any]] = []
        remaining = list(names)
        t_first = now()
        for _ in range(q):
            holder = next(n for n in remaining if is_ready(tracker.objects.get(n)))
            remaining.remove(holder)
            t0 = now()
            await self.admin.request(
                "PATCH",
                f"{self.path(self.ns)}/{holder}",
                {"spec": {"checkin": {}}},
                content_type="application/merge-patch+json",
            )

            def handed(holder: str = holder) -> bool:
                if phase(tracker.objects.get(holder)) != "Ended":
                    return False
                return not remaining or any(is_ready(tracker.objects.get(n)) for n in remaining)

            done = await self.until(handed, 60)
            if done is None:
                raise RuntimeError(f"queue: no handover from {holder} within 60s")
            after = await self.reconciles_settled()
            handovers.append(
                {
                    "from": holder,
                    "t0": t0,
                    "t1": now(),
                    "handover_s": done - t0,
                    "reconciles": after - reconciles,
                    "last": not remaining,
                }
            )
            reconciles = after
        self.phase(f"queue: {q} checkins one by one", t_first, now())
        await asyncio.sleep(1.0)
        self.audit.read()
        for h in handovers:
            s = apistats.summarize(self.audit.select(OPERATOR_USER, h["t0"], h["t1"]), 1)
            h.update(requests=s["requests"], writes=s["writes"], execs=s["execs"])
        r = self.result
        r["queue_sessions"] = q
        r["queue_handovers"] = _queue_summary([h for h in handovers if not h["last"]])
        hs = r["queue_handovers"]
        if hs:
            r["queue_reconciles_per_handover"] = hs["reconciles_mean"]
            r["queue_reconciles_per_handover_max"] = hs["reconciles_max"]
            r["queue_requests_per_handover_start"] = hs["start"]["requests"]
            r["queue_requests_per_handover_end"] = hs["end"]["requests"]
            if hs["start"]["requests"]:
                r["queue_requests_end_to_start"] = round(
                    hs["end"]["requests"] / hs["start"]["requests"], 2
                )
            r["queue_handover_p50_s"] = hs["handover_p50_s"]

        # The queue's Sessions go before the idle phase (the resume counts Active ones).
        w = tracker.waiter(names, gone)
        t = now()

        async def delete(name: str) -> None:
            await self.admin.request("DELETE", f"{self.path(self.ns)}/{name}", allow=(404,))

        await self.fan_out(names, delete)
        await tracker.wait(w, timeout=60 + q)
        self.phase("queue: delete", t, now())

    # Phase 5: idle with many Active, then a restart ---------------------------------
    async def make_active(self, first: int, count: int) -> tuple[int, list[float], float]:
        """Sessions i-<first>..i-<count-1> made Active; (ready, latencies, seconds)."""
        assert self.tracker
        projects = [p["metadata"]["labels"]["rdev.io/project"] for p in self.op_pods[:count]]
        names = {i: f"i-{i:04d}" for i in range(first, count)}
        w = self.tracker.waiter(names.values(), is_ready)
        start = now()
        sent: dict[str, float] = {}

        async def create(i: int) -> None:
            sent[names[i]] = now()
            await self.admin.request(
                "POST", self.path(self.ns), session_body(names[i], projects[i])
            )

        await self.fan_out(list(names), create)
        stamps = await self.tracker.wait(w, timeout=min(120 + 1.0 * len(names), 1800))
        ready_at = max(stamps.values()) if stamps else now()
        self.phase(f"create {first}..{count} Active", start, ready_at)
        lat = [stamps[k] - sent[k] for k in names.values() if k in stamps]
        return len(stamps), lat, ready_at - start

    async def idle_rss(self) -> dict[str, float]:
        """RSS once the operator's CPU is idle."""
        assert self.op
        t = now()
        idle_at = await self.sampler.wait_idle(window=3.0, max_cpu=0.03, timeout=180)
        st = self.op.status()
        self.phase("settle", t, now())
        return {"rss": round(st["rss_mb"], 1), "hwm": round(st["hwm_mb"], 1),
                "settle": round(idle_at - t, 2)}  # fmt: skip

    async def idle_and_resume(self) -> None:
        assert self.tracker and self.op
        count, low = self.args.idle, min(self.args.idle_low, self.args.idle)
        r = self.result
        lat: list[float] = []
        ready, elapsed = 0, 0.0
        if 0 < low < count:
            ready, lat, elapsed = await self.make_active(0, low)
            # A fresh operator holding them (the earlier phases' heap is not in it),
            # to compare with the fresh one that resumes all of them below.
            r["idle_active_low"], r["idle_rss_mb_low"] = await self.fresh_rss("operator-low")
            r["idle_sessions_low"] = low
        more, lat2, elapsed2 = await self.make_active(ready if low < count else 0, count)
        lat += lat2
        r["idle_sessions"] = count
        r["idle_ready"] = ready + more
        r["idle_create_s"] = round(elapsed + elapsed2, 2)
        r["idle_burst"] = report.latency_stats(lat)
        r["idle_burst"]["throughput_sessions_per_s"] = round(len(lat) / (elapsed + elapsed2), 2)
        self.latencies[f"operator burst of {count} (idle phase)"] = lat
        m = await self.idle_rss()
        r["idle_rss_mb"] = m["rss"]
        r["idle_hwm_mb"] = m["hwm"]
        r["idle_settle_s"] = m["settle"]
        # Restart: stop the operator, start a fresh one, time until it reconciled all.
        active = len([o for o in self.tracker.objects.values() if is_ready(o)])
        flips_before = len(self.tracker.not_ready_flips)
        t = now()
        r["operator_stop_s"] = round(await asyncio.to_thread(self.op.stop), 2)
        self.phase("stop operator", t, now())
        op = await self.start_operator("operator-resumed")
        t_start = op.started_at
        healthy = now()
        spies, spy_out = [], RESULTS / f"{self.name}-resume-profile"
        if self.args.profile_resume:
            spies = [
                PySpy(op.pid, spy_out.with_suffix(".wall.txt"), idle=True),
                PySpy(op.pid, spy_out.with_suffix(".cpu.txt")),
            ]
        deadline = time.monotonic() + max(120.0, count * 0.2)
        reconciled_at = None
        reconciles = 0.0
        while time.monotonic() < deadline:
            reconciles = await op.counter("rdev_reconcile_total")
            if reconciles >= active:
                reconciled_at = now()
                break
            await asyncio.sleep(0.2)
        if spies and all([s.stop() for s in spies]):
            self.result["profile_resume"] = {
                "wall": spyreport.wall_summary(spy_out.with_suffix(".wall.txt")),
                "cpu": spyreport.cpu_summary(spy_out.with_suffix(".cpu.txt")),
            }
        idle_at = await self.sampler.wait_idle(window=2.0, max_cpu=0.05, timeout=120)
        metrics = await op.metrics()
        st = op.status()
        await asyncio.sleep(1.0)
        self.audit.read()
        resumed = self.audit.select(OPERATOR_USER, t_start, now())
        still_ready = len([o for o in self.tracker.objects.values() if is_ready(o)])
        r["resume_sessions"] = active
        r["resume_s"] = round(reconciled_at - t_start, 2) if reconciled_at else None
        r["resume_reconciles"] = reconciles
        r["resume_healthy_s"] = round(healthy - t_start, 2)
        r["resume_cpu_idle_s"] = round(idle_at - t_start, 2)
        r["resume_cpu_s"] = round(st["cpu_s"], 2)
        r["resume_exec_calls"] = int(parse_metrics(metrics, "rdev_exec_total"))
        r["resume_rss_mb"] = round(st["rss_mb"], 1)
        r["resume_still_ready"] = still_ready
        r["resume_ready_flips"] = len(self.tracker.not_ready_flips) - flips_before
        if resumed:
            s = apistats.summarize(resumed, active)
            r["resume_requests"] = {k: s[k] for k in ("requests", "writes", "execs", "reads",
                                                      "by_verb_resource", "by_client")}  # fmt: skip
            r["resume_writes"] = s["writes"]
        elif self.audit.available:
            r["resume_writes"] = 0
        self.phase("resume", t_start, reconciled_at or now())
        if "idle_rss_mb_low" in r and active > r["idle_active_low"]:
            r["rss_kb_per_active_session"] = round(
                1024
                * (r["resume_rss_mb"] - r["idle_rss_mb_low"])
                / (active - r["idle_active_low"]),
                1,
            )

    async def fresh_rss(self, label: str) -> tuple[int, float]:
        """Restart the operator; (Active Sessions, its RSS once it resumed them and is idle)."""
        assert self.tracker and self.op
        active = len([o for o in self.tracker.objects.values() if is_ready(o)])
        t = now()
        await asyncio.to_thread(self.op.stop)
        op = await self.start_operator(label)
        deadline = time.monotonic() + max(120.0, active * 0.2)
        while time.monotonic() < deadline:
            if await op.counter("rdev_reconcile_total") >= active:
                break
            await asyncio.sleep(0.2)
        await self.sampler.wait_idle(window=3.0, max_cpu=0.03, timeout=180)
        rss = round(op.status()["rss_mb"], 1)
        self.phase(f"fresh operator with {active} Active", t, now())
        return active, rss

    # Teardown --------------------------------------------------------------------
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

    @property
    def name(self) -> str:
        a = self.args
        return a.name or (a.mode if a.n == MODES[a.mode]["n"] else f"{a.mode}-n{a.n}")

    async def run(self) -> int:
        a = self.args
        RESULTS.mkdir(parents=True, exist_ok=True)
        print(f"bench {self.name}: N={a.n}, idle={a.idle}, namespace {self.ns}", flush=True)
        self.result["loadavg_at_start"] = _load()["loadavg_1m"]
        wall = time.monotonic()
        ok = True
        try:
            await self.setup()
            self.t0 = self.op.started_at if self.op else now()
            await self.singles()
            await self.operator_lifecycle()
            await self.floor_lifecycle()
            if a.queue:
                await self.queue()
            if a.idle:
                await self.idle_and_resume()
        except (Exception, asyncio.CancelledError):  # Ctrl-C too: tear down, write what we have
            log.exception("benchmark failed")
            ok = False
            if self.op:
                print(self.op.tail(2000), file=sys.stderr)
        finally:
            if self.op and self.op.log_path.exists():
                shutil.copy(self.op.log_path, RESULTS / f"{self.name}-operator.log")
            await self.teardown()
        r = self.result
        r["mode"] = a.mode
        r["ok"] = ok
        r["wall_s"] = round(time.monotonic() - wall, 1)
        r["machine"] = {"cpus": _cpus(), "python": platform.python_version(), **_load()}
        r["operator_source"] = _source()
        r["settings"] = {
            "webui_command": a.webui_command,
            "client_concurrency": a.concurrency,
            "operator_env": a.operator_env,
        }
        r["phases"] = [(p, round(s - self.t0, 2), round(e - s, 2)) for p, s, e in self.phases]
        out = RESULTS / f"{self.name}.json"
        out.write_text(json.dumps(r, indent=2) + "\n")
        png = RESULTS / f"{self.name}.png"
        plotted = report.plot(
            png,
            f"rdev operator, N={a.n}",
            self.latencies,
            self.sampler.samples,
            self.phases,
            self.t0,
        )
        print()
        print(report.table(r))
        print(f"\nresults: {out}" + (f", plot: {png}" if plotted else " (no matplotlib: no plot)"))
        return 0 if ok else 1


def _queue_summary(handovers: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-handover cost overall, and at the start vs the end of the queue (a fifth each)."""
    if not handovers:
        return {}
    k = max(3, len(handovers) // 5)

    def mean(hs: list[dict[str, Any]], key: str) -> float:
        return round(float(sum(h[key] for h in hs)) / max(len(hs), 1), 2)

    def part(hs: list[dict[str, Any]]) -> dict[str, float]:
        return {key: mean(hs, key) for key in ("reconciles", "requests", "writes", "execs")}

    times = [h["handover_s"] for h in handovers]
    return {
        "count": len(handovers),
        "reconciles_mean": mean(handovers, "reconciles"),
        "reconciles_max": max(h["reconciles"] for h in handovers),
        "start": part(handovers[:k]),
        "end": part(handovers[-k:]),
        "all": part(handovers),
        "handover_p50_s": report.rnd(report.percentile(times, 50)),
        "handover_max_s": report.rnd(max(times)),
        "per_handover": [
            [h["from"], h["reconciles"], h["requests"], h["writes"], h["execs"]] for h in handovers
        ],
    }


def _ratios(r: dict[str, Any]) -> None:
    """Each operator figure over the floor's, as the targets compare them."""
    pairs = {
        "throughput_ratio_to_floor": "throughput_sessions_per_s",
        "checkin_throughput_ratio_to_floor": "checkin_throughput_sessions_per_s",
        "p99_ratio_to_floor": "p99_ready_s",
        "client_cpu_ratio_to_floor": "client_cpu_ms_per_lifecycle",
    }
    for ratio, key in pairs.items():
        ours, floor = r.get(key), r.get(f"floor_{key}")
        if ours is not None and floor:
            r[ratio] = round(ours / floor, 2)


def _cpu_per_session(cpu: dict[str, float], client: str, n: int) -> dict[str, float]:
    """CPU milliseconds per created Session: the control plane's share and the client's."""
    parts = ("kube-apiserver", "etcd", "kwok-controller", "kube-controller-manager")
    out = {k: round(1000 * cpu.get(k, 0.0) / n, 1) for k in (*parts, client)}
    out["total"] = round(sum(out.values()), 1)
    return out


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


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _load() -> dict[str, float]:
    """The machine's load at the end (other work on it is noise in the figures)."""
    import os

    one, five, _ = os.getloadavg()
    return {"loadavg_1m": round(one, 2), "loadavg_5m": round(five, 2)}


def _source() -> dict[str, str]:
    """Which operator code ran: the commit and a digest of uncommitted changes under operator/."""
    import hashlib
    import subprocess

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
        return out.stdout

    diff = git("diff", "HEAD", "--", "operator/")
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "uncommitted_diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:12] if diff else "",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mode", choices=sorted(MODES), default="quick")
    p.add_argument("--n", type=int, help="Sessions in the burst (default: 50 quick, 500 full)")
    p.add_argument("--idle", type=int, help="Active Sessions for idle RSS and resume (0: skip)")
    p.add_argument(
        "--idle-low",
        type=int,
        help="Active Sessions at the first RSS reading (default: 25 quick, 500 full)",
    )
    p.add_argument("--queue", type=int, help="Sessions in one project's queue (0: skip)")
    p.add_argument("--singles", type=int, default=10, help="sequential single Sessions")
    p.add_argument("--concurrency", type=int, default=32, help="parallel requests of the client")
    p.add_argument("--cluster-dir", default=str(ROOT / ".cluster-bench"))
    p.add_argument("--webui-command", default="sleep 86400", help="RDEV_WEBUI_COMMAND")
    p.add_argument("--profile", action="store_true", help="py-spy the operator during the burst")
    p.add_argument("--profile-resume", action="store_true", help="py-spy the restarted operator")
    p.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="RDEV_X=V",
        help="extra operator setting (repeatable), e.g. RDEV_WORKERS=64",
    )
    p.add_argument("--keep-work", action="store_true", help="keep repos and operator logs")
    p.add_argument("--name", help="results file name (default: the mode)")
    args = p.parse_args(argv)
    args.n = args.n if args.n is not None else MODES[args.mode]["n"]
    for key in ("idle", "idle_low", "queue"):
        if getattr(args, key) is None:
            setattr(args, key, MODES[args.mode][key])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    return asyncio.run(Bench(args).run())


if __name__ == "__main__":
    raise SystemExit(main())

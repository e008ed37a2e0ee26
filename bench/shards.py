"""One replica against N shards, serving the same Sessions spread over many namespaces.

``make bench-shards`` (``hack/bench.sh --shards``) runs it on the bench control plane, with
the API server's audit log (bench/audit-policy.yaml) and the ShardedListAndWatch gate
(hack/controlplane.sh). It makes ``--namespaces`` namespaces named with 8 random hex digits,
one kwok project pod (and git clone) per Session, and runs the same burst of ``--sessions``
creations, spread round-robin over all namespaces, three times:

1. **single**: one cluster-wide replica (``RDEV_SHARDS=1``);
2. **sharded**: ``--shards`` replicas, ``RDEV_SHARDS=N``, ``RDEV_SHARD=0…N-1``, and
   ``RDEV_SHARD_BOUNDARIES`` as ``kubectl session shards`` plans them from the Sessions
   each namespace will hold (``--boundaries planned``, the default; ``equal``: equal
   slices, whose spread over 80 random names is a draw);
3. **failover**: two replicas per shard (same ``RDEV_SHARD``, a ClusterKopfPeering per
   shard, ``RDEV_PEERING_LIFETIME=--lifetime``); the leader of the shard with the most
   Sessions is SIGKILLed once ``--kill-at`` of its Sessions are Active.

Each replica runs as its own ServiceAccount in ``rdev-bench-shards``, so the audit log names
the replica (and its user agent the shard) of every request. Per replica: watch events
received (``rdev_watch_events_total``), Sessions held (``rdev_sessions``), RSS before the
burst and once idle after it, CPU seconds. Across each layout: time to Active (every
Session, from its create), and for every Session the replicas that wrote to it or its
children (status and finalizer patches, Events, pod labels, the preview Service, execs):
handled by exactly one shard, or the list. The first two layouts delete their Sessions
through the operator (part of what is attributed); the last leaves them to the teardown.
Results: ``--out`` (JSON) and a table on stdout.

    hack/bench.sh --shards --sessions 1000          # make bench-shards: 8,000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import fixtures
from apistats import AuditLog, AuditRequest, fingerprint
from kubeapi import Kube, now
from operator_proc import OperatorProcess, parse_labeled, proc_status
from tracker import GROUP, PLURAL, VERSION, SessionTracker, gone, phase

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
from rdev_api import shards  # noqa: E402 (the operator's own hash)
from session_operator import gitcmd  # noqa: E402 (the operator's own script)

REPLICA_NS = "rdev-bench-shards"
REPLICA_GROUP = f"system:serviceaccounts:{REPLICA_NS}"
RESULTS = ROOT / "bench" / "results"
PEERING_CRDS = ROOT / "manifests" / "base" / "kopf-peering-crds.yaml"
CHECKOUT = fingerprint(gitcmd.CHECKOUT_SCRIPT)
# A Session's children, by the suffix rdev_api.names gives their names.
SUFFIXES = {"services": "-preview", "networkpolicies": "-webui"}
CREDENTIAL_KINDS = ("serviceaccounts", "roles", "rolebindings", "secrets")
TARGET_RSS_MB = 150.0
TARGET_KB_PER_SESSION = 25.0
CAPACITY_FOR = (10_000, 50_000, 100_000)
log = logging.getLogger("bench.shards")


class ClusterTracker(SessionTracker):
    """The bench's Session tracker over every namespace (Session names are unique here)."""

    @property
    def path(self) -> str:
        return f"/apis/{GROUP}/{VERSION}/{PLURAL}"


def is_active(obj: dict[str, Any] | None) -> bool:
    return phase(obj) == "Active"


@dataclass
class Spec:
    """A Session of the burst: its namespace, name and project pod."""

    ns: str
    name: str
    pod: str
    shard: int  # of the sharded layouts' N


@dataclass
class Replica:
    name: str  # its ServiceAccount, POD_NAME and POD_ID
    shard: int
    count: int
    op: OperatorProcess
    role: str = "replica"  # or leader / standby
    base: dict[str, float] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    killed_at: float = 0.0

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{REPLICA_NS}:{self.name}"

    @property
    def agent(self) -> str:
        return shards.user_agent(self.shard, self.count)


class Bench:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.cluster_dir = Path(a.cluster_dir).resolve()
        self.kubeconfig = self.cluster_dir / "kubeconfig"
        self.run_id = time.strftime("%m%d%H%M%S")
        self.work = self.cluster_dir / "bench-shards" / self.run_id
        self.prefix = f"rs-{self.run_id}-"
        self.audit = AuditLog(self.cluster_dir / "audit.log")
        self.spaces: list[str] = []
        self.cuts: tuple[int, ...] = ()  # RDEV_SHARD_BOUNDARIES; empty: equal slices
        self.pods: dict[str, list[str]] = {}
        self.replicas: list[Replica] = []
        self.peerings: list[str] = []
        self.admin: Kube | None = None
        self.tracker: ClusterTracker | None = None
        self.audit_lock = asyncio.Lock()
        self.audit_task: asyncio.Task[None] | None = None

    async def read_audit(self) -> None:
        async with self.audit_lock:
            await asyncio.to_thread(self.audit.read)

    async def follow_audit(self) -> None:
        """Read the audit log as it grows: the API server rotates it at 100 MB, and an
        8,000-Session burst logs several of those (an exec's URI carries its script)."""
        while True:
            try:
                await self.read_audit()
            except Exception as exc:  # never let the reader end the run
                log.warning("reading the audit log failed: %r", exc)
            await asyncio.sleep(2.0)

    # Setup ---------------------------------------------------------------------------
    async def setup(self) -> dict[str, Any]:
        a = self.a
        self.work.mkdir(parents=True)
        self.admin = admin = Kube.from_kubeconfig(
            self.kubeconfig, self.work / "secrets", user_agent="rdev-bench/shards", limit=64
        )
        started = now()
        await asyncio.to_thread(fixtures.install_crd, self.kubeconfig)
        await asyncio.to_thread(self.install_identities)
        await asyncio.to_thread(
            fixtures.kubectl, self.kubeconfig, "apply", "--server-side", "-f", str(PEERING_CRDS)
        )
        await fixtures.ensure_service_cidr(admin)
        self.spaces = [f"{self.prefix}{uuid.uuid4().hex[:8]}" for _ in range(a.namespaces)]
        await asyncio.gather(*(fixtures.create_namespace(admin, ns) for ns in self.spaces))
        await fixtures.install_cluster_exec(admin, self.prefix.rstrip("-"), self.spaces, self.work)
        template = await asyncio.to_thread(fixtures.make_template, self.work / "template")
        per = [
            a.sessions // a.namespaces + (k < a.sessions % a.namespaces)
            for k in range(a.namespaces)
        ]
        for ns, count in zip(self.spaces, per, strict=True):
            self.pods[ns] = [f"p{j}" for j in range(count)]

        def manifests(ns: str) -> list[dict[str, Any]]:
            return [
                fixtures.pod_manifest(
                    pod,
                    pod,
                    fixtures.make_repo(template, self.work / "pods" / f"{ns}-{pod}", link=True),
                )
                for pod in self.pods[ns]
            ]

        for ns in self.spaces:
            await fixtures.create_pods(admin, ns, await asyncio.to_thread(manifests, ns))
        for ns in self.spaces:
            await fixtures.wait_pods_ready(admin, ns, len(self.pods[ns]), timeout=600)
        self.tracker = ClusterTracker(admin, "all namespaces")
        await self.tracker.start()
        self.audit_task = asyncio.create_task(self.follow_audit())
        # What `kubectl session shards` plans from the Sessions each namespace holds: here
        # one per project pod, known before the burst makes them.
        weights = {ns: len(self.pods[ns]) for ns in self.spaces}
        equal = shards.tally(weights, a.shards)
        if a.boundaries == "planned":
            self.cuts = shards.plan(weights, a.shards)
        spread = shards.tally(weights, a.shards, self.cuts)
        setup = {
            "sessions": a.sessions,
            "namespaces": a.namespaces,
            "shards": a.shards,
            "boundaries": a.boundaries,
            "shard_boundaries": shards.format_cuts(self.cuts),
            "namespaces_per_shard": [spaces for spaces, _ in spread],
            "sessions_per_shard": [held for _, held in spread],
            "equal_slices_namespaces_per_shard": [spaces for spaces, _ in equal],
            "equal_slices_sessions_per_shard": [held for _, held in equal],
            "setup_s": round(now() - started, 1),
        }
        print(
            f"setup: {a.sessions} project pods in {a.namespaces} namespaces in"
            f" {setup['setup_s']} s; {a.boundaries} boundaries: namespaces per shard"
            f" {setup['namespaces_per_shard']}, Sessions per shard"
            f" {setup['sessions_per_shard']} (equal slices would give"
            f" {setup['equal_slices_namespaces_per_shard']} namespaces)",
            flush=True,
        )
        return setup

    def install_identities(self) -> None:
        """The replicas' namespace; its ServiceAccounts, as a group, bound to cluster-admin."""
        docs = [
            f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {REPLICA_NS}}}\n",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
            f"metadata: {{name: {REPLICA_NS}}}\n"
            "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,"
            " name: cluster-admin}\n"
            f"subjects: [{{kind: Group, apiGroup: rbac.authorization.k8s.io,"
            f" name: '{REPLICA_GROUP}'}}]\n",
        ]
        fixtures.kubectl(
            self.kubeconfig, "apply", "--server-side", "-f", "-", stdin="---\n".join(docs)
        )

    def specs(self, tag: str) -> list[Spec]:
        """The burst, round-robin over the namespaces: every shard gets work from the start."""
        out = []
        for j in range(max(len(p) for p in self.pods.values())):
            for k, ns in enumerate(self.spaces):
                if j < len(self.pods[ns]):
                    name = f"{tag}-{k:03d}-{j}"
                    shard = shards.shard_of(ns, self.a.shards, self.cuts)
                    out.append(Spec(ns, name, self.pods[ns][j], shard))
        return out

    # Replicas ------------------------------------------------------------------------
    async def start_replica(
        self, name: str, shard: int, count: int, role: str, peering: str = ""
    ) -> Replica:
        assert self.admin is not None
        await self.admin.request(
            "POST",
            f"/api/v1/namespaces/{REPLICA_NS}/serviceaccounts",
            {"metadata": {"name": name}},
            allow=(409,),
        )
        token = await fixtures.token_for(self.admin, name, namespace=REPLICA_NS)
        kubeconfig = fixtures.write_token_kubeconfig(
            self.work / f"{name}.kubeconfig", self.admin, token, name
        )
        env = {
            "RDEV_SHARDS": str(count),
            "RDEV_SHARD": str(shard),
            "RDEV_SHARD_BOUNDARIES": shards.format_cuts(self.cuts) if count > 1 else "",
            "RDEV_WEBUI_COMMAND": "sleep 86400",
            "POD_NAME": name,
            "POD_ID": name,
        }
        if peering:
            env["RDEV_PEERING"] = peering
            env["RDEV_PEERING_LIFETIME"] = f"{self.a.lifetime}s"
        op = OperatorProcess(
            kubeconfig, "", self.work / f"{name}.log", label=name, env_extra=env
        ).start()
        replica = Replica(name, shard, count, op, role)
        self.replicas.append(replica)
        return replica

    async def stop_replicas(self) -> None:
        for r in self.replicas:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(r.op.stop)
        self.replicas = []

    @staticmethod
    async def scrape(r: Replica) -> dict[str, Any]:
        text = await r.op.metrics()
        st = proc_status(r.op.pid)
        events = parse_labeled(text, "rdev_watch_events_total", "kind")
        return {
            "t": now(),
            "watch_events": {k: int(v) for k, v in sorted(events.items())},
            "sessions_held": int(sum(parse_labeled(text, "rdev_sessions", "phase").values())),
            "acting": sum(parse_labeled(text, "rdev_active", "shard").values()) >= 1,
            "rss_mb": round(st["rss_mb"], 1),
            "hwm_mb": round(st["hwm_mb"], 1),
            "cpu_s": st["cpu_s"],
        }

    async def wait_idle(self, replicas: list[Replica], timeout: float = 120) -> None:
        """Until every live replica used under 5 % of a core over 2 s (bounded)."""
        deadline = time.monotonic() + timeout
        live = [r for r in replicas if r.op.alive()]
        while time.monotonic() < deadline:
            first = [proc_status(r.op.pid)["cpu_s"] for r in live]
            await asyncio.sleep(2.0)
            second = [proc_status(r.op.pid)["cpu_s"] for r in live]
            if all((b - a) / 2.0 < 0.05 for a, b in zip(first, second, strict=True)):
                return
        log.warning("replicas not idle after %.0f s", timeout)

    # A layout ------------------------------------------------------------------------
    async def burst(
        self,
        specs: list[Spec],
        on_tick: Callable[[dict[str, float]], Any] | None = None,
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Create every Session; (create times, Active times) once all are Active."""
        assert self.admin is not None and self.tracker is not None
        admin, tracker = self.admin, self.tracker
        w = tracker.waiter([s.name for s in specs], is_active)
        created: dict[str, float] = {}
        sem = asyncio.Semaphore(32)

        async def create(s: Spec) -> None:
            async with sem:
                created[s.name] = now()
                await admin.request(
                    "POST",
                    f"/apis/{GROUP}/{VERSION}/namespaces/{s.ns}/{PLURAL}",
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "Session",
                        "metadata": {"name": s.name},
                        "spec": {"project": s.pod, "newBranch": f"bench/{s.name}"},
                    },
                )

        creating = asyncio.ensure_future(asyncio.gather(*(create(s) for s in specs)))
        names = {s.name for s in specs}
        deadline = time.monotonic() + self.a.timeout
        try:
            while not w.done.is_set():
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{len(w.pending)} of {len(specs)} Sessions not Active after"
                        f" {self.a.timeout:.0f} s"
                    )
                if creating.done():
                    creating.result()  # raises a failed create
                failed = [
                    o for n, o in tracker.objects.items() if n in names and phase(o) == "Failed"
                ]
                if failed:
                    status = failed[0].get("status") or {}
                    raise RuntimeError(
                        f"Session {failed[0]['metadata']['name']} failed: {status.get('message')}"
                    )
                if on_tick:
                    await on_tick(w.stamps)
                await asyncio.sleep(0.2)
            await creating
        finally:
            if w in tracker.waiters:
                tracker.waiters.remove(w)
            if not creating.done():
                creating.cancel()
        return created, dict(w.stamps)

    async def delete(self, specs: list[Spec]) -> float:
        """Delete through the operator (its finalizer removes the worktree); the time it took."""
        assert self.admin is not None and self.tracker is not None
        admin = self.admin
        w = self.tracker.waiter([s.name for s in specs], gone)
        start = now()
        sem = asyncio.Semaphore(32)

        async def one(s: Spec) -> None:
            async with sem:
                await admin.request(
                    "DELETE",
                    f"/apis/{GROUP}/{VERSION}/namespaces/{s.ns}/{PLURAL}/{s.name}",
                    allow=(404,),
                )

        await asyncio.gather(*(one(s) for s in specs))
        stamps = await self.tracker.wait(w, self.a.timeout)
        if len(stamps) < len(specs):
            raise RuntimeError(f"{len(specs) - len(stamps)} Sessions not deleted in time")
        return now() - start

    async def layout(
        self,
        label: str,
        tag: str,
        replicas: list[Replica],
        *,
        delete: bool,
        on_tick: Callable[[dict[str, float]], Any] | None = None,
    ) -> dict[str, Any]:
        specs = self.specs(tag)
        for r in replicas:
            r.before = await self.scrape(r)
            r.base = proc_status(r.op.pid)
        start = now()
        created, active = await self.burst(specs, on_tick)
        all_active = max(active.values()) - min(created.values())
        await self.wait_idle(replicas)
        for r in replicas:
            if r.op.alive():
                r.after = await self.scrape(r)
        deleted_s = await self.delete(specs) if delete else None
        await asyncio.sleep(2.0)  # the audit log's last lines
        end = now()
        latencies = sorted(active[s.name] - created[s.name] for s in specs)
        result: dict[str, Any] = {
            "layout": label,
            "sessions": len(specs),
            "namespaces": len(self.spaces),
            "time_to_all_active_s": round(all_active, 2),
            "to_active_p50_s": round(statistics.median(latencies), 2),
            "to_active_p99_s": round(
                latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2
            ),
            "throughput_per_s": round(len(specs) / all_active, 2),
            "delete_s": round(deleted_s, 2) if deleted_s is not None else None,
            "replicas": [self.replica_row(r, replicas) for r in replicas],
        }
        async with self.audit_lock:
            await asyncio.to_thread(self.audit.read)
            result["handling"] = self.handling(specs, replicas, start, end)
        return result

    @staticmethod
    def replica_row(r: Replica, replicas: list[Replica]) -> dict[str, Any]:
        after = r.after or r.before
        held = after.get("sessions_held", 0)
        events = sum(after.get("watch_events", {}).values())
        all_events = sum(
            sum((x.after or x.before).get("watch_events", {}).values()) for x in replicas
        )
        all_held = sum((x.after or x.before).get("sessions_held", 0) for x in replicas)
        grew = after.get("rss_mb", 0.0) - r.before.get("rss_mb", 0.0)
        return {
            "replica": r.name,
            "role": r.role,
            "shard": f"{r.shard}/{r.count}",
            "user_agent": r.agent or "(the client's own)",
            "killed": bool(r.killed_at),
            "watch_events": events,
            "watch_events_by_kind": after.get("watch_events", {}),
            "events_share_pct": round(100 * events / all_events, 1) if all_events else 0.0,
            "sessions_held": held,
            "held_share_pct": round(100 * held / all_held, 1) if all_held else 0.0,
            "rss_before_mb": r.before.get("rss_mb"),
            "rss_idle_mb": after.get("rss_mb"),
            "hwm_mb": after.get("hwm_mb"),
            "kb_per_session": round(grew * 1024 / held, 1) if held and r.after else None,
            "cpu_s": round(after.get("cpu_s", 0.0) - r.before.get("cpu_s", 0.0), 2),
        }

    # Attribution from the audit log ---------------------------------------------------
    def handling(
        self, specs: list[Spec], replicas: list[Replica], start: float, end: float
    ) -> dict[str, Any]:
        """Who wrote to each Session and its children, from the API server's audit log."""
        users = {r.user: r for r in replicas}
        reqs = [q for q in self.audit.requests.values() if q.user in users and start <= q.t < end]
        by_pod = {(s.ns, s.pod): s.name for s in specs}
        mine = {(s.ns, s.name) for s in specs}

        def session_of(q: AuditRequest) -> str | None:
            if q.resource == "sessions":
                name = q.name
            elif q.resource == "events":
                kind, _, name = q.subject.partition("/")
                if kind == "Pod":
                    return by_pod.get((q.namespace, name))
            elif q.resource == "pods":
                return by_pod.get((q.namespace, q.name))
            elif q.resource in SUFFIXES:
                name = q.name.removesuffix(SUFFIXES[q.resource])
            elif q.resource in CREDENTIAL_KINDS:
                name = q.name.removesuffix("-credential")
            else:
                return None
            return name if (q.namespace, name) in mine else None

        per: dict[str, dict[str, Any]] = {
            s.name: {"writers": set(), "shards": set(), "agents": set(), "writes": 0,
                     "execs": Counter(), "checkouts": Counter(), "active_at": None,
                     "active_by": set(), "late": 0}
            for s in specs
        }  # fmt: skip
        for q in sorted(reqs, key=lambda q: q.t):
            if not (q.is_write or q.is_exec):
                continue
            name = session_of(q)
            if name is None:
                continue
            rec, r = per[name], users[q.user]
            rec["writers"].add(r.name)
            rec["shards"].add(r.shard)
            rec["agents"].add(q.user_agent.split(" ")[0])
            if q.is_exec:
                rec["execs"][r.name] += 1
                if CHECKOUT in q.command:
                    rec["checkouts"][r.name] += 1
                    if rec["active_at"] is not None:
                        rec["late"] += 1
            else:
                rec["writes"] += 1
                if "phase=Active" in q.detail:
                    rec["active_by"].add(r.name)
                    if rec["active_at"] is None:
                        rec["active_at"] = q.t
        double = sorted(n for n, rec in per.items() if len(rec["shards"]) > 1)
        unhandled = sorted(n for n, rec in per.items() if not rec["writers"])
        sharded = replicas[0].count > 1
        wrong = sorted(
            s.name
            for s in specs
            if sharded and per[s.name]["writers"] and per[s.name]["shards"] != {s.shard}
        )
        agents_ok = all(
            q.user_agent.startswith(users[q.user].agent.split("/")[0])
            for q in reqs
            if users[q.user].agent
        )
        twice = sorted(n for n, rec in per.items() if sum(rec["checkouts"].values()) > 1)
        # Done twice: a checkout exec after the Session's Active status was written, or
        # Active written by two replicas. A Session whose leader died between its checkout
        # and that write is checked out again by the standby (the script adopts the
        # worktree the Session placed itself): handed over, not done twice.
        redone = sorted(n for n, rec in per.items() if rec["late"] or len(rec["active_by"]) > 1)
        exec_counts = Counter(sum(rec["execs"].values()) for rec in per.values())
        write_counts = Counter(rec["writes"] for rec in per.values())
        handed = sorted(n for n, rec in per.items() if len(rec["writers"]) > 1)
        twice_not_handed = sorted(set(twice) - set(handed))
        return {
            "requests_attributed": len(reqs),
            "double_handled": len(double),
            "double_handled_sessions": double[:50],
            "unhandled": len(unhandled),
            "unhandled_sessions": unhandled[:50],
            "outside_own_shard": len(wrong),
            "user_agent_names_the_shard": agents_ok,
            "checkout_execs_twice": len(twice),
            "checkout_execs_twice_sessions": twice[:50],
            "checkout_execs_twice_not_handed_over": len(twice_not_handed),
            "done_twice": len(redone),
            "done_twice_sessions": redone[:50],
            "written_by_two_replicas_of_a_shard": len(handed),
            "written_by_two_replicas_sessions": handed[:50],
            "execs_per_session": {str(k): v for k, v in sorted(exec_counts.items())},
            "writes_per_session": {str(k): v for k, v in sorted(write_counts.items())},
        }

    # The three layouts ----------------------------------------------------------------
    async def single(self) -> dict[str, Any]:
        r = await self.start_replica("single-0", 0, 1, "replica")
        try:
            await r.op.wait_healthy(timeout=120)
            await self.wait_idle([r])
            return await self.layout("1 replica", "a", [r], delete=True)
        finally:
            await self.stop_replicas()

    async def sharded(self) -> dict[str, Any]:
        n = self.a.shards
        reps = [await self.start_replica(f"shard-{i}", i, n, "replica") for i in range(n)]
        try:
            for r in reps:
                await r.op.wait_healthy(timeout=120)
            await self.wait_idle(reps)
            return await self.layout(f"{n} shards", "b", reps, delete=True)
        finally:
            await self.stop_replicas()

    async def failover(self, setup: dict[str, Any]) -> dict[str, Any]:
        assert self.admin is not None
        a, n = self.a, self.a.shards
        base = self.prefix.rstrip("-")
        self.peerings = [shards.peering_name(base, i, n) for i in range(n)]
        for name in self.peerings:
            await self.admin.request(
                "POST",
                "/apis/kopf.dev/v1/clusterkopfpeerings",
                {
                    "apiVersion": "kopf.dev/v1",
                    "kind": "ClusterKopfPeering",
                    "metadata": {"name": name},
                },
                allow=(409,),
            )
        try:
            leaders = [
                await self.start_replica(f"shard-{i}-a", i, n, "leader", base) for i in range(n)
            ]
            for r in leaders:
                await r.op.wait_healthy(timeout=120)
            await self.until(lambda: self.all_acting(leaders), 90, "every leader to act")
            # Priority comes from the start time in seconds: the older replica leads.
            second = int(time.time())
            while int(time.time()) <= second:
                await asyncio.sleep(0.05)
            standbys = [
                await self.start_replica(f"shard-{i}-b", i, n, "standby", base) for i in range(n)
            ]
            for r in standbys:
                await r.op.wait_healthy(timeout=120)
            await self.until(lambda: self.peers_registered(2), 90, "both replicas in every peering")
            for r in standbys:
                if (await self.scrape(r))["acting"]:
                    raise RuntimeError(f"standby {r.name} acts beside its leader")
            victim_shard = max(range(n), key=lambda i: setup["sessions_per_shard"][i])
            leader, standby = leaders[victim_shard], standbys[victim_shard]
            victims = {s.name for s in self.specs("c") if s.shard == victim_shard}
            kill_when = max(1, int(a.kill_at * len(victims)))
            took: dict[str, Any] = {}

            async def tick(stamps: dict[str, float]) -> None:
                if leader.killed_at:
                    if "acting_s" not in took and await self.acting(standby):
                        took["acting_s"] = now() - leader.killed_at
                    return
                done = sum(1 for n_ in stamps if n_ in victims)
                if done >= kill_when:
                    with contextlib.suppress(OSError):  # its figures, if it answers in time
                        leader.after = await self.scrape(leader)
                    assert leader.op.proc is not None
                    leader.op.proc.send_signal(signal.SIGKILL)
                    leader.killed_at = now()
                    took["active_at_kill"] = done
                    print(
                        f"  killed {leader.name} (shard {victim_shard}) with {done} of"
                        f" {len(victims)} of its Sessions Active",
                        flush=True,
                    )

            result = await self.layout(
                f"{n} shards x 2, leader of shard {victim_shard} killed",
                "c",
                leaders + standbys,
                delete=False,
                on_tick=tick,
            )
            if not leader.killed_at:
                raise RuntimeError("the burst ended before the leader was killed")
            if "acting_s" not in took:
                await self.until(
                    lambda: self.acting(standby), a.lifetime + 60, "the standby to act"
                )
                took["acting_s"] = now() - leader.killed_at
            async with self.audit_lock:
                first = min(
                    (
                        q.t
                        for q in self.audit.requests.values()
                        if q.user == standby.user
                        and q.t >= leader.killed_at
                        and (q.is_write or q.is_exec)
                        and q.resource in ("sessions", "pods", "events", "services")
                    ),
                    default=None,
                )
            resumed = logged_after(
                standby.op.log_path, "resuming: this instance acts", leader.killed_at
            )
            # kopf's own watches resume first; the operator's gate then lists the shard again
            # (``resuming`` is logged before that list), and only then acts.
            kopf = logged_after(standby.op.log_path, "Resuming operations", leader.killed_at)
            limit = a.lifetime + 5
            result["failover"] = {
                "killed": leader.name,
                "standby": standby.name,
                "shard": victim_shard,
                "shard_sessions": len(victims),
                "active_at_kill": took["active_at_kill"],
                "peering_lifetime_s": a.lifetime,
                "standby_resuming_logged_after_s": round(resumed - leader.killed_at, 2)
                if resumed
                else None,
                "standby_kopf_resumed_after_s": round(kopf - leader.killed_at, 2) if kopf else None,
                "standby_acting_after_s": round(took["acting_s"], 2),
                "standby_first_write_after_s": round(first - leader.killed_at, 2)
                if first
                else None,
                "limit_s": limit,
                "within_limit": took["acting_s"] <= limit
                and (first is not None and first - leader.killed_at <= limit),
                "all_active": True,  # burst() raises otherwise
            }
            return result
        finally:
            await self.stop_replicas()
            for name in self.peerings:
                with contextlib.suppress(Exception):
                    await self.admin.request(
                        "DELETE", f"/apis/kopf.dev/v1/clusterkopfpeerings/{name}", allow=(404,)
                    )

    async def acting(self, r: Replica) -> bool:
        try:
            return bool((await self.scrape(r))["acting"])
        except OSError:
            return False

    async def all_acting(self, reps: list[Replica]) -> bool:
        return all([await self.acting(r) for r in reps])

    async def peers_registered(self, count: int) -> bool:
        assert self.admin is not None
        for name in self.peerings:
            obj = await self.admin.request("GET", f"/apis/kopf.dev/v1/clusterkopfpeerings/{name}")
            if len((obj or {}).get("status") or {}) < count:
                return False
        return True

    @staticmethod
    async def until(check: Callable[[], Any], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
            await asyncio.sleep(0.2)

    async def teardown(self) -> None:
        """Stop every replica, the tracker; delete the namespaces, the ClusterExec, the work."""
        await self.stop_replicas()
        if self.audit_task:
            self.audit_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.audit_task
        if self.tracker:
            await self.tracker.stop()
        fixtures.kill_webuis(self.work)
        if self.admin:
            admin = self.admin
            for ns in self.spaces:
                with contextlib.suppress(Exception):
                    await fixtures.delete_namespace(admin, ns)
            with contextlib.suppress(Exception):
                await admin.request(
                    "DELETE",
                    f"/apis/kwok.x-k8s.io/v1alpha1/clusterexecs/{self.prefix.rstrip('-')}",
                    allow=(404,),
                )
            await admin.close()
        for log_file in self.work.glob("*.log"):  # the replicas' logs outlive the run
            shutil.copy(log_file, RESULTS / f"shards-{log_file.name}")
        await asyncio.to_thread(shutil.rmtree, self.work, True)


def logged_after(path: Path, text: str, after: float) -> float | None:
    """When the operator first logged ``text`` after ``after`` (its log's local timestamps)."""
    for line in path.read_text(errors="replace").splitlines():
        if text in line and line.startswith("["):
            stamp = datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if stamp >= after:
                return stamp
    return None


def capacity(
    single: dict[str, Any], sharded: dict[str, Any], setup: dict[str, Any]
) -> dict[str, Any]:
    """Sessions per replica at the targets, and shards needed, from the measured figures.

    Three readings of "fixed + per Session" (every figure with one project pod per Session,
    watched from before the burst): (1) a least-squares line through the idle RSS of the
    single replica and of each shard against the Sessions each held (five replicas, each
    after a burst of its own size); (2) the single replica's growth over its burst per
    Session, on top of the largest shard's RSS before its burst; (3) the target's 25 KB per
    Session on top of that same RSS. A replica then holds (150 MB - fixed) / per-Session;
    N shards hold N times that when the namespaces spread evenly; with the measured spread
    the largest shard fills first, so they hold that divided by its share."""
    reps = single["replicas"] + sharded["replicas"]
    points = [(r["sessions_held"], r["rss_idle_mb"]) for r in reps if r["rss_idle_mb"]]
    fit = statistics.linear_regression([p[0] for p in points], [p[1] for p in points])
    before = max(r["rss_before_mb"] for r in sharded["replicas"])
    n = setup["shards"]
    skew = max(setup["sessions_per_shard"]) * n / max(sum(setup["sessions_per_shard"]), 1)
    out: dict[str, Any] = {
        "fit_fixed_mb": round(fit.intercept, 1),
        "fit_kb_per_session": round(fit.slope * 1024, 1),
        "fit_points": points,
        "single_growth_kb_per_session": single["replicas"][0]["kb_per_session"],
        "rss_before_burst_mb": before,
        "largest_shard_over_even": round(skew, 2),
        "rows": [],
    }
    readings = (
        ("line through 5 replicas", fit.intercept, fit.slope * 1024),
        (
            "single replica's growth, pods not counted",
            before,
            out["single_growth_kb_per_session"] or 0.0,
        ),
        ("target 25 KB/Session", before, TARGET_KB_PER_SESSION),
    )
    for label, fixed, kb in readings:
        per_replica = (
            int((TARGET_RSS_MB - fixed) * 1024 / kb) if kb > 0 and fixed < TARGET_RSS_MB else 0
        )
        row: dict[str, Any] = {
            "label": label,
            "fixed_mb": round(fixed, 1),
            "per_session_kb": round(kb, 1),
            "sessions_per_replica": per_replica,
        }
        for total in CAPACITY_FOR:
            row[f"shards_for_{total}"] = math.ceil(total / per_replica) if per_replica else None
            row[f"shards_for_{total}_measured_spread"] = (
                math.ceil(total * skew / per_replica) if per_replica else None
            )
        out["rows"].append(row)
    return out


def table(result: dict[str, Any], single_rss: float | None) -> str:
    lines = [
        f"{result['layout']}: {result['sessions']} Sessions in {result['namespaces']} namespaces,"
        f" all Active in {result['time_to_all_active_s']} s (p50 {result['to_active_p50_s']} s,"
        f" p99 {result['to_active_p99_s']} s); deleted in {result['delete_s']} s",
        "  replica       role     events (share)   held (share)  RSS before/idle MB /single CPU s",
    ]
    for r in result["replicas"]:
        ratio = f"{r['rss_idle_mb'] / single_rss:.2f}" if single_rss and r["rss_idle_mb"] else "  -"
        lines.append(
            f"  {r['replica']:<13} {r['role']:<8} {r['watch_events']:>7}"
            f" ({r['events_share_pct']:>5}%) {r['sessions_held']:>6} ({r['held_share_pct']:>5}%)"
            f"  {r['rss_before_mb']:>7} / {r['rss_idle_mb'] or '-':>6}   {ratio:>5}"
            f"  {r['cpu_s']:>6}" + ("  (killed)" if r["killed"] else "")
        )
    h = result["handling"]
    lines.append(
        f"  audit: {h['requests_attributed']} requests; double-handled {h['double_handled']},"
        f" unhandled {h['unhandled']}, outside its shard {h['outside_own_shard']},"
        f" checkout exec twice {h['checkout_execs_twice']} (handed over"
        f" {h['written_by_two_replicas_of_a_shard']}), done twice {h['done_twice']};"
        f" execs/Session {h['execs_per_session']}"
    )
    if "failover" in result:
        f = result["failover"]
        lines.append(
            f"  failover: {f['killed']} SIGKILLed with {f['active_at_kill']}/{f['shard_sessions']}"
            f" Active; {f['standby']} logged resuming after {f['standby_resuming_logged_after_s']}"
            f" s (kopf {f['standby_kopf_resumed_after_s']} s), acting after"
            f" {f['standby_acting_after_s']} s, first write"
            f" after {f['standby_first_write_after_s']} s (limit {f['limit_s']} s:"
            f" {'PASS' if f['within_limit'] else 'MISS'}); all Active: {f['all_active']}"
        )
    return "\n".join(lines)


def print_capacity(cap: dict[str, Any]) -> None:
    print(
        f"capacity: Sessions per replica at {TARGET_RSS_MB:.0f} MB and shards for"
        f" {', '.join(f'{t:,}' for t in CAPACITY_FOR)} (largest shard"
        f" {cap['largest_shard_over_even']}x an even share):"
    )
    for row in cap["rows"]:
        print(
            f"  {row['label']}: {row['fixed_mb']} MB + {row['per_session_kb']} KB/Session:"
            f" {row['sessions_per_replica']} per replica; shards "
            + ", ".join(str(row[f"shards_for_{t}"]) for t in CAPACITY_FOR)
            + " (measured spread: "
            + ", ".join(str(row[f"shards_for_{t}_measured_spread"]) for t in CAPACITY_FOR)
            + ")"
        )


async def main(a: argparse.Namespace) -> int:
    bench = Bench(a)
    started = time.monotonic()
    out: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        if not bench.audit.available:
            raise RuntimeError(
                f"no audit log at {bench.audit.path}: start the cluster with hack/bench.sh"
            )
        setup = await bench.setup()
        out["setup"] = setup
        out["layouts"] = layouts = []
        single_rss = None
        if "single" in a.layouts:
            single = await bench.single()
            single_rss = single["replicas"][0]["rss_idle_mb"]
            print(table(single, single_rss), flush=True)
            layouts.append(single)
        if "sharded" in a.layouts:
            sharded = await bench.sharded()
            print(table(sharded, single_rss), flush=True)
            layouts.append(sharded)
            if "single" in a.layouts:
                out["capacity"] = capacity(single, sharded, setup)
        if "failover" in a.layouts:
            failover = await bench.failover(setup)
            print(table(failover, single_rss), flush=True)
            layouts.append(failover)
    finally:
        await bench.teardown()
        out["duration_s"] = round(time.monotonic() - started, 1)
        if a.out and out.get("layouts"):
            Path(a.out).write_text(json.dumps(out, indent=2, default=sorted) + "\n")
    if "capacity" in out:
        print_capacity(out["capacity"])
    print(f"run: {out['duration_s']} s in all", flush=True)
    failed = [
        layout["layout"]
        for layout in out["layouts"]
        if layout["handling"]["double_handled"]
        or layout["handling"]["unhandled"]
        or layout["handling"]["done_twice"]
        or layout.get("failover", {}).get("within_limit") is False
    ]
    if failed:
        print(f"FAILED: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster-dir", default=str(ROOT / ".cluster-bench"))
    parser.add_argument("--sessions", type=int, default=8000, help="Active Sessions in the burst")
    parser.add_argument("--namespaces", type=int, default=80)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument(
        "--boundaries",
        choices=("planned", "equal"),
        default="planned",
        help="RDEV_SHARD_BOUNDARIES as `kubectl session shards` plans them, or equal slices",
    )
    parser.add_argument("--lifetime", type=int, default=15, help="RDEV_PEERING_LIFETIME, seconds")
    parser.add_argument(
        "--kill-at",
        type=float,
        default=0.4,
        help="kill the leader at this share of its shard Active",
    )
    parser.add_argument(
        "--layouts",
        type=lambda text: set(text.split(",")),
        default={"single", "sharded", "failover"},
        help="which to run, comma-separated: single,sharded,failover (the capacity table"
        " needs the first two)",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600, help="bound of each burst and delete"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "shards.json"))
    raise SystemExit(asyncio.run(main(parser.parse_args())))

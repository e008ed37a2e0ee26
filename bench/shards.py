"""One replica against N shards, serving the same Sessions spread over many namespaces.

A first measurement, not part of ``make test`` or ``make bench``: it needs a control plane
with the ShardedListAndWatch gate (hack/controlplane.sh enables it) and runs, in turn,

1. one cluster-wide replica (RDEV_SHARDS=1), and
2. N cluster-wide replicas, RDEV_SHARDS=N, RDEV_SHARD=0..N-1,

each against a burst of Sessions created across all namespaces at once (one project pod
and one Session per project). Per replica it reports the watch events received
(rdev_watch_events_total), the Sessions held (rdev_sessions), RSS and CPU seconds over
the burst; across the run, the time until every Session is Active and how many
Sessions had their status written by more than one shard (managedFields: the manager is
the shard's user agent). Then it deletes the Sessions, waits until they are gone, and
stops the replicas.

    .venv/bin/python bench/shards.py --kubeconfig .cluster/kubeconfig \\
        --namespaces 40 --per-namespace 5 --shards 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import fixtures
from kubeapi import Kube
from operator_proc import OperatorProcess, parse_labeled, proc_status

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = "/apis/rdev.io/v1alpha1/sessions"
MANAGER = "rdev-session-operator"


def body(name: str, project: str) -> dict[str, Any]:
    return {
        "apiVersion": "rdev.io/v1alpha1",
        "kind": "Session",
        "metadata": {"name": name},
        "spec": {"project": project, "newBranch": f"bench/{name}"},
    }


async def ours(admin: Kube, prefix: str) -> list[dict[str, Any]]:
    listing = await admin.request("GET", SESSIONS)
    assert listing is not None
    return [s for s in listing["items"] if s["metadata"]["namespace"].startswith(prefix)]


async def wait_until(check: Any, timeout: float, what: str) -> float:
    """Poll ``check`` (async, truthy when done) once a second; the time it took.

    A Session that fails fails the run: its reason is in the message."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(1.0)
    return time.monotonic() - start


def writers(session: dict[str, Any]) -> set[str]:
    """The shards' user agents that wrote this Session's status."""
    return {
        entry["manager"]
        for entry in session["metadata"].get("managedFields") or []
        if entry.get("subresource") == "status" and entry["manager"].startswith(f"{MANAGER}-")
    }


async def run_layout(
    a: argparse.Namespace,
    admin: Kube,
    work: Path,
    prefix: str,
    spaces: list[str],
    count: int,
) -> dict[str, Any]:
    label = f"{count} shard{'s' if count > 1 else ''}"
    ops = [
        OperatorProcess(
            Path(a.kubeconfig),
            "",  # cluster-wide, as installed
            work / f"operator-{count}-{i}.log",
            label=f"{label} #{i}",
            env_extra={
                "RDEV_SHARDS": str(count),
                "RDEV_SHARD": str(i),
                "RDEV_WEBUI_COMMAND": "sleep 86400",
                "POD_NAME": f"bench-shard-{i}",
            },
        ).start()
        for i in range(count)
    ]
    try:
        for op in ops:
            await op.wait_healthy(timeout=120)
        base = [proc_status(op.pid) for op in ops]
        total = len(spaces) * a.per_namespace
        sem = asyncio.Semaphore(32)

        async def create(ns: str, j: int) -> None:
            async with sem:
                await admin.request(
                    "POST",
                    f"/apis/rdev.io/v1alpha1/namespaces/{ns}/sessions",
                    body(f"l{count}-s{j}", f"p{j}"),
                )

        started = time.monotonic()
        await asyncio.gather(*(create(ns, j) for ns in spaces for j in range(a.per_namespace)))

        async def all_active() -> bool:
            items = await ours(admin, prefix)
            phases = [(s.get("status") or {}).get("phase") for s in items]
            if "Failed" in phases:
                failed = next(s for s in items if (s.get("status") or {}).get("phase") == "Failed")
                raise RuntimeError(f"a Session failed: {failed['status'].get('message')}")
            return phases.count("Active") >= total

        await wait_until(all_active, a.timeout, f"{total} Sessions Active")
        to_active = time.monotonic() - started
        replicas = []
        for op, before in zip(ops, base, strict=True):
            text = await op.metrics()
            now = proc_status(op.pid)
            replicas.append(
                {
                    "replica": op.label,
                    "watch_events": sum(
                        parse_labeled(text, "rdev_watch_events_total", "kind").values()
                    ),
                    "sessions_held": sum(parse_labeled(text, "rdev_sessions", "phase").values()),
                    "rss_mb": round(now["rss_mb"], 1),
                    "cpu_s": round(now["cpu_s"] - before["cpu_s"], 2),
                }
            )
        items = await ours(admin, prefix)
        double = sum(1 for s in items if len(writers(s)) > 1)
        unhandled = sum(1 for s in items if count > 1 and not writers(s))

        # Clean up through the operators (their finalizers remove the worktrees).
        async def delete(s: dict[str, Any]) -> None:
            async with sem:
                meta = s["metadata"]
                await admin.request(
                    "DELETE",
                    f"/apis/rdev.io/v1alpha1/namespaces/{meta['namespace']}/sessions/{meta['name']}",
                    allow=(404,),
                )

        await asyncio.gather(*(delete(s) for s in items))

        async def all_gone() -> bool:
            return not await ours(admin, prefix)

        await wait_until(all_gone, a.timeout, "every Session deleted")
        return {
            "layout": label,
            "sessions": total,
            "namespaces": len(spaces),
            "time_to_all_active_s": round(to_active, 2),
            "double_handled": double,
            "unhandled": unhandled,
            "replicas": replicas,
        }
    finally:
        for op in ops:
            await asyncio.to_thread(op.stop)


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['layout']}: {result['sessions']} Sessions in {result['namespaces']} namespaces,"
        f" all Active in {result['time_to_all_active_s']} s; double-handled"
        f" {result['double_handled']}, unhandled {result['unhandled']}",
        "  replica        watch events  held  share  RSS MB  CPU s",
    ]
    events = sum(r["watch_events"] for r in result["replicas"]) or 1
    for r in result["replicas"]:
        lines.append(
            f"  {r['replica']:<14} {r['watch_events']:>12.0f} {r['sessions_held']:>5.0f}"
            f" {100 * r['watch_events'] / events:>5.0f}% {r['rss_mb']:>7} {r['cpu_s']:>6}"
        )
    return "\n".join(lines)


async def main(a: argparse.Namespace) -> int:
    run_id = time.strftime("%m%d%H%M%S")
    work = Path(a.work).resolve() / run_id
    prefix = f"rs-{run_id}-"
    kubeconfig = Path(a.kubeconfig)
    admin = Kube.from_kubeconfig(kubeconfig, work / "secrets", user_agent="rdev-bench/shards")
    if a.names == "sequential":
        spaces = [f"{prefix}{k:02d}" for k in range(a.namespaces)]
    else:
        spaces = [f"{prefix}{uuid.uuid4().hex[:8]}" for _ in range(a.namespaces)]
    results: list[dict[str, Any]] = []
    try:
        fixtures.install_crd(kubeconfig)
        await fixtures.ensure_service_cidr(admin)  # a preview Service per Active Session
        await asyncio.gather(*(fixtures.create_namespace(admin, ns) for ns in spaces))
        await fixtures.install_cluster_exec(admin, f"rs-{run_id}", spaces, work)
        template = fixtures.make_template(work / "template")
        for ns in spaces:
            pods = [
                fixtures.pod_manifest(
                    f"p{j}", f"p{j}", fixtures.make_repo(template, work / "pods" / f"{ns}-p{j}")
                )
                for j in range(a.per_namespace)
            ]
            await fixtures.create_pods(admin, ns, pods)
        for ns in spaces:
            await fixtures.wait_pods_ready(admin, ns, a.per_namespace, timeout=300)
        for count in (1, a.shards):
            result = await run_layout(a, admin, work, prefix, spaces, count)
            print(table(result), flush=True)
            results.append(result)
        if a.out:
            Path(a.out).write_text(json.dumps(results, indent=2) + "\n")
    finally:
        fixtures.kill_webuis(work)
        await asyncio.gather(*(fixtures.delete_namespace(admin, ns) for ns in spaces))
        await admin.request(
            "DELETE", f"/apis/kwok.x-k8s.io/v1alpha1/clusterexecs/rs-{run_id}", allow=(404,)
        )
        await admin.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", default=str(ROOT / ".cluster" / "kubeconfig"))
    parser.add_argument("--namespaces", type=int, default=40)
    parser.add_argument("--per-namespace", type=int, default=5)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument(
        "--names",
        choices=("random", "sequential"),
        default="random",
        help="namespace suffixes: 8 random hex digits, or 00, 01, ... (FNV-1a barely moves"
        " its high bits for the last characters: sequential names crowd into one shard)",
    )
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--work", default=str(ROOT / ".cluster" / "bench-shards"))
    parser.add_argument("--out", default="", help="write the results as JSON here")
    raise SystemExit(asyncio.run(main(parser.parse_args())))

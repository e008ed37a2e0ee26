"""Side by side: what one exec and one API call cost through each Kubernetes client.

    .venv/bin/python bench/clients.py --kubeconfig .cluster-bench/kubeconfig
    .venv/bin/python bench/clients.py --kubeconfig ... --kr8s-path /tmp/kr8s  # (c) too

The I/O choice of the operator, measured against a running local control plane:

(a) ``kubernetes`` (the official client): ``stream()`` exec and a GET from
    worker threads, a new ApiClient per thread (what the operator did before).
(b) the operator's own client, plain aiohttp (``kube.Kube`` and
    ``podexec.PodExec``, each one session), on one event loop (now; until it,
    kubernetes_asyncio with one shared WsApiClient).
(c) ``kr8s`` (asyncio, httpx): ``Pod.exec`` and ``Api.call_api``, when
    importable (from the venv or from ``--kr8s-path``, a ``pip install
    --target`` directory, so the project's venv needs no new dependency).

It makes a namespace, a kwok ClusterExec that runs execs on this host and one
pod, then runs each client in its own child process (so RSS and CPU are its
own): --execs sequential execs of ``true``, the same with --concurrency in
flight, then --gets GETs of the pod, sequential and concurrent. Per call: wall
time (mean and p99), client CPU (user+system of the whole process, all
threads) and the process's RSS afterwards. Everything it made is deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fixtures
from kubeapi import Kube
from report import percentile

ROOT = Path(__file__).resolve().parents[1]
CONTAINER = "dev"
ARGV = ["true"]
VARIANTS = {
    "official": "(a) kubernetes, stream(), ApiClient per thread",
    "asyncio": "(b) the operator's plain aiohttp client",
    "kr8s": "(c) kr8s asyncio (httpx)",
}


# Child: one client, four workloads ----------------------------------------------
def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Meter:
    """Per-call wall times, and the process's CPU and RSS over a workload."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, float | None]] = {}

    def record(self, name: str, calls: list[float], wall: float, cpu: float) -> None:
        n = max(len(calls), 1)
        self.results[name] = {
            "calls": len(calls),
            "wall_s": round(wall, 3),
            "per_s": round(len(calls) / wall, 1) if wall else None,
            "mean_ms": round(1000 * sum(calls) / n, 2),
            "p99_ms": round(1000 * (percentile(calls, 99) or 0.0), 2),
            "cpu_ms_per_call": round(1000 * cpu / n, 3),
            "rss_mb": round(_rss_mb(), 1),
        }


def run_threads(
    meter: Meter, name: str, fn: Callable[[], None], count: int, concurrency: int
) -> None:
    """``count`` calls of ``fn`` from ``concurrency`` worker threads."""
    calls: list[float] = []
    lock = threading.Lock()

    def one(_: int) -> None:
        t = time.perf_counter()
        fn()
        with lock:
            calls.append(time.perf_counter() - t)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(min(concurrency, 5))))  # warm: connections, thread clients
        calls.clear()
        cpu, wall = _cpu(), time.perf_counter()
        list(pool.map(one, range(count)))
        meter.record(name, calls, time.perf_counter() - wall, _cpu() - cpu)


async def run_tasks(
    meter: Meter, name: str, fn: Callable[[], Awaitable[None]], count: int, concurrency: int
) -> None:
    """``count`` calls of ``fn`` with ``concurrency`` in flight on one event loop."""
    calls: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            t = time.perf_counter()
            await fn()
            calls.append(time.perf_counter() - t)

    await asyncio.gather(*(one() for _ in range(min(concurrency, 5))))  # warm
    calls.clear()
    cpu, wall = _cpu(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    meter.record(name, calls, time.perf_counter() - wall, _cpu() - cpu)


def child_official(a: argparse.Namespace, meter: Meter) -> None:
    from kubernetes import client, config
    from kubernetes.stream import stream

    cfg = client.Configuration()
    config.load_kube_config(config_file=a.kubeconfig, client_configuration=cfg)  # type: ignore[no-untyped-call]
    local = threading.local()

    def core() -> Any:
        if not hasattr(local, "core"):  # stream() patches its ApiClient: one per thread
            local.core = client.CoreV1Api(client.ApiClient(cfg))
        return local.core

    def one_exec() -> None:
        resp = stream(
            core().connect_get_namespaced_pod_exec,
            a.pod,
            a.ns,
            command=ARGV,
            container=CONTAINER,
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
        resp.run_forever(timeout=60)
        rc = resp.returncode
        resp.close()
        if rc != 0:
            raise RuntimeError(f"exec exited {rc}")

    def one_get() -> None:
        resp = core().read_namespaced_pod(a.pod, a.ns, _preload_content=False)
        json.loads(resp.data)

    meter.results["start"] = {"rss_mb": round(_rss_mb(), 1)}
    run_threads(meter, "exec sequential", one_exec, a.execs, 1)
    run_threads(meter, f"exec {a.concurrency} concurrent", one_exec, a.execs, a.concurrency)
    run_threads(meter, "GET sequential", one_get, a.gets, 1)
    run_threads(meter, f"GET {a.concurrency} concurrent", one_get, a.gets, a.concurrency)


async def child_asyncio(a: argparse.Namespace, meter: Meter) -> None:
    import os

    from session_operator.kube import PODS, Kube, api_path, login
    from session_operator.podexec import PodExec

    os.environ["KUBECONFIG"] = a.kubeconfig  # what kube.login reads, as kopf's login does
    info = login()
    execs = PodExec(info, 60.0)
    kube = Kube(info)  # pool of 32, as the operator's with 16 workers

    async def one_exec() -> None:
        result = await execs.run(a.ns, a.pod, CONTAINER, ARGV, step="bench")
        if not result.ok:
            raise RuntimeError(f"exec: {result.describe()}")

    async def one_get() -> None:
        await kube.conn.request("GET", api_path(PODS, a.ns, a.pod))

    meter.results["start"] = {"rss_mb": round(_rss_mb(), 1)}
    await run_tasks(meter, "exec sequential", one_exec, a.execs, 1)
    await run_tasks(meter, f"exec {a.concurrency} concurrent", one_exec, a.execs, a.concurrency)
    await run_tasks(meter, "GET sequential", one_get, a.gets, 1)
    await run_tasks(meter, f"GET {a.concurrency} concurrent", one_get, a.gets, a.concurrency)
    await execs.close()
    await kube.close()


async def child_kr8s(a: argparse.Namespace, meter: Meter) -> None:
    import kr8s.asyncio
    from kr8s.asyncio.objects import Pod

    api = await kr8s.asyncio.api(kubeconfig=a.kubeconfig)
    pod = await Pod.get(a.pod, namespace=a.ns, api=api)

    async def one_exec() -> None:
        done = await pod.exec(ARGV, container=CONTAINER, check=False, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"exec exited {done.returncode}")

    async def one_get() -> None:
        async with api.call_api("GET", version="v1", namespace=a.ns, url=f"pods/{a.pod}") as r:
            r.json()

    meter.results["start"] = {"rss_mb": round(_rss_mb(), 1)}
    await run_tasks(meter, "exec sequential", one_exec, a.execs, 1)
    await run_tasks(meter, f"exec {a.concurrency} concurrent", one_exec, a.execs, a.concurrency)
    await run_tasks(meter, "GET sequential", one_get, a.gets, 1)
    await run_tasks(meter, f"GET {a.concurrency} concurrent", one_get, a.gets, a.concurrency)


def child(a: argparse.Namespace) -> int:
    meter = Meter()
    if a.child == "official":
        child_official(a, meter)
    elif a.child == "asyncio":
        asyncio.run(child_asyncio(a, meter))
    else:
        asyncio.run(child_kr8s(a, meter))
    print(json.dumps(meter.results))
    return 0


# Parent: the pod, a child per client, the table ---------------------------------
def run_child(a: argparse.Namespace, variant: str, ns: str, pod: str) -> dict[str, Any]:
    env = dict(os.environ)
    paths = [str(ROOT / "operator"), str(ROOT / "bench")]
    if variant == "kr8s" and a.kr8s_path:
        paths.append(a.kr8s_path)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", variant]
    argv += ["--kubeconfig", a.kubeconfig, "--ns", ns, "--pod", pod]
    argv += ["--execs", str(a.execs), "--gets", str(a.gets), "--concurrency", str(a.concurrency)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=a.timeout)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]}
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def kr8s_available(path: str | None) -> bool:
    code = "import kr8s.asyncio"
    env = {**os.environ, "PYTHONPATH": path or ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    return done.returncode == 0


def table(results: dict[str, dict[str, Any]]) -> str:
    head = ("client", "workload", "calls/s", "mean ms", "p99 ms", "CPU ms/call", "RSS MB")
    rows: list[tuple[str, ...]] = [head]
    for variant, res in results.items():
        label = VARIANTS[variant]
        if "error" in res:
            rows.append((label, f"failed: {res['error']}", "", "", "", "", ""))
            continue
        rows.append((label, "(clients made)", "", "", "", "", str(res["start"]["rss_mb"])))
        for name, r in res.items():
            if name == "start":
                continue
            rows.append(
                ("", name, str(r["per_s"]), str(r["mean_ms"]), str(r["p99_ms"]),
                 str(r["cpu_ms_per_call"]), str(r["rss_mb"]))
            )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def parent(a: argparse.Namespace) -> int:
    run_id = time.strftime("%m%d%H%M%S")
    ns, pod = f"rb-clients-{run_id}", "c-0000"
    work = Path(tempfile.mkdtemp(prefix="rdev-clients-"))
    admin = Kube.from_kubeconfig(Path(a.kubeconfig), work / "secrets", user_agent="rdev-bench")
    results: dict[str, dict[str, Any]] = {}
    try:
        await fixtures.create_namespace(admin, ns)
        await fixtures.install_cluster_exec(admin, ns, [ns], work)
        (work / "repo").mkdir()
        (work / "sessions").mkdir()
        paths = {"repo": str(work / "repo"), "sessions": str(work / "sessions")}
        await fixtures.create_pods(admin, ns, [fixtures.pod_manifest(pod, None, paths)])
        await fixtures.wait_pods_ready(admin, ns, 1, timeout=120)
        variants = ["official", "asyncio"]
        if kr8s_available(a.kr8s_path):
            variants.append("kr8s")
        else:
            print("kr8s is not importable (pip install --target DIR kr8s; --kr8s-path DIR)")
        for variant in variants:
            print(f"{VARIANTS[variant]} ...", flush=True)
            results[variant] = await asyncio.to_thread(run_child, a, variant, ns, pod)
    finally:
        await admin.request(
            "DELETE", f"/apis/kwok.x-k8s.io/v1alpha1/clusterexecs/{ns}", allow=(404,)
        )
        await fixtures.delete_namespace(admin, ns)
        await admin.close()
    print()
    print(table(results))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all("error" not in r for r in results.values()) else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--execs", type=int, default=200, help="execs of `true` per workload")
    p.add_argument("--gets", type=int, default=500, help="GETs of the pod per workload")
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--kr8s-path", help="a `pip install --target` directory holding kr8s")
    p.add_argument("--timeout", type=float, default=900, help="bound on each client's run")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    p.add_argument("--ns", help=argparse.SUPPRESS)
    p.add_argument("--pod", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        return child(a)
    return asyncio.run(parent(a))


if __name__ == "__main__":
    raise SystemExit(main())

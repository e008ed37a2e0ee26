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

import report
from harness import MODES, RESULTS, ROOT, Harness, log
from kubeapi import now
from phases import (
    floor_lifecycle,
    held,
    idle,
    operator_lifecycle,
    queue,
    resume,
    setup,
    single,
)
from result import BenchResult


async def run(h: Harness) -> int:
    """Every phase in turn, then the JSON, the plot and the table (also after a failure)."""
    a = h.args
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(f"bench {h.name}: N={a.n}, idle={a.idle}, namespace {h.ns}", flush=True)
    r = BenchResult(n=a.n, loadavg_at_start=_load()["loadavg_1m"])
    wall = time.monotonic()
    ok = True
    try:
        r.setup = await setup.run(h)
        h.t0 = h.op.started_at if h.op else now()
        r.single = await single.run(h)
        r.operator = await operator_lifecycle.run(h)
        r.floor = await floor_lifecycle.run(h, r.operator)
        if a.queue:
            r.queue = await queue.run(h)
        if a.idle:
            r.idle = await idle.run(h)
            if a.held:
                r.held = await held.run(h, r.idle)
            r.resume = await resume.run(h, r.idle)
    except (Exception, asyncio.CancelledError):  # Ctrl-C too: tear down, write what we have
        log.exception("benchmark failed")
        ok = False
        if h.op:
            print(h.op.tail(2000), file=sys.stderr)
    finally:
        if h.op and h.op.log_path.exists():
            shutil.copy(h.op.log_path, RESULTS / f"{h.name}-operator.log")
        await h.teardown()
    r.mode = a.mode
    r.ok = ok
    r.wall_s = round(time.monotonic() - wall, 1)
    r.machine = {"cpus": _cpus(), "python": platform.python_version(), **_load()}
    r.operator_source = _source()
    r.settings = {
        "webui_command": a.webui_command,
        "client_concurrency": a.concurrency,
        "operator_env": a.operator_env,
    }
    r.phases = [(p, round(s - h.t0, 2), round(e - s, 2)) for p, s, e in h.phases]
    result = r.as_json()
    out = RESULTS / f"{h.name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    png = RESULTS / f"{h.name}.png"
    plotted = report.plot(png, f"rdev operator, N={a.n}", h.latencies, h.sampler.samples,
                          h.phases, h.t0)  # fmt: skip
    print()
    print(report.table(result))
    print(f"\nresults: {out}" + (f", plot: {png}" if plotted else " (no matplotlib: no plot)"))
    return 0 if ok else 1


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
    p.add_argument(
        "--held",
        type=int,
        help="a burst into the operator holding --idle Active, and the floor's beside it"
        " (default: 25 quick, 200 full; 0: skip)",
    )
    p.add_argument("--singles", type=int, default=10, help="sequential single Sessions")
    p.add_argument("--concurrency", type=int, default=32, help="parallel requests of the client")
    p.add_argument("--cluster-dir", default=str(ROOT / ".cluster-bench"))
    p.add_argument("--webui-command", default="sleep 86400", help="RDEV_WEBUI_COMMAND")
    p.add_argument("--profile", action="store_true", help="py-spy the operator during the burst")
    p.add_argument("--profile-resume", action="store_true", help="py-spy the restarted operator")
    p.add_argument(
        "--tracemalloc",
        action="store_true",
        help="tracemalloc the fresh operators of the idle and resume phases; where the bytes"
        " per Session go (bench/memreport.py). Slows the operator: not for timings",
    )
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
    for key in ("idle", "idle_low", "queue", "held"):
        if getattr(args, key) is None:
            setattr(args, key, MODES[args.mode][key])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    return asyncio.run(run(Harness(args)))


if __name__ == "__main__":
    raise SystemExit(main())

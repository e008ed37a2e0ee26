"""The fixed part of a replica's RSS, layer by layer, against what a shard's target leaves it.

    .venv/bin/python bench/fixedrss.py [--kubeconfig K] [--shards-result R] [--out F]

A shard of 1/N of the Sessions stays within a share r of the single replica's RSS only
while F <= S b (r - 1/N) / (1 - r), with F the fixed part, b the RSS per Session and S
the single replica's Sessions: a quarter of 8,000 within 0.40 needs F <= 2,000 b. Each
row here is a fresh interpreter, the client libraries hidden as ``python -m
session_operator`` hides them, importing one more layer in the operator's order; its
RSS after a full collection is what that much of the stack costs before holding
anything. With a kubeconfig, two processes are also measured running: kopf with no
handler at all (the floor of any kopf operator), and the operator with no Session. b
and S come from a ``make bench-shards`` result (its capacity line).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "operator")]

from session_operator import UNUSED_CLIENTS  # noqa: E402

TARGET_SHARE = 0.40  # make bench-shards: each shard's RSS at most this share of the single's
TARGET_KB = 25.0  # make bench: at most this much per extra Active Session

PYDANTIC = "import pydantic\nclass M(pydantic.BaseModel):\n    x: int = 0\nM(x=1)"
# (what, the import it adds), cumulative, in the order the operator's imports pull them in.
LAYERS = (
    ("the interpreter with ssl and asyncio", "import asyncio, json, logging, ssl"),
    ("aiohttp (multidict, yarl)", "import aiohttp"),
    ("kopf with its dependencies", "import kopf"),
    ("pydantic, one model built", PYDANTIC),
    ("prometheus_client", "import prometheus_client"),
    ("pydantic-settings", "import pydantic_settings"),
    ("the operator's modules", "import session_operator.main"),
)
HIDE = f"import sys\nfor _m in {UNUSED_CLIENTS!r}:\n    sys.modules.setdefault(_m, None)\n"
REPORT = (
    "import gc, json\ngc.collect()\n"
    "print(json.dumps({l.split(':')[0]: int(l.split()[1]) for l in open('/proc/self/status')"
    " if l.startswith(('VmRSS', 'RssAnon', 'RssFile'))}), flush=True)\n"
)
SETTLE_S = 3.0  # how long a started process runs before its RSS is read
BOUND_S = 90.0  # the bound of every child process


def kopf_idle(extra: str) -> str:
    """kopf with no handler but a start-up that says its RSS once the loop has run a while."""
    report = "".join(f"        {line}\n" for line in REPORT.splitlines())
    return (
        f"{HIDE}import asyncio, os, kopf\n{extra}\n"
        "@kopf.on.startup()\n"
        "async def _up(**_):\n"
        "    async def later():\n"
        f"        await asyncio.sleep({SETTLE_S})\n{report}"
        "        os._exit(0)\n"
        "    asyncio.get_running_loop().create_task(later())\n"
        "kopf.run(standalone=True, clusterwide=True)\n"
    )


def mb(kb: int) -> float:
    return round(kb / 1024.0, 1)


def child_rss(code: str, **env: str) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter; the RSS lines its REPORT printed last, in MB."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=BOUND_S,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"no RSS reported: {done.stderr.strip()[-500:]}")
    return {k: mb(v) for k, v in json.loads(lines[-1]).items()}


def imported(upto: int) -> dict[str, float]:
    code = HIDE + "\n".join(imp for _, imp in LAYERS[: upto + 1]) + "\n" + REPORT
    return child_rss(code, PYTHONPATH=str(ROOT / "operator"))


def kopf_running(kubeconfig: str, extra: str = "") -> dict[str, float]:
    return child_rss(kopf_idle(extra), KUBECONFIG=kubeconfig)


def operator_running(kubeconfig: str) -> dict[str, float]:
    """``python -m session_operator`` on a namespace with nothing in it, after priming."""
    import fixtures  # the bench's cluster helpers: only for a run against a cluster
    from operator_proc import OperatorProcess, proc_status

    fixtures.install_crd(Path(kubeconfig))
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "operator.log"
        op = OperatorProcess(Path(kubeconfig), "rdev-fixedrss-empty", log, label="fixedrss")
        op.start()
        try:
            deadline = time.monotonic() + BOUND_S
            while "caches primed" not in log.read_text(errors="replace"):
                if not op.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the operator did not prime: {op.tail(500)}")
                time.sleep(0.2)
            time.sleep(SETTLE_S)
            return {"VmRSS": round(proc_status(op.pid)["rss_mb"], 1)}
        finally:
            op.stop()


def ceiling(result: dict[str, Any]) -> dict[str, float]:
    """The largest F that keeps a shard within TARGET_SHARE, at the measured and target b."""
    setup, capacity = result["setup"], result["capacity"]
    sessions, count = setup["sessions"], setup["shards"]
    factor = (TARGET_SHARE - 1 / count) / (1 - TARGET_SHARE)
    kb = capacity["fit_kb_per_session"]
    return {
        "sessions": sessions,
        "shards": count,
        "per_session_kb": kb,
        "fixed_mb_measured": capacity["fit_fixed_mb"],
        "max_fixed_mb": round(sessions * kb * factor / 1024, 1),
        "max_fixed_mb_at_target_kb": round(sessions * TARGET_KB * factor / 1024, 1),
    }


def main(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for i, (what, _) in enumerate(LAYERS):
        rss = imported(i)
        rows.append({"what": f"+ {what}" if i else what, "imported": True, **rss})
        print(f"  {rows[-1]['what']:<42} {rss['VmRSS']:6.1f} MB", flush=True)
    if args.kubeconfig:
        for what, measure in (
            ("kopf running, no handler", kopf_running),
            ("kopf running, no handler, pydantic model", partial(kopf_running, extra=PYDANTIC)),
            ("the operator running, no Session", operator_running),
        ):
            rss = measure(args.kubeconfig)
            rows.append({"what": what, "imported": False, **rss})
            print(f"  {what:<42} {rss['VmRSS']:6.1f} MB", flush=True)
    out: dict[str, Any] = {"python": sys.version.split()[0], "rows": rows}
    if args.shards_result:
        bound = ceiling(json.loads(Path(args.shards_result).read_text()))
        out["bound"] = bound
        print(
            f"a shard of {bound['sessions']:,}/{bound['shards']} within {TARGET_SHARE:.2f}"
            f" needs F <= {bound['max_fixed_mb']} MB at the measured"
            f" {bound['per_session_kb']} KB/Session ({bound['max_fixed_mb_at_target_kb']} MB"
            f" at {TARGET_KB:.0f} KB); measured F = {bound['fixed_mb_measured']} MB"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", default="", help="also measure kopf, the operator running")
    parser.add_argument(
        "--shards-result",
        default=str(ROOT / "bench" / "results" / "shards-planned-8000.json"),
        help="a make bench-shards result, for b and the Sessions",
    )
    parser.add_argument("--out", default="", help="write the rows and the bound as JSON here")
    raise SystemExit(main(parser.parse_args()))

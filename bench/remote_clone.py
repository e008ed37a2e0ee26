"""Time ``git clone rdev://<namespace>/<session>`` against the floor of a plain exec.

The floor is what any clone through the API server costs at least: git's own
``ext::`` transport running ``kubectl exec -i <pod> -- git-upload-pack <worktree>``
(one exec stream, kubectl's startup, no Session read). The two are run in turns,
``--repeat`` times each, against the same Active Session; the medians are printed.

    KUBECONFIG=.cluster/kubeconfig .venv/bin/python bench/remote_clone.py -n demo hello

Needs git, kubectl, and git-remote-rdev beside this interpreter (``pip install -e .``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubectl_session.cli import git_env
from kubectl_session.kubeapi import connect, get_session


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=300)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("session")
    parser.add_argument("-n", "--namespace", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    target = connect(None, None, args.namespace)
    status = get_session(target, args.session).get("status") or {}
    pod, path = status["podName"], status["checkoutPath"]
    container = ["-c", status["container"]] if status.get("container") else []
    env = git_env()
    kubectl = shutil.which("kubectl", path=env["PATH"])
    assert kubectl, "kubectl is not on PATH"
    # ext:: splits its command at spaces: the worktree path must have none.
    assert " " not in path and " " not in kubectl, path
    floor = f"ext::{kubectl} exec -i -n {args.namespace} {pod} {' '.join(container)} -- %S {path}"
    ways = {
        "rdev://": ["git", "clone", "-q", f"rdev://{args.namespace}/{args.session}"],
        "ext:: + kubectl exec": ["git", "-c", "protocol.ext.allow=always", "clone", "-q", floor],
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    size = ""
    with tempfile.TemporaryDirectory() as scratch:
        for i in range(args.repeat):
            for name, argv in ways.items():
                into = str(Path(scratch) / f"{i}-{len(times[name])}")
                times[name].append(timed([*argv, into], env))
                if not size:
                    commits = subprocess.run(
                        ["git", "-C", into, "rev-list", "--count", "HEAD"],
                        capture_output=True, text=True, check=True,
                    ).stdout.strip()  # fmt: skip
                    paths = sum(1 for _ in Path(into).rglob("*"))
                    size = f"{commits} commits, {paths} paths with .git"
                shutil.rmtree(into)
    print(f"git clone of session {args.namespace}/{args.session} ({size}):")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.repeat} runs each")
    for name, values in times.items():
        print(
            f"  {name:22} median {statistics.median(values):.3f} s"
            f"  (min {min(values):.3f}, max {max(values):.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""SIGKILL the operator mid-flight: it must converge with no duplicate side effects."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from kubernetes import client

from kubehelpers import (
    create_project_pod,
    create_session,
    get_session,
    git,
    process_alive,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
    worktrees,
)

pytestmark = pytest.mark.fault


def _slow_checkout(repo: Path, seconds: float) -> None:
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\nsleep {seconds}\n")
    hook.chmod(0o755)


def _webui_processes(checkout: Path) -> list[int]:
    """Live processes whose working directory is the checkout (the web UI runs there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") == str(checkout) and process_alive(int(entry.name)):
                cmdline = (entry / "cmdline").read_bytes()
                if b"fake_webui" in cmdline:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _assert_single(api, namespace: str, name: str, repo_dir: Path) -> None:
    s = get_session(api, namespace, name)
    path = Path(s["status"]["checkoutPath"])
    assert [w for w in worktrees(repo_dir) if w != str(repo_dir)] == [str(path)]
    assert len(_webui_processes(path)) == 1, f"web UI processes for {name}"
    services = client.CoreV1Api(api).list_namespaced_service(
        namespace, label_selector=f"rdev.io/session={name}"
    )
    assert [x.metadata.name for x in services.items] == [f"{name}-preview"]


def test_sigkill_mid_provisioning_converges(api, namespace, repo, operator_factory):
    _slow_checkout(repo["repo"], 2)
    create_project_pod(api, namespace, "shop", repo)
    op = operator_factory()
    create_session(api, namespace, session_manifest("s", "shop", newBranch="topic/k", webUI=True))
    wait_phase(api, namespace, "s", "Provisioning", timeout=60)
    op.kill(signal.SIGKILL)
    operator_factory()
    wait_condition(api, namespace, "s", "Ready", timeout=90)
    _assert_single(api, namespace, "s", repo["repo"])


def _clone(origin: Path, target: Path) -> dict[str, Path]:
    subprocess.run(["git", "clone", "-q", str(origin), str(target / "repo")], check=True)
    (target / "sessions").mkdir()
    return {"repo": target / "repo", "sessions": target / "sessions", "base": target}


def test_sigkill_storm_with_30_sessions(api, namespace, repo, operator_factory, tmp_path):
    """Kill the operator at random moments, 5 times, while 30 Sessions provision."""
    rng = random.Random(int(os.environ.get("RDEV_FAULT_SEED", "7")))
    n = 30
    repos = []
    for i in range(n):
        r = _clone(repo["origin"], tmp_path / f"p{i}")
        _slow_checkout(r["repo"], 0.3)
        create_project_pod(api, namespace, f"proj{i}", r, name=f"proj{i}", wait=False)
        repos.append(r)
    try:
        for i in range(n):
            create_session(
                api,
                namespace,
                session_manifest(f"s{i}", f"proj{i}", newBranch=f"storm/{i}", webUI=True),
            )
        for _ in range(5):
            op = operator_factory()
            time.sleep(rng.uniform(0.5, 3.0))  # a random moment, by design
            op.kill(signal.SIGKILL)
        operator_factory()
        for i in range(n):
            wait_condition(api, namespace, f"s{i}", "Ready", timeout=180)
        for i in range(n):
            _assert_single(api, namespace, f"s{i}", repos[i]["repo"])
    finally:
        for r in repos:
            for pidfile in r["sessions"].glob(".rdev/*/webui.pid"):
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_pod_deleted_mid_checkout_recovers_on_a_new_pod(api, namespace, repo, operator):
    _slow_checkout(repo["repo"], 3)
    pod = create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    wait_phase(api, namespace, "s", "Provisioning", timeout=60)
    client.CoreV1Api(api).delete_namespaced_pod(
        pod["metadata"]["name"], namespace, grace_period_seconds=0
    )
    wait_condition(api, namespace, "s", "Ready", "False", timeout=60)
    (repo["repo"] / ".git" / "hooks" / "post-checkout").unlink()
    create_project_pod(api, namespace, "shop", repo)
    s = wait_condition(api, namespace, "s", "Ready", timeout=90)
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=Path(s["status"]["checkoutPath"])) == (
        "feature-a"
    )
    assert "Traceback" not in operator.logs()


def test_dead_web_ui_is_restarted_and_reported(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a", webUI=True))
    wait_condition(api, namespace, "s", "Ready")
    pidfile = repo["sessions"] / ".rdev" / "s" / "webui.pid"
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGKILL)

    def restarted() -> bool:
        st = get_session(api, namespace, "s").get("status") or {}
        return st.get("webUIRestarts", 0) >= 1 and st.get("webUI") == "Running"

    wait_for(restarted, timeout=60, what="web UI restarted")
    new_pid = int(pidfile.read_text())
    assert new_pid != pid and process_alive(new_pid)
    assert 'rdev_webui_restarts_total{shard="0"} 1.0' in operator.metrics()

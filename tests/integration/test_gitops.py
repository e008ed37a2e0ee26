"""GitOps safety: re-applying changes nothing, status writes cause no reconcile loop,
and names crafted for a shell never reach one."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml

from kubehelpers import (
    create_project_pod,
    create_session,
    get_session,
    git,
    reconciles,
    session_manifest,
    wait_condition,
)


def _apply(kubeconfig: str, namespace: str, manifest: dict, *extra: str) -> str:
    out = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "-n", namespace, "apply", *extra, "-f", "-"],
        input=yaml.safe_dump(manifest),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _quiet_reconciles(operator, window: float = 2.0) -> float:
    """Reconcile count once it stops moving for ``window`` seconds (bounded)."""
    deadline = time.monotonic() + 30
    last = reconciles(operator.metrics())
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = reconciles(operator.metrics())
        if now != last:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= window:
            return last
    raise AssertionError("the operator kept reconciling: a hot loop")


def test_reapply_changes_nothing_and_starts_no_reconcile(
    api, namespace, repo, operator_factory, kubeconfig
):
    # Periodic web UI checks are legitimate wake-ups; push them out of the window.
    operator = operator_factory(RDEV_WEBUI_CHECK_INTERVAL="10m")
    create_project_pod(api, namespace, "shop", repo)
    manifest = session_manifest("s", "shop", branch="feature-a", webUI=True, previewPort=5173)
    manifest["metadata"]["labels"] = {"team": "web"}
    _apply(kubeconfig, namespace, manifest)
    wait_condition(api, namespace, "s", "Ready")
    settled = _quiet_reconciles(operator)
    before = get_session(api, namespace, "s")
    assert "unchanged" in _apply(kubeconfig, namespace, manifest)
    _apply(kubeconfig, namespace, manifest, "--server-side", "--field-manager", "argocd")
    _apply(kubeconfig, namespace, manifest, "--server-side", "--field-manager", "argocd")
    after = get_session(api, namespace, "s")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["status"] == before["status"]
    assert _quiet_reconciles(operator) == settled


def test_status_writes_do_not_loop(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    wait_condition(api, namespace, "s", "Ready")
    count = _quiet_reconciles(operator)
    # create → provisioning → active takes a handful of reconciles, not a stream.
    assert count <= 6


def test_shell_injection_branch_never_reaches_a_shell(api, namespace, repo, operator, tmp_path):
    create_project_pod(api, namespace, "shop", repo)
    evil = "x$(touch${IFS}PWNED)`touch${IFS}PWNED2`;touch${IFS}PWNED3|true"
    create_session(api, namespace, session_manifest("s", "shop", newBranch=evil, webUI=True))
    s = wait_condition(api, namespace, "s", "Ready")
    assert s["status"]["branch"] == evil
    path = Path(s["status"]["checkoutPath"])
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=path) == evil
    for folder in (repo["repo"], repo["sessions"], path, Path.cwd(), tmp_path):
        for name in ("PWNED", "PWNED2", "PWNED3"):
            assert not (folder / name).exists(), f"{folder / name} was created"


def test_events_and_conditions_follow_kstatus(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Ready")
    gen = s["metadata"]["generation"]
    types = {c["type"]: c for c in s["status"]["conditions"]}
    assert set(types) >= {
        "Ready",
        "Reconciling",
        "Stalled",
        "CheckoutReady",
        "PreviewReady",
        "WebUIReady",
    }
    assert all(c["observedGeneration"] == gen for c in types.values())
    assert types["Reconciling"]["status"] == "False" and types["Stalled"]["status"] == "False"
    assert s["status"]["observedGeneration"] == gen
    out = subprocess.run(
        ["kubectl", "-n", namespace, "wait", "--for=condition=Ready", "session/s", "--timeout=10s"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    table = subprocess.run(
        ["kubectl", "-n", namespace, "get", "sess", "s", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(table.stdout)["status"]["phase"] == "Active"

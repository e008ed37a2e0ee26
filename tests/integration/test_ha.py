"""Two replicas with kopf peering: one acts, the other takes over when it dies.

The operators peer through a ClusterKopfPeering of this test's own, so that
nothing else on the cluster (another run, the installed one) joins the vote.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from conftest import OperatorProcess
from kubehelpers import (
    ROOT,
    create_project_pod,
    create_session,
    events_for,
    patch_session,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)

PEERING_CRDS = ROOT / "manifests" / "base" / "kopf-peering-crds.yaml"
LIFETIME_S = 15
HANDOVER_LIMIT_S = 90


@pytest.fixture
def peering(api: client.ApiClient, kubeconfig: str, namespace: str) -> Iterator[str]:
    """kopf's peering CRDs (idempotent) and a ClusterKopfPeering for this test only."""
    for args in (
        ["apply", "--server-side", "-f", str(PEERING_CRDS)],
        ["wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev"],
    ):
        subprocess.run(
            ["kubectl", "--kubeconfig", kubeconfig, *args],
            check=True,
            capture_output=True,
            timeout=90,
        )
    custom = client.CustomObjectsApi(api)
    name = f"rdev-ha-{namespace}"
    custom.create_cluster_custom_object(
        "kopf.dev",
        "v1",
        "clusterkopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}},
    )
    yield name
    try:
        custom.delete_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def log_records(op: OperatorProcess) -> list[dict[str, Any]]:
    records = []
    for line in op.logs().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def messages(op: OperatorProcess) -> str:
    return "\n".join(str(r.get("message", "")) for r in log_records(op))


def handled(op: OperatorProcess, session: str) -> bool:
    """Whether kopf ran a handler for this Session in that process."""
    return any(
        (r.get("object") or {}).get("kind") == "Session"
        and (r.get("object") or {}).get("name") == session
        for r in log_records(op)
    )


def priority(op: OperatorProcess) -> int:
    for record in log_records(op):
        text = str(record.get("message", ""))
        if text.startswith("starting:") and "priority=" in text:
            return int(text.rsplit("priority=", 1)[1])
    raise AssertionError(f"no start-up line in {op.log_path}")


def reporters(api: client.ApiClient, namespace: str, session: str) -> set[str]:
    return {
        e.reporting_instance
        for e in events_for(api, namespace, session)
        if e.reporting_component == "rdev-session-operator"
    }


def acting(op: Any) -> float:
    """The replica's own answer to "am I the one acting?" (the rdev_active gauge)."""
    for line in op.metrics().splitlines():
        if line.startswith("rdev_active{"):
            return float(line.split()[1])
    raise AssertionError("rdev_active not exported")


def test_standby_takes_over_after_the_active_replica_is_killed(
    peering, api, namespace, repo, operator_factory
):
    env = {
        "RDEV_PEERING": peering,
        "RDEV_PEERING_LIFETIME": f"{LIFETIME_S}s",
        "RDEV_LOG_FORMAT": "json",
    }
    custom = client.CustomObjectsApi(api)

    def peers() -> set[str]:
        obj = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering)
        return set(obj.get("status") or {})

    # POD_ID is kopf's peering identity, POD_NAME the operator's reportingInstance.
    active = operator_factory(POD_NAME="op-a", POD_ID="op-a", **env)
    wait_for(
        lambda: "Resuming operations" in messages(active),
        timeout=60,
        what="the first replica to take the lead",
    )
    # Priority comes from the start time in seconds: start the second one a
    # second later, so that the older replica keeps acting.
    started = int(time.time())
    wait_for(lambda: int(time.time()) > started, timeout=5, what="the next second")
    standby = operator_factory(POD_NAME="op-b", POD_ID="op-b", **env)
    wait_for(lambda: peers() == {"op-a", "op-b"}, timeout=60, what="both replicas in the peering")
    assert priority(active) > priority(standby)
    # A replica starts paused and resumes only when no older peer is alive.
    assert "Resuming operations" not in messages(standby)
    assert "Pausing operations" not in messages(active)

    create_project_pod(api, namespace, "shop", repo)
    create_project_pod(api, namespace, "cafe", repo)
    create_session(api, namespace, session_manifest("ha1", "shop", newBranch="ha/one"))
    wait_condition(api, namespace, "ha1", "Ready", timeout=60)
    # Events follow the status write: wait for them, bounded.
    wait_for(lambda: reporters(api, namespace, "ha1") == {"op-a"}, timeout=30, what="ha1 events")
    assert handled(active, "ha1")
    assert not handled(standby, "ha1")
    assert acting(active) == 1.0
    assert acting(standby) == 0.0

    active.kill(signal.SIGKILL)
    killed_at = time.monotonic()
    create_session(api, namespace, session_manifest("ha2", "cafe", newBranch="ha/two"))
    wait_condition(api, namespace, "ha2", "Ready", timeout=HANDOVER_LIMIT_S)
    handover = time.monotonic() - killed_at
    print(f"\nHA handover: {handover:.1f}s from SIGKILL to a new Session Active", end=" ")
    print(f"(peering lifetime {LIFETIME_S}s)")
    assert handover < HANDOVER_LIMIT_S
    assert "Resuming operations" in messages(standby)
    wait_for(lambda: reporters(api, namespace, "ha2") == {"op-b"}, timeout=30, what="ha2 events")
    assert handled(standby, "ha2")
    assert acting(standby) == 1.0

    # The survivor also serves the Sessions the dead replica had started.
    patch_session(api, namespace, "ha1", {"checkin": {"skipReview": True}})
    wait_phase(api, namespace, "ha1", "Ended", timeout=60)
    wait_for(lambda: "op-b" in reporters(api, namespace, "ha1"), timeout=30, what="op-b events")

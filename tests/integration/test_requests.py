"""What bringing up one Session costs: execs into the pod, status writes, reads of its Service.

Counted against the real control plane: the operator's ``rdev_exec_total``, the API
server's ``apiserver_request_total`` (only the operator writes Session status or reads
a preview Service here), and every version of the Session a watch is served.
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from kubehelpers import (
    Recorder,
    condition,
    create_project_pod,
    create_session,
    delete_session,
    get_session,
    patch_session,
    session_gone,
    session_manifest,
    slow_checkout,
    wait_condition,
    wait_for,
    wait_phase,
)

SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')


def api_requests(api: client.ApiClient, **labels: str) -> float:
    """The API server's count of requests whose labels include ``labels``."""
    request = api.param_serialize(
        method="GET", resource_path="/metrics", auth_settings=["BearerToken"]
    )
    resp = api.call_api(*request, _request_timeout=30)
    resp.read()
    assert resp.status == 200, resp.status
    total = 0.0
    for line in bytes(resp.data).decode().splitlines():
        m = SAMPLE.match(line)
        if m and labels.items() <= dict(LABEL.findall(m["labels"])).items():
            total += float(m["value"])
    return total


def execs(metrics_text: str) -> dict[str, float]:
    """rdev_exec_total per step."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "rdev_exec_total":
                step = sample.labels["step"]
                found[step] = found.get(step, 0.0) + sample.value
    return found


def status_versions(rec: Recorder, name: str) -> list[dict[str, Any]]:
    """Each status the operator wrote (it always sets a phase), once: the watch may repeat one.

    A new Session's status before that holds the schema's default ``observedGeneration: 0``.
    """
    seen: list[dict[str, Any]] = []
    for v in rec.of(name):
        status = v.get("status") or {}
        if status.get("phase") and (not seen or seen[-1] != status):
            seen.append(status)
    return seen


def _ready_recorded(rec: Recorder, name: str) -> bool:
    versions = status_versions(rec, name)
    return bool(versions) and versions[-1].get("phase") == "Active"


def test_a_new_session_is_active_after_one_exec_one_status_write_no_service_read(
    api, namespace, repo, operator
):
    create_project_pod(api, namespace, "shop", repo)
    with Recorder(api, namespace) as rec:
        writes = api_requests(api, verb="PATCH", resource="sessions", subresource="status")
        reads = api_requests(api, verb="GET", resource="services")
        create_session(api, namespace, session_manifest("s1", "shop", branch="feature-a"))
        wait_condition(api, namespace, "s1", "Ready")
        wait_for(lambda: _ready_recorded(rec, "s1"), timeout=30, what="Active recorded")
        assert api_requests(api, verb="GET", resource="services") == reads
        assert (
            api_requests(api, verb="PATCH", resource="sessions", subresource="status") == writes + 1
        )
    assert rec.failure is None, rec.failure
    # Pending straight to Active: no Provisioning version in between.
    assert [s["phase"] for s in status_versions(rec, "s1")] == ["Active"]
    # Fetch, branch check and worktree in one exec; nothing else ran in the pod.
    assert execs(operator.metrics()) == {"checkout": 1.0}


def test_a_slow_checkout_is_seen_provisioning(api, namespace, repo, operator):
    slow_checkout(repo["repo"], 2)
    create_project_pod(api, namespace, "shop", repo)
    with Recorder(api, namespace) as rec:
        create_session(api, namespace, session_manifest("s2", "shop", newBranch="topic/slow"))
        wait_condition(api, namespace, "s2", "Ready")
        wait_for(lambda: _ready_recorded(rec, "s2"), timeout=30, what="Active recorded")
    assert rec.failure is None, rec.failure
    versions = status_versions(rec, "s2")
    assert [s["phase"] for s in versions] == ["Provisioning", "Active"]
    provisioning = {"status": versions[0]}
    reconciling = condition(provisioning, "Reconciling")
    assert reconciling is not None
    assert (reconciling["status"], reconciling["reason"]) == ("True", "Provisioning")
    assert versions[0]["provisioningStep"] == "fetch and checkout"
    assert versions[0]["branch"] == "topic/slow" and "commit" not in versions[0]
    assert execs(operator.metrics()) == {"checkout": 1.0}


def test_a_whole_lifecycle_runs_one_exec_per_step(api, namespace, repo, operator_factory):
    """Create, web UI on and off, checkin, delete: as many execs as bench/floor.py's (5)."""
    op = operator_factory(RDEV_WEBUI_CHECK_INTERVAL="1h", RDEV_CHANGES_INTERVAL="1h")
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s3", "shop", newBranch="topic/life"))
    wait_condition(api, namespace, "s3", "Ready")
    for on, state in ((True, "Running"), (False, "Stopped")):
        patch_session(api, namespace, "s3", {"webUI": on})
        wait_for(
            lambda state=state: (
                (s := get_session(api, namespace, "s3"))["status"].get("webUI") == state
                and s["status"].get("observedGeneration") == s["metadata"]["generation"]
            ),
            timeout=60,
            what=f"web UI {state}",
        )
    patch_session(api, namespace, "s3", {"checkin": {}})
    wait_phase(api, namespace, "s3", "Ended", timeout=60)
    delete_session(api, namespace, "s3")
    wait_for(lambda: session_gone(api, namespace, "s3"), timeout=60, what="s3 gone")
    found = execs(op.metrics())
    assert found == {
        "checkout": 1.0,
        "webui-start": 1.0,
        "webui-stop": 1.0,
        "push": 1.0,  # checkin: push for review and read the worktree
        "remove": 1.0,  # delete: remove the worktree if it holds nothing
    }

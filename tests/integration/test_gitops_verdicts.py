"""GitOps tools read every Session right, at every step a live Session passes through.

Sessions are driven through every phase and end reason (queued, stalled then
recovered, active through periodic workspace checks, checked in, expired, idle
stop, deleted while the finalizer runs, a spec change not yet observed). Every
version of every Session the API server served (a watch from before the first
create) is judged by the real kstatus (Go probe) and by the Argo CD script in a
real Lua, and must say what the GitOps table of docs/operations.md says.
"""

from __future__ import annotations

import itertools
from typing import Any

from kubernetes import client

from gitops_verdicts import DELETING, NO_STATUS, NOT_OBSERVED, argocd, gitops_table, kstatus
from kubehelpers import (
    GROUP,
    PLURAL,
    VERSION,
    Recorder,
    create_project_pod,
    create_session,
    get_session,
    git,
    patch_session,
    session_manifest,
    slow_checkout,
    wait_condition,
    wait_for,
    wait_phase,
)
from rdev_api import Body


def row_of(obj: Body) -> str:
    """Which row of docs/operations.md's table a Session version falls under."""
    status = obj.get("status") or {}
    if obj["metadata"].get("deletionTimestamp"):
        return DELETING
    if not status.get("phase"):
        return NO_STATUS
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return NOT_OBSERVED
    summary = next(c for c in status["conditions"] if c["type"] == "Reconciling")
    return str(summary["reason"])


def _checked_at(api: client.ApiClient, namespace: str, name: str) -> str:
    return str((get_session(api, namespace, name)["status"].get("changes") or {}).get("checkedAt"))


def test_every_state_reads_right_in_kstatus_and_argocd(
    api, namespace, repo, operator_factory, kubeconfig
):
    operator_factory(
        RDEV_CHANGES_INTERVAL="2s",  # periodic workspace checks, to catch any flapping
        RDEV_STALLED_RECHECK_INTERVAL="2s",
        RDEV_STALLED_RECHECK_MAX="4s",
    )
    with Recorder(api, namespace) as rec:
        for project in ("shop", "other", "third", "fourth"):
            create_project_pod(api, namespace, project, repo)
        # Checkouts slower than the operator's Provisioning delay: that phase is written.
        slow_checkout(repo["repo"], 2)
        create_session(
            api, namespace, session_manifest("active", "shop", newBranch="g-active", webUI=True)
        )
        wait_condition(api, namespace, "active", "Ready")
        create_session(api, namespace, session_manifest("queued", "shop", newBranch="g-queued"))
        create_session(api, namespace, session_manifest("missing", "other", branch="later"))
        create_session(
            api, namespace, session_manifest("expired", "third", newBranch="g-exp", expiresIn="6s")
        )
        create_session(
            api, namespace, session_manifest("idle", "fourth", newBranch="g-idle", idleTimeout="5s")
        )
        wait_condition(api, namespace, "queued", "Ready", "False", "ProjectBusy")
        wait_condition(api, namespace, "missing", "Stalled", "True", "BranchNotFound")

        # Active through periodic workspace checks: two more readings written.
        seen = {_checked_at(api, namespace, "active")}
        for _ in range(2):
            wait_for(
                lambda: _checked_at(api, namespace, "active") not in seen,
                timeout=30,
                what="a workspace check written",
            )
            seen.add(_checked_at(api, namespace, "active"))

        # A Stalled session recovers once a person acts (the branch is pushed).
        seed = repo["base"] / "seed"
        git("checkout", "-q", "-b", "later", cwd=seed)
        git("push", "-q", "origin", "later", cwd=seed)
        git("checkout", "-q", "main", cwd=seed)
        wait_condition(api, namespace, "missing", "Ready", timeout=60)

        # A spec change, seen by the tools before the operator observes it.
        patch_session(api, namespace, "missing", {"expiresIn": "48h"})
        wait_for(
            lambda: get_session(api, namespace, "missing")["status"]["observedGeneration"] == 2,
            timeout=30,
            what="generation 2 observed",
        )

        # Checked in without review: Ending (the web UI stops), then Ended.
        patch_session(api, namespace, "active", {"checkin": {"skipReview": True}})
        wait_phase(api, namespace, "active", "Ended", timeout=60)
        wait_condition(api, namespace, "queued", "Ready", timeout=60)  # its turn came
        wait_phase(api, namespace, "expired", "Expired", timeout=60)
        wait_phase(api, namespace, "idle", "Expired", timeout=60)

        # Deleted while the finalizer runs.
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "queued"
        )
        wait_for(
            lambda: (
                any(v["metadata"].get("deletionTimestamp") for v in rec.of("queued"))
                and rec.of("queued")[-1]["metadata"].get("deletionTimestamp")
                and any(row_of(v) == DELETING and _reason(v) == "Deleted" for v in rec.of("queued"))
                and not _exists(api, namespace, "queued")
            ),
            timeout=60,
            what="queued deleted, its finalizer's status seen",
        )
        # The last state of every Session is in the recording.
        for name in ("active", "missing", "expired", "idle"):
            rv = get_session(api, namespace, name)["metadata"]["resourceVersion"]
            wait_for(
                lambda name=name, rv=rv: rec.of(name)[-1]["metadata"]["resourceVersion"] == rv,
                timeout=30,
                what=f"{name} recorded",
            )
    assert rec.failure is None, rec.failure

    table = gitops_table()
    versions = rec.versions
    ks = kstatus(versions)
    got = [(row_of(v), (k, argocd(v))) for v, k in zip(versions, ks, strict=True)]
    wrong = [
        (v["metadata"]["name"], row, verdict)
        for v, (row, verdict) in zip(versions, got, strict=True)
    ]
    wrong = [w for w in wrong if table.get(w[1]) != w[2]]
    assert not wrong, f"verdicts that differ from docs/operations.md's table: {wrong}"

    # The six states, each judged on the last version the operator wrote in it
    # (not one with a spec change it has yet to see: that reads InProgress, rightly).
    def final(name: str, phase: str) -> tuple[str, str]:
        last = next(
            v
            for v in reversed(rec.of(name))
            if (v.get("status") or {}).get("phase") == phase
            and row_of(v) not in (NOT_OBSERVED, DELETING)
        )
        return kstatus([last])[0], argocd(last)

    assert final("active", "Active") == ("Current", "Healthy")
    assert final("queued", "Pending") == ("InProgress", "Progressing")
    assert final("missing", "Failed") == ("Failed", "Degraded")
    assert final("active", "Ended") == ("Current", "Healthy")
    assert final("expired", "Expired") == ("Current", "Healthy")
    assert final("idle", "Expired") == ("Current", "Healthy")
    assert _reason(rec.of("idle")[-1]) == "IdleTimeout"
    assert _reason(rec.of("expired")[-1]) == "Expired"
    assert _reason(rec.of("active")[-1]) == "CheckedIn"
    assert final("missing", "Active") == ("Current", "Healthy")  # recovered

    rows = {row for row, _ in got}
    assert rows >= {
        NO_STATUS,
        NOT_OBSERVED,
        DELETING,
        "ProjectBusy",
        "BranchNotFound",
        "Provisioning",
        "Active",
        "CheckedIn",
        "Expired",
        "IdleTimeout",
    }, rows

    # No flapping: between two versions of a Session with the same generation, phase
    # and reason (a periodic check rewrote the status), Current never turns InProgress.
    by_name: dict[str, list[tuple[Body, str]]] = {}
    for v, k in zip(versions, ks, strict=True):
        by_name.setdefault(v["metadata"]["name"], []).append((v, k))
    checks = 0
    for name, seq in by_name.items():
        for (a, ka), (b, kb) in itertools.pairwise(seq):
            if _facts(a) == _facts(b):
                checks += 1
                assert not (ka == "Current" and kb == "InProgress"), (name, a, b)
    assert checks >= 2, "no periodic rewrite was seen"


def _reason(obj: Body) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == "Reconciling":
            return str(c["reason"])
    return None


def _facts(obj: Body) -> tuple[Any, ...]:
    status = obj.get("status") or {}
    return (
        obj["metadata"]["generation"],
        bool(obj["metadata"].get("deletionTimestamp")),
        status.get("phase"),
        _reason(obj),
    )


def _exists(api: client.ApiClient, namespace: str, name: str) -> bool:
    try:
        get_session(api, namespace, name)
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True

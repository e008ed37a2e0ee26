"""One active Session per project; the others queue and proceed on their own."""

from __future__ import annotations

import itertools

from kubernetes import client

from kubehelpers import (
    create_project_pod,
    create_session,
    patch_session,
    session_manifest,
    wait_condition,
    wait_for,
)


def test_second_session_waits_and_proceeds_after_checkin(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("first", "shop", branch="feature-a"))
    wait_condition(api, namespace, "first", "Ready")
    create_session(api, namespace, session_manifest("second", "shop", branch="feature-b"))
    s = wait_condition(api, namespace, "second", "Ready", "False", "ProjectBusy")
    assert s["status"]["phase"] == "Pending"
    assert "first" in next(c for c in s["status"]["conditions"] if c["type"] == "Ready")["message"]
    patch_session(api, namespace, "first", {"checkin": {"skipReview": True}})
    wait_condition(api, namespace, "second", "Ready", timeout=60)


def test_queue_moves_on_when_the_holder_is_deleted(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("first", "shop", branch="feature-a"))
    wait_condition(api, namespace, "first", "Ready")
    create_session(api, namespace, session_manifest("second", "shop", branch="feature-b"))
    wait_condition(api, namespace, "second", "Ready", "False", "ProjectBusy")
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        "rdev.io", "v1alpha1", namespace, "sessions", "first"
    )
    wait_condition(api, namespace, "second", "Ready", timeout=60)


def test_stalled_session_does_not_block_the_queue(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("broken", "shop", branch="missing"))
    wait_condition(api, namespace, "broken", "Stalled", "True", "BranchNotFound")
    create_session(api, namespace, session_manifest("works", "shop", branch="feature-a"))
    wait_condition(api, namespace, "works", "Ready")

    def pod_label() -> str | None:
        pods = client.CoreV1Api(api).list_namespaced_pod(namespace).items
        return pods[0].metadata.labels.get("rdev.io/session")

    assert wait_for(lambda: pod_label() == "works", timeout=10, what="pod label")


def _reconciles(op) -> float:
    total = 0.0
    for line in op.metrics().splitlines():
        if line.startswith("rdev_reconcile_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_handover_costs_at_most_three_reconciles(api, namespace, repo, operator_factory):
    """The holder's checkin, the next Session's turn; nobody else behind them is woken."""
    op = operator_factory(RDEV_LOG_LEVEL="DEBUG")
    create_project_pod(api, namespace, "shop", repo)
    names = [f"q{i}" for i in range(5)]
    for i, name in enumerate(names):
        create_session(api, namespace, session_manifest(name, "shop", newBranch=f"q/{i}"))
        if i == 0:
            wait_condition(api, namespace, name, "Ready")
    for name in names[1:]:
        wait_condition(api, namespace, name, "Ready", "False", "ProjectBusy")

    def settled_total() -> float:
        seen: list[float] = []

        def quiet() -> bool:
            seen.append(_reconciles(op))
            return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]

        wait_for(quiet, timeout=30, interval=0.5, what="reconciles settle")
        return seen[-1]

    before = settled_total()
    costs = []
    for holder, nxt in itertools.pairwise(names):
        patch_session(api, namespace, holder, {"checkin": {"skipReview": True}})
        wait_condition(api, namespace, nxt, "Ready", timeout=60)
        after = settled_total()
        costs.append(after - before)
        before = after
    print(f"\nreconciles per handover: {costs}", end=" ")
    assert max(costs) <= 3, (costs, op.logs()[-6000:])

"""The operator's Prometheus endpoint after a Session's whole life."""

from __future__ import annotations

import os
import signal
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

from kubehelpers import (
    create_project_pod,
    create_session,
    get_session,
    patch_session,
    process_alive,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)

EXEC_STEPS = ("checkout", "webui-start", "end")


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name].append((dict(sample.labels), float(sample.value)))
    return found


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    """The sum of the series of ``name`` whose labels include ``labels``."""
    assert name in found, f"{name} is not exposed"
    return sum(v for got, v in found[name] if labels.items() <= got.items())


def test_metrics_after_a_session_lifecycle(api, namespace, repo, operator):
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("m1", "shop", newBranch="topic/m", webUI=True))
    wait_condition(api, namespace, "m1", "Ready")

    def web_ui_pid() -> int | None:
        pidfile = repo["sessions"] / ".rdev" / "m1" / "webui.pid"
        return int(pidfile.read_text()) if pidfile.exists() else None

    # The web UI dies behind the operator's back: its check starts it again.
    pid = wait_for(web_ui_pid, timeout=30, what="web UI pid file")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(pid), timeout=10, what="web UI gone")
    wait_for(
        lambda: (get_session(api, namespace, "m1").get("status") or {}).get("webUIRestarts"),
        timeout=60,
        what="the web UI restarted",
    )

    patch_session(api, namespace, "m1", {"checkin": {"skipReview": True}})
    wait_phase(api, namespace, "m1", "Ended")

    # The phase gauge follows the watch stream: wait for it to see Ended.
    wait_for(
        lambda: value(samples(operator.metrics()), "rdev_sessions", phase="Ended") >= 1,
        timeout=30,
        what="rdev_sessions{phase=Ended}",
    )
    found = samples(operator.metrics())
    shown = [n for n in sorted(found) if n.startswith("rdev_") and "_bucket" not in n]
    print("\n" + "\n".join(f"{n} {found[n]}" for n in shown if not n.endswith("_created")))

    assert value(found, "rdev_sessions", phase="Ended") >= 1
    assert value(found, "rdev_sessions", phase="Active") == 0
    assert {labels["phase"] for labels, _ in found["rdev_sessions"]} >= {
        "Pending",
        "Provisioning",
        "Active",
        "Ending",
        "Ended",
        "Expired",
        "Failed",
    }

    reconciles = value(found, "rdev_reconcile_duration_seconds_count")
    assert reconciles > 0
    assert value(found, "rdev_reconcile_duration_seconds_sum") > 0
    assert value(found, "rdev_reconcile_total", result="ok") > 0
    assert value(found, "rdev_reconcile_total") == reconciles

    for step in EXEC_STEPS:
        count = value(found, "rdev_exec_duration_seconds_count", step=step)
        assert count > 0, step
        assert value(found, "rdev_exec_total", step=step) == count, step
        assert value(found, "rdev_exec_duration_seconds_sum", step=step) > 0, step
    assert value(found, "rdev_exec_total", step="checkout", outcome="ok") >= 1
    # A dead web UI is found by the start-or-check exec, which starts it again.
    assert value(found, "rdev_exec_total", step="webui-start", outcome="ok") >= 2
    # Histogram buckets are cumulative and end at the count.
    buckets = [
        v
        for labels, v in found["rdev_exec_duration_seconds_bucket"]
        if labels.get("step") == "checkout"
    ]
    assert buckets == sorted(buckets)
    assert buckets[-1] == value(found, "rdev_exec_duration_seconds_count", step="checkout")

    restarts = get_session(api, namespace, "m1")["status"]["webUIRestarts"]
    assert value(found, "rdev_webui_restarts_total") == restarts >= 1
    assert value(found, "rdev_active") == 1.0  # standalone: always the acting replica

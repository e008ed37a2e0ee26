"""Prometheus metrics and the gauges read at scrape time; served on RDEV_METRICS_PORT by main.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

from rdev_api.models import Phase

if TYPE_CHECKING:
    from .store import Store

# The gauges carry the replica's shard (RDEV_SHARD; "0" unsharded), so a dashboard can
# sum Sessions per shard; counters and histograms are per pod, as Prometheus scrapes them.
SESSIONS = Gauge(
    "rdev_sessions", "Sessions known to the operator, by phase and shard.", ["phase", "shard"]
)
RECONCILE_DURATION = Histogram(
    "rdev_reconcile_duration_seconds",
    "Time one reconcile of a Session took.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RECONCILE_TOTAL = Counter("rdev_reconcile_total", "Reconciles of Sessions, by result.", ["result"])
EXEC_DURATION = Histogram(
    "rdev_exec_duration_seconds",
    "Time an exec into a project pod took, by step.",
    ["step"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EXEC_TOTAL = Counter(
    "rdev_exec_total", "Execs into project pods, by step and outcome.", ["step", "outcome"]
)
WATCH_EVENTS = Counter(
    "rdev_watch_events_total",
    "Watch events this replica received, by kind (session, pod, service).",
    ["kind"],
)
WEBUI_RESTARTS = Counter("rdev_webui_restarts_total", "Web UIs found dead and started again.")
SESSIONS_EXPIRING_SOON = Gauge(
    "rdev_sessions_expiring_soon",
    "Live Sessions within RDEV_EXPIRY_WARNING of their expiry or idle stop.",
    ["shard"],
)
ACTIVE = Gauge(
    "rdev_active",
    "1 while this replica acts on its shard's Sessions (standalone, or chosen by kopf"
    " peering), else 0.",
    ["shard"],
)


def register_gauges(store: Store, active: Callable[[], bool], shard: str = "0") -> None:
    """Count phases and expiring Sessions when Prometheus scrapes, not on every watch event."""

    def phase_counts() -> dict[str, int]:
        counts: dict[str, int] = {}
        for body in store.sessions.values():
            phase = (body.get("status") or {}).get("phase") or "Unknown"
            counts[phase] = counts.get(phase, 0) + 1
        return counts

    def counter(phase: str) -> Callable[[], float]:
        return lambda: float(phase_counts().get(phase, 0))

    for phase in Phase:
        SESSIONS.labels(phase=phase, shard=shard).set_function(counter(phase))

    def expiring() -> float:
        statuses = (body.get("status") or {} for body in store.sessions.values())
        return float(sum(1 for status in statuses if status.get("expiresSoon")))

    SESSIONS_EXPIRING_SOON.labels(shard=shard).set_function(expiring)
    ACTIVE.labels(shard=shard).set_function(lambda: 1.0 if active() else 0.0)

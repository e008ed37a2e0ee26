"""Prometheus metrics and the gauges read at scrape time; served on RDEV_METRICS_PORT by main.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

from rdev_api.models import Phase

if TYPE_CHECKING:
    from .store import Store

# Every metric carries the replica's shard (RDEV_SHARD; "0" unsharded), so a dashboard
# can sum per shard whatever the pods are called; ``bind`` sets it once at start-up.
SHARD = "shard"
SESSIONS = Gauge(
    "rdev_sessions", "Sessions known to the operator, by phase and shard.", ["phase", "shard"]
)
RECONCILE_DURATION = Histogram(
    "rdev_reconcile_duration_seconds",
    "Time one reconcile of a Session took.",
    [SHARD],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RECONCILE_TOTAL = Counter(
    "rdev_reconcile_total", "Reconciles of Sessions, by result.", ["result", SHARD]
)
EXEC_DURATION = Histogram(
    "rdev_exec_duration_seconds",
    "Time an exec into a project pod took, by step.",
    ["step", SHARD],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EXEC_TOTAL = Counter(
    "rdev_exec_total", "Execs into project pods, by step and outcome.", ["step", "outcome", SHARD]
)
WATCH_EVENTS = Counter(
    "rdev_watch_events_total",
    "Watch events this replica received, by kind (session, pod, service).",
    ["kind", SHARD],
)
WEBUI_RESTARTS = Counter(
    "rdev_webui_restarts_total", "Web UIs found dead and started again.", [SHARD]
)
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


class Shard:
    """The replica's shard label, and the series the hot paths count on, bound once."""

    def __init__(self, shard: str = "0") -> None:
        self.shard = shard
        self.watch_events = {
            kind: WATCH_EVENTS.labels(kind=kind, shard=shard)
            for kind in ("session", "pod", "service")
        }
        self.reconcile_duration = RECONCILE_DURATION.labels(shard=shard)
        self.webui_restarts = WEBUI_RESTARTS.labels(shard=shard)

    def reconciled(self, result: str) -> Any:
        return RECONCILE_TOTAL.labels(result=result, shard=self.shard)

    def exec_duration(self, step: str) -> Any:
        return EXEC_DURATION.labels(step=step, shard=self.shard)

    def exec_total(self, step: str, outcome: str) -> Any:
        return EXEC_TOTAL.labels(step=step, outcome=outcome, shard=self.shard)


_bound: Shard | None = None


def bind(shard: str) -> Shard:
    """Label every metric of this process with ``shard`` (App.create, before any count)."""
    global _bound
    _bound = Shard(shard)
    return _bound


def bound() -> Shard:
    """The bound series; shard "0" where nothing bound them (tools, unit tests). Created on
    first use, so a replica of shard 1 never shows empty series of shard 0."""
    return _bound or bind("0")


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

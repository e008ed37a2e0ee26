"""Pure decisions about a project: which pod serves it and which Session holds it."""

from __future__ import annotations

from rdev_api import Body
from rdev_api.models import TERMINAL_PHASES, Phase
from rdev_api.reasons import Reason

HOLDING_PHASES = frozenset({Phase.PROVISIONING.value, Phase.ACTIVE.value, Phase.ENDING.value})


def pod_ready(pod: Body) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def stalled(body: Body) -> bool:
    return any(
        c.get("type") == "Stalled" and c.get("status") == "True"
        for c in (body.get("status") or {}).get("conditions") or []
    )


def _created(body: Body) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def choose_pod(pods: list[Body], sticky: str | None) -> tuple[Body | None, str | None]:
    """The pod to use and, when none, the waiting reason.

    The pod a session already runs on is kept while it stays ready, so that a
    new pod of the same project never moves a live session; else the oldest.
    """
    if not pods:
        return None, Reason.PROJECT_NOT_FOUND
    ready = [p for p in pods if pod_ready(p)]
    if not ready:
        return None, Reason.PROJECT_NOT_RUNNING
    for pod in ready:
        if sticky and pod["metadata"]["name"] == sticky:
            return pod, None
    return sorted(ready, key=_created)[0], None


def queue_owner(me: str, sessions: list[Body]) -> str | None:
    """Which Session of a project may hold it now.

    A Session already holding the project keeps it; otherwise the oldest one
    that is neither ended nor stalled. A stalled Session re-checking itself
    (``me``) only gets the project when no other Session is waiting for it.
    Deleted Sessions leave the store, so they never block the queue.
    """
    holders = [s for s in sessions if (s.get("status") or {}).get("phase") in HOLDING_PHASES]
    if holders:
        return str(sorted(holders, key=_created)[0]["metadata"]["name"])
    live = [
        s
        for s in sessions
        if (s.get("status") or {}).get("phase") not in TERMINAL_PHASES
        and (s.get("spec") or {}).get("checkin") is None
        and not (s.get("metadata") or {}).get("deletionTimestamp")
    ]
    waiting = [s for s in live if not stalled(s)]
    if not waiting:
        waiting = [s for s in live if s["metadata"]["name"] == me]
    if not waiting:
        return None
    return str(sorted(waiting, key=_created)[0]["metadata"]["name"])

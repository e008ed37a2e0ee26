"""Pure functions from a watch event to the Session keys that must be reconciled.

Each mapper gets the state the previous watch event showed and the one this
event shows (never the operator's own write-through) and the store, and returns
keys; it touches nothing. Enqueueing exactly these keys is what keeps a project
queue's handover at a constant cost: the Session that changed, and the one
Session next in line, never the whole queue.
"""

from __future__ import annotations

from typing import NamedTuple

from rdev_api import Body
from rdev_api.models import Phase
from rdev_api.names import PROJECT_LABEL, SESSION_LABEL

from .store import Key, Store
from .turns import HOLDING_PHASES, pod_ready, queue_owner, stalled


class SessionState(NamedTuple):
    """What a Session's watch event shows that others react to."""

    generation: int | None
    deleting: bool
    phase: str | None
    stalled: bool
    project: str | None


class PodState(NamedTuple):
    ready: bool
    project: str | None
    session: str | None


def session_state(body: Body) -> SessionState:
    meta = body.get("metadata") or {}
    return SessionState(
        generation=meta.get("generation"),
        deleting=bool(meta.get("deletionTimestamp")),
        phase=(body.get("status") or {}).get("phase"),
        stalled=stalled(body),
        project=(body.get("spec") or {}).get("project"),
    )


def pod_state(body: Body) -> PodState:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return PodState(pod_ready(body), labels.get(PROJECT_LABEL), labels.get(SESSION_LABEL))


def next_in_line(namespace: str, project: str | None, store: Store) -> Key | None:
    """The Session that may take the project now, if it is waiting for it."""
    if not project:
        return None
    sessions = store.sessions.by_project(namespace, project)
    owner = queue_owner("", sessions)
    if owner is None:
        return None
    body = store.sessions.get((namespace, owner))
    if body is None or (body.get("status") or {}).get("phase") in HOLDING_PHASES:
        return None  # the holder is unchanged: the queue did not move
    return (namespace, owner)


def map_session(
    key: Key, old: SessionState | None, new: SessionState | None, store: Store
) -> list[Key]:
    """A Session changed (``new`` None: it is gone from the API)."""
    keys: list[Key] = []
    if new is not None and (
        old is None or old.generation != new.generation or old.deleting != new.deleting
    ):
        keys.append(key)  # its spec moved, or it appeared: status writes alone wake nothing
    queue_moved = (
        new is None
        or old is None
        or (old.phase, old.stalled, old.deleting, old.project)
        != (new.phase, new.stalled, new.deleting, new.project)
    )
    if queue_moved:
        for project in {p for p in (old and old.project, new and new.project) if p}:
            nxt = next_in_line(key[0], project, store)
            if nxt is not None and nxt != key and nxt not in keys:
                keys.append(nxt)
    return keys


def map_pod(
    namespace: str,
    old: PodState | None,
    new: PodState | None,
    store: Store,
    known: PodState | None = None,
) -> list[Key]:
    """A project pod changed: readiness or project moves every Session of the project;
    a session label only the Sessions it names (someone else may have changed it).

    ``known`` is the pod as the store held it before this event. When it already
    carries the new label, the event is the echo of the operator's own write,
    which the Sessions concerned acted on when they wrote it: nothing to wake.
    """
    if old == new:
        return []
    keys: list[Key] = []
    if old is None or new is None or (old.ready, old.project) != (new.ready, new.project):
        for project in {p for p in (old and old.project, new and new.project) if p}:
            for body in store.sessions.by_project(namespace, project):
                name = (body.get("metadata") or {}).get("name")
                if not _ended(body) and (namespace, name) not in keys:
                    keys.append((namespace, str(name)))
        return keys
    if known is not None and known.session == new.session:
        return []
    for name in (old.session, new.session):
        if name and (namespace, name) not in keys:
            named = store.sessions.get((namespace, name))
            if named is not None and not _ended(named):
                keys.append((namespace, name))
    return keys


def map_service_deleted(namespace: str, session: str | None, store: Store) -> list[Key]:
    """Someone deleted a live Session's preview Service: put it back."""
    if not session:
        return []
    body = store.sessions.get((namespace, session))
    if body is not None and (body.get("status") or {}).get("phase") == Phase.ACTIVE.value:
        return [(namespace, session)]
    return []


def _ended(body: Body) -> bool:
    return (body.get("status") or {}).get("phase") in (Phase.ENDED.value, Phase.EXPIRED.value)

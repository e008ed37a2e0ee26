"""In-memory views of Sessions, project pods and preview Services, fed by kopf watches.

Reconciles read from here instead of listing the API, so a resumed operator can
decide that a Session needs nothing without a single request. Everything runs on
the event loop; the lock is for the metrics endpoint's thread, which counts
phases at scrape time. Objects are slimmed to the fields the operator reads, and
indexed by project, so that thousands of Sessions cost little memory and no full
scans.

The reconcile writes its own results through to ``sessions`` before their watch
events arrive; the mappers must compare with what the previous *watch event*
showed, so the Store keeps that apart (``watched``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from rdev_api import Body
from rdev_api.names import (
    CREATED_BY_ANNOTATION,
    DEFAULT_CONTAINER_ANNOTATION,
    MANAGED_BY_LABEL,
    PROJECT_LABEL,
    REPO_PATH_ANNOTATION,
    SESSION_LABEL,
    WORKTREE_ROOT_ANNOTATION,
)

Key = tuple[str, str]

_KEEP_META = (
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "finalizers",
    "resourceVersion",
    "generation",
    "ownerReferences",
)
# The only labels and annotations the operator reads, per kind: anything else
# (kubectl's last-applied copy, tools' notes, up to 256 KiB per object) stays out.
SESSION_LABELS: tuple[str, ...] = ()
SESSION_ANNOTATIONS = (CREATED_BY_ANNOTATION,)
POD_LABELS = (PROJECT_LABEL, SESSION_LABEL)
POD_ANNOTATIONS = (REPO_PATH_ANNOTATION, WORKTREE_ROOT_ANNOTATION, DEFAULT_CONTAINER_ANNOTATION)
SERVICE_LABELS = (MANAGED_BY_LABEL, SESSION_LABEL)
SERVICE_ANNOTATIONS: tuple[str, ...] = ()


def key_of(body: Body) -> Key:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


SHORT = 24  # strings up to this long are shared (interned): phases, reasons, names, "True"


def fresh(value: Any) -> Any:
    """A copy of JSON data made of new dicts and lists, keys and short strings shared.

    What the store keeps would otherwise stay inside the parse tree of the watch
    event or LIST page it came from, scattered between the parts it drops (managed
    fields, kubectl's copies), and keep that memory from being reused; and each
    object would carry its own copy of every key ("lastTransitionTime" four times a
    Session) and of every "True".
    """
    if isinstance(value, dict):
        return {_share(k): fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fresh(v) for v in value]
    if isinstance(value, str) and len(value) <= SHORT:
        return sys.intern(value)
    return value


def _share(key: Any) -> Any:
    return sys.intern(key) if isinstance(key, str) else key


def slim_meta(
    meta: dict[str, Any], labels: tuple[str, ...], annotations: tuple[str, ...]
) -> dict[str, Any]:
    out = {k: fresh(meta[k]) for k in _KEEP_META if k in meta}
    for field, keep in (("labels", labels), ("annotations", annotations)):
        values = meta.get(field) or {}
        kept = {k: fresh(values[k]) for k in keep if k in values}
        if kept:
            out[field] = kept
    return out


def slim_session(body: Body) -> Body:
    return {
        "metadata": slim_meta(body.get("metadata") or {}, SESSION_LABELS, SESSION_ANNOTATIONS),
        "spec": fresh(body.get("spec") or {}),
        "status": fresh(body.get("status") or {}),
    }


def slim_pod(body: Body) -> Body:
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    return {
        "metadata": slim_meta(body.get("metadata") or {}, POD_LABELS, POD_ANNOTATIONS),
        "spec": {
            "containers": [{"name": fresh(c.get("name"))} for c in spec.get("containers") or []]
        },
        "status": {
            "phase": fresh(status.get("phase")),
            "conditions": [
                {"type": fresh(c.get("type")), "status": fresh(c.get("status"))}
                for c in status.get("conditions") or []
            ],
        },
    }


def slim_service(body: Body) -> Body:
    spec = body.get("spec") or {}
    return {
        "metadata": slim_meta(body.get("metadata") or {}, SERVICE_LABELS, SERVICE_ANNOTATIONS),
        "spec": {
            "ports": fresh(spec.get("ports") or []),
            "selector": fresh(spec.get("selector") or {}),
        },
    }


def project_from_spec(body: Body) -> str | None:
    value = (body.get("spec") or {}).get("project")
    return str(value) if value else None


def project_from_label(body: Body) -> str | None:
    value = ((body.get("metadata") or {}).get("labels") or {}).get(PROJECT_LABEL)
    return str(value) if value else None


def _rv(body: Body) -> int:
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class ObjectCache:
    def __init__(
        self,
        slim: Callable[[Body], Body] = slim_session,
        project_of: Callable[[Body], str | None] = project_from_spec,
    ) -> None:
        self._lock = threading.Lock()
        self._items: dict[Key, Body] = {}
        self._projects: dict[tuple[str, str], set[Key]] = {}
        self._slim = slim
        self._project_of = project_of

    @classmethod
    def for_sessions(cls) -> ObjectCache:
        return cls(slim_session, project_from_spec)

    @classmethod
    def for_pods(cls) -> ObjectCache:
        return cls(slim_pod, project_from_label)

    @classmethod
    def for_services(cls) -> ObjectCache:
        return cls(slim_service, lambda _: None)

    def put(self, body: Body) -> Body | None:
        """Store ``body`` unless a newer version is already here; return the previous one."""
        body = self._slim(body)
        key = key_of(body)
        with self._lock:
            old = self._items.get(key)
            if old is not None and _rv(old) > _rv(body):
                return old
            self._unindex(key, old)
            self._items[key] = body
            project = self._project_of(body)
            if project:
                self._projects.setdefault((key[0], project), set()).add(key)
            return old

    def _unindex(self, key: Key, old: Body | None) -> None:
        if old is None:
            return
        project = self._project_of(old)
        if project:
            keys = self._projects.get((key[0], project))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._projects[(key[0], project)]

    def remove(self, key: Key) -> Body | None:
        with self._lock:
            old = self._items.pop(key, None)
            self._unindex(key, old)
            return old

    def get(self, key: Key) -> Body | None:
        with self._lock:
            return self._items.get(key)

    def values(self) -> list[Body]:
        with self._lock:
            return list(self._items.values())

    def by_project(self, namespace: str, project: str) -> list[Body]:
        with self._lock:
            keys = self._projects.get((namespace, project)) or set()
            return [self._items[k] for k in keys if k in self._items]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class Store:
    """The three caches and the last watched state of each Session."""

    def __init__(self) -> None:
        self.sessions = ObjectCache.for_sessions()
        self.pods = ObjectCache.for_pods()
        self.services = ObjectCache.for_services()
        # The state each object's previous watch event showed (see the module doc).
        self.watched_sessions: dict[Key, Any] = {}
        self.watched_pods: dict[Key, Any] = {}

"""In-memory views of Sessions, project pods and preview Services, fed by kopf watches.

Reconciles read from here instead of listing the API, so a resumed operator can
decide that a Session needs nothing without a single request. Writers are kopf's
event handlers on the loop; readers are worker threads: hence the lock.
"""

from __future__ import annotations

import threading
from typing import Any

from .builders import PROJECT_LABEL

Body = dict[str, Any]
Key = tuple[str, str]


def key_of(body: Body) -> Key:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def _rv(body: Body) -> int:
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class ObjectCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Key, Body] = {}

    def put(self, body: Body) -> Body | None:
        """Store ``body`` unless a newer version is already here; return the previous one."""
        key = key_of(body)
        with self._lock:
            old = self._items.get(key)
            if old is not None and _rv(old) > _rv(body):
                return old
            self._items[key] = body
            return old

    def remove(self, key: Key) -> Body | None:
        with self._lock:
            return self._items.pop(key, None)

    def get(self, key: Key) -> Body | None:
        with self._lock:
            return self._items.get(key)

    def values(self) -> list[Body]:
        with self._lock:
            return list(self._items.values())

    def by_project(self, namespace: str, project: str, *, from_spec: bool) -> list[Body]:
        with self._lock:
            items = list(self._items.items())
        out = []
        for (ns, _), body in items:
            if ns != namespace:
                continue
            if from_spec:
                value = (body.get("spec") or {}).get("project")
            else:
                value = ((body.get("metadata") or {}).get("labels") or {}).get(PROJECT_LABEL)
            if value == project:
                out.append(body)
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

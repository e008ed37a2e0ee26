"""What kopf keeps for the operator, cut to what the operator uses.

kopf's defaults store a diff base and each handler's progress on the object
itself (annotations): writes the operator does not need, since it reacts to
generations and its one kopf handler is the deletion's.
"""

from __future__ import annotations

from typing import Any

import kopf


class NoDiffBase(kopf.DiffBaseStorage):  # type: ignore[misc]
    """Keep no diff base: the operator reacts to generations, not to field diffs.

    kopf's default stores the last handled spec in an annotation, which costs a
    write at creation and on every spec change, and a deep copy of the object on
    every watch event; nothing here needs either. Deletion is still detected
    from deletionTimestamp.
    """

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return {}

    def fetch(self, *, body: Any) -> Any:
        return {}

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


class MemoryProgressStorage(kopf.AnnotationsProgressStorage):  # type: ignore[misc]
    """Keep the deletion handler's progress (its retry count, its next try) in memory.

    kopf's default writes it to annotations, and with them a ``<prefix>/kopf-managed``
    marker: one extra patch of every Session at deletion that nothing reads. The only
    handler is the deletion's, whose progress matters only until it succeeds or gives
    up (RDEV_DELETE_RETRIES), so a restart starting its count again costs at most a
    few more tries. A delayed retry still wakes itself with kopf's touch annotation,
    as before: that write happens only on the failure path.
    """

    def __init__(self, prefix: str) -> None:
        super().__init__(prefix=prefix)
        self.records: dict[tuple[str, str], Any] = {}

    @staticmethod
    def _uid(body: Any) -> str:
        return str((body.get("metadata") or {}).get("uid", ""))

    def fetch(self, *, key: Any, body: Any) -> Any:
        return self.records.get((self._uid(body), str(key)))

    def store(self, *, key: Any, record: Any, body: Any, patch: Any) -> None:
        self.records[(self._uid(body), str(key))] = dict(record)

    def purge(self, *, key: Any, body: Any, patch: Any) -> None:
        self.records.pop((self._uid(body), str(key)), None)

    def forget(self, uid: str) -> None:
        """Drop what is kept for an object that is gone (its handler never finished)."""
        for held in [k for k in self.records if k[0] == uid]:
            del self.records[held]

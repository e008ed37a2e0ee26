"""What kopf keeps for the operator: the deletion handler's progress in memory, not on the
Session (no patch), and the touch that wakes a delayed retry still a real write."""

from __future__ import annotations

from typing import Any

import kopf

from session_operator.kopfstate import MemoryProgressStorage


def body(uid: str) -> kopf.Body:
    return kopf.Body({"metadata": {"uid": uid, "name": "s", "namespace": "n"}})


def test_progress_is_kept_in_memory_and_never_patched() -> None:
    storage = MemoryProgressStorage(prefix="rdev.io")
    patch = kopf.Patch()
    record: Any = {"started": "2026-12-05T10:00:00", "retries": 2, "success": False}
    storage.store(key="session_delete", record=record, body=body("u1"), patch=patch)
    assert not patch  # the default storage writes the record and a kopf-managed marker
    assert storage.fetch(key="session_delete", body=body("u1")) == record
    assert storage.fetch(key="session_delete", body=body("u2")) is None  # per object
    storage.purge(key="session_delete", body=body("u1"), patch=patch)
    assert not patch
    assert storage.fetch(key="session_delete", body=body("u1")) is None


def test_a_gone_object_is_forgotten() -> None:
    storage = MemoryProgressStorage(prefix="rdev.io")
    storage.store(key="a", record={"retries": 1}, body=body("u1"), patch=kopf.Patch())
    storage.store(key="a", record={"retries": 1}, body=body("u2"), patch=kopf.Patch())
    storage.forget("u1")
    assert storage.records.keys() == {("u2", "a")}


def test_a_delayed_retry_still_touches_the_object_to_wake_itself() -> None:
    storage = MemoryProgressStorage(prefix="rdev.io")
    patch = kopf.Patch()
    storage.touch(body=body("u1"), patch=patch, value="2026-12-05T10:00:05")
    assert patch["metadata"]["annotations"]["rdev.io/touch-dummy"] == "2026-12-05T10:00:05"

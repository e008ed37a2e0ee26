"""Mappers: which keys a watch event enqueues (a handover enqueues one waiter, not the queue)."""

from __future__ import annotations

from typing import Any

from rdev_api import Body
from session_operator.mappers import (
    map_pod,
    map_service_deleted,
    map_session,
    pod_state,
    session_state,
)
from session_operator.store import Store

NS = "ns"


def sess(name: str, created: str, phase: str | None = None, gen: int = 1, **spec: Any) -> Body:
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "creationTimestamp": created,
            "generation": gen,
            "resourceVersion": "1",
        },
        "spec": {"project": "shop", "branch": name, **spec},
        "status": {"phase": phase} if phase else {},
    }


def pod(ready: bool = True, session: str | None = None, project: str = "shop") -> Body:
    labels = {"rdev.io/project": project}
    if session:
        labels["rdev.io/session"] = session
    return {
        "metadata": {"name": "p", "namespace": NS, "labels": labels},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def store_with(*bodies: Body) -> Store:
    store = Store()
    for body in bodies:
        store.sessions.put(body)
    return store


def test_new_session_enqueues_itself() -> None:
    body = sess("a", "t1")
    assert map_session((NS, "a"), None, session_state(body), store_with(body)) == [(NS, "a")]


def test_status_write_alone_enqueues_nothing() -> None:
    before, after = sess("a", "t1", "Active"), sess("a", "t1", "Active")
    after["status"]["previewURL"] = "x"
    store = store_with(after)
    assert map_session((NS, "a"), session_state(before), session_state(after), store) == []


def test_new_generation_enqueues_the_session() -> None:
    before, after = sess("a", "t1", "Active"), sess("a", "t1", "Active", gen=2)
    store = store_with(after)
    assert map_session((NS, "a"), session_state(before), session_state(after), store) == [(NS, "a")]


def test_handover_enqueues_only_the_next_in_line() -> None:
    holder = sess("a", "t1", "Ended")
    waiting = [sess(f"w{i:02}", f"t{i + 2:02}", "Pending") for i in range(50)]
    store = store_with(holder, *waiting)
    before = session_state(sess("a", "t1", "Active"))
    keys = map_session((NS, "a"), before, session_state(holder), store)
    assert keys == [(NS, "w00")]


def test_deleted_holder_hands_over() -> None:
    waiting = sess("b", "t2", "Pending")
    store = store_with(waiting)  # the holder left the store
    before = session_state(sess("a", "t1", "Active"))
    assert map_session((NS, "a"), before, None, store) == [(NS, "b")]


def test_new_waiter_does_not_wake_the_holder() -> None:
    holder, new = sess("a", "t1", "Active"), sess("b", "t2")
    store = store_with(holder, new)
    assert map_session((NS, "b"), None, session_state(new), store) == [(NS, "b")]


def test_stalled_session_leaving_the_queue_wakes_the_next() -> None:
    stuck = sess("a", "t1", "Failed")
    stuck["status"]["conditions"] = [{"type": "Stalled", "status": "True"}]
    waiting = sess("b", "t2", "Pending")
    store = store_with(stuck, waiting)
    before = session_state(sess("a", "t1", "Pending"))
    assert map_session((NS, "a"), before, session_state(stuck), store) == [(NS, "b")]


def test_pod_readiness_enqueues_every_live_session_of_the_project() -> None:
    store = store_with(
        sess("a", "t1", "Active"), sess("b", "t2", "Pending"), sess("c", "t0", "Ended")
    )
    keys = map_pod(NS, pod_state(pod(ready=True)), pod_state(pod(ready=False)), store)
    assert sorted(keys) == [(NS, "a"), (NS, "b")]


def test_pod_label_change_enqueues_only_the_sessions_it_names() -> None:
    store = store_with(
        sess("a", "t1", "Ended"), sess("b", "t2", "Active"), sess("c", "t3", "Pending")
    )
    keys = map_pod(NS, pod_state(pod(session="a")), pod_state(pod(session="b")), store)
    assert keys == [(NS, "b")]  # a ended; c is not named


def test_echo_of_the_operators_own_label_write_enqueues_nothing() -> None:
    store = store_with(sess("a", "t1", "Ended"), sess("b", "t2", "Active"))
    watched, now = pod_state(pod(session="a")), pod_state(pod(session="b"))
    # The store already holds the label b wrote (write-through): b acted when it wrote it.
    assert map_pod(NS, watched, now, store, known=now) == []
    # Someone else moved the label: the store did not know it, so b is woken.
    assert map_pod(NS, watched, now, store, known=watched) == [(NS, "b")]


def test_unchanged_pod_enqueues_nothing() -> None:
    store = store_with(sess("a", "t1", "Active"))
    assert map_pod(NS, pod_state(pod()), pod_state(pod()), store) == []


def test_new_pod_enqueues_the_project() -> None:
    store = store_with(sess("a", "t1", "Pending"))
    assert map_pod(NS, None, pod_state(pod()), store) == [(NS, "a")]


def test_deleted_service_of_an_active_session_is_restored() -> None:
    store = store_with(sess("a", "t1", "Active"), sess("b", "t2", "Ended"))
    assert map_service_deleted(NS, "a", store) == [(NS, "a")]
    assert map_service_deleted(NS, "b", store) == []
    assert map_service_deleted(NS, None, store) == []

"""Identical Events are counted on one object; memory stays bounded."""

from __future__ import annotations

from session_operator.events import EventAggregator, event_body

KEY = ("ns", "s", "uid", "Warning", "WebUIFailed", "the web UI command exited at once")


def test_first_occurrence_creates_then_repeats_count() -> None:
    agg = EventAggregator(window_s=600)
    assert agg.repeat_of(KEY, 0.0) is None
    agg.created(KEY, "s.abc", 0.0)
    counts = []
    for i in range(1, 50):
        seen = agg.repeat_of(KEY, float(i))
        assert seen is not None and seen.name == "s.abc"
        counts.append(seen.count)
    assert counts == list(range(2, 51))


def test_a_different_message_is_a_different_event() -> None:
    agg = EventAggregator()
    agg.created(KEY, "s.abc", 0.0)
    other = (*KEY[:5], "another message")
    assert agg.repeat_of(other, 1.0) is None


def test_after_the_window_a_new_object_starts() -> None:
    agg = EventAggregator(window_s=10)
    agg.created(KEY, "s.abc", 0.0)
    assert agg.repeat_of(KEY, 5.0) is not None
    assert agg.repeat_of(KEY, 16.0) is None  # 11 s after the last occurrence


def test_capacity_drops_the_least_recent() -> None:
    agg = EventAggregator(capacity=3)
    keys = [(*KEY[:5], f"m{i}") for i in range(4)]
    for i, key in enumerate(keys[:3]):
        agg.created(key, f"e{i}", float(i))
    agg.repeat_of(keys[0], 3.0)  # keys[0] is now the most recent
    agg.created(keys[3], "e3", 4.0)
    assert len(agg) == 3
    assert agg.repeat_of(keys[1], 5.0) is None  # dropped
    assert agg.repeat_of(keys[0], 5.0) is not None


def test_event_body_is_built_purely_from_its_inputs() -> None:
    session = {"metadata": {"name": "s1", "namespace": "ns", "uid": "u-1"}}
    body = event_body(
        session, "Warning", "WorktreeKept", "x" * 2000, name="s1.ab", now="T", instance="i" * 200
    )
    assert body == event_body(
        session, "Warning", "WorktreeKept", "x" * 2000, name="s1.ab", now="T", instance="i" * 200
    )
    assert body["metadata"] == {"name": "s1.ab", "namespace": "ns"}
    assert body["involvedObject"] == {
        "apiVersion": "rdev.io/v1alpha1",
        "kind": "Session",
        "name": "s1",
        "namespace": "ns",
        "uid": "u-1",
    }
    assert (body["type"], body["reason"], body["count"]) == ("Warning", "WorktreeKept", 1)
    assert len(body["message"]) == 1024 and len(body["reportingInstance"]) == 128
    assert body["firstTimestamp"] == body["lastTimestamp"] == "T"

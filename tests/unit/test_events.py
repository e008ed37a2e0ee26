"""Identical Events are counted on one object; memory stays bounded."""

from __future__ import annotations

from session_operator.events import EventAggregator

KEY = ("ns", "s", "uid", "Warning", "WebUIFailed", "the web UI command exited at once")


def test_first_occurrence_creates_then_repeats_count() -> None:
    agg = EventAggregator(window_s=600)
    assert agg.repeat_of(KEY, 0.0) is None
    agg.created(KEY, "s.abc", "t0", 0.0)
    counts = []
    for i in range(1, 50):
        seen = agg.repeat_of(KEY, float(i))
        assert seen is not None and seen.name == "s.abc"
        counts.append(seen.count)
    assert counts == list(range(2, 51))


def test_a_different_message_is_a_different_event() -> None:
    agg = EventAggregator()
    agg.created(KEY, "s.abc", "t0", 0.0)
    other = (*KEY[:5], "another message")
    assert agg.repeat_of(other, 1.0) is None


def test_after_the_window_a_new_object_starts() -> None:
    agg = EventAggregator(window_s=10)
    agg.created(KEY, "s.abc", "t0", 0.0)
    assert agg.repeat_of(KEY, 5.0) is not None
    assert agg.repeat_of(KEY, 16.0) is None  # 11 s after the last occurrence


def test_capacity_drops_the_least_recent() -> None:
    agg = EventAggregator(capacity=3)
    keys = [(*KEY[:5], f"m{i}") for i in range(4)]
    for i, key in enumerate(keys[:3]):
        agg.created(key, f"e{i}", "t", float(i))
    agg.repeat_of(keys[0], 3.0)  # keys[0] is now the most recent
    agg.created(keys[3], "e3", "t", 4.0)
    assert len(agg) == 3
    assert agg.repeat_of(keys[1], 5.0) is None  # dropped
    assert agg.repeat_of(keys[0], 5.0) is not None

"""kubectl session extend: the new expiresIn and the 30-day limit, computed without a cluster."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rdev_api.durations import EXPIRES_IN_RE, MAX_EXPIRES_IN_NS, duration_ns
from rdev_api.timing import (
    ExtendRefused,
    extend,
    go_duration,
    human,
    idle_deadline,
    parse_time,
    time_left,
)

CREATED = datetime(2026, 11, 24, 8, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500_000_000, "1s500ms"),
        (90 * 60 * 10**9, "1h30m"),
        (26 * 3600 * 10**9, "26h"),
        (MAX_EXPIRES_IN_NS, "720h"),
        (3600 * 10**9 + 1_000, "1h1us"),
    ],
)
def test_go_duration_renders_what_the_crd_accepts(ns: int, text: str) -> None:
    assert go_duration(ns) == text
    assert re.fullmatch(EXPIRES_IN_RE, text)
    assert duration_ns(text) == ns


@given(st.integers(min_value=1, max_value=MAX_EXPIRES_IN_NS))
def test_go_duration_round_trips(ns: int) -> None:
    assert duration_ns(go_duration(ns)) == ns


def test_extend_moves_the_expiry_by_the_span() -> None:
    ext = extend(CREATED, "8h", "2h30m")
    assert ext.expires_in == "10h30m"
    assert ext.expires_at == CREATED + timedelta(hours=10, minutes=30)


def test_extend_accepts_days_on_both_sides() -> None:
    ext = extend(CREATED, "7d", "1d")
    assert ext.expires_in == "192h"
    assert ext.expires_at == CREATED + timedelta(days=8)


def test_extend_up_to_exactly_thirty_days_is_allowed() -> None:
    ext = extend(CREATED, "24h", "29d")
    assert ext.expires_in_ns == MAX_EXPIRES_IN_NS
    assert ext.expires_at == CREATED + timedelta(days=30)


def test_extend_beyond_thirty_days_is_refused_with_the_reason() -> None:
    with pytest.raises(ExtendRefused) as refused:
        extend(CREATED, "29d", "2d")
    message = str(refused.value)
    assert "30-day limit" in message
    assert "744h" in message  # what expiresIn would have become
    assert "2026-12-24T08:00:00Z" in message  # the latest possible expiry
    assert "24h" in message  # the longest extension still possible


def test_extend_by_nothing_or_garbage_is_an_error() -> None:
    with pytest.raises(ValueError, match="longer than zero"):
        extend(CREATED, "8h", "0s")
    with pytest.raises(ValueError, match="not a duration"):
        extend(CREATED, "8h", "soon")


@given(
    st.integers(min_value=1, max_value=MAX_EXPIRES_IN_NS),
    st.integers(min_value=1, max_value=MAX_EXPIRES_IN_NS),
)
def test_extend_is_the_sum_or_a_refusal(current: int, by: int) -> None:
    try:
        ext = extend(CREATED, go_duration(current), go_duration(by))
    except ExtendRefused:
        assert current + by > MAX_EXPIRES_IN_NS
    else:
        assert current + by <= MAX_EXPIRES_IN_NS
        assert duration_ns(ext.expires_in) == current + by


def test_parse_time_reads_api_server_timestamps() -> None:
    assert parse_time("2026-11-24T08:00:00Z") == CREATED
    assert parse_time("2026-11-24T08:00:00.250000Z") == CREATED + timedelta(milliseconds=250)
    assert parse_time(None) is None
    assert parse_time("") is None


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=-5), "0s"),
        (timedelta(seconds=42), "42s"),
        (timedelta(minutes=3, seconds=5), "3m5s"),
        (timedelta(minutes=45, seconds=5), "45m"),
        (timedelta(hours=3, minutes=20, seconds=9), "3h20m"),
        (timedelta(hours=5), "5h"),
        (timedelta(days=6, hours=4, minutes=59), "6d4h"),
        (timedelta(days=2), "2d"),
    ],
)
def test_human_spans(delta: timedelta, text: str) -> None:
    assert human(delta) == text


def test_idle_deadline_is_last_activity_plus_idle_timeout() -> None:
    assert idle_deadline("2026-11-24T08:00:00Z", "90m") == CREATED + timedelta(minutes=90)
    assert idle_deadline(None, "90m") is None
    assert idle_deadline("2026-11-24T08:00:00Z", None) is None


def test_time_left() -> None:
    now = CREATED
    assert time_left(None, now) == "-"
    assert time_left(now - timedelta(seconds=1), now) == "due"
    assert time_left(now + timedelta(hours=2), now) == "2h"

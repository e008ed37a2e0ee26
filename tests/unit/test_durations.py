"""Go durations plus whole days, computed as Go (and so the API server's CEL) computes them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from rdev_api.durations import (
    DAYS_RE,
    EXPIRES_IN_RE,
    GO_DURATION_RE,
    MAX_EXPIRES_IN,
    MAX_EXPIRES_IN_NS,
    duration_ns,
    format_duration,
    parse_duration,
)

H = 3_600_000_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("30d", timedelta(days=30)),
        ("720h", timedelta(hours=720)),
        ("1.5h", timedelta(minutes=90)),
        ("1h0.5m", timedelta(hours=1, seconds=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("10s", timedelta(seconds=10)),
        ("3us", timedelta(microseconds=3)),
        ("3µs", timedelta(microseconds=3)),
        ("007d", timedelta(days=7)),
        ("0s", timedelta(0)),
        ("2h2h", timedelta(hours=4)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "-1h",
        "+1h",
        "1",
        "h",
        "1.h",
        ".5h",
        "1 h",
        "1H",
        "1d2h",
        "1w",
        "1μs",
        "24h\n",
        "0",
    ],
)
def test_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1ns", 1),
        ("720h", 720 * H),
        ("720.0000000001h", 720 * H + 360),  # Go: 1e-10 h = 360 ns
        ("719h60m0.0000001s", 720 * H + 100),
        ("0.0000001s", 100),
        ("0.0000000001s", 0),  # below a nanosecond: Go truncates to 0
        ("1.000000000000000000001s", 1_000_000_000),  # extra fraction digits ignored
        ("30d", 30 * 24 * H),
    ],
)
def test_nanoseconds_match_go(text: str, ns: int) -> None:
    assert duration_ns(text) == ns


def test_nanosecond_precision_decides_the_bounds() -> None:
    """A float-seconds parse would round these onto the bounds; Go and CEL do not."""
    assert duration_ns("720.0000000001h") > MAX_EXPIRES_IN_NS
    assert duration_ns("0.0000001s") > 0


@pytest.mark.parametrize("text", ["2562048h", "9999999999999999999h", "99999999999999999999999ns"])
def test_go_overflow_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration(text)


def test_largest_go_duration() -> None:
    assert duration_ns("2562047h47m16.854775807s") == (1 << 63) - 1
    with pytest.raises(ValueError):
        duration_ns("2562047h47m16.854775808s")


def test_huge_days_are_a_value_error_not_overflow() -> None:
    assert duration_ns("99999999999999999999d") > MAX_EXPIRES_IN_NS
    with pytest.raises(ValueError, match="too long"):
        parse_duration("99999999999999999999d")


def test_max_constants_agree() -> None:
    assert timedelta(microseconds=MAX_EXPIRES_IN_NS // 1000) == MAX_EXPIRES_IN


@pytest.mark.parametrize("text", ["90m", "1h30m", "7d", "0.5s", "1µs", "12d"])
def test_combined_regex_is_the_union(text: str) -> None:
    either = bool(re.fullmatch(DAYS_RE, text) or re.fullmatch(GO_DURATION_RE, text))
    assert bool(re.fullmatch(EXPIRES_IN_RE, text)) == either


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=0), "0s"),
        (timedelta(seconds=10), "10s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(hours=24, seconds=1), "24h1s"),
    ],
)
def test_format_round_trips(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value

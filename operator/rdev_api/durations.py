"""Go-style durations (``90m``, ``1h30m``) plus whole days (``7d``).

Kept apart from the models so that the CRD's CEL rules and the operator agree on
one grammar: the API server understands Go durations through CEL's
``duration()``, and whole days are the one extension people expect.
"""

from __future__ import annotations

import re
from datetime import timedelta

GO_DURATION_RE = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
DAYS_RE = r"^[0-9]+d$"
EXPIRES_IN_RE = r"^([0-9]+d|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$"
MAX_EXPIRES_IN = timedelta(days=30)

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_NS_PER_DAY = 86_400_000_000_000
_MAX_GO_DURATION_NS = (1 << 63) - 1  # Go's time.Duration is an int64 of nanoseconds
MAX_EXPIRES_IN_NS = 30 * _NS_PER_DAY
_PART = re.compile(r"([0-9]+)(?:\.([0-9]+))?(ns|us|µs|ms|s|m|h)")


def _too_long(text: str) -> ValueError:
    return ValueError(f"{text!r} is too long a duration")


def _go_duration_ns(text: str) -> int:
    """Nanoseconds of a Go duration, computed exactly as Go's time.ParseDuration does.

    The API server evaluates the CRD's CEL ``duration()`` with Go, so the same
    arithmetic (integer nanoseconds, fractions through float64, int64 overflow
    is an error) keeps the operator and the API server agreeing to the
    nanosecond, e.g. on ``720.0000000001h`` or ``0.0000001s``.
    """
    total = 0
    for whole, frac, unit_name in _PART.findall(text):
        unit = _NS_PER_UNIT[unit_name]
        value = 0
        for digit in whole:  # Go's leadingInt
            if value > (1 << 63) // 10:
                raise _too_long(text)
            value = value * 10 + int(digit)
            if value > 1 << 63:
                raise _too_long(text)
        fraction, scale = 0, 1.0
        overflow = False
        for digit in frac:  # Go's leadingFraction: extra digits are ignored
            if overflow:
                continue
            if fraction > ((1 << 63) - 1) // 10:
                overflow = True
                continue
            nxt = fraction * 10 + int(digit)
            if nxt > 1 << 63:
                overflow = True
                continue
            fraction = nxt
            scale *= 10
        if value > (1 << 63) // unit:
            raise _too_long(text)
        value *= unit
        if fraction > 0:
            value += int(float(fraction) * (float(unit) / scale))
            if value > 1 << 63:
                raise _too_long(text)
        total += value
        if total > 1 << 63:
            raise _too_long(text)
    if total > _MAX_GO_DURATION_NS:
        raise _too_long(text)
    return total


def duration_ns(text: str) -> int:
    """Nanoseconds of ``Nd`` or a Go duration; raise ValueError with a readable message."""
    if re.fullmatch(DAYS_RE, text):
        return int(text[:-1]) * _NS_PER_DAY
    if not re.fullmatch(GO_DURATION_RE, text):
        raise ValueError(
            f"{text!r} is not a duration: use a Go duration such as 90m, 24h or 1h30m,"
            " or whole days such as 7d"
        )
    return _go_duration_ns(text)


def parse_duration(text: str) -> timedelta:
    """Parse ``Nd`` or a Go duration; raise ValueError with a readable message."""
    ns = duration_ns(text)
    if ns > timedelta.max.days * _NS_PER_DAY:
        raise _too_long(text)
    return timedelta(microseconds=ns // 1000)


def format_duration(value: timedelta) -> str:
    """Render seconds as a Go duration, for messages and settings round-trips."""
    total = int(value.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if seconds or not out:
        out += f"{seconds}s"
    return out

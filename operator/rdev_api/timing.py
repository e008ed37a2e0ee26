"""Deadlines and durations: the idle deadline both sides compute, and how the plugin shows
and changes them (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .durations import MAX_EXPIRES_IN_NS, duration_ns

_NS_PER_S = 1_000_000_000
_GO_UNITS = (("h", 3600 * _NS_PER_S), ("m", 60 * _NS_PER_S), ("s", _NS_PER_S))
_SUB_SECOND = (("ms", 1_000_000), ("us", 1_000), ("ns", 1))


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp as the API server writes it, or None."""
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def go_duration(ns: int) -> str:
    """Nanoseconds as a Go duration the CRD accepts (``49h30m``, ``1h0m0.5s`` is ``1h500ms``)."""
    if ns <= 0:
        return "0s"
    out = ""
    rest = ns
    for unit, size in (*_GO_UNITS, *_SUB_SECOND):
        count, rest = divmod(rest, size)
        if count:
            out += f"{count}{unit}"
    return out


def human(delta: timedelta) -> str:
    """A short, rounded-down span for tables: ``45s``, ``12m``, ``3h20m``, ``6d4h``."""
    total = int(delta.total_seconds())
    if total < 0:
        total = 0
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{seconds}s" if minutes < 10 and seconds else f"{minutes}m"
    return f"{seconds}s"


def time_left(deadline: datetime | None, now: datetime) -> str:
    """What a table shows for a deadline: ``-`` for none, ``due`` once it passed."""
    if deadline is None:
        return "-"
    if deadline <= now:
        return "due"
    return human(deadline - now)


def idle_deadline(last_activity_at: str | None, idle_timeout: str | None) -> datetime | None:
    """When an idle session stops: lastActivityAt + idleTimeout (None without either)."""
    last = parse_time(last_activity_at)
    if last is None or not idle_timeout:
        return None
    try:
        return last + timedelta(microseconds=duration_ns(idle_timeout) // 1000)
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class Extension:
    """A new ``spec.expiresIn`` that moves the expiry by the requested span."""

    expires_in: str  # rendered in the syntax the CRD accepts
    expires_in_ns: int
    expires_at: datetime  # the new deadline


class ExtendRefused(ValueError):
    """The new lifetime would break the CRD's 30-day limit; nothing is patched."""


def extend(created: datetime, expires_in: str, by: str) -> Extension:
    """New expiresIn = (current expiry + by) - creationTimestamp, in whole nanoseconds.

    The current expiry is creationTimestamp + spec.expiresIn, exactly what the
    operator writes to status.expiresAt, so the new expiresIn is the old one
    plus ``by``; computing it from the spec keeps sub-second parts and works
    before the operator has written a status.
    """
    by_ns = duration_ns(by)
    if by_ns <= 0:
        raise ValueError(f"--by must be longer than zero, not {by!r}")
    current_ns = duration_ns(expires_in)
    new_ns = current_ns + by_ns
    new_at = created + timedelta(microseconds=new_ns // 1000)
    if new_ns > MAX_EXPIRES_IN_NS:
        limit_at = created + timedelta(microseconds=MAX_EXPIRES_IN_NS // 1000)
        raise ExtendRefused(
            f"expiresIn would become {go_duration(new_ns)} (expiry {iso(new_at)}), beyond the"
            f" 30-day limit of a session's lifetime: it cannot live past {iso(limit_at)}"
            f" (30d after its creation); the longest extension now is"
            f" {go_duration(MAX_EXPIRES_IN_NS - current_ns)}"
        )
    return Extension(go_duration(new_ns), new_ns, new_at)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

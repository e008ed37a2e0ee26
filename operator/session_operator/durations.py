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

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta:
    """Parse ``Nd`` or a Go duration; raise ValueError with a readable message."""
    if re.fullmatch(DAYS_RE, text):
        return timedelta(days=int(text[:-1]))
    if not re.fullmatch(GO_DURATION_RE, text):
        raise ValueError(
            f"{text!r} is not a duration: use a Go duration such as 90m, 24h or 1h30m,"
            " or whole days such as 7d"
        )
    seconds = sum(float(num) * _UNITS[unit] for num, unit in _PART.findall(text))
    return timedelta(seconds=seconds)


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

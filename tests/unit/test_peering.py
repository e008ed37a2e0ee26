"""Gate.decide: kopf's peering rule, as the workers follow it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from session_operator.peering import Gate

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def peer(priority: int, seen_s_ago: float = 0, lifetime: int = 60) -> dict[str, object]:
    return {
        "priority": priority,
        "lastseen": (NOW - timedelta(seconds=seen_s_ago)).isoformat(),
        "lifetime": lifetime,
    }


def peering(**peers: dict[str, object]) -> dict[str, object]:
    return {"status": peers}


def test_standalone_always_acts() -> None:
    gate = Gate(None)
    assert gate.open.is_set()
    assert gate.decide(None, NOW)
    assert gate.decide(peering(other=peer(100)), NOW)


def test_no_peering_object_yet_means_wait() -> None:
    assert not Gate(10).decide(None, NOW)


@pytest.mark.parametrize(
    ("peers", "acts"),
    [
        ({"me": peer(10)}, True),
        ({"me": peer(10), "lower": peer(5)}, True),
        ({"me": peer(10), "higher": peer(20)}, False),
        # The same priority twice: neither acts (kopf's rule), until one goes.
        ({"me": peer(10), "twin": peer(10)}, False),
        # A peer not seen within its lifetime is dead and does not count.
        ({"me": peer(10), "higher": peer(20, seen_s_ago=61)}, True),
        ({"me": peer(10), "higher": peer(20, seen_s_ago=30, lifetime=15)}, True),
        ({"me": peer(10), "higher": peer(20, seen_s_ago=10, lifetime=15)}, False),
        # Unreadable entries are skipped, not trusted.
        ({"me": peer(10), "junk": "not a peer"}, True),
        ({"me": peer(10), "bad": {"priority": 99, "lastseen": "yesterday"}}, True),
    ],
)
def test_acts_only_without_a_live_peer_above_or_beside(
    peers: dict[str, object], acts: bool
) -> None:
    assert Gate(10).decide(peering(**peers), NOW) is acts  # type: ignore[arg-type]


def test_a_naive_lastseen_is_read_as_utc() -> None:
    naive = {"priority": 20, "lastseen": NOW.replace(tzinfo=None).isoformat(), "lifetime": 60}
    assert not Gate(10).decide(peering(me=peer(10), higher=naive), NOW)

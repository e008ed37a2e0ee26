"""Shard arithmetic: the API server's FNV-1a hash, the slices of the ring, the selector text."""

from __future__ import annotations

import itertools
import os

import pytest

from rdev_api import shards
from session_operator.settings import load_settings

# ns-a as the API server hashes it (test_sharding.py asks the server);
# the others are FNV-1a's published 64-bit test vectors.
KNOWN = {
    "ns-a": 0x4A8287BA48E20B30,
    "": 0xCBF29CE484222325,
    "a": 0xAF63DC4C8601EC8C,
    "foobar": 0x85944171F73967E8,
}


@pytest.mark.parametrize(("text", "value"), KNOWN.items())
def test_fnv1a64_known_values(text: str, value: int) -> None:
    assert shards.fnv1a64(text) == value


def test_slices_cover_the_ring_without_gaps_or_overlaps() -> None:
    for count in (1, 2, 3, 4, 7, 64):
        edges = [shards.bounds(i, count) for i in range(count)]
        assert edges[0][0] == 0
        assert edges[-1][1] == shards.RING
        assert all(a[1] == b[0] for a, b in itertools.pairwise(edges))
        assert all(lo < hi for lo, hi in edges)


def test_selector_text_is_what_the_api_server_parses() -> None:
    # 16 lowercase hex digits, 17 only for the ring's end (apiserver/pkg/sharding/parser.go).
    assert shards.shard_selector(0, 1) == ""  # unsharded: no filter at all
    assert shards.shard_selector(0, 2) == (
        "shardRange(object.metadata.namespace, '0x0000000000000000', '0x8000000000000000')"
    )
    assert shards.shard_selector(1, 2) == (
        "shardRange(object.metadata.namespace, '0x8000000000000000', '0x10000000000000000')"
    )
    assert shards.shard_selector(2, 4) == (
        "shardRange(object.metadata.namespace, '0x8000000000000000', '0xc000000000000000')"
    )
    assert shards.shard_selector(0, 3) == (
        "shardRange(object.metadata.namespace, '0x0000000000000000', '0x5555555555555555')"
    )


def test_every_namespace_has_exactly_one_shard() -> None:
    assert shards.shard_of("ns-a", 2) == 0  # 0x4a... < 0x80...
    assert shards.shard_of("ns-a", 4) == 1  # 0x40... <= 0x4a... < 0x80...
    for count in (1, 3, 5):
        for name in ("ns-a", "default", "kube-system", "t-1234abcd"):
            index = shards.shard_of(name, count)
            lo, hi = shards.bounds(index, count)
            assert lo <= shards.fnv1a64(name) < hi


def test_bounds_refuse_a_shard_outside_the_count() -> None:
    with pytest.raises(ValueError, match=r"not in 0\.\.1"):
        shards.bounds(2, 2)


def test_peering_and_user_agent_name_the_shard() -> None:
    assert shards.peering_name("rdev-session-operator", 0, 1) == "rdev-session-operator"
    assert shards.peering_name("rdev-session-operator", 1, 4) == "rdev-session-operator-shard-1"
    assert shards.peering_name("", 1, 4) == ""  # standalone stays standalone
    assert shards.user_agent(0, 1) == ""
    # managedFields takes the manager from the part before "/": one per shard.
    assert shards.user_agent(2, 4).split("/")[0] == "rdev-session-operator-shard-2-of-4"


@pytest.mark.parametrize(
    ("name", "found"),
    [("rdev-session-operator-3", 3), ("op-0", 0), ("operator", None), ("op-3a", None)],
)
def test_ordinal_of_a_statefulset_pod(name: str, found: int | None) -> None:
    assert shards.ordinal(name) == found


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith("RDEV_") or name in ("POD_NAME", "HOSTNAME"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_shard_defaults_to_the_pod_ordinal_modulo_shards(clean_env: pytest.MonkeyPatch) -> None:
    assert load_settings().shard_index == 0
    clean_env.setenv("RDEV_SHARDS", "2")
    clean_env.setenv("HOSTNAME", "rdev-session-operator-3")
    assert load_settings().shard_index == 1  # the standby of shard 1
    clean_env.setenv("POD_NAME", "rdev-session-operator-2")
    assert load_settings().shard_index == 0
    clean_env.setenv("RDEV_SHARD", "1")
    assert load_settings().shard_index == 1


def test_shard_settings_name_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RDEV_SHARDS", "2")
    clean_env.setenv("POD_NAME", "operator")
    with pytest.raises(SystemExit, match=r"RDEV_SHARD: .*ends in no ordinal"):
        load_settings()
    clean_env.setenv("RDEV_SHARD", "2")
    with pytest.raises(SystemExit, match=r"RDEV_SHARD: .*must be below RDEV_SHARDS=2"):
        load_settings()
    clean_env.setenv("RDEV_SHARDS", "0")
    with pytest.raises(SystemExit, match="RDEV_SHARDS"):
        load_settings()


def test_kopf_requests_carry_the_shard_in_their_user_agent() -> None:
    import kopf

    from session_operator.main import identified

    info = kopf.ConnectionInfo(server="https://127.0.0.1:6443", token="t")
    assert identified(info, "") is info
    named = identified(info, shards.user_agent(1, 2))
    assert named.as_http_headers() == {
        "Authorization": "Bearer t",
        "User-Agent": "rdev-session-operator-shard-1-of-2/python",
    }
    assert named.server == info.server and named.token == info.token


# Namespaces numbered after one prefix, as teams name them: FNV-1a's last bytes move
# the low bits only, so equal slices (cut on the high bits) put them all in one shard.
TEAMS = {f"team-{i:02d}": 100 for i in range(80)}


def test_equal_slices_put_namespaces_numbered_after_one_prefix_in_one_shard() -> None:
    assert [spaces for spaces, _ in shards.tally(TEAMS, 4)] == [0, 80, 0, 0]


def test_a_plan_balances_the_sessions_of_namespaces_that_hash_close() -> None:
    cuts = shards.plan(TEAMS, 4)
    assert shards.tally(TEAMS, 4, cuts) == [(20, 2000)] * 4
    # The API server reads them back as the operator does (selector text, one per shard).
    assert shards.parse_cuts(shards.format_cuts(cuts), 4) == cuts
    for index in range(4):
        lo, hi = shards.bounds(index, 4, cuts)
        assert all(
            lo <= shards.fnv1a64(n) < hi for n in TEAMS if shards.shard_of(n, 4, cuts) == index
        )


def test_a_plan_weighs_namespaces_by_their_sessions() -> None:
    weights = {f"rs-{i:03d}": 1 for i in range(30)}
    weights["big"] = 30  # as much as the rest together
    cuts = shards.plan(weights, 2)
    held = [total for _, total in shards.tally(weights, 2, cuts)]
    assert sorted(held) == [29, 31] or sorted(held) == [30, 30], held


def test_a_plan_cuts_halfway_between_the_namespaces_it_separates() -> None:
    weights = {name: 1 for name in ("a", "b", "c", "d")}
    ring = sorted(shards.fnv1a64(n) for n in weights)
    (cut,) = shards.plan(weights, 2)
    assert cut == (ring[1] + ring[2] + 1) // 2
    assert ring[1] < cut <= ring[2]


def test_a_plan_gives_every_shard_a_namespace_even_when_one_weighs_most() -> None:
    weights = {"a": 1000, "b": 1, "c": 1, "d": 1}
    cuts = shards.plan(weights, 4)
    assert [spaces for spaces, _ in shards.tally(weights, 4, cuts)] == [1, 1, 1, 1]
    assert shards.plan({"a": 1}, 2) == ()  # fewer namespaces than shards: equal slices


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0x1", "4 shards need 3 boundaries, not 1"),
        ("0x3,0x2,0x1", "must rise strictly"),
        ("0x0,0x2,0x3", "must rise strictly"),
        ("0x1,0x2,0x10000000000000000", "must rise strictly"),
        ("0x1,zz,0x3", "not hex numbers"),
    ],
)
def test_boundaries_that_would_leave_a_gap_or_an_overlap_are_refused(
    text: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        shards.parse_cuts(text, 4)


def test_cut_slices_cover_the_ring_without_gaps_or_overlaps() -> None:
    cuts = shards.plan(TEAMS, 4)
    edges = [shards.bounds(i, 4, cuts) for i in range(4)]
    assert edges[0][0] == 0 and edges[-1][1] == shards.RING
    assert all(a[1] == b[0] for a, b in itertools.pairwise(edges))


def test_boundaries_setting_picks_this_replicas_slice(clean_env: pytest.MonkeyPatch) -> None:
    cuts = shards.plan(TEAMS, 4)
    clean_env.setenv("RDEV_SHARDS", "4")
    clean_env.setenv("RDEV_SHARD", "2")
    assert load_settings().shard_selector == shards.shard_selector(2, 4)  # default: equal
    clean_env.setenv("RDEV_SHARD_BOUNDARIES", shards.format_cuts(cuts))
    settings = load_settings()
    assert settings.shard_boundaries == cuts
    assert settings.shard_selector == shards.selector(cuts[1], cuts[2])
    clean_env.setenv("RDEV_SHARD_BOUNDARIES", "0x2,0x1")
    with pytest.raises(SystemExit, match=r"RDEV_SHARD_BOUNDARIES: .*4 shards need 3 boundaries"):
        load_settings()

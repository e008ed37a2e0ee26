"""Shards by namespace: which slice of the hash ring a replica serves, and how to ask for it.

The API server's sharded list and watch (Kubernetes 1.36, alpha gate
``ShardedListAndWatch``, KEP-5866) keeps an object when the FNV-1a 64-bit hash
of its namespace lies in ``[start, end)``; the bounds are written as 16 lowercase
hex digits after ``0x``, except the ring's end, ``0x10000000000000000``
(k8s.io/apimachinery/pkg/sharding, k8s.io/apiserver/pkg/sharding/parser.go).
Sharding by namespace keeps a project's Sessions and its pod in one shard, so the
per-project queue needs no coordination across shards.

The ring splits into equal slices by default. A few namespaces hash far from even
(80 at random into 4 equal slices: all four within 20-30 % in only 40 % of draws), so
``RDEV_SHARD_BOUNDARIES`` may name the inner cuts instead, as ``plan`` balances them
over the Sessions each namespace holds (``kubectl session shards``). Pure: no I/O here.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Mapping, Sequence

from .names import MANAGER

RING = 1 << 64
MAX_SHARDS = 1024  # RDEV_SHARDS' bound: a shard per namespace long before this
FIELD = "object.metadata.namespace"
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_ORDINAL = re.compile(r"-(\d+)$")


def fnv1a64(text: str) -> int:
    """FNV-1a, 64 bits, over the UTF-8 bytes: Go's ``hash/fnv.New64a``."""
    value = _FNV_OFFSET
    for byte in text.encode():
        value = ((value ^ byte) * _FNV_PRIME) % RING
    return value


def edges(count: int, cuts: Sequence[int] = ()) -> tuple[int, ...]:
    """The ``count + 1`` points that split the ring: ``cuts`` inside, else equal slices ±1."""
    if cuts:
        return (0, *check_cuts(cuts, count), RING)
    return tuple(index * RING // count for index in range(count + 1))


def check_cuts(cuts: Sequence[int], count: int) -> tuple[int, ...]:
    """Cuts that make ``count`` non-empty slices: ``count - 1`` rising values inside the ring."""
    if len(cuts) != count - 1:
        raise ValueError(f"{count} shards need {count - 1} boundaries, not {len(cuts)}")
    points = (0, *cuts, RING)
    for lo, hi in itertools.pairwise(points):
        if not lo < hi:
            raise ValueError(
                f"boundaries must rise strictly inside (0x0, 0x{RING:x}): {hex_bound(hi)}"
                f" does not follow {hex_bound(lo)}"
            )
    return tuple(cuts)


def parse_cuts(text: str, count: int) -> tuple[int, ...]:
    """``RDEV_SHARD_BOUNDARIES``: comma-separated hex hashes (``0x…``); empty: equal slices."""
    words = [word.strip() for word in text.split(",") if word.strip()]
    if not words:
        return ()
    try:
        values = [int(word, 16) for word in words]
    except ValueError:
        raise ValueError(f"not hex numbers like 0x4000000000000000: {text!r}") from None
    return check_cuts(values, count)


def format_cuts(cuts: Sequence[int]) -> str:
    """Cuts as ``RDEV_SHARD_BOUNDARIES`` takes them."""
    return ",".join(hex_bound(cut) for cut in cuts)


def bounds(index: int, count: int, cuts: Sequence[int] = ()) -> tuple[int, int]:
    """Shard ``index`` of ``count``: its slice ``[lo, hi)`` of the ring."""
    if not 0 <= index < count:
        raise ValueError(f"shard {index} is not in 0..{count - 1}")
    points = edges(count, cuts)
    return points[index], points[index + 1]


def hex_bound(value: int) -> str:
    """A bound as the API server parses it: ``0x`` and 16 hex digits (17 for the ring's end)."""
    return f"0x{value:016x}"


def selector(lo: int, hi: int) -> str:
    """The ``shardSelector`` for namespaces hashing into ``[lo, hi)``."""
    return f"shardRange({FIELD}, '{hex_bound(lo)}', '{hex_bound(hi)}')"


def shard_selector(index: int, count: int, cuts: Sequence[int] = ()) -> str:
    """Shard ``index`` of ``count``'s selector; empty when unsharded (no filter at all)."""
    return selector(*bounds(index, count, cuts)) if count > 1 else ""


def shard_of(namespace: str, count: int, cuts: Sequence[int] = ()) -> int:
    """The shard that serves ``namespace``."""
    return bisect.bisect_right(edges(count, cuts), fnv1a64(namespace)) - 1


def plan(weights: Mapping[str, int], count: int) -> tuple[int, ...]:
    """Cuts that give each of ``count`` shards about an equal part of the weight (a
    namespace's Sessions), each namespace whole, in ring order.

    Each cut falls where the running total is nearest its share, then halfway between
    the two namespaces it separates, so namespaces made later still split by the ring's
    gaps. Empty (equal slices) when there are fewer namespaces than shards.
    """
    ring = sorted((fnv1a64(name), weight) for name, weight in weights.items())
    if count <= 1 or len(ring) < count:
        return ()
    total = sum(weight for _, weight in ring) or 1
    running = [0]
    for _, weight in ring:
        running.append(running[-1] + weight)
    cuts: list[int] = []
    after = 0  # namespaces already left of the last cut
    for index in range(1, count):
        goal = total * index / count
        # Leave room for one namespace at least in each shard still to come.
        lo, hi = after + 1, len(ring) - (count - index)
        split = min(range(lo, hi + 1), key=lambda at: (abs(running[at] - goal), at))
        left, right = ring[split - 1][0], ring[split][0]
        cuts.append((left + right + 1) // 2)
        after = split
    return tuple(cuts)


def tally(
    weights: Mapping[str, int], count: int, cuts: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """Per shard: how many of the namespaces, and how much of their weight, it serves."""
    out = [(0, 0)] * count
    for name, weight in weights.items():
        index = shard_of(name, count, cuts)
        spaces, total = out[index]
        out[index] = (spaces + 1, total + weight)
    return out


def ordinal(pod_name: str) -> int | None:
    """The number a StatefulSet puts at the end of a pod's name (``rdev-3`` -> 3); None: none."""
    match = _ORDINAL.search(pod_name)
    return int(match.group(1)) if match else None


def peering_name(base: str, index: int, count: int) -> str:
    """One peering per shard, so each shard elects its own leader; unsharded: the base name."""
    if count <= 1 or not base:
        return base
    return f"{base}-shard-{index}"


def user_agent(index: int, count: int) -> str:
    """The operator's user agent: with shards, it names the shard, so the audit log and
    managedFields (whose manager is the part before ``/``) tell the shards apart.
    Unsharded: empty, the client's own."""
    if count <= 1:
        return ""
    return f"{MANAGER}-shard-{index}-of-{count}/python"

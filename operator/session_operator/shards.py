"""Shards by namespace: which slice of the hash ring a replica serves, and how to ask for it.

The API server's sharded list and watch (Kubernetes 1.36, alpha gate
``ShardedListAndWatch``, KEP-5866) keeps an object when the FNV-1a 64-bit hash
of its namespace lies in ``[start, end)``; the bounds are written as 16 lowercase
hex digits after ``0x``, except the ring's end, ``0x10000000000000000``
(k8s.io/apimachinery/pkg/sharding, k8s.io/apiserver/pkg/sharding/parser.go).
Sharding by namespace keeps a project's Sessions and its pod in one shard, so the
per-project queue needs no coordination across shards. Pure: no I/O here.
"""

from __future__ import annotations

import re

from rdev_api.names import MANAGER

RING = 1 << 64
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


def bounds(index: int, count: int) -> tuple[int, int]:
    """Shard ``index`` of ``count``: the slice ``[lo, hi)`` of the ring, all slices equal ±1."""
    if not 0 <= index < count:
        raise ValueError(f"shard {index} is not in 0..{count - 1}")
    return index * RING // count, (index + 1) * RING // count


def hex_bound(value: int) -> str:
    """A bound as the API server parses it: ``0x`` and 16 hex digits (17 for the ring's end)."""
    return f"0x{value:016x}"


def selector(lo: int, hi: int) -> str:
    """The ``shardSelector`` for namespaces hashing into ``[lo, hi)``."""
    return f"shardRange({FIELD}, '{hex_bound(lo)}', '{hex_bound(hi)}')"


def shard_selector(index: int, count: int) -> str:
    """Shard ``index`` of ``count``'s selector; empty when unsharded (no filter at all)."""
    return selector(*bounds(index, count)) if count > 1 else ""


def shard_of(namespace: str, count: int) -> int:
    """The shard that serves ``namespace``."""
    value = fnv1a64(namespace)
    for index in range(count):
        lo, hi = bounds(index, count)
        if lo <= value < hi:
            return index
    raise AssertionError("the slices cover the ring")  # pragma: no cover


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

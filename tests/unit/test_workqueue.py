"""The keyed work queue: dedup, one in flight per key, delayed re-adds, backoff, hold."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from session_operator.queue import Backoff, WorkQueue


def aio(fn: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(fn)
    def wrapper() -> None:
        asyncio.run(asyncio.wait_for(fn(), timeout=10))

    return wrapper


def queue(base: float = 0.01, cap: float = 0.08) -> WorkQueue[str]:
    return WorkQueue(Backoff(base, cap))


@aio
async def test_adds_are_deduplicated_while_waiting() -> None:
    q = queue()
    for key in ("a", "b", "a", "a", "b"):
        q.add(key)
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert len(q) == 0


@aio
async def test_a_key_in_flight_is_not_handed_out_again_but_runs_after() -> None:
    q = queue()
    q.add("a")
    key = await q.get()
    assert key == "a" and q.in_flight("a")
    q.add("a")  # an event while it is processed
    q.add("a")
    assert len(q) == 0  # not handed to a second worker
    q.done("a")
    assert len(q) == 1  # runs once more, once
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


@aio
async def test_two_workers_never_share_a_key() -> None:
    q = queue()
    running: set[str] = set()
    overlaps: list[str] = []
    runs: list[str] = []

    async def worker() -> None:
        while (key := await q.get()) is not None:
            if key in running:
                overlaps.append(key)
            running.add(key)
            await asyncio.sleep(0.001)
            runs.append(key)
            running.discard(key)
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for _ in range(50):
        q.add("a")
        q.add("b")
        await asyncio.sleep(0)
    while len(q) or q.in_flight("a") or q.in_flight("b"):
        await asyncio.sleep(0.001)
    await q.shutdown()
    await asyncio.gather(*workers)
    assert overlaps == []
    assert 2 <= len(runs) < 100  # deduplicated, never lost


@aio
async def test_add_after_fires_once_and_keeps_the_earliest_deadline() -> None:
    q = queue()
    q.add_after("a", 5.0)
    q.add_after("a", 0.02)  # earlier: replaces
    q.add_after("a", 1.0)  # later: ignored
    delay = q.pending_delay("a")
    assert delay is not None and delay <= 0.02
    assert len(q) == 0
    assert await asyncio.wait_for(q.get(), 1) == "a"
    assert q.timers() == 0


@aio
async def test_backoff_grows_is_capped_and_resets_on_forget() -> None:
    q = queue(base=0.01, cap=0.08)
    delays = [q.add_rate_limited("a") for _ in range(6)]
    assert delays == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.08, 0.08])
    q.forget("a")
    assert q.add_rate_limited("a") == pytest.approx(0.01)
    assert q.backoff.failures("b") == 0  # per key


@aio
async def test_discard_drops_timers_and_backoff() -> None:
    q = queue()
    q.add_rate_limited("a")
    q.add_rate_limited("a")
    q.discard("a")
    assert q.pending_delay("a") is None and q.backoff.failures("a") == 0
    await asyncio.sleep(0.05)
    assert len(q) == 0


@aio
async def test_hold_waits_for_the_worker_and_keeps_workers_out() -> None:
    q = queue()
    q.add("a")
    assert await q.get() == "a"
    order: list[str] = []

    async def finalizer() -> None:
        async with q.hold("a"):
            order.append("hold")
            q.add("a")  # an event during the hold
            assert len(q) == 0
            await asyncio.sleep(0.01)
        order.append("released")

    task = asyncio.create_task(finalizer())
    await asyncio.sleep(0.01)
    assert order == []  # the worker still has it
    order.append("worker done")
    q.done("a")
    await task
    assert order == ["worker done", "hold", "released"]
    assert await q.get() == "a"  # the add during the hold runs after it


@aio
async def test_hold_removes_a_queued_key_until_released() -> None:
    q = queue()
    q.add("a")
    async with q.hold("a"):
        assert len(q) == 0
    assert len(q) == 1


@aio
async def test_shutdown_releases_waiting_workers() -> None:
    q = queue()
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    await q.shutdown()
    assert await waiter is None
    q.add("late")
    assert len(q) == 0

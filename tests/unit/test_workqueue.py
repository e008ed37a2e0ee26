"""The keyed work queue: dedup, one in flight per key, delayed re-adds, backoff, fairness."""

from __future__ import annotations

import asyncio

import pytest

from asynchelpers import aio
from session_operator.backoff import BACKOFF_CAP_S, Backoff
from session_operator.queue import WorkQueue, reserved_workers


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
async def test_shutdown_releases_waiting_workers() -> None:
    q = queue()
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    await q.shutdown()
    assert await waiter is None
    q.add("late")
    assert len(q) == 0


# Fairness across groups (namespaces) --------------------------------------------
def fair_queue(workers: int) -> WorkQueue[tuple[str, str]]:
    return WorkQueue(Backoff(0.01, 0.08), group_of=lambda key: key[0], workers=workers)


@aio
async def test_reserve_is_an_eighth_of_the_workers_and_at_least_one() -> None:
    assert [reserved_workers(w) for w in (1, 4, 8, 16, 64)] == [1, 1, 1, 2, 8]
    assert fair_queue(16).capacity == 18


@aio
async def test_one_group_alone_gets_every_worker_but_not_the_reserve() -> None:
    q = fair_queue(4)
    for i in range(10):
        q.add(("a", f"s{i}"))
    taken = [await q.get() for _ in range(4)]
    assert taken == [("a", f"s{i}") for i in range(4)]  # FIFO within the group
    assert q.running("a") == 4
    # The fifth worker (the reserve) does not take a fifth key of the same group.
    fifth = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not fifth.done()
    q.done(("a", "s0"))  # a worker is free again: the group may use it
    assert await asyncio.wait_for(fifth, 1) == ("a", "s4")


@aio
async def test_a_group_with_nothing_in_flight_gets_the_reserve_while_another_fills_the_rest() -> (
    None
):
    q = fair_queue(4)
    for i in range(10):
        q.add(("noisy", f"s{i}"))
    for _ in range(4):
        await q.get()  # hanging reconciles: never done in this test
    q.add(("quiet", "new"))
    assert await asyncio.wait_for(q.get(), 1) == ("quiet", "new")
    # A second key of the same group waits: the reserve serves groups with none in flight.
    q.add(("quiet", "second"))
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not second.done()
    q.done(("quiet", "new"))
    assert await asyncio.wait_for(second, 1) == ("quiet", "second")


@aio
async def test_groups_take_turns_round_robin() -> None:
    q = fair_queue(16)
    for i in range(3):
        q.add(("a", f"a{i}"))
    q.add(("b", "b0"))
    q.add(("c", "c0"))
    q.add(("b", "b1"))
    order = [await q.get() for _ in range(6)]
    assert order == [
        ("a", "a0"),
        ("b", "b0"),
        ("c", "c0"),
        ("a", "a1"),
        ("b", "b1"),
        ("a", "a2"),
    ]


@aio
async def test_a_freed_worker_goes_to_the_group_with_the_fewest_in_flight() -> None:
    q = fair_queue(2)
    for i in range(4):
        q.add(("noisy", f"s{i}"))
    first = await q.get()
    await q.get()
    q.add(("other", "x"))
    q.add(("other", "y"))
    assert await q.get() == ("other", "x")  # the reserve
    q.done(first)
    q.done(("other", "x"))
    # noisy runs one key and other none: the freed worker takes other's key first.
    assert await q.get() == ("other", "y")
    q.done(("other", "y"))
    assert await q.get() == ("noisy", "s2")


@aio
async def test_many_groups_never_run_more_than_capacity_and_never_share_a_key() -> None:
    q = fair_queue(4)
    running: set[tuple[str, str]] = set()
    peak = 0
    runs = 0

    async def worker() -> None:
        nonlocal peak, runs
        while (key := await q.get()) is not None:
            assert key not in running
            running.add(key)
            peak = max(peak, len(running))
            await asyncio.sleep(0.001)
            running.discard(key)
            runs += 1
            q.done(key)

    assert q.capacity is not None
    workers = [asyncio.create_task(worker()) for _ in range(q.capacity)]
    for i in range(200):
        q.add((f"ns{i % 7}", f"s{i % 23}"))
        if i % 10 == 0:
            await asyncio.sleep(0)
    while len(q) or running:
        await asyncio.sleep(0.001)
    await q.shutdown()
    await asyncio.gather(*workers)
    assert peak <= q.capacity
    assert q.running("ns0") == 0 and runs >= 23


def test_one_backoff_paces_queue_finalizer_and_start_up_alike() -> None:
    """``delay(n)`` is what ``when`` returns for the n-th failure in a row (the finalizer
    asks it with kopf's retry count, start-up and the queue count per key)."""
    backoff: Backoff[str] = Backoff(10.0, BACKOFF_CAP_S)
    assert [backoff.delay(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
    assert [backoff.when("k") for _ in range(7)] == [backoff.delay(n) for n in range(1, 8)]
    assert backoff.delay(0) == 10 and backoff.delay(10_000) == BACKOFF_CAP_S

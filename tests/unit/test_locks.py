"""Per-project locks: workers never wait for one; waiters are woken one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from asynchelpers import aio
from session_operator.locks import KeyedLocks, LockBusy

P = ("ns", "shop")


class Woken:
    def __init__(self) -> None:
        self.names: list[str] = []

    def waker(self, name: str) -> Callable[[], None]:
        return lambda: self.names.append(name)


@aio
async def test_try_acquire_fails_at_once_while_the_lock_is_held_or_awaited() -> None:
    locks = KeyedLocks()
    async with locks.try_acquire(P):
        with pytest.raises(LockBusy) as busy:
            async with locks.try_acquire(P):
                raise AssertionError("taken twice")
        assert busy.value.key == P
        async with locks.try_acquire(("ns", "other")):
            pass  # other projects are independent
    assert len(locks) == 0
    async with locks.try_acquire(P):
        pass


@aio
async def test_when_free_wakes_at_once_if_the_lock_is_free() -> None:
    locks, woken = KeyedLocks(), Woken()
    locks.when_free(P, "a", woken.waker("a"))
    assert woken.names == ["a"]


@aio
async def test_waiters_are_woken_one_at_a_time_in_order_on_release() -> None:
    locks, woken = KeyedLocks(), Woken()
    async with locks.try_acquire(P):
        for name in ("a", "b", "c"):
            locks.when_free(P, name, woken.waker(name))
        locks.when_free(P, "a", woken.waker("a-again"))  # asking again keeps the place
        assert woken.names == []
    assert woken.names == ["a"]  # one wake per release, not the whole line
    async with locks.try_acquire(P):  # "a" takes its turn
        locks.ran("b")  # other runs ending change nothing
    assert woken.names == ["a", "b"]
    locks.ran("a")
    assert woken.names == ["a", "b"]


@aio
async def test_a_turn_not_used_passes_on_so_no_wake_up_is_lost() -> None:
    locks, woken = KeyedLocks(), Woken()
    async with locks.try_acquire(P):
        locks.when_free(P, "a", woken.waker("a"))
        locks.when_free(P, "b", woken.waker("b"))
    assert woken.names == ["a"]
    locks.ran("a")  # "a" was deleted, or no longer needs the project
    assert woken.names == ["a", "b"]
    locks.ran("b")
    assert len(locks) == 0


@aio
async def test_a_turn_taken_by_someone_else_puts_the_waiter_back_in_line() -> None:
    locks, woken = KeyedLocks(), Woken()
    async with locks.try_acquire(P):
        locks.when_free(P, "a", woken.waker("a"))
        locks.when_free(P, "b", woken.waker("b"))
    assert woken.names == ["a"]
    async with locks.try_acquire(P):  # a newcomer is faster than "a"
        locks.when_free(P, "a", woken.waker("a"))  # "a" is busy again: back in line
        locks.ran("a")
        assert woken.names == ["a"]
    assert woken.names == ["a", "b"]
    locks.ran("b")
    assert woken.names == ["a", "b", "a"]


@aio
async def test_the_finalizer_waits_bounded_and_goes_before_waiting_workers() -> None:
    locks, woken = KeyedLocks(), Woken()
    held = locks.try_acquire(P)
    await held.__aenter__()
    with pytest.raises(TimeoutError):
        async with locks.acquire(P, timeout_s=0.02):
            raise AssertionError("not while held")
    assert len(locks) == 1  # the timed-out waiter left no trace
    order: list[str] = []

    async def finalizer() -> None:
        async with locks.acquire(P, timeout_s=5):
            order.append("finalizer")
            locks.when_free(P, "worker", woken.waker("worker"))
        order.append("released")

    task = asyncio.create_task(finalizer())
    await asyncio.sleep(0.01)
    with pytest.raises(LockBusy):  # a worker does not jump the finalizer's wait
        async with locks.try_acquire(P):
            pass
    await held.__aexit__(None, None, None)
    await task
    assert order == ["finalizer", "released"]
    assert woken.names == ["worker"]
    assert len(locks) == 0

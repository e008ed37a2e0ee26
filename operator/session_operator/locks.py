"""Per-key locks (a project's turn) that a worker never waits on: busy keys are requeued."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

from .store import Key


class LockBusy(Exception):
    """A per-key lock is taken: a worker does not wait for it, its key is requeued."""

    def __init__(self, key: Key) -> None:
        super().__init__(f"{key[0]}/{key[1]} is busy")
        self.key = key


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it.

    Workers take a lock with ``try_acquire`` (``LockBusy`` when it is taken) and
    ask to be woken with ``when_free``; only the finalizer, outside the workers,
    waits with ``acquire``, never longer than its timeout. Waiters are woken one
    at a time, in order: the lock's release wakes the next, and a woken waiter
    whose run ends without taking the lock (``ran``) passes its turn on, so no
    wake-up is lost and a release never wakes the whole line.
    """

    def __init__(self) -> None:
        self._locks: dict[Key, tuple[asyncio.Lock, int]] = {}
        self._waiters: dict[Key, dict[Hashable, Callable[[], None]]] = {}  # in order
        self._turn_of: dict[Key, Hashable] = {}  # the waiter woken for a lock, not yet run
        self._turns: dict[Hashable, Key] = {}

    def acquire(self, key: Key, timeout_s: float | None = None) -> _Held:
        """Wait for the lock, at most ``timeout_s`` (then TimeoutError)."""
        return _Held(self, key, wait=True, timeout_s=timeout_s)

    def try_acquire(self, key: Key) -> _Held:
        """Take the lock now, or raise LockBusy if anyone holds or waits for it."""
        return _Held(self, key, wait=False)

    def when_free(self, key: Key, waiter: Hashable, wake: Callable[[], None]) -> None:
        """Call ``wake`` once it is ``waiter``'s turn to try ``key`` (now, if it is free).

        Asking again while waiting keeps the waiter's place.
        """
        self._waiters.setdefault(key, {}).setdefault(waiter, wake)
        self._pass_on(key)

    def ran(self, waiter: Hashable) -> None:
        """``waiter``'s run ended: a turn it did not use goes to the next waiter."""
        key = self._turns.pop(waiter, None)
        if key is not None:
            del self._turn_of[key]
            self._pass_on(key)

    def _taken(self, key: Key) -> None:
        """Someone took the lock: the woken waiter's turn is used (its release passes on)."""
        waiter = self._turn_of.pop(key, None)
        if waiter is not None:
            del self._turns[waiter]

    def _pass_on(self, key: Key) -> None:
        """Wake the next waiter if nobody holds ``key`` and no woken waiter is yet to run."""
        if key in self._locks or key in self._turn_of:
            return
        waiters = self._waiters.get(key)
        if not waiters:
            return
        waiter = next(iter(waiters))
        wake = waiters.pop(waiter)
        if not waiters:
            del self._waiters[key]
        self._turn_of[key] = waiter
        self._turns[waiter] = key
        wake()

    def __len__(self) -> int:
        return len(self._locks)


class _Held:
    def __init__(
        self, owner: KeyedLocks, key: Key, *, wait: bool, timeout_s: float | None = None
    ) -> None:
        self.owner = owner
        self.key = key
        self.wait = wait
        self.timeout_s = timeout_s

    async def __aenter__(self) -> None:
        locks = self.owner._locks
        if not self.wait and self.key in locks:
            raise LockBusy(self.key)
        lock, users = locks.get(self.key, (asyncio.Lock(), 0))
        locks[self.key] = (lock, users + 1)
        try:
            async with asyncio.timeout(self.timeout_s):
                await lock.acquire()
        except BaseException:
            self._release_user()
            raise
        self.owner._taken(self.key)

    async def __aexit__(self, *exc: object) -> None:
        self.owner._locks[self.key][0].release()
        self._release_user()

    def _release_user(self) -> None:
        locks = self.owner._locks
        lock, users = locks[self.key]
        if users > 1:
            locks[self.key] = (lock, users - 1)
            return
        del locks[self.key]
        self.owner._pass_on(self.key)

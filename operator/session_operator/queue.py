"""A keyed work queue on the event loop, modelled on controller-runtime's workqueue.

Watch events and timers only *add* keys; workers take them one at a time. The
queue guarantees what makes a level-based reconcile safe and cheap:

- a key waiting in the queue is there once, however often it was added;
- a key is never processed by two workers at once: added while in flight, it
  runs again after the current run ends (``dirty``);
- ``add_after`` schedules a re-add; the earliest pending deadline per key wins;
- ``add_rate_limited`` backs off per key, exponentially and capped; ``forget``
  resets that after a success;
- fairness across groups (namespaces): a free worker takes a key of the group
  with the fewest keys in flight (round-robin among equals). Of the
  ``workers + reserved_workers(workers)`` workers, a group with something in
  flight may start a key only while fewer than ``workers`` keys are in flight:
  the reserve serves groups with nothing in flight, so a tenant whose
  reconciles hang (a git remote that never answers) cannot delay another
  tenant's next reconcile, while one tenant alone still gets all ``workers``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic

from .backoff import Backoff, K


def reserved_workers(workers: int) -> int:
    """Workers kept for groups with nothing in flight: an eighth, at least one."""
    return max(1, workers // 8)


class WorkQueue(Generic[K]):
    """All methods run on one event loop: no locks, no await between a check and its act.

    Without ``workers`` every queued key may start at once (one group, FIFO).
    """

    def __init__(
        self,
        backoff: Backoff[K],
        clock: Callable[[], float] | None = None,
        *,
        group_of: Callable[[K], Hashable] | None = None,
        workers: int | None = None,
    ) -> None:
        self._groups: dict[Hashable, deque[K]] = {}  # keys waiting, per group
        self._turns: deque[Hashable] = deque()  # groups with keys waiting, round-robin
        self._group_of: Callable[[K], Hashable] = group_of or (lambda _: None)
        self.workers = workers
        self.capacity = None if workers is None else workers + reserved_workers(workers)
        self._taken: set[K] = set()  # handed to a worker by get(), not yet done
        self._active: dict[Hashable, int] = {}  # keys in _taken, per group
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._clock = clock or self._loop.time
        self._shutdown = False
        self.backoff = backoff

    # Adding -----------------------------------------------------------------
    def add(self, key: K) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # runs again once the current run is done
        self._enqueue(key)

    def add_after(self, key: K, delay_s: float) -> None:
        """Re-add ``key`` after ``delay_s``; an earlier pending deadline is kept."""
        if delay_s <= 0:
            self.add(key)
            return
        if self._shutdown:
            return
        due = self._clock() + delay_s
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        handle = self._loop.call_at(self._loop.time() + delay_s, self._fire, key)
        self._timers[key] = (due, handle)

    def add_rate_limited(self, key: K) -> float:
        """Retry ``key`` after its next backoff delay; return that delay."""
        delay = self.backoff.when(key)
        self._cancel_timer(key)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """A success: the next failure starts from the base delay again."""
        self.backoff.forget(key)

    def discard(self, key: K) -> None:
        """The object is gone: no retries, no timers."""
        self.backoff.forget(key)
        self._cancel_timer(key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _cancel_timer(self, key: K) -> None:
        pending = self._timers.pop(key, None)
        if pending is not None:
            pending[1].cancel()

    def _enqueue(self, key: K) -> None:
        group = self._group_of(key)
        waiting = self._groups.get(group)
        if waiting is None:
            waiting = self._groups[group] = deque()
            self._turns.append(group)
        waiting.append(key)
        self._ready.set()

    def _unqueue(self, key: K) -> None:
        group = self._group_of(key)
        waiting = self._groups.get(group)
        if waiting is None or key not in waiting:
            return
        waiting.remove(key)
        if not waiting:
            del self._groups[group]
            self._turns.remove(group)

    # Taking -----------------------------------------------------------------
    def _may_start(self, group: Hashable) -> bool:
        if self.workers is None:
            return True
        if len(self._taken) < self.workers:
            return True
        # Only the reserve is left: it serves groups with nothing in flight.
        assert self.capacity is not None
        return len(self._taken) < self.capacity and not self._active.get(group)

    def _take(self) -> K | None:
        """The first key of the group with the fewest keys in flight that may start one.

        Ties go to the group whose turn comes first (round-robin), so a group that
        just took a worker waits until the others had theirs.
        """
        chosen: Hashable = None
        fewest = -1
        for group in self._turns:
            running = self._active.get(group, 0)
            if (fewest < 0 or running < fewest) and self._may_start(group):
                chosen, fewest = group, running
        if fewest < 0:
            return None
        waiting = self._groups[chosen]
        key = waiting.popleft()
        self._turns.remove(chosen)
        if waiting:
            self._turns.append(chosen)  # its next key waits for the other groups' turns
        else:
            del self._groups[chosen]
        return key

    async def get(self) -> K | None:
        """The next key to process (now marked in flight), or None once shut down."""
        while not self._shutdown:
            key = self._take()
            if key is not None:
                self._processing.add(key)
                self._dirty.discard(key)
                self._taken.add(key)
                group = self._group_of(key)
                self._active[group] = self._active.get(group, 0) + 1
                return key
            self._ready.clear()
            await self._ready.wait()
        return None

    def done(self, key: K) -> None:
        """Processing of ``key`` ended; re-queue it if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._taken:
            self._taken.discard(key)
            group = self._group_of(key)
            left = self._active[group] - 1
            if left:
                self._active[group] = left
            else:
                del self._active[group]
            if self._groups:
                self._ready.set()  # a worker is free: waiting keys may now start
        if key in self._dirty:
            self._enqueue(key)

    async def shutdown(self) -> None:
        self._shutdown = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._ready.set()

    # Introspection ----------------------------------------------------------
    def __len__(self) -> int:
        return sum(len(waiting) for waiting in self._groups.values())

    def in_flight(self, key: K) -> bool:
        return key in self._processing

    def running(self, group: Hashable = None) -> int:
        """Keys of ``group`` now with a worker."""
        return self._active.get(group, 0)

    def pending_delay(self, key: K) -> float | None:
        pending = self._timers.get(key)
        return None if pending is None else max(pending[0] - self._clock(), 0.0)

    def timers(self) -> int:
        return len(self._timers)

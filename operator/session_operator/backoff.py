"""The one backoff: delays that double with each failure, from a base, up to a cap.

It paces the work queue's per-Session retries (the finalizer's among them, whose
count bounds a deletion's attempts), broken watches and start-up's listing retries.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# The longest wait between two retries of a Session (queue and finalizer).
BACKOFF_CAP_S = 300.0


class Backoff(Generic[K]):
    """Per-key exponential delays: base * 2**(failures-1), capped."""

    def __init__(self, base_s: float, cap_s: float) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self._failures: dict[K, int] = {}

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row (1 for the first)."""
        return float(min(self.base_s * 2 ** min(max(failures, 1) - 1, 32), self.cap_s))

    def when(self, key: K) -> float:
        """Count one more failure of ``key`` and return how long to wait before the retry."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        return self.delay(failures)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

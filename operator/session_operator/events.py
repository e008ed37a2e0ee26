"""Identical Events folded into one object with a count, as client-go's recorder does.

A Session failing the same way for hours would otherwise write a new Event
object on every retry. The first occurrence creates an Event; repeats within
the window patch its ``count`` and ``lastTimestamp``. Memory is bounded: the
least recently seen keys are dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

# What makes two Events identical (client-go: source, object, type, reason, message).
EventKey = tuple[str, str, str, str, str, str]


@dataclass
class Seen:
    name: str
    count: int
    first: str  # firstTimestamp of the object
    at: float  # monotonic time of the last occurrence


class EventAggregator:
    def __init__(self, window_s: float = 600.0, capacity: int = 4096) -> None:
        self.window_s = window_s
        self.capacity = capacity
        self._seen: OrderedDict[EventKey, Seen] = OrderedDict()

    def repeat_of(self, key: EventKey, now: float) -> Seen | None:
        """The Event object to count this occurrence on, if it is a recent repeat."""
        seen = self._seen.get(key)
        if seen is None or now - seen.at > self.window_s:
            return None
        seen.count += 1
        seen.at = now
        self._seen.move_to_end(key)
        return seen

    def created(self, key: EventKey, name: str, first: str, now: float) -> None:
        self._seen[key] = Seen(name=name, count=1, first=first, at=now)
        self._seen.move_to_end(key)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)

    def forget(self, key: EventKey) -> None:
        self._seen.pop(key, None)

    def __len__(self) -> int:
        return len(self._seen)

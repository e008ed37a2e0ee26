"""The worker loop: take a key off the queue, reconcile it, schedule what comes next."""

from __future__ import annotations

import asyncio

from .controller import Controller
from .peering import Gate
from .queue import WorkQueue
from .store import Key


async def work(queue: WorkQueue[Key], controller: Controller, gate: Gate, count: int) -> None:
    """Run ``count`` workers until the queue shuts down."""
    await asyncio.gather(*(_worker(queue, controller, gate) for _ in range(count)))


async def _worker(queue: WorkQueue[Key], controller: Controller, gate: Gate) -> None:
    while True:
        await gate.open.wait()
        key = await queue.get()
        if key is None:
            return
        if not gate.open.is_set():
            queue.done(key)
            queue.add(key)  # for whoever acts, after the pause
            continue
        try:
            result = await controller.reconcile(key)
        finally:
            queue.done(key)
        controller.schedule(key, result)

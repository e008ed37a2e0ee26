"""Loaded by the operator process only under ``bench/run.py --tracemalloc``.

Python imports ``sitecustomize`` from the path at start-up, before the operator's
first line; with BENCH_TRACEMALLOC_DIR set it starts tracemalloc and dumps a
snapshot into that folder on SIGUSR2 (``<pid>-<n>.snap``, then ``.done``), so
the bench can compare what a process holds with L and with M Active Sessions.
"""

from __future__ import annotations

import itertools
import os
import signal
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 12  # deep enough to reach the operator's or kopf's frame under json and dict code
_where = os.environ.get("BENCH_TRACEMALLOC_DIR")

if _where:
    tracemalloc.start(FRAMES)
    _count = itertools.count()

    def _dump(signum: int, frame: FrameType | None) -> None:
        path = Path(_where) / f"{os.getpid()}-{next(_count)}.snap"
        tracemalloc.take_snapshot().dump(str(path))
        path.with_suffix(".done").touch()

    signal.signal(signal.SIGUSR2, _dump)

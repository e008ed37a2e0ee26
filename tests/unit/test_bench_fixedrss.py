"""bench/fixedrss.py: the largest fixed part that keeps a shard within its share of RSS."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchload import bench_module

fixedrss = bench_module("fixedrss")


def result(sessions: int, shards: int, kb: float, fixed: float) -> dict[str, object]:
    return {
        "setup": {"sessions": sessions, "shards": shards},
        "capacity": {"fit_kb_per_session": kb, "fit_fixed_mb": fixed},
    }


@pytest.mark.parametrize(
    ("sessions", "shards", "kb"), [(8000, 4, 23.9), (8000, 4, 25.0), (9000, 3, 20.0)]
)
def test_a_shard_at_the_ceiling_is_exactly_at_the_target_share(
    sessions: int, shards: int, kb: float
) -> None:
    bound = fixedrss.ceiling(result(sessions, shards, kb, 69.2))
    fixed, b = bound["max_fixed_mb"], kb / 1024
    share = (fixed + sessions / shards * b) / (fixed + sessions * b)
    assert share == pytest.approx(fixedrss.TARGET_SHARE, abs=1e-3)


def test_a_quarter_of_8000_within_040_needs_the_fixed_part_under_2000_sessions_worth() -> None:
    bound = fixedrss.ceiling(result(8000, 4, 23.9, 69.2))
    assert bound["max_fixed_mb"] == round(2000 * 23.9 / 1024, 1) == 46.7
    assert bound["max_fixed_mb_at_target_kb"] == 48.8


def test_the_layers_hide_the_client_libraries_the_operator_hides() -> None:
    from session_operator import UNUSED_CLIENTS

    for name in UNUSED_CLIENTS:
        code = f"{fixedrss.HIDE}import {name}"
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert "ImportError" in run.stderr or "ModuleNotFoundError" in run.stderr, name

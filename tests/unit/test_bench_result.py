"""The benchmark's typed result writes the keys bench/results/*.json and report.table know."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest

from benchload import BENCH, bench_module

result = bench_module("result")
# Written before the lifecycle's client CPU was measured: not the current shape.
OLDER = {"mem2000.json"}
# bench/shards.py's results (make bench-shards): its own layout, not a BenchResult.
SHARDS = "shards"


def build(cls: Any, flat: dict[str, Any]) -> Any:
    """The record whose JSON is ``flat``: each field from its key, nested records from theirs."""
    kwargs: dict[str, Any] = {}
    for name, hint in typing.get_type_hints(cls, vars(result)).items():
        record = next((t for t in typing.get_args(hint) if dataclasses.is_dataclass(t)), None)
        if record is not None:
            kwargs[name] = build(record, flat)
        elif name in flat:
            kwargs[name] = flat[name]
    try:
        return cls(**kwargs)
    except TypeError:  # a phase that did not run: its required keys are not there
        return None


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in sorted(BENCH.glob("results/*.json"))
        if p.name not in OLDER and not p.name.startswith(SHARDS)
    ],
    ids=lambda p: p.name,
)
def test_committed_results_round_trip_through_the_record(path: Path) -> None:
    written = json.loads(path.read_text())
    record = build(result.BenchResult, written)
    assert json.loads(json.dumps(record.as_json())) == written


def test_a_figure_not_measured_is_left_out_and_a_phase_not_run_has_no_keys() -> None:
    record = result.BenchResult(n=5, loadavg_at_start=1.0)
    record.queue = result.Queue(queue_sessions=3, queue_handovers={})
    out = record.as_json()
    assert out["queue_sessions"] == 3 and "queue_reconciles_per_handover" not in out
    assert "single_count" not in out and "setup" not in out and "queue" not in out
    assert list(out)[:2] == ["n", "loadavg_at_start"] and list(out)[-1] == "phases"

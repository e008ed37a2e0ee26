"""The benchmark's result: one typed record a phase, flattened into the JSON's keys.

Each phase returns its own record; ``BenchResult`` holds them (None for a phase
that did not run, so a failed run writes what it has). ``BenchResult.as_json``
gives the flat dict that bench/results/*.json, report.table and the READMEs
know: every field's name is its key. A field marked ``MEASURED`` is left
out while None, as it is only written when it was measured (a profile, the
audit log, a ratio that has both sides).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

Json = dict[str, Any]


# A field made with field(default=None, metadata=MEASURED) is left out of the JSON while None.
MEASURED = {"omit_none": True}


def flat(record: Any) -> Json:
    """A record's fields as JSON keys, its nested records' fields in line."""
    out: Json = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if value is None and f.metadata.get("omit_none"):
            continue
        if is_dataclass(value):
            out.update(flat(value))
        else:
            out[f.name] = value
    return out


@dataclass
class Setup:
    pods: int
    setup_s: float


@dataclass
class Single:
    single_count: int
    p50_single_s: float | None
    max_single_s: float | None


@dataclass
class OperatorLifecycle:
    """The operator's burst and lifecycle of N Sessions, with what it cost."""

    p50_ready_s: float | None
    p95_ready_s: float | None
    p99_ready_s: float | None
    max_ready_s: float | None
    ready_count: int
    client_cpu_ms_per_lifecycle: float
    throughput_sessions_per_s: float
    checkin_throughput_sessions_per_s: float
    cpu_s: float | None
    peak_rss_mb: float | None
    burst_s: float
    create_send_s: float
    webui_on_s: float
    webui_off_s: float
    checkin_s: float
    delete_s: float
    burst_system_cpu_s: dict[str, float]
    exec_mean_ms_by_step: Json
    lifecycle_completed: dict[str, int]
    exec_per_session_from_operator_metrics: float
    apiserver_metrics: Json
    writes_per_session: float | None
    requests_per_session: float
    exec_per_session: float
    counted_from: str
    burst_machine_busy_pct: float | None = field(default=None, metadata=MEASURED)
    burst_noise_cpu_pct: float | None = field(default=None, metadata=MEASURED)
    profile_burst: Json | None = field(default=None, metadata=MEASURED)
    reads_per_session: float | None = field(default=None, metadata=MEASURED)
    operator_requests: Json | None = field(default=None, metadata=MEASURED)


@dataclass
class Ratios:
    """Each operator figure over the floor's, as the targets compare them."""

    writes_ratio_to_floor: float | None = field(default=None, metadata=MEASURED)
    requests_ratio_to_floor: float | None = field(default=None, metadata=MEASURED)
    exec_ratio_to_floor: float | None = field(default=None, metadata=MEASURED)
    throughput_ratio_to_floor: float | None = field(default=None, metadata=MEASURED)
    checkin_throughput_ratio_to_floor: float | None = field(default=None, metadata=MEASURED)
    p99_ratio_to_floor: float | None = field(default=None, metadata=MEASURED)
    client_cpu_ratio_to_floor: float | None = field(default=None, metadata=MEASURED)


@dataclass
class FloorLifecycle:
    """The same lifecycle served by bench/floor.py: the fewest requests it can take."""

    floor_p50_ready_s: float | None
    floor_p95_ready_s: float | None
    floor_p99_ready_s: float | None
    floor_max_ready_s: float | None
    floor_throughput_sessions_per_s: float
    floor_client_cpu_ms_per_lifecycle: float
    floor_burst_s: float
    floor_burst_system_cpu_s: dict[str, float]
    burst_cpu_ms_per_session: dict[str, dict[str, float]]
    floor_checkin_throughput_sessions_per_s: float
    floor_errors: list[str]
    floor_client_counts: dict[str, int]
    floor_writes_per_session: float
    floor_requests_per_session: float
    floor_exec_per_session: float
    floor_burst_noise_cpu_pct: float | None = field(default=None, metadata=MEASURED)
    floor_requests: Json | None = field(default=None, metadata=MEASURED)
    ratios: Ratios | None = field(default=None, metadata=MEASURED)


@dataclass
class Queue:
    queue_sessions: int
    queue_handovers: Json
    queue_reconciles_per_handover: float | None = field(default=None, metadata=MEASURED)
    queue_reconciles_per_handover_max: float | None = field(default=None, metadata=MEASURED)
    queue_requests_per_handover_start: float | None = field(default=None, metadata=MEASURED)
    queue_requests_per_handover_end: float | None = field(default=None, metadata=MEASURED)
    queue_requests_end_to_start: float | None = field(default=None, metadata=MEASURED)
    queue_handover_p50_s: float | None = field(default=None, metadata=MEASURED)


@dataclass
class Idle:
    """Idle RSS with many Active Sessions; the low reading is a fresh operator's."""

    idle_sessions: int
    idle_ready: int
    idle_create_s: float
    idle_burst: Json
    idle_rss_mb: float
    idle_hwm_mb: float
    idle_settle_s: float
    idle_active_low: int | None = field(default=None, metadata=MEASURED)
    idle_rss_mb_low: float | None = field(default=None, metadata=MEASURED)
    idle_sessions_low: int | None = field(default=None, metadata=MEASURED)


@dataclass
class Held:
    """A burst into the operator holding the idle phase's Active Sessions, and the floor's
    burst into as many Active Sessions of its own, on the same API server."""

    held_sessions: int
    held_burst_n: int
    held_p99_ready_s: float | None
    held_throughput_sessions_per_s: float
    floor_held_p99_ready_s: float | None
    floor_held_throughput_sessions_per_s: float
    held_throughput_ratio_to_floor: float | None
    held_cpu_ms_per_session: float | None
    # The Active Sessions the floor held in its namespace meanwhile (older runs: none).
    floor_held_sessions: int | None = field(default=None, metadata=MEASURED)
    # The operator's execs during its burst, by step: the burst's own, and any the held
    # Sessions' timers (web UI checks, workspace counts) ran beside it.
    held_execs_by_step: dict[str, float] | None = field(default=None, metadata=MEASURED)
    # The machine's CPU seconds by process over each burst: where the time went.
    held_system_cpu_s: dict[str, float] | None = field(default=None, metadata=MEASURED)
    floor_held_system_cpu_s: dict[str, float] | None = field(default=None, metadata=MEASURED)


@dataclass
class Resume:
    """A fresh operator taking over every Active Session: time, execs, writes."""

    operator_stop_s: float
    resume_sessions: int
    resume_s: float | None
    resume_reconciles: float
    resume_healthy_s: float
    resume_cpu_idle_s: float
    resume_cpu_s: float
    resume_exec_calls: int
    resume_rss_mb: float
    resume_still_ready: int
    resume_ready_flips: int
    profile_resume: Json | None = field(default=None, metadata=MEASURED)
    resume_requests: Json | None = field(default=None, metadata=MEASURED)
    resume_writes: int | None = field(default=None, metadata=MEASURED)
    rss_kb_per_active_session: float | None = field(default=None, metadata=MEASURED)
    # --tracemalloc: where the bytes per Session go (bench/memreport.py).
    memory_per_session: Json | None = field(default=None, metadata=MEASURED)


@dataclass
class BenchResult:
    n: int
    loadavg_at_start: float
    setup: Setup | None = field(default=None, metadata=MEASURED)
    single: Single | None = field(default=None, metadata=MEASURED)
    operator: OperatorLifecycle | None = field(default=None, metadata=MEASURED)
    floor: FloorLifecycle | None = field(default=None, metadata=MEASURED)
    queue: Queue | None = field(default=None, metadata=MEASURED)
    idle: Idle | None = field(default=None, metadata=MEASURED)
    held: Held | None = field(default=None, metadata=MEASURED)
    resume: Resume | None = field(default=None, metadata=MEASURED)
    mode: str = ""
    ok: bool = False
    wall_s: float = 0.0
    machine: Json = field(default_factory=dict)
    operator_source: dict[str, str] = field(default_factory=dict)
    settings: Json = field(default_factory=dict)
    phases: list[tuple[str, float, float]] = field(default_factory=list)

    def as_json(self) -> Json:
        return flat(self)

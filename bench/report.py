"""Percentiles, the stdout table against the targets, and the PNG plot."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(q / 100.0 * len(ordered)), 1)
    return float(ordered[min(rank, len(ordered)) - 1])


def rnd(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def latency_stats(values: Sequence[float], prefix: str = "") -> dict[str, Any]:
    return {
        f"{prefix}p50_ready_s": rnd(percentile(values, 50)),
        f"{prefix}p95_ready_s": rnd(percentile(values, 95)),
        f"{prefix}p99_ready_s": rnd(percentile(values, 99)),
        f"{prefix}max_ready_s": rnd(max(values) if values else None),
    }


@dataclass(frozen=True)
class Row:
    """One line of the table: the operator's figure, the floor's, their ratio, the target."""

    label: str
    key: str
    floor: str = ""  # the floor's key
    ratio: str = ""  # the key of operator / floor
    target: str = ""
    check: Callable[[float], bool] | None = None  # applied to the ratio if any, else the value


ROWS: list[Row] = [
    Row("single Session, p50 to Ready (s)", "p50_single_s", target="< 0.2 s",
        check=lambda v: v < 0.2),
    Row("burst p50 to Ready (s)", "p50_ready_s", "floor_p50_ready_s"),
    Row("burst p99 to Ready (s)", "p99_ready_s", "floor_p99_ready_s", "p99_ratio_to_floor",
        "<= 1.2x floor", lambda v: v <= 1.2),
    Row("burst throughput (Sessions/s)", "throughput_sessions_per_s",
        "floor_throughput_sessions_per_s", "throughput_ratio_to_floor", ">= 0.9x floor",
        lambda v: v >= 0.9),
    Row("checkin throughput (Sessions/s)", "checkin_throughput_sessions_per_s",
        "floor_checkin_throughput_sessions_per_s", "checkin_throughput_ratio_to_floor",
        ">= 0.9x floor", lambda v: v >= 0.9),
    Row("client CPU per lifecycle (ms)", "client_cpu_ms_per_lifecycle",
        "floor_client_cpu_ms_per_lifecycle", "client_cpu_ratio_to_floor", "<= 1.5x floor",
        lambda v: v <= 1.5),
    Row("writes per lifecycle", "writes_per_session", "floor_writes_per_session",
        "writes_ratio_to_floor", "<= 1.2x floor", lambda v: v <= 1.2),
    Row("requests per lifecycle", "requests_per_session", "floor_requests_per_session",
        "requests_ratio_to_floor"),
    Row("exec streams per lifecycle", "exec_per_session", "floor_exec_per_session",
        "exec_ratio_to_floor"),
    Row("operator peak RSS in the burst (MB)", "peak_rss_mb"),
    Row("operator CPU in the burst (s)", "cpu_s"),
    Row("idle RSS, {idle_sessions} Active, running operator (MB)", "idle_rss_mb",
        target="<= 150 MB @2,000", check=lambda v: v <= 150),
    Row("RSS of a fresh operator, {idle_active_low} Active (MB)", "idle_rss_mb_low"),
    Row("RSS of a fresh operator, {resume_sessions} Active (MB)", "resume_rss_mb"),
    Row("RSS per additional Active Session, fresh (KB)", "rss_kb_per_active_session",
        target="<= 25 KB", check=lambda v: v <= 25),
    Row("burst of {held_burst_n} into {held_sessions} Active, throughput (Sessions/s)",
        "held_throughput_sessions_per_s", "floor_held_throughput_sessions_per_s",
        "held_throughput_ratio_to_floor", ">= 0.9x floor", lambda v: v >= 0.9),
    Row("  p99 to Ready (s)", "held_p99_ready_s", "floor_held_p99_ready_s"),
    Row("  operator CPU per Session (ms)", "held_cpu_ms_per_session"),
    Row("resume of {resume_sessions} Active (s)", "resume_s", target="< 15 s",
        check=lambda v: v < 15),
    Row("  exec calls during the resume", "resume_exec_calls", target="0",
        check=lambda v: v == 0),
    Row("  writes during the resume", "resume_writes", target="0", check=lambda v: v == 0),
    Row("queue of {queue_sessions}: reconciles per handover (mean)",
        "queue_reconciles_per_handover", target="<= 3", check=lambda v: v <= 3),
    Row("  reconciles per handover (max)", "queue_reconciles_per_handover_max"),
    Row("  requests per handover, start of the queue", "queue_requests_per_handover_start"),
    Row("  requests per handover, end of the queue", "queue_requests_per_handover_end",
        ratio="queue_requests_end_to_start", target="end/start <= 1.1",
        check=lambda v: v <= 1.1),
    Row("  handover p50 (s)", "queue_handover_p50_s"),
    Row("noise: other processes, operator burst (% CPU)", "burst_noise_cpu_pct"),
    Row("noise: other processes, floor burst (% CPU)", "floor_burst_noise_cpu_pct"),
]  # fmt: skip


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def verdicts(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(label, target, passed) for every target the result has a figure for."""
    out = []
    for row in ROWS:
        value = result.get(row.ratio or row.key)
        if row.check is None or value is None:
            continue
        out.append((row.label.format_map(_Blank(result)), row.target, bool(row.check(value))))
    return out


class _Blank(dict[str, Any]):
    def __init__(self, result: dict[str, Any]):
        super().__init__(result)

    def __missing__(self, key: str) -> str:
        return "all"


def table(result: dict[str, Any]) -> str:
    rows = [("figure", "operator", "floor", "ratio", "target", "")]
    for row in ROWS:
        value = result.get(row.key)
        if value is None:
            continue
        verdict = ""
        checked = result.get(row.ratio or row.key)
        if row.check is not None:
            verdict = "?" if checked is None else ("PASS" if row.check(checked) else "MISS")
        rows.append(
            (
                row.label.format_map(_Blank(result)),
                _fmt(value),
                _fmt(result.get(row.floor)) if row.floor else "",
                _fmt(result.get(row.ratio)) if row.ratio else "",
                row.target,
                verdict,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    passed = verdicts(result)
    misses = [f"{label} ({target})" for label, target, ok in passed if not ok]
    lines.append("")
    lines.append(f"targets: {len(passed) - len(misses)} PASS, {len(misses)} MISS")
    lines += [f"  MISS {m}" for m in misses]
    return "\n".join(lines)


def plot(
    path: Path,
    title: str,
    latencies: Mapping[str, Sequence[float]],
    samples: Sequence[Any],
    phases: Sequence[tuple[str, float, float]],
    t0: float,
) -> bool:
    """Latency distribution (CDF) and operator RSS/CPU over the run; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 9))
    for label, values in latencies.items():
        if not values:
            continue
        ordered = sorted(values)
        ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax1.step(ordered, ys, where="post", label=f"{label} (n={len(ordered)})")
    ax1.set_xscale("log")
    ax1.set_xlabel("seconds from create to Ready=True (log scale)")
    ax1.set_ylabel("fraction of Sessions")
    ax1.axvline(0.2, color="orange", linestyle=":", label="single p50 target 0.2 s")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(loc="lower right", fontsize=8)
    ax1.set_title(f"{title}: latency to Ready")

    if samples:
        xs = [s.t - t0 for s in samples]
        ax2.plot(xs, [s.rss_mb for s in samples], color="tab:blue", label="operator RSS (MB)")
        cpu = [0.0]
        for a, b in itertools.pairwise(samples):
            dt = b.t - a.t
            same = a.label == b.label
            cpu.append(100.0 * (b.cpu_s - a.cpu_s) / dt if dt > 0 and same else 0.0)
        ax3 = ax2.twinx()
        ax3.plot(xs, cpu, color="tab:gray", alpha=0.5, linewidth=0.8, label="operator CPU %")
        ax3.set_ylabel("CPU % of one core")
        ax3.legend(loc="upper right", fontsize=8)
    for i, (name, start, end) in enumerate(phases):
        ax2.axvspan(start - t0, end - t0, alpha=0.12, color=f"C{i % 10}")
        ax2.text(
            start - t0, 0.02, name, rotation=90, fontsize=7, transform=ax2.get_xaxis_transform()
        )
    ax2.axhline(150, color="red", linestyle=":", label="idle RSS target 150 MB")
    ax2.set_xlabel("seconds since the operator started")
    ax2.set_ylabel("MB")
    ax2.legend(loc="upper left", fontsize=8)
    ax2.set_title("operator RSS and CPU over the run")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

"""Percentiles, the stdout table against the targets, and the PNG plot."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
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


# (label, key, target text, check)
TARGETS: list[tuple[str, str, str, Any]] = [
    ("single Session, p50 to Ready", "p50_single_s", "< 0.5 s", lambda v, r: v < 0.5),
    ("burst p50 to Ready", "p50_ready_s", "", None),
    ("burst p95 to Ready", "p95_ready_s", "", None),
    ("burst p99 to Ready", "p99_ready_s", "< 5 s", lambda v, r: v < 5.0),
    ("burst max to Ready", "max_ready_s", "", None),
    ("burst throughput (Sessions/s)", "throughput_sessions_per_s", ">= 10/s", lambda v, r: v >= 10),
    ("checkin throughput (Sessions/s)", "checkin_throughput_sessions_per_s", "", None),
    (
        "writes per Session (operator)",
        "writes_per_session",
        "<= 1.5 x floor",
        lambda v, r: v <= 1.5 * r["floor_writes_per_session"],
    ),
    ("writes per Session (floor)", "floor_writes_per_session", "", None),
    ("writes ratio operator/floor", "writes_ratio_to_floor", "<= 1.5", lambda v, r: v <= 1.5),
    ("requests per Session (operator)", "requests_per_session", "", None),
    ("requests per Session (floor)", "floor_requests_per_session", "", None),
    ("exec streams per Session (operator)", "exec_per_session", "", None),
    ("exec streams per Session (floor)", "floor_exec_per_session", "", None),
    ("operator peak RSS in the burst (MB)", "peak_rss_mb", "", None),
    ("operator CPU in the burst (s)", "cpu_s", "", None),
    ("idle RSS, all Active (MB)", "idle_rss_mb", "<= 150 MB @2000", lambda v, r: v <= 150),
    ("idle RSS with 2,000 Active (MB)", "idle_rss_mb_2000", "<= 150 MB", lambda v, r: v <= 150),
    ("resume of all Active (s)", "resume_s", "< 30 s @2000", lambda v, r: v < 30),
    ("resume of 2,000 (s)", "resume_s_2000", "< 30 s", lambda v, r: v < 30),
    ("exec calls during the resume", "resume_exec_calls", "0", lambda v, r: v == 0),
    ("machine CPU busy in the burst (%)", "burst_machine_busy_pct", "", None),
    ("  of it other processes (noise, %)", "burst_noise_cpu_pct", "", None),
]


def table(result: dict[str, Any]) -> str:
    rows = [("figure", "value", "target", "")]
    for label, key, target, check in TARGETS:
        if key not in result or result[key] is None:
            continue
        value = result[key]
        verdict = ""
        if check is not None:
            try:
                verdict = "ok" if check(value, result) else "MISS"
            except (KeyError, TypeError):
                verdict = "?"
        if key in ("idle_rss_mb", "resume_s") and f"{key}_2000" in result:
            continue  # the full run prints the 2,000 rows
        if key in ("idle_rss_mb", "resume_s") and result.get("idle_sessions"):
            label = label.replace("all Active", f"{result['idle_sessions']} Active")
        rows.append(
            (label, f"{value:g}" if isinstance(value, float) else str(value), target, verdict)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot(
    path: Path,
    title: str,
    latencies: dict[str, Sequence[float]],
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
    ax1.axvline(5.0, color="red", linestyle=":", label="p99 target 5 s")
    ax1.axvline(0.5, color="orange", linestyle=":", label="single p50 target 0.5 s")
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

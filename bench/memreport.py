"""Where the bytes per Active Session go: two tracemalloc snapshots compared.

``bench/run.py --tracemalloc`` dumps one from the fresh operator holding L Active
Sessions and one from the fresh operator that resumed M; the difference over
M - L, grouped by the allocation's owner, is the cost of one Session:

- the innermost frame in the operator's code (``session_operator``/``rdev_api``),
- else the innermost frame in kopf,
- else the innermost frame at all (aiohttp, json, ...).

    .venv/bin/python bench/memreport.py LOW.snap HIGH.snap SESSIONS_DELTA
"""

from __future__ import annotations

import sys
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

OWNERS = (("session_operator", "operator"), ("rdev_api", "operator"), ("/kopf/", "kopf"))


def owner(trace: tracemalloc.Traceback) -> tuple[str, str]:
    """(package, file:line) that made an allocation, most recent frame first."""
    frames = list(reversed(trace))  # tracemalloc keeps the oldest first
    for needle, package in OWNERS:
        for frame in frames:
            if needle in frame.filename:
                return package, _short(frame)
    first = frames[0] if frames else None
    if first is None:
        return "?", "?"
    name = Path(first.filename)
    package = next((p for p in name.parts if p.endswith("site-packages")), "")
    library = name.parts[name.parts.index(package) + 1] if package else "python"
    return library, _short(first)


def _short(frame: tracemalloc.Frame) -> str:
    parts = Path(frame.filename).parts
    for root in ("site-packages", "operator", "lib"):
        if root in parts:
            parts = parts[len(parts) - parts[::-1].index(root) :]
            break
    return f"{'/'.join(parts)}:{frame.lineno}"


def compare(low: Path, high: Path, sessions: int, top: int = 20) -> dict[str, Any]:
    """Bytes per Session by package and by site, and the traced totals."""
    old = tracemalloc.Snapshot.load(str(low))
    new = tracemalloc.Snapshot.load(str(high))
    by_package: dict[str, int] = defaultdict(int)
    by_site: dict[tuple[str, str], int] = defaultdict(int)
    for diff in new.compare_to(old, "traceback"):
        package, site = owner(diff.traceback)
        by_package[package] += diff.size_diff
        by_site[(package, site)] += diff.size_diff
    total = sum(by_package.values())

    def per(size: int) -> float:
        return round(size / sessions / 1024, 2)

    return {
        "sessions_delta": sessions,
        "traced_mb_low": round(sum(s.size for s in old.statistics("filename")) / 2**20, 1),
        "traced_mb_high": round(sum(s.size for s in new.statistics("filename")) / 2**20, 1),
        "traced_kb_per_session": per(total),
        "kb_per_session_by_package": {
            k: per(v) for k, v in sorted(by_package.items(), key=lambda kv: -kv[1]) if per(v)
        },
        "kb_per_session_by_site": [
            {"package": k[0], "site": k[1], "kb": per(v)}
            for k, v in sorted(by_site.items(), key=lambda kv: -kv[1])[:top]
        ],
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        f"traced: {report['traced_mb_low']} MB -> {report['traced_mb_high']} MB,"
        f" {report['traced_kb_per_session']} KB per Session"
        f" (over {report['sessions_delta']} Sessions)",
        "",
        "KB per Session by package:",
    ]
    lines += [f"  {k:24} {v:8.2f}" for k, v in report["kb_per_session_by_package"].items()]
    lines += ["", "KB per Session by site:"]
    for row in report["kb_per_session_by_site"]:
        lines.append(f"  {row['kb']:8.2f}  {row['package']:10} {row['site']}")
    return "\n".join(lines)


if __name__ == "__main__":
    result = compare(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
    print(table(result))

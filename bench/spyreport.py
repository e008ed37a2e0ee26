"""Summaries of ``py-spy record --format raw`` output (collapsed stacks per thread).

Two recordings of the operator during the burst: ``wall`` (with --idle: where
each thread spends its time, waiting included) and ``cpu`` (without: where the
CPU goes). The wall view classifies each reconcile-worker sample by what it is
waiting on (an exec stream, an API call, a lock) and which reconcile step.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^():]+)(?::\d+)?\)$")


def parse(path: Path) -> list[tuple[str, list[tuple[str, str]], int]]:
    """(thread name, [(function, file)] outermost first, samples) per line."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        parts = stack.split(";")
        thread = parts[0].split(": ", 1)[-1] if parts[0].startswith("thread") else "?"
        frames = []
        for part in parts[1:]:
            m = _FRAME.match(part)
            frames.append((m.group("func"), Path(m.group("file")).name) if m else (part, ""))
        out.append((thread, frames, int(count)))
    return out


def _module(file: str, func: str) -> str:
    if file in {
        "reconcile.py", "handlers.py", "kube.py", "podexec.py", "builders.py", "cache.py",
        "gitcmd.py", "webui.py", "conditions.py", "models.py", "__main__.py",
    }:  # fmt: skip
        return "session_operator"
    return file or func


def _step(frames: list[tuple[str, str]]) -> str:
    """The innermost reconcile-level function of a worker stack."""
    names = [f.rsplit(".", 1)[-1] for f, file in frames if file == "reconcile.py"]
    wanted = (
        "_checkout", "_add_worktree", "_resolve", "_default_branch", "_ensure_web_ui",
        "_ensure_preview", "refresh_changes", "end_session", "_remove_worktree", "_finish",
        "_provision", "delete", "_reconcile", "_run",
    )  # fmt: skip
    for name in reversed(names):
        if name in wanted and name != "_run":
            return name
    return names[-1] if names else "?"


def wall_summary(path: Path) -> dict[str, object]:
    worker: Counter[str] = Counter()
    loop: Counter[str] = Counter()
    for thread, frames, count in parse(path):
        files = [file for _, file in frames]
        funcs = [f for f, _ in frames]
        if thread.startswith("reconcile"):
            if "podexec.py" in files:
                what = f"exec stream, in {_step(frames)}"
            elif "kube.py" in files:
                api = next(f for f, file in reversed(frames) if file == "kube.py")
                what = f"API call {api}, in {_step(frames)}"
            elif "reconcile.py" in files or "handlers.py" in files:
                what = f"python in {_step(frames)}"
            else:
                what = "idle (waiting for work)"
            worker[what] += count
        elif thread == "MainThread":
            leaf = funcs[-1] if funcs else "?"
            if leaf in ("select", "poll", "epoll") or "select" in leaf:
                loop["idle (epoll)"] += count
            else:
                mods = [_module(file, f) for f, file in frames if file]
                loop["busy: " + (mods[-1] if mods else "?")] += count
    total_w = sum(worker.values()) or 1
    total_l = sum(loop.values()) or 1
    return {
        "reconcile_workers_pct": {
            k: round(100.0 * v / total_w, 1) for k, v in worker.most_common(15)
        },
        "event_loop_pct": {k: round(100.0 * v / total_l, 1) for k, v in loop.most_common(8)},
    }


def cpu_summary(path: Path, top: int = 15) -> dict[str, object]:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    total = 0
    for thread, frames, count in parse(path):
        total += count
        by_thread[re.sub(r"_\d+$", "_*", thread)] += count
        if frames:
            func, file = frames[-1]
            self_time[f"{func} ({file})"] += count
        seen = set()
        for func, file in frames:
            key = f"{func} ({file})"
            if key not in seen:
                seen.add(key)
                inclusive[key] += count
    t = total or 1
    return {
        "samples": total,
        "by_thread_pct": {k: round(100.0 * v / t, 1) for k, v in by_thread.most_common(6)},
        "self_pct": {k: round(100.0 * v / t, 1) for k, v in self_time.most_common(top)},
        "inclusive_pct": {
            k: round(100.0 * v / t, 1)
            for k, v in inclusive.most_common(top * 3)
            if "threading.py" not in k and "_bootstrap" not in k
        },
    }

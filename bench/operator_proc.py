"""``python -m session_operator`` as a child process, sampled from /proc.

RSS (VmRSS, VmHWM) comes from /proc/<pid>/status and CPU seconds from
utime+stime in /proc/<pid>/stat (all threads). The operator's own Prometheus
endpoint gives rdev_reconcile_total and rdev_exec_total.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, float]:
    """rss_mb, hwm_mb and cpu_s of a live process."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out["rss_mb" if line.startswith("VmRSS") else "hwm_mb"] = (
                    int(line.split()[1]) / 1024.0
                )
    if "rss_mb" not in out:  # a zombie has no memory lines
        raise ProcessLookupError(pid)
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime and stime are fields 14 and 15.
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def parse_labeled(text: str, name: str, label: str) -> dict[str, float]:
    """Sum of a metric's samples grouped by one label."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group("name") == name:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels") or ""))
            key = labels.get(label, "")
            out[key] = out.get(key, 0.0) + float(match.group("value"))
    return out


def _cpu_of(pid: int, children: bool) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:  # reaped children (kwok's exec'd git processes), fields 16 and 17
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


class SystemCpu:
    """CPU seconds of the control plane's components, the operator, this client, the machine."""

    COMPONENTS = ("kube-apiserver", "etcd", "kwok-controller", "kube-controller-manager",
                  "kube-scheduler")  # fmt: skip

    def __init__(self, cluster_dir: Path):
        self.pids: dict[str, int] = {}
        marker = str(cluster_dir)
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            exe = argv[0].decode(errors="replace")
            if marker in exe:
                name = Path(exe).name
                if name in self.COMPONENTS:
                    self.pids[name] = int(entry.name)

    def snapshot(self, operator_pid: int | None) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, pid in self.pids.items():
            try:
                out[name] = _cpu_of(pid, children=(name == "kwok-controller"))
            except OSError:
                continue
        if operator_pid:
            with contextlib.suppress(OSError):
                out["operator"] = _cpu_of(operator_pid, children=False)
        out["bench client"] = _cpu_of(os.getpid(), children=False)
        with open("/proc/stat") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:]]
        out["machine busy"] = (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK
        out["machine total"] = sum(ticks) / CLK_TCK
        return out

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """CPU seconds per part over the interval; "other processes" is the machine's noise."""
        out = {k: round(after[k] - before[k], 2) for k in after if k in before}
        ours = sum(v for k, v in out.items() if not k.startswith("machine"))
        out["other processes (noise)"] = round(out.get("machine busy", 0.0) - ours, 2)
        return out


def parse_metrics(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group("name") == name:
            total += float(match.group("value"))
    return total


@dataclass
class Sample:
    t: float
    rss_mb: float
    hwm_mb: float
    cpu_s: float
    label: str


@dataclass
class OperatorProcess:
    kubeconfig: Path
    namespace: str
    log_path: Path
    label: str = "operator"
    env_extra: dict[str, str] = field(default_factory=dict)
    # With a folder: tracemalloc in the operator (bench/memprobe), snapshots on demand.
    tracemalloc_dir: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    health_port: int = 0
    started_at: float = 0.0

    def start(self) -> OperatorProcess:
        self.metrics_port, self.health_port = free_port(), free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "RDEV_NAMESPACES": self.namespace,
            "RDEV_METRICS_PORT": str(self.metrics_port),
            "RDEV_HEALTH_PORT": str(self.health_port),
            # Periodic work would pollute the request counts: push it out of the run.
            "RDEV_CHANGES_INTERVAL": "24h",
            "RDEV_WEBUI_CHECK_INTERVAL": "24h",
            "RDEV_STALLED_RECHECK_INTERVAL": "24h",
            "RDEV_PROGRESS_DEADLINE": "1h",
            # The bench's web UI serves no page and the floor checks no health: compare
            # like for like (the health check is the real UI's, see the README).
            "RDEV_WEBUI_HEALTH_PATH": "",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT / "operator"),
            **self.env_extra,
        }
        if self.tracemalloc_dir is not None:
            self.tracemalloc_dir.mkdir(parents=True, exist_ok=True)
            env["BENCH_TRACEMALLOC_DIR"] = str(self.tracemalloc_dir)
            env["PYTHONPATH"] = f"{ROOT / 'bench' / 'memprobe'}{os.pathsep}{env['PYTHONPATH']}"
        self.log = self.log_path.open("ab")
        self.started_at = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "session_operator"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _get(self, port: int, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status), str(resp.read().decode())

    async def wait_healthy(self, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"operator exited: {self.tail()}")
            try:
                status, _ = await asyncio.to_thread(self._get, self.health_port, "/healthz")
                if status == 200:
                    return time.time()
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"operator not healthy after {timeout}s: {self.tail()}")

    async def metrics(self) -> str:
        _, text = await asyncio.to_thread(self._get, self.metrics_port, "/metrics")
        return text

    async def counter(self, name: str) -> float:
        return parse_metrics(await self.metrics(), name)

    async def memory_snapshot(self, timeout: float = 300.0) -> Path:
        """Have the operator dump a tracemalloc snapshot (SIGUSR2); its path once written."""
        assert self.tracemalloc_dir is not None and self.proc is not None
        before = set(self.tracemalloc_dir.glob(f"{self.pid}-*.done"))
        self.proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = set(self.tracemalloc_dir.glob(f"{self.pid}-*.done")) - before
            if done:
                return done.pop().with_suffix(".snap")
            await asyncio.sleep(0.5)
        raise RuntimeError(f"no tracemalloc snapshot from the operator within {timeout:g}s")

    def status(self) -> dict[str, float]:
        return proc_status(self.pid)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> float:
        """Stop and reap; returns how long the stop took."""
        started = time.monotonic()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        with contextlib.suppress(Exception):
            self.log.close()
        return time.monotonic() - started

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Sampler:
    """Samples RSS and CPU of whichever operator is current, every ``interval`` seconds."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.samples: list[Sample] = []
        self.current: OperatorProcess | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def take(self) -> Sample | None:
        op = self.current
        if op is None or not op.alive():
            return None
        try:
            st = op.status()
        except (OSError, IndexError, ValueError):
            return None
        sample = Sample(time.time(), st["rss_mb"], st["hwm_mb"], st["cpu_s"], op.label)
        self.samples.append(sample)
        return sample

    async def _run(self) -> None:
        while True:
            try:
                self.take()
            except Exception as exc:  # never let sampling end the run
                logging.getLogger("bench").warning("sampling failed: %r", exc)
            await asyncio.sleep(self.interval)

    async def wait_idle(
        self, *, window: float = 2.0, max_cpu: float = 0.05, timeout: float = 120.0
    ) -> float:
        """Wait until the operator used < max_cpu of a core over ``window`` seconds."""
        deadline = time.monotonic() + timeout
        first = self.take()
        while time.monotonic() < deadline:
            await asyncio.sleep(window)
            second = self.take()
            if second is None:  # no live operator to watch
                break
            if first and second and (second.cpu_s - first.cpu_s) / window < max_cpu:
                return second.t
            first = second
        return time.time()


class PySpy:
    """``py-spy record`` attached to the operator for one phase (raw collapsed stacks)."""

    def __init__(self, pid: int, out: Path, *, idle: bool = False):
        self.out = out
        exe = Path(sys.executable).parent / "py-spy"
        self.proc: subprocess.Popen[bytes] | None = None
        if exe.exists():
            argv = [str(exe), "record", "--pid", str(pid), "--format", "raw", "--rate", "50"]
            argv += ["--nonblocking", "--threads", "--output", str(out)]
            if idle:
                argv.append("--idle")
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> bool:
        if self.proc is None:
            return False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.out.exists()

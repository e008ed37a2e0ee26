"""Fixtures for tests against the real local control plane (hack/controlplane.sh).

The cluster is started once per test run, or reused when RDEV_TEST_USE_CLUSTER=1
and KUBECONFIG points at it (``make test`` starts it and does so). Each test
gets a namespace of its own; operators started by a test watch only it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from kubehelpers import ROOT, install_crd, kill_webuis, make_repo, scratch_namespace, wait_for

KUBECONFIG = ROOT / ".cluster" / "kubeconfig"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath) or "fault" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[str]:
    started = False
    reuse = os.environ.get("RDEV_TEST_USE_CLUSTER") == "1" and os.environ.get("KUBECONFIG")
    path = os.environ["KUBECONFIG"] if reuse else str(KUBECONFIG)
    if not reuse:
        # Only a cluster this run created is torn down afterwards.
        started = not KUBECONFIG.exists()
        subprocess.run(["bash", str(ROOT / "hack/controlplane.sh"), "up"], check=True, timeout=1800)
    os.environ["KUBECONFIG"] = path
    install_crd(path)
    yield path
    if started:
        subprocess.run(["bash", str(ROOT / "hack/controlplane.sh"), "down"], check=False)


@pytest.fixture(scope="session")
def api(kubeconfig: str) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    return client.ApiClient(cfg)


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    with scratch_namespace(api) as name:
        yield name


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[dict[str, Path]]:
    made = make_repo(tmp_path)
    yield made
    kill_webuis(made["sessions"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """``python -m session_operator`` as a child process, as it runs in production."""

    def __init__(self, kubeconfig: str, namespace: str, log_path: Path, **env: str):
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_path
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "RDEV_NAMESPACES": namespace,
            "RDEV_WEBUI_COMMAND": f"{sys.executable} {ROOT / 'tests' / 'fake_webui.py'}",
            # The stand-in listens on no pod port: tests that check health set both.
            "RDEV_WEBUI_HEALTH_PATH": "",
            "RDEV_METRICS_PORT": str(self.metrics_port),
            "RDEV_HEALTH_PORT": str(self.health_port),
            "RDEV_RETRY_INTERVAL": "1s",
            "RDEV_STALLED_RECHECK_INTERVAL": "5s",
            "RDEV_WEBUI_CHECK_INTERVAL": "2s",
            "RDEV_EXEC_TIMEOUT": "20s",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "session_operator"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        import urllib.request

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"operator exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.health_port}/healthz", timeout=1
                ) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        try:
            wait_for(healthy, timeout=60, interval=0.2, what="operator liveness endpoint")
        except BaseException:
            self.stop()  # never leave a half-started operator behind
            raise
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        if hasattr(self, "log"):
            self.log.close()

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as resp:
            return str(resp.read().decode())

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


# The operators a test started, for its report should it fail.
OPERATORS = pytest.StashKey[list["OperatorProcess"]]()
# How much of each operator's log a failed test's report shows: its last lines, less
# DEBUG and the liveness probes'.
LOG_TAIL = 40
QUIET = re.compile(r"\[DEBUG|aiohttp\.access")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report ends with what its operators logged: a failure seen only
    in CI can be read, not guessed at."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when != "call" or not report.failed:
        return
    for op in item.stash.get(OPERATORS, []):
        try:
            lines = [ln for ln in op.logs().splitlines() if not QUIET.search(ln)]
        except OSError as exc:
            lines = [f"(no log: {exc})"]
        report.sections.append((f"operator log {op.log_path.name}", "\n".join(lines[-LOG_TAIL:])))


@pytest.fixture
def operator_factory(
    kubeconfig: str, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Any]:
    started: list[OperatorProcess] = []
    request.node.stash[OPERATORS] = started

    def start(**env: str) -> OperatorProcess:
        op = OperatorProcess(
            kubeconfig, namespace, tmp_path / f"operator-{len(started)}.log", **env
        ).start()
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()


@pytest.fixture
def operator(operator_factory: Any) -> OperatorProcess:
    return operator_factory()  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _bounded_test(request: pytest.FixtureRequest) -> Iterator[None]:
    started = time.monotonic()
    yield
    _ = time.monotonic() - started


@contextlib.contextmanager
def own_control_plane(where: Path, **extra: str) -> Iterator[tuple[dict[str, str], str]]:
    """A control plane of its own under ``where`` (about 3 s to start), with ``extra``
    variables for hack/controlplane.sh; torn down afterwards."""
    env = {
        **os.environ,
        "RDEV_CLUSTER_NAME": f"own{uuid.uuid4().hex[:4]}",
        "RDEV_CLUSTER_DIR": str(where / "cluster"),
        **extra,
    }
    script = str(ROOT / "hack" / "controlplane.sh")
    try:
        subprocess.run(
            ["bash", script, "up"], env=env, check=True, timeout=300, capture_output=True
        )
        yield env, str(where / "cluster" / "kubeconfig")
    finally:
        subprocess.run(["bash", script, "down"], env=env, check=False, timeout=240)


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """A control plane of the test's own, for tests that break or must see an empty cluster."""
    with own_control_plane(tmp_path) as made:
        yield made

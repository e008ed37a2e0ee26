"""Bounded execs against the real API server: nothing outlives its deadline, output is capped.

PodExec is built as the operator builds it (``PodExec.from_settings``) and
runs in this test's event loop against a kwok project pod, whose exec runs on
this machine: the processes it starts are visible to ``pgrep``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
import tracemalloc
from collections.abc import Iterator, Sequence

import pytest

from kubehelpers import create_project_pod, wait_for
from rdev_api.execresult import ExecError, ExecResult
from session_operator.kube import login
from session_operator.podexec import GRACE_S, KILL_AFTER_S, PodExec
from session_operator.settings import Settings


def processes(marker: str) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", marker], capture_output=True, text=True, timeout=10, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique number in the argv of every process a test starts in the pod."""
    mark = f"0.{random.randrange(10**8, 10**9)}"
    yield mark
    for pid in processes(mark):  # only ever processes this test started
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run(settings: Settings, namespace: str, pod: str, argv: Sequence[str]) -> ExecResult:
    async def go() -> ExecResult:
        execs = PodExec.from_settings(login(), settings)
        try:
            return await execs.run(namespace, pod, None, argv, step="precheck")
        finally:
            await execs.close()

    return asyncio.run(go())


def test_a_timed_out_exec_leaves_no_process_in_the_pod(api, namespace, repo, marker):
    pod = create_project_pod(api, namespace, "shop", repo)["metadata"]["name"]
    # A child in the background and one in the foreground, both marked: the whole tree.
    argv = ["sh", "-c", 'sleep 300 "$1" & sleep 300 "$1"; wait', "sh", marker]
    settings = Settings(exec_timeout="3s")
    started = time.monotonic()
    with pytest.raises(ExecError) as failed:
        run(settings, namespace, pod, argv)
    elapsed = time.monotonic() - started
    assert failed.value.timed_out
    assert str(failed.value) == "precheck: command did not finish within 3s"
    assert 3 <= elapsed < 3 + KILL_AFTER_S + GRACE_S + 5
    wait_for(lambda: not processes(marker), timeout=10, what=f"no process with {marker} left")


def test_output_past_the_limit_fails_the_step_and_memory_stays_bounded(
    api, namespace, repo, marker
):
    pod = create_project_pod(api, namespace, "shop", repo)["metadata"]["name"]
    size = 20 << 20
    argv = ["sh", "-c", 'head -c "$1" /dev/zero | tr "\\0" x; : "$2"', "sh", str(size), marker]
    settings = Settings(exec_timeout="30s", exec_output_limit="1Mi")
    tracemalloc.start()
    try:
        with pytest.raises(ExecError) as failed:
            run(settings, namespace, pod, argv)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(failed.value) == "precheck: output exceeded the 1 MiB limit"
    assert not failed.value.timed_out
    assert peak < 6 << 20, f"peak {peak} bytes while reading a {size}-byte output"
    # The stream was closed: the writer in the pod does not run on to its timeout.
    wait_for(lambda: not processes(marker), timeout=30, what=f"no process with {marker} left")

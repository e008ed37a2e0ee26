"""Run an argv in a pod through the real ``pods/exec`` API (websocket).

The official client's ``stream()`` swaps ``call_api`` on the ApiClient it is
given while a stream opens, so sharing one ApiClient with other threads would
route their ordinary requests into a websocket: each thread gets its own.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from . import metrics

STDOUT, STDERR, ERROR = 1, 2, 3
_EXIT_STATUS = re.compile(r"exit (?:status|code) (\d+)")


@dataclass(frozen=True)
class ExecResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class ExecError(Exception):
    """The command could not be run at all (pod gone, stream broke, timeout)."""

    def __init__(self, message: str, *, pod_gone: bool = False, timed_out: bool = False):
        super().__init__(message)
        self.pod_gone = pod_gone
        self.timed_out = timed_out


def parse_exit_status(error_channel: str) -> int:
    """Exit code from the status the API server sends on channel 3."""
    if not error_channel.strip():
        return 0
    try:
        status = json.loads(error_channel)
    except ValueError:
        match = _EXIT_STATUS.search(error_channel)
        return int(match.group(1)) if match else 1
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", "1"))
    match = _EXIT_STATUS.search(status.get("message", ""))
    return int(match.group(1)) if match else 1


class PodExec:
    """Exec into pods; one ApiClient per thread, every call bounded by a timeout."""

    def __init__(self, make_api_client: Callable[[], client.ApiClient], timeout_s: float):
        self._make = make_api_client
        self._local = threading.local()
        self.timeout_s = timeout_s

    def _core(self) -> client.CoreV1Api:
        api = getattr(self._local, "api", None)
        if api is None:
            api = client.CoreV1Api(self._make())
            self._local.api = api
        return api

    def run(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        step: str,
        timeout_s: float | None = None,
    ) -> ExecResult:
        timeout = timeout_s or self.timeout_s
        started = time.monotonic()
        outcome = "error"
        try:
            try:
                ws = stream(
                    self._core().connect_get_namespaced_pod_exec,
                    pod,
                    namespace,
                    command=list(argv),
                    container=container,
                    stderr=True,
                    stdin=False,
                    stdout=True,
                    tty=False,
                    _preload_content=False,
                    _request_timeout=timeout,
                )
            except ApiException as exc:
                text = f"{exc.status} {exc.reason}"
                gone = exc.status == 404 or "not found" in str(exc.reason).lower()
                raise ExecError(f"exec into pod {pod} failed: {text}", pod_gone=gone) from None
            try:
                ws.run_forever(timeout=timeout)
                if ws.is_open():
                    raise ExecError(
                        f"{step}: command did not finish within {timeout:g}s", timed_out=True
                    )
                result = ExecResult(
                    returncode=parse_exit_status(ws.read_channel(ERROR)),
                    stdout=ws.read_channel(STDOUT),
                    stderr=ws.read_channel(STDERR),
                )
            finally:
                ws.close()
            outcome = "ok" if result.ok else "nonzero"
            return result
        except ExecError as exc:
            outcome = "timeout" if exc.timed_out else "error"
            raise
        except Exception as exc:  # the websocket layer raises many types
            raise ExecError(f"exec into pod {pod} failed: {exc}") from None
        finally:
            metrics.EXEC_DURATION.labels(step=step).observe(time.monotonic() - started)
            metrics.EXEC_TOTAL.labels(step=step, outcome=outcome).inc()

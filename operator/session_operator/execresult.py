"""What an exec into a pod returns, and how its exit status is read."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_EXIT_STATUS = re.compile(r"exit (?:status|code) (\d+)")


@dataclass(frozen=True)
class ExecResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self, lines: int = 5) -> str:
        """The exit code and the last lines of output, for a message a person can act on."""
        tail = [line for line in (self.stderr or self.stdout).strip().splitlines() if line.strip()]
        text = " | ".join(tail[-lines:])[-400:]
        return f"exit code {self.returncode}: {text}" if text else f"exit code {self.returncode}"


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

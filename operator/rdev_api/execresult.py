"""What an exec into a pod returns, how its exit status is read, and how its output is bounded."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .sanitize import clean

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
        """The exit code and the last lines of output, for a message a person can act on.

        Cleaned (see sanitize.py) before it is cut, so a cut never splits a
        credential past the redaction.
        """
        output = clean(self.stderr or self.stdout)
        tail = [line for line in output.strip().splitlines() if line.strip()]
        text = " | ".join(tail[-lines:])[-400:]
        return f"exit code {self.returncode}: {text}" if text else f"exit code {self.returncode}"


STDOUT, STDERR, ERROR = 1, 2, 3  # the channels of a v4 exec stream


class Frames:
    """An exec's channels as its frames arrive, keeping at most ``limit`` bytes.

    Counting as frames arrive, not after, is what bounds the operator's memory:
    a command that prints gigabytes costs at most ``limit`` and one frame. The
    status channel counts too (it is small), so nothing grows unbounded.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._channels: dict[int, list[bytes]] = {STDOUT: [], STDERR: [], ERROR: []}

    def add(self, frame: bytes) -> bool:
        """Keep one frame (its first byte names the channel); False once past the limit."""
        if len(frame) < 2 or frame[0] not in self._channels:
            return True
        self.size += len(frame) - 1
        if self.size > self.limit:
            return False
        self._channels[frame[0]].append(frame[1:])
        return True

    def _text(self, channel: int) -> str:
        return b"".join(self._channels[channel]).decode("utf-8", "replace")

    def result(self) -> ExecResult:
        return ExecResult(
            returncode=parse_exit_status(self._text(ERROR)),
            stdout=self._text(STDOUT),
            stderr=self._text(STDERR),
        )


class ExecError(Exception):
    """The command could not be run at all (pod gone, stream broke, timeout)."""

    def __init__(self, message: str, *, pod_gone: bool = False, timed_out: bool = False):
        # The message reaches conditions, Events and logs: cleaned here, once for all.
        super().__init__(clean(message))
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

"""Run an argv in the session's pod through ``pods/exec`` and pass its streams through.

stdout and stderr are copied as they arrive, stdin (``-i``) is pumped from a
thread, and the exit code comes from the status the API server sends on the v1
error channel (3), so ``kubectl session exec`` exits as the command did.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from rdev_api.execresult import parse_exit_status
from rdev_api.sanitize import StreamCleaner

from .kubeapi import PluginError, api_error

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
_EXITED = re.compile(r"exit (?:status|code) \d+")

# A constant script: the worktree and the command arrive as positional
# arguments, so no value is ever parsed by the shell (the operator's own rule).
IN_DIR_SCRIPT = 'cd -- "$1" && shift && exec "$@"'


def in_dir(path: str, argv: Sequence[str]) -> list[str]:
    """argv that runs ``argv`` with ``path`` as its working directory (exec has no cwd)."""
    return ["sh", "-c", IN_DIR_SCRIPT, "sh", path, *argv]


class Sink(Protocol):
    def write(self, data: bytes, /) -> Any: ...
    def flush(self) -> Any: ...


class CleanSink:
    """Passes output on without control characters, as it arrives (``logs``).

    UTF-8 and escape sequences split between two frames are joined first.
    """

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.cleaner = StreamCleaner()

    def write(self, data: bytes) -> int:
        self.sink.write(self.cleaner.feed(self.decoder.decode(data)).encode())
        return len(data)

    def flush(self) -> None:
        self.sink.flush()

    def finish(self) -> None:
        """Pass on what was held back for a sequence that never completed."""
        self.sink.write(self.cleaner.feed(self.decoder.decode(b"", final=True)).encode())
        self.sink.write(self.cleaner.finish().encode())
        self.sink.flush()


class Discard:
    """Stands in for the client's copy of all output, which would grow without bound."""

    def write(self, _data: Any) -> None:
        return None

    def getvalue(self) -> bytes:
        return b""


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    """Put the local terminal in raw mode for ``-t`` (keys go to the remote side as typed)."""
    if not enabled or not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run(
    api: client.ApiClient,
    namespace: str,
    pod: str,
    container: str | None,
    argv: Sequence[str],
    *,
    stdin: bool = False,
    tty: bool = False,
    out: Sink | None = None,
    err: Sink | None = None,
) -> int:
    """Run ``argv``; copy its output to ``out``/``err``; return its exit code."""
    out = out or sys.stdout.buffer
    err = err or sys.stderr.buffer
    kwargs: dict[str, Any] = {"container": container} if container else {}
    try:
        ws: Any = stream(
            client.CoreV1Api(api).connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=list(argv),
            stdin=stdin,
            stdout=True,
            stderr=not tty,  # a terminal merges stderr into stdout
            tty=tty,
            _preload_content=False,
            binary=True,
            **kwargs,
        )
    except ApiException as exc:
        raise api_error(exc, f"exec into pod {pod}") from None
    ws._all = Discard()
    if stdin:
        threading.Thread(target=_pump_stdin, args=(ws,), daemon=True).start()
    status = b""
    with _raw_terminal(tty and stdin):
        try:
            while ws.is_open():
                ws.update(timeout=1)
                status += _drain(ws, out, err)
        except KeyboardInterrupt:
            ws.close()
            return 130
        finally:
            status += _drain(ws, out, err)
            with contextlib.suppress(Exception):
                ws.close()
    return exit_code(status.decode("utf-8", "replace"), pod)


def _drain(ws: Any, out: Sink, err: Sink) -> bytes:
    for channel, sink in ((STDOUT, out), (STDERR, err)):
        data = ws.read_channel(channel)
        if data:
            sink.write(data)
            sink.flush()
    return bytes(ws.read_channel(ERROR) or b"")


def _pump_stdin(ws: Any) -> None:
    fd = sys.stdin.fileno()
    # Errors mean the stream ended under us: there is nothing left to send to.
    with contextlib.suppress(Exception):
        while ws.is_open():
            data = os.read(fd, 65536)
            if not data:
                ws.close_channel(STDIN)  # end of input (v5 streams; a no-op before)
                return
            ws.write_channel(STDIN, data)


def exit_code(status: str, pod: str) -> int:
    """The remote exit code; a failure that is not an exit code is an error of its own."""
    if not status.strip():
        return 0
    try:
        parsed = json.loads(status)
    except ValueError:
        return parse_exit_status(status)
    if parsed.get("status") == "Success":
        return 0
    causes = (parsed.get("details") or {}).get("causes") or []
    # The kubelet reports an ExitCode cause; some runtimes (kwok) only the message.
    if any(c.get("reason") == "ExitCode" for c in causes) or _EXITED.search(
        str(parsed.get("message", ""))
    ):
        return parse_exit_status(status)
    raise PluginError(f"exec into pod {pod} failed: {parsed.get('message') or status}")

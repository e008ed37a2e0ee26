"""``git-remote-rdev``: ``rdev://<namespace>/<session>`` as a git URL, through the API server.

git runs ``git-remote-rdev <remote> <url>`` and talks to it on stdin/stdout
(gitremote-helpers(7)). The helper offers only ``connect``: git then speaks its
own smart protocol, and the helper relays the bytes, unchanged, to
``git-upload-pack`` / ``git-receive-pack`` running in the session's worktree
through ``pods/exec``. So the caller's kubeconfig (``KUBECONFIG``, current
context) and RBAC decide: reading the Session and ``create pods/exec``.

What a push may do is decided in the pod, by git itself:
- ``transfer.hideRefs`` shows only the session's branch (and HEAD), and
  receive-pack rejects an update of a hidden ref, so nothing but that branch moves;
- ``receive.denyCurrentBranch=updateInstead`` moves the worktree with the branch,
  and ``receive.denyNonFastForwards`` keeps a forced push from dropping its commits;
- before receive-pack starts, a worktree with uncommitted or untracked files
  refuses the push, so nothing in it changes.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote

from kubernetes.client.exceptions import ApiException
from kubernetes.stream import ws_client as _ws_client
from urllib3.exceptions import HTTPError
from websocket import WebSocketException

from rdev_api import GROUP
from rdev_api.models import TERMINAL_PHASES, Phase
from rdev_api.names import CLONE_SCHEME, clone_url
from rdev_api.sanitize import one_line, strip_controls

from . import podstream
from .kubeapi import PluginError, Target, api_error, connect, get_session

ws_client: Any = _ws_client  # untyped

UPLOAD_PACK = "git-upload-pack"
RECEIVE_PACK = "git-receive-pack"
SERVICES = (UPLOAD_PACK, RECEIVE_PACK)
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_COMMAND = re.compile(rb"^[0-9a-f]{40,64} [0-9a-f]{40,64} ([^\0\n ]+)")
# How long a service may run on once git has hung up (see relay).
INPUT_CLOSED_GRACE_S = 30.0
# The websocket client's message for a refused upgrade (it reports no HTTP status).
_FORBIDDEN = re.compile(r"^Handshake status 403\b")


@dataclass(frozen=True)
class SessionURL:
    namespace: str
    name: str


def parse_url(url: str) -> SessionURL:
    """``rdev://<namespace>/<session>`` (a trailing slash allowed), else a clear error."""
    prefix = f"{CLONE_SCHEME}://"
    parts = url[len(prefix) :].rstrip("/").split("/") if url.startswith(prefix) else []
    if len(parts) != 2 or not all(_NAME.fullmatch(p) and len(p) <= 63 for p in parts):
        shown = one_line(strip_controls(url))[:300]
        raise PluginError(f"not an {CLONE_SCHEME} URL: {shown!r} (want {prefix}<namespace>/<name>)")
    return SessionURL(parts[0], parts[1])


@dataclass(frozen=True)
class Workspace:
    """Where the session's worktree is, from its status."""

    pod: str
    container: str | None
    path: str
    branch: str


def workspace(obj: dict[str, Any], where: SessionURL) -> Workspace:
    """The Active session's worktree, else a one-line reason why git cannot reach it."""
    status = obj.get("status") or {}
    phase = str(status.get("phase") or Phase.PENDING)
    label = f"session {where.name} in namespace {where.namespace}"
    if phase in TERMINAL_PHASES:
        raise PluginError(f"{label} has ended (phase {phase}): no more fetches or pushes")
    if (obj.get("metadata") or {}).get("deletionTimestamp") or phase != Phase.ACTIVE:
        raise PluginError(f"{label} is not Active (phase {phase})")
    pod, path, branch = status.get("podName"), status.get("checkoutPath"), status.get("branch")
    if not pod or not path or not branch:
        raise PluginError(f"{label} has no worktree in a pod yet (phase {phase})")
    return Workspace(str(pod), status.get("container") or None, str(path), str(branch))


def git_argv(service: str, ws: Workspace) -> list[str]:
    """The service run in the pod: an argv, the branch and path as values, never parsed."""
    verb = "upload-pack" if service == UPLOAD_PACK else "receive-pack"
    config = [
        "-c",
        "transfer.hideRefs=refs/",
        "-c",
        f"transfer.hideRefs=!refs/heads/{ws.branch}",
    ]
    if service == RECEIVE_PACK:
        # The worktree follows a push; a forced push would drop commits made in the session.
        config += [
            "-c",
            "receive.denyCurrentBranch=updateInstead",
            "-c",
            "receive.denyNonFastForwards=true",
        ]
    return ["git", *config, verb, "--", ws.path]


STATUS_ARGV = ("status", "--porcelain=v1", "--untracked-files=all", "--ignore-submodules=none")


def count_changes(porcelain: bytes) -> int:
    """Files ``git status --porcelain`` lists: modified, staged or untracked."""
    return sum(1 for line in porcelain.splitlines() if line.strip())


class PushedRefs:
    """The refs a push names, read from the first pkt-lines git sends receive-pack.

    The bytes pass on unchanged; this only watches them until the flush-pkt
    that ends the commands, so the helper can name a refused ref plainly
    (receive-pack itself refuses it as a hidden ref).
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.refs: list[str] = []
        self.done = False

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self.buffer += data
        while len(self.buffer) >= 4:
            try:
                size = int(self.buffer[:4], 16)
            except ValueError:
                self.done = True
                return
            if size < 4:  # the flush-pkt (0000) ends the commands; 0001-0003 are none
                self.done = True
                return
            if len(self.buffer) < size:
                return  # the rest of this line is still on its way
            line, self.buffer = self.buffer[4:size], self.buffer[size:]
            match = _COMMAND.match(line)
            if match:
                self.refs.append(match.group(1).decode("utf-8", "replace"))


# Exec ------------------------------------------------------------------------------
def _exec_error(exc: ApiException, where: SessionURL, pod: str) -> PluginError:
    if exc.status == 403 or (exc.status == 0 and _FORBIDDEN.match(str(exc.reason or ""))):
        return PluginError(
            f"cannot create pods/exec in namespace {where.namespace} (forbidden): git over"
            f" {CLONE_SCHEME}:// needs it on pod {pod}"
        )
    return api_error(exc, f"exec into pod {pod}")


def exec_query(argv: Sequence[str], container: str | None, stdin: bool) -> list[tuple[str, str]]:
    """The query of a pods/exec request: the argv one ``command`` per word, never a shell."""
    query = [("command", word) for word in argv]
    query += [("stdin", str(stdin).lower()), ("stdout", "true"), ("stderr", "true")]
    return query + ([("container", container)] if container else [])


def _open(
    target: Target, where: SessionURL, ws: Workspace, argv: Sequence[str], *, stdin: bool = True
) -> Any:
    """The exec stream, opened with the client's websocket call directly.

    Its generated ``connect_get_namespaced_pod_exec`` first builds the validators of
    every core model (about a second per process: more than a whole clone of a small
    repository); the request itself is the same GET with the same credentials.
    """
    path = f"/api/v1/namespaces/{quote(where.namespace)}/pods/{quote(ws.pod)}/exec"
    headers: dict[str, str] = {}
    try:
        target.api.update_params_for_auth(headers, [], ["BearerToken"], path, "GET", None)
        sock: Any = ws_client.websocket_call(
            target.api.configuration,
            "GET",
            target.api.configuration.host + path,
            query_params=exec_query(argv, ws.container, stdin),
            headers=headers,
            _preload_content=False,
            binary=True,
        )
    except ApiException as exc:
        raise _exec_error(exc, where, ws.pod) from None
    except (HTTPError, OSError) as exc:
        raise PluginError(f"exec into pod {ws.pod}: cannot reach the API server: {exc}") from None
    sock._all = podstream.Discard()  # the client would keep a copy of everything relayed
    return sock


def _output(target: Target, where: SessionURL, ws: Workspace, argv: Sequence[str]) -> bytes:
    """stdout of a short command in the pod; a failure is an error naming it."""
    out, err = bytearray(), bytearray()
    sock = _open(target, where, ws, argv, stdin=False)
    status = b""
    try:
        alive = True
        while alive:
            alive = _update(sock)
            out += sock.read_channel(podstream.STDOUT) or b""
            err += sock.read_channel(podstream.STDERR) or b""
            status += sock.read_channel(podstream.ERROR) or b""
    finally:
        with contextlib.suppress(Exception):
            sock.close()
    code = podstream.exit_code(status.decode("utf-8", "replace"), ws.pod)
    if code != 0:
        detail = one_line(strip_controls(err.decode("utf-8", "replace")))[:300]
        raise PluginError(f"{argv[0]} in pod {ws.pod} failed (exit {code}): {detail}")
    return bytes(out)


def check_clean(target: Target, where: SessionURL, ws: Workspace) -> None:
    """A push into a worktree with changes is refused before receive-pack starts."""
    changed = count_changes(_output(target, where, ws, ["git", "-C", ws.path, *STATUS_ARGV]))
    if changed:
        files = "file" if changed == 1 else "files"
        raise PluginError(
            f"push refused: the worktree of session {where.name} has {changed} uncommitted or"
            f" untracked {files}; commit or discard them in the session first"
            f" (kubectl session exec {where.name} -n {where.namespace} -- git status)"
        )


def relay(
    sock: Any,
    pod: str,
    source: BinaryIO,
    sink: BinaryIO,
    err: BinaryIO,
    watch: PushedRefs | None,
    grace_s: float = INPUT_CLOSED_GRACE_S,
) -> int:
    """Copy ``source`` to the remote stdin and its stdout/stderr back until it exits.

    The end of ``source`` closes the remote stdin (the v5 close signal), so a
    command reading to the end of its input finishes. Not every runtime passes
    that signal on (kwok does not): a command still running ``grace_s`` after
    git hung up is left behind. git itself having gone (a broken pipe) ends it too.
    """
    input_closed: list[float] = []

    def pump() -> None:
        with contextlib.suppress(Exception):  # the stream ended under us
            while sock.is_open():
                data = source.read(65536)
                if not data:
                    input_closed.append(time.monotonic())
                    sock.close_channel(podstream.STDIN)
                    return
                if watch is not None:
                    watch.feed(data)
                sock.write_channel(podstream.STDIN, data)

    threading.Thread(target=pump, daemon=True).start()
    status = b""
    try:
        alive = True
        while alive and not (input_closed and time.monotonic() - input_closed[0] > grace_s):
            alive = _update(sock)
            status += _drain(sock, sink, err)
    except BrokenPipeError:
        pass  # git has gone: there is no one left to relay to
    finally:
        with contextlib.suppress(Exception):
            sock.close()
    return podstream.exit_code(status.decode("utf-8", "replace"), pod)


def _update(sock: Any) -> bool:
    """Wait up to a second for frames; False once the stream has ended.

    A server that closes first makes the client's reply to its close frame fail:
    that, too, is the end (the frames before it are already in the channels).
    """
    if not sock.is_open():
        return False
    try:
        sock.update(timeout=1)
    except (WebSocketException, OSError):
        return False
    return True


def _drain(sock: Any, sink: BinaryIO, err: BinaryIO) -> bytes:
    for channel, out in ((podstream.STDOUT, sink), (podstream.STDERR, err)):
        data = sock.read_channel(channel)
        if data:
            out.write(data)
            out.flush()
    return bytes(sock.read_channel(podstream.ERROR) or b"")


# The helper ----------------------------------------------------------------------
def serve(url: str, stdin: BinaryIO, stdout: BinaryIO, stderr: BinaryIO) -> int:
    """Answer git's commands; ``connect`` hands the streams to the service in the pod."""
    where = parse_url(url)
    while True:
        line = stdin.readline()
        if not line or not line.strip():
            return 0
        command = line.decode("utf-8", "replace").strip()
        if command == "capabilities":
            stdout.write(b"connect\n\n")
            stdout.flush()
        elif command.startswith("connect "):
            return _connect(where, command.split(" ", 1)[1], stdin, stdout, stderr)
        else:
            raise PluginError(f"git-remote-{CLONE_SCHEME} does not support {command!r}")


def _connect(
    where: SessionURL, service: str, stdin: BinaryIO, stdout: BinaryIO, err: BinaryIO
) -> int:
    if service not in SERVICES:
        raise PluginError(f"git-remote-{CLONE_SCHEME} cannot run {service!r}")
    target = connect(None, None, where.namespace)
    ws = workspace(_read_session(target, where), where)
    if service == RECEIVE_PACK:
        check_clean(target, where, ws)
    sock = _open(target, where, ws, git_argv(service, ws))
    stdout.write(b"\n")  # connection established: from here on, git's own protocol
    stdout.flush()
    watch = PushedRefs() if service == RECEIVE_PACK else None
    code = relay(sock, ws.pod, stdin, stdout, err, watch)
    if watch is not None:
        wanted = f"refs/heads/{ws.branch}"
        others = sorted({r for r in watch.refs if r != wanted})
        if others:
            raise PluginError(
                f"push refused for {', '.join(others)}: session {where.name} takes pushes to"
                f" its branch {ws.branch} only ({clone_url(where.namespace, where.name)})"
            )
    return code


def _read_session(target: Target, where: SessionURL) -> dict[str, Any]:
    try:
        return get_session(target, where.name)
    except PluginError as exc:
        if exc.status == 403:
            raise PluginError(
                f"cannot get sessions.{GROUP} in namespace {where.namespace} (forbidden):"
                f" reading session {where.name} is needed to find its worktree"
            ) from None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """``git-remote-rdev <remote> [<url>]``: the URL is the second argument, else the first."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or len(args) > 2:
        print(f"usage: git-remote-{CLONE_SCHEME} <remote> [<url>] (run by git)", file=sys.stderr)
        return 1
    try:
        # Unbuffered stdin: a line read takes no protocol bytes after it, and the pump
        # thread, still blocked reading at exit, holds no lock of a buffered reader.
        stdin: Any = getattr(sys.stdin.buffer, "raw", sys.stdin.buffer)
        return serve(args[-1], stdin, sys.stdout.buffer, sys.stderr.buffer)
    except PluginError as exc:
        print(f"error: {strip_controls(str(exc))}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130

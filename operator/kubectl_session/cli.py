"""``kubectl session``: create, list, describe, exec, clone, open, logs, checkin, extend,
credential, wait.

Every verb goes through the API server with the user's own kubeconfig. Exit
codes: 0 done, 1 error (the message on stderr), and ``exec`` exits as the
remote command did.

Text from the cluster (status, Events, the web UI's log) is printed without
control characters (``sanitize``); ``exec`` alone passes its streams through
raw, since it is the user's own command, often in a terminal (``-t``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import signal
import subprocess
import sys
import sysconfig
import tempfile
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any, NoReturn

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rdev_api import API_VERSION, GROUP, KIND, PLURAL, VERSION, shards, timing
from rdev_api.conditions import READY, STALLED, SUMMARY
from rdev_api.durations import duration_ns
from rdev_api.models import TERMINAL_PHASES, Phase, WebUIState
from rdev_api.names import CREDENTIAL_KEY, PREVIEW_PORT, WEBUI_PORT, clone_url, webui_log
from rdev_api.sanitize import one_line, strip_controls

from . import podstream, render
from .kubeapi import (
    PluginError,
    Target,
    api_error,
    call,
    connect,
    get_session,
    list_sessions,
    patch_session,
    session_events,
    sessions_per_namespace,
    watch_session,
)

DEFAULT_WAIT = "5m"


def _now() -> datetime:
    return datetime.now(UTC)


def _say(text: str, *, err: bool = False) -> None:
    """Print a line that may hold text from the cluster: no control characters."""
    print(one_line(text), file=sys.stderr if err else sys.stdout, flush=True)


def _print_data(value: Any, fmt: str | None) -> bool:
    if fmt:
        print(render.data(value, fmt))
        return True
    return False


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def _phase(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "Pending")


# Waiting ------------------------------------------------------------------------
def _ready(obj: dict[str, Any]) -> bool:
    cond = _condition(obj, READY)
    return bool(cond and cond.get("status") == "True")


def _ended(obj: dict[str, Any]) -> bool:
    return _phase(obj) in TERMINAL_PHASES


def _wait(target: Target, name: str, condition: str, timeout: str) -> dict[str, Any]:
    """Wait for Ready or Ended; a Session that can no longer get there fails at once."""
    try:
        timeout_s = duration_ns(timeout) / 1e9
    except ValueError as exc:
        raise PluginError(f"--timeout: {exc}") from None
    hopeless: list[str] = []

    def done(obj: dict[str, Any]) -> bool:
        if condition == "Ended":
            return _ended(obj)
        if _ready(obj):
            return True
        stalled = _condition(obj, STALLED)
        if stalled and stalled.get("status") == "True":
            hopeless.append(
                f"session {name} is stalled: {stalled.get('reason')}: {stalled.get('message')}"
            )
            return True
        if _ended(obj):
            hopeless.append(f"session {name} has ended (phase {_phase(obj)}); it will not be Ready")
            return True
        return False

    obj = watch_session(target, name, done, timeout_s)
    if hopeless:
        raise PluginError(hopeless[-1])
    if obj is None:
        last = get_session(target, name)
        cond = _condition(last, SUMMARY) or {}
        detail = f"phase {_phase(last)}"
        if cond.get("reason"):
            detail += f", {cond.get('reason')}: {cond.get('message')}"
        raise PluginError(
            f"timed out after {timeout} waiting for session {name} to be {condition} ({detail})"
        )
    return obj


# Verbs --------------------------------------------------------------------------
def cmd_create(args: argparse.Namespace, target: Target) -> int:
    spec: dict[str, Any] = {"project": args.project}
    if args.branch:
        spec["branch"] = args.branch
    else:
        spec["newBranch"] = args.new_branch
        if args.from_ref:
            spec["fromRef"] = args.from_ref
    if args.web_ui:
        spec["webUI"] = True
    if args.preview_port is not None:
        spec["previewPort"] = args.preview_port
    if args.expires_in:
        spec["expiresIn"] = args.expires_in
    if args.idle_timeout:
        spec["idleTimeout"] = args.idle_timeout
    if args.credential:
        spec["credential"] = True
    body = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": args.name, "namespace": target.namespace},
        "spec": spec,
    }
    obj = call(
        f"creating session {args.name} in namespace {target.namespace}",
        target.custom.create_namespaced_custom_object,
        GROUP,
        VERSION,
        target.namespace,
        PLURAL,
        body,
    )
    if args.wait:
        obj = _wait(target, args.name, "Ready", args.timeout)
    if not _print_data(obj, args.output):
        print(f"session.{GROUP}/{args.name} created" + (" and Ready" if args.wait else ""))
        url = (obj.get("status") or {}).get("previewURL")
        if args.wait and url:
            _say(f"preview: {url}")
        # spec.credential may be absent from an older CRD: read it as the server returned it.
        print("\n".join(render.next_commands(args.name, target.namespace, obj.get("spec") or {})))
    return 0


def cmd_list(args: argparse.Namespace, target: Target) -> int:
    items = list_sessions(target)
    if _print_data(render.as_list(items), args.output):
        return 0
    if not items:
        print(f"No sessions found in namespace {target.namespace}.", file=sys.stderr)
        return 0
    print(render.session_table(items, _now()))
    return 0


def cmd_shards(args: argparse.Namespace, target: Target) -> int:
    """Plan RDEV_SHARD_BOUNDARIES from the Sessions each namespace holds (cluster-wide)."""
    try:
        cuts = shards.parse_cuts(args.boundaries or "", args.shards)
    except ValueError as exc:
        raise PluginError(f"--boundaries: {exc}") from None
    plan = render.shard_plan(sessions_per_namespace(target), args.shards, cuts)
    if not _print_data(plan, args.output):
        print(render.shard_table(plan, cuts))
    return 0


def cmd_describe(args: argparse.Namespace, target: Target) -> int:
    obj = get_session(target, args.name)
    events = session_events(target, args.name)
    if _print_data({"session": obj, "events": events}, args.output):
        return 0
    print(render.describe(obj, events, _now()))
    return 0


def _workspace(obj: dict[str, Any], name: str) -> tuple[str, str | None, str]:
    """(pod, container, worktree) of a session that has a worktree, else a clear error."""
    status = obj.get("status") or {}
    pod, path = status.get("podName"), status.get("checkoutPath")
    if not pod or not path:
        cond = _condition(obj, SUMMARY) or {}
        why = f"phase {_phase(obj)}"
        if cond.get("reason"):
            why += f", {cond.get('reason')}: {cond.get('message')}"
        raise PluginError(f"session {name} has no worktree in a pod yet ({why})")
    return str(pod), status.get("container"), str(path)


def cmd_exec(args: argparse.Namespace, target: Target) -> int:
    command = list(args.command)
    if not command:
        raise PluginError("exec needs a command after --, e.g. kubectl session exec NAME -- ls")
    pod, container, path = _workspace(get_session(target, args.name), args.name)
    argv = podstream.in_dir(path, command)
    return podstream.run(
        target.api, target.namespace, pod, container, argv, stdin=args.stdin, tty=args.tty
    )


def git_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for git: the running interpreter's scripts first on PATH.

    git finds ``git-remote-rdev`` on PATH; it is installed beside ``kubectl-session``,
    which may be run by full path or through kubectl from a directory not on PATH.
    """
    env = dict(os.environ if environ is None else environ)
    scripts = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    path = env.get("PATH", os.defpath)
    env["PATH"] = os.pathsep.join(dict.fromkeys([*scripts, path]))
    return env


def cmd_clone(args: argparse.Namespace, target: Target) -> int:
    if target.context:
        # git runs the helper again for every fetch and push, with the environment of then.
        raise PluginError(
            "clone uses the kubeconfig's current context, as git-remote-rdev does on every"
            " later fetch and push: switch with kubectl config use-context instead of --context"
        )
    obj = get_session(target, args.name)
    url = (obj.get("status") or {}).get("cloneURL") or clone_url(target.namespace, args.name)
    if _phase(obj) != Phase.ACTIVE:
        raise PluginError(f"session {args.name} is not Active (phase {_phase(obj)})")
    env = git_env()
    if target.kubeconfig:
        env["KUBECONFIG"] = target.kubeconfig
    argv = ["git", "clone", "--", url, *([args.directory] if args.directory else [])]
    try:
        return subprocess.run(argv, env=env, check=False).returncode
    except FileNotFoundError:
        raise PluginError("git is not installed (it is needed to clone)") from None


def cmd_logs(args: argparse.Namespace, target: Target) -> int:
    pod, container, path = _workspace(get_session(target, args.name), args.name)
    log = webui_log(path, args.name)
    argv = ["tail", "-n", "+1", "-f", "--", log] if args.follow else ["cat", "--", log]
    out, err = podstream.CleanSink(sys.stdout.buffer), podstream.CleanSink(sys.stderr.buffer)
    with _sigterm_as_interrupt():
        try:
            code = podstream.run(
                target.api, target.namespace, pod, container, argv, out=out, err=err
            )
        finally:
            out.finish()
            err.finish()
    if code not in (0, 130):
        raise PluginError(
            f"cannot read the web UI log of session {args.name} ({log} in pod {pod}):"
            " the web UI may never have run"
        )
    return 0


def cmd_checkin(args: argparse.Namespace, target: Target) -> int:
    obj = get_session(target, args.name)
    wanted = {"skipReview": args.skip_review, "autoMerge": args.auto_merge}
    current = (obj.get("spec") or {}).get("checkin")
    if current is not None:
        had = {k: bool(current.get(k, False)) for k in wanted}
        if had != wanted:
            raise PluginError(
                f"session {args.name} is already checked in with skipReview={had['skipReview']},"
                f" autoMerge={had['autoMerge']}; a checkin cannot be changed"
            )
        print(f"session {args.name} was already checked in", file=sys.stderr)
    else:
        obj = patch_session(target, args.name, {"spec": {"checkin": wanted}})
    if args.wait:
        obj = _wait(target, args.name, "Ended", args.timeout)
    if not _print_data(obj, args.output):
        if args.wait:
            review = (obj.get("status") or {}).get("review") or {}
            extra = ""
            if review.get("requested"):
                pushed = review.get("pushed")
                extra = ", review requested" + (
                    "" if pushed is None else (", branch pushed" if pushed else ", push failed")
                )
            _say(f"session {args.name} ended (phase {_phase(obj)}{extra})")
        else:
            print(f"session {args.name} checked in; it ends shortly")
    return 0


def cmd_extend(args: argparse.Namespace, target: Target) -> int:
    obj = get_session(target, args.name)
    if _ended(obj):
        raise PluginError(f"session {args.name} has already ended (phase {_phase(obj)})")
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    created = timing.parse_time(meta.get("creationTimestamp"))
    if created is None:
        raise PluginError(f"session {args.name} has no creationTimestamp")
    try:
        ext = timing.extend(created, str(spec.get("expiresIn") or "24h"), args.by)
    except timing.ExtendRefused as exc:
        raise PluginError(f"cannot extend session {args.name} by {args.by}: {exc}") from None
    except ValueError as exc:
        raise PluginError(f"--by: {exc}") from None
    obj = patch_session(target, args.name, {"spec": {"expiresIn": ext.expires_in}})
    if not _print_data(obj, args.output):
        print(
            f"session {args.name} now expires at {timing.iso(ext.expires_at)}"
            f" (expiresIn {ext.expires_in})"
        )
    return 0


def _credential_kubeconfig(target: Target, name: str) -> str:
    """The kubeconfig of a session's credential, or a one-line reason why there is none."""
    obj = get_session(target, name)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if _ended(obj):
        raise PluginError(f"session {name} has ended ({_phase(obj)}); its credential was revoked")
    if not spec.get("credential"):
        raise PluginError(
            f"session {name} has no credential; ask for one with: kubectl patch"
            f' sessions.{GROUP} {name} --type merge -p \'{{"spec":{{"credential":true}}}}\''
        )
    secret = status.get("credentialSecret")
    not_ready = (
        f"the credential of session {name} is not ready yet (phase {_phase(obj)});"
        f" wait with: kubectl session wait {name}"
    )
    if not secret:
        raise PluginError(not_ready)
    try:
        found: Any = target.core.read_namespaced_secret(secret, target.namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise PluginError(not_ready) from None
        raise api_error(exc, f"reading Secret {secret}") from None
    except (HTTPError, OSError) as exc:
        raise PluginError(f"reading Secret {secret}: cannot reach the API server: {exc}") from None
    data = (found.data or {}).get(CREDENTIAL_KEY)
    if not data:
        raise PluginError(not_ready)
    return base64.b64decode(data).decode("utf-8")


def write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` as mode 0600, whole or not at all.

    A temporary file in the same folder (created 0600 by mkstemp, whatever the
    umask) is renamed over the target: no moment when the file is readable by
    others, nor half written, also when it existed with a wider mode.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".kubeconfig-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def cmd_credential(args: argparse.Namespace, target: Target) -> int:
    text = _credential_kubeconfig(target, args.name)
    if not args.output_file:
        sys.stdout.write(text)
        return 0
    try:
        write_private(args.output_file, text)
    except OSError as exc:
        raise PluginError(f"writing {args.output_file}: {exc.strerror or exc}") from None
    _say(
        f"wrote the credential of session {args.name} to {args.output_file} (mode 0600);"
        f" use it with: kubectl --kubeconfig {args.output_file} get sessions.{GROUP} {args.name}"
    )
    return 0


def cmd_wait(args: argparse.Namespace, target: Target) -> int:
    obj = _wait(target, args.name, args.condition, args.timeout)
    if not _print_data(obj, args.output):
        _say(f"session {args.name} is {args.condition} (phase {_phase(obj)})")
    return 0


def remote_port(obj: dict[str, Any], web_ui: bool, preview: bool) -> tuple[int, str]:
    """The pod port to forward to, and what it serves.

    The web UI's port is the preview Service's port while the web UI runs
    (the operator points the Service at it), else the operator's default WEBUI_PORT;
    the preview is spec.previewPort. Without a choice: the web UI when it runs.
    """
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    running = status.get("webUI") == WebUIState.RUNNING
    if preview:
        return int(spec.get("previewPort") or PREVIEW_PORT), "preview"
    if web_ui or running:
        port = status.get("servicePort") if running else None
        return int(port or WEBUI_PORT), "web UI"
    return int(status.get("servicePort") or spec.get("previewPort") or PREVIEW_PORT), "preview"


def _stop_on_sigterm(_sig: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a long-running verb as Ctrl-C does: streams closed, exit clean."""
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_open(args: argparse.Namespace, target: Target) -> int:
    from .portforward import Forwarder

    obj = get_session(target, args.name)
    if _ended(obj):
        raise PluginError(f"session {args.name} has ended (phase {_phase(obj)})")
    pod = (obj.get("status") or {}).get("podName")
    if not pod:
        raise PluginError(f"session {args.name} has no pod yet (phase {_phase(obj)})")
    port, what = remote_port(obj, args.web_ui, args.preview)
    if what == "web UI" and (obj.get("status") or {}).get("webUI") != WebUIState.RUNNING:
        _say(
            f"warning: the web UI of session {args.name} is not running"
            f" (status.webUI: {(obj.get('status') or {}).get('webUI') or 'Stopped'});"
            " turn it on with: kubectl -n"
            f" {target.namespace} patch sess {args.name} --type merge"
            ' -p \'{"spec":{"webUI":true}}\'',
            err=True,
        )
    try:
        server = Forwarder(target.fresh_client, target.namespace, str(pod), port, args.local_port)
    except OSError as exc:
        raise PluginError(f"cannot listen on 127.0.0.1:{args.local_port}: {exc}") from None
    graphical = (
        sys.platform == "darwin" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    with _sigterm_as_interrupt():
        try:
            url = server.url
            print(url, flush=True)
            _say(
                f"forwarding {url} to the {what} of session {args.name} (pod {pod}, port {port});"
                " Ctrl-C to stop",
                err=True,
            )
            if not args.port_only and graphical:
                webbrowser.open(url)
            server.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


# Parser -------------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser, output: bool = False, top: bool = False) -> None:
    """Connection options, accepted before the verb (``kubectl session -n x list``) or after.

    After the verb they default to SUPPRESS, so they never undo one given before.
    """
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "-n", "--namespace", default=default, help="namespace (default: the context's)"
    )
    parser.add_argument(
        "--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG)"
    )
    parser.add_argument(
        "--context", default=default, help="kubeconfig context (default: the current one)"
    )
    if output:
        parser.add_argument("-o", "--output", choices=("json", "yaml"), help="print data")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port")
    return value


def _shard_count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= shards.MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"{text} is not 1..{shards.MAX_SHARDS}")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1 like every other error (argparse would use 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kubectl session",
        description="Work with rdev.io Sessions: remote-development sessions on a project's pod.",
    )
    _common(parser, top=True)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)

    p = verbs.add_parser("create", help="create a Session")
    p.add_argument("name")
    p.add_argument("--project", required=True, help="the project (pod label rdev.io/project)")
    branch = p.add_mutually_exclusive_group(required=True)
    branch.add_argument("--branch", help="an existing branch to check out")
    branch.add_argument("--new-branch", help="a branch to create")
    p.add_argument("--from", dest="from_ref", help="where --new-branch starts")
    p.add_argument("--web-ui", action="store_true", help="run the web UI")
    p.add_argument("--preview-port", type=_port, help="the app preview's port")
    p.add_argument("--expires-in", help="lifetime, e.g. 8h or 7d (default 24h)")
    p.add_argument("--idle-timeout", help="stop after this long without activity")
    p.add_argument(
        "--credential",
        action="store_true",
        help="issue a session credential (a kubeconfig revoked when the session ends)",
    )
    p.add_argument("--wait", action="store_true", help="wait until the Session is Ready")
    p.add_argument("--timeout", default=DEFAULT_WAIT, help="bound of --wait (default 5m)")
    _common(p, output=True)
    p.set_defaults(func=cmd_create)

    p = verbs.add_parser("list", aliases=["ls"], help="list Sessions with their deadlines")
    _common(p, output=True)
    p.set_defaults(func=cmd_list)

    p = verbs.add_parser(
        "shards", help="Sessions per shard, and RDEV_SHARD_BOUNDARIES that balance them"
    )
    p.add_argument("--shards", type=_shard_count, required=True, help="RDEV_SHARDS")
    p.add_argument("--boundaries", help="RDEV_SHARD_BOUNDARIES as set now (default: equal)")
    _common(p, output=True)
    p.set_defaults(func=cmd_shards)

    p = verbs.add_parser("describe", help="status, conditions, events and workspace changes")
    p.add_argument("name")
    _common(p, output=True)
    p.set_defaults(func=cmd_describe)

    p = verbs.add_parser("exec", help="run a command in the session's worktree")
    p.add_argument("name")
    p.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the command")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument("command", nargs="*", help="-- CMD [ARG...] (an argv, never a shell string)")
    _common(p)
    p.set_defaults(func=cmd_exec)

    p = verbs.add_parser("clone", help="git clone the session's worktree (rdev:// URL)")
    p.add_argument("name")
    p.add_argument("directory", nargs="?", help="where to clone (default: as git chooses)")
    _common(p)
    p.set_defaults(func=cmd_clone)

    p = verbs.add_parser("open", help="port-forward to the web UI or preview and open it")
    p.add_argument("name")
    p.add_argument("--port-only", action="store_true", help="print the URL, open no browser")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--web-ui", action="store_true", help=f"the web UI (port {WEBUI_PORT})")
    which.add_argument("--preview", action="store_true", help="the app preview (previewPort)")
    p.add_argument("--local-port", type=_port, default=0, help="local port (default: a free one)")
    _common(p)
    p.set_defaults(func=cmd_open)

    p = verbs.add_parser("logs", help="the web UI's log")
    p.add_argument("name")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    _common(p)
    p.set_defaults(func=cmd_logs)

    p = verbs.add_parser("checkin", help="end the session and hand its branch to review")
    p.add_argument("name")
    p.add_argument("--skip-review", action="store_true", help="request no review")
    p.add_argument("--auto-merge", action="store_true", help="merge once approved")
    p.add_argument("--wait", action="store_true", help="wait until the session has ended")
    p.add_argument("--timeout", default=DEFAULT_WAIT, help="bound of --wait (default 5m)")
    _common(p, output=True)
    p.set_defaults(func=cmd_checkin)

    p = verbs.add_parser("extend", help="move the session's expiry later")
    p.add_argument("name")
    p.add_argument("--by", required=True, help="how much later, e.g. 2h or 1d")
    _common(p, output=True)
    p.set_defaults(func=cmd_extend)

    p = verbs.add_parser("credential", help="the session's own kubeconfig (spec.credential)")
    p.add_argument("name")
    p.add_argument(
        "-o", "--output-file", metavar="FILE", help="write it to FILE (mode 0600), not stdout"
    )
    _common(p)
    p.set_defaults(func=cmd_credential)

    p = verbs.add_parser("wait", help="wait until the session is Ready or has Ended")
    p.add_argument("name")
    p.add_argument("--for", dest="condition", choices=("Ready", "Ended"), default="Ready")
    p.add_argument("--timeout", default=DEFAULT_WAIT, help="give up after this (default 5m)")
    _common(p, output=True)
    p.set_defaults(func=cmd_wait)
    return parser


def split_command(words: list[str]) -> tuple[list[str], list[str] | None]:
    """For exec, everything after the first ``--`` is the command, its options included."""
    if words[:1] == ["exec"] and "--" in words:
        cut = words.index("--")
        return words[:cut], words[cut + 1 :]
    return words, None


def main(argv: Sequence[str] | None = None) -> int:
    words, command = split_command(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(words)
    if command is not None:
        args.command = [*args.command, *command]
    if args.verb == "create" and args.from_ref and not args.new_branch:
        print("kubectl session create: error: --from needs --new-branch", file=sys.stderr)
        return 1
    func: Callable[[argparse.Namespace, Target], int] = args.func
    try:
        target = connect(args.kubeconfig, args.context, args.namespace)
        return func(args, target)
    except PluginError as exc:
        print(f"error: {strip_controls(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

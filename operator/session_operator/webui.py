"""argv lists that start, check and stop the web UI inside the project pod.

Detaching a process needs a shell, so the scripts below are constants and every
value (paths, port, the configured command) is passed as a positional argument:
nothing a user wrote is ever parsed by the shell.

The UI gets everything per session, inside the session's run directory: its
home (``webui/home``) and its database (``webui/auth.db``), never the package's
or the image's. Claude Code UI finds projects under ``$HOME/.claude``: version
1.12 (``@siteboon/claude-code-ui``) lists the ``manuallyAdded`` entries of
``project-config.json``; 1.37 (``@cloudcli-ai/cloudcli``) indexes the ``cwd`` of
the transcripts under ``projects/``. Both are seeded with the worktree, so it is
the project the UI opens.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from rdev_api import names
from rdev_api.execresult import ExecResult

Argv = list[str]

# A process that exited but was never reaped (a pod's PID 1 often does not reap
# orphans) still answers kill -0: a zombie counts as not running.
_RUNNING = r"""
running() {
  kill -0 "$1" 2>/dev/null || return 1
  st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  st="${st##*) }"
  [ "${st%% *}" != Z ]
}
"""

# GET http://127.0.0.1:<port><path> from inside the pod with whichever client the
# image has (curl, wget, or the UI's own node); 2 s per try.
_HEALTHY = r"""
healthy() {
  url="http://127.0.0.1:$1$2"
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O /dev/null -T 2 "$url" 2>/dev/null
  elif command -v node >/dev/null 2>&1; then
    node -e 'fetch(process.argv[1], {signal: AbortSignal.timeout(2000)})
      .then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$url"
  else
    return 1
  fi
}
"""

_START = (
    _RUNNING
    + _HEALTHY
    + r"""
set -eu
dir="$1"; run="$2"; log="$3"; port="$4"; health="$5"; timeout="$6"; key="$7"; config="$8"
seed="$9"
shift 9
home="$run/webui/home"
projects="$home/.claude/projects/$key"
mkdir -p "$run" "$projects"
# The project seeds are written once: the UI may add projects of its own later.
cfg="$home/.claude/project-config.json"
[ -f "$cfg" ] || printf '%s\n' "$config" >"$cfg"
[ -f "$projects/rdev.jsonl" ] || printf '%s\n' "$seed" >"$projects/rdev.jsonl"
if [ -f "$run/webui.pid" ] && running "$(cat "$run/webui.pid")"; then
  state=running
else
  rm -f "$run/webui.pid"
  date +%s >"$run/webui.since"
  cd "$dir"
  # The detached child records its own pid before it becomes the web UI, so an
  # interrupted start (operator killed mid-exec) can never leave an untracked one.
  PORT="$port" SERVER_PORT="$port" HOST=0.0.0.0 HOME="$home" \
    DATABASE_PATH="$run/webui/auth.db" WORKSPACES_ROOT="$dir" nohup sh -c \
    'echo "$$" >"$1/webui.pid.tmp" && mv "$1/webui.pid.tmp" "$1/webui.pid" && shift && exec "$@"' \
    sh "$run" "$@" >"$log" 2>&1 </dev/null &
  i=0
  while [ ! -f "$run/webui.pid" ] && [ "$i" -lt 40 ]; do sleep 0.05; i=$((i+1)); done
  sleep 0.2
  # Its log is not echoed: it may hold the UI's access token (kubectl session logs shows it).
  [ -f "$run/webui.pid" ] && running "$(cat "$run/webui.pid")" || exit 3
  state=started
fi
[ -n "$health" ] || { echo "$state"; exit 0; }
# A few tries so that one slow answer is not taken for a dead UI.
i=0
while [ "$i" -lt 3 ]; do
  if healthy "$port" "$health"; then echo "$state healthy"; exit 0; fi
  running "$(cat "$run/webui.pid")" || exit 3
  sleep 0.5; i=$((i+1))
done
since="$(cat "$run/webui.since" 2>/dev/null || echo 0)"
[ "$(( $(date +%s) - since ))" -ge "$timeout" ] && exit 4
echo "$state starting"
"""
)

_STOP = (
    _RUNNING
    + r"""
run="$1"; grace_ticks="$2"
pid="$(cat "$run/webui.pid" 2>/dev/null)" || { echo stopped; exit 0; }
# SIGTERM, then up to the grace (in tenths of a second) for it to save and exit;
# SIGKILL only if it is still there.
if running "$pid"; then
  kill -TERM "$pid" 2>/dev/null || true
  i=0
  while running "$pid" && [ "$i" -lt "$grace_ticks" ]; do sleep 0.1; i=$((i+1)); done
  if running "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    i=0
    while running "$pid" && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  fi
fi
rm -f "$run/webui.pid"
echo stopped
"""
)

STARTED_EXIT_CODE = 0
EXITED_AT_ONCE_CODE = 3
UNHEALTHY_CODE = 4  # running, but no answer on the health path within the start timeout
SEED_SESSION_NS = uuid.UUID("5d0c1f6e-4c1a-4d4b-9a52-2f6f8f3b1e17")


def project_key(checkout: str) -> str:
    """The folder name both UI versions give a project: its path with ``/`` as ``-``."""
    return checkout.replace("/", "-")


def project_config(checkout: str) -> str:
    """``project-config.json`` for 1.12: the worktree as a manually added project."""
    entry = {"manuallyAdded": True, "originalPath": checkout}
    return json.dumps({project_key(checkout): entry})


def project_seed(checkout: str) -> str:
    """One transcript line for 1.37, whose ``cwd`` makes the worktree a project."""
    session_id = str(uuid.uuid5(SEED_SESSION_NS, checkout))
    return json.dumps(
        {"type": "summary", "summary": "rdev session", "sessionId": session_id, "cwd": checkout}
    )


def start(
    checkout: str,
    run_dir: str,
    port: int,
    command: Sequence[str],
    *,
    health_path: str = "",
    timeout_s: float = 60,
) -> Argv:
    """Start the UI unless it runs, then ask its health path (empty: no check)."""
    return [
        "sh",
        "-c",
        _START,
        "sh",
        checkout,
        run_dir,
        names.webui_log_in(run_dir),
        str(port),
        health_path,
        str(max(math.ceil(timeout_s), 1)),
        project_key(checkout),
        project_config(checkout),
        project_seed(checkout),
        *command,
    ]


def stop(run_dir: str, grace_s: float) -> Argv:
    """SIGTERM, wait up to ``grace_s`` for the UI to exit, then SIGKILL."""
    return ["sh", "-c", _STOP, "sh", run_dir, str(max(math.ceil(grace_s * 10), 0))]


def stop_timeout_s(grace_s: float, exec_timeout_s: float) -> float:
    """The stop exec's bound: the whole grace plus an ordinary exec's time on top."""
    return grace_s + exec_timeout_s


class Started(StrEnum):
    STARTED = "started"  # it was not running: started now
    RUNNING = "running"  # already running: nothing done
    FAILED = "failed"  # it exited at once
    UNHEALTHY = "unhealthy"  # it runs but never answered its health path in time


@dataclass(frozen=True)
class Start:
    started: Started
    detail: str = ""  # why the start script itself failed; never the UI's own output
    healthy: bool = False  # its health path answered (or there is none)


def read_start(result: ExecResult) -> Start:
    if result.returncode == EXITED_AT_ONCE_CODE:
        return Start(Started.FAILED)
    if result.returncode == UNHEALTHY_CODE:
        return Start(Started.UNHEALTHY)
    if not result.ok:
        return Start(Started.FAILED, detail=result.describe())
    state, _, health = result.stdout.strip().partition(" ")
    started = Started.STARTED if state == "started" else Started.RUNNING
    return Start(started, healthy=health != "starting")  # no word: no health check

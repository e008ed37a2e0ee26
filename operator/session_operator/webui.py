"""argv lists that start, check and stop the web UI inside the project pod.

Detaching a process needs a shell, so the scripts below are constants and every
value (paths, port, the configured command) is passed as a positional argument:
nothing a user wrote is ever parsed by the shell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

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

_START = (
    _RUNNING
    + r"""
set -eu
dir="$1"; run="$2"; port="$3"; shift 3
mkdir -p "$run"
if [ -f "$run/webui.pid" ] && running "$(cat "$run/webui.pid")"; then
  echo running; exit 0
fi
rm -f "$run/webui.pid"
cd "$dir"
# The detached child records its own pid before it becomes the web UI, so an
# interrupted start (operator killed mid-exec) can never leave an untracked one.
PORT="$port" nohup sh -c \
  'echo "$$" >"$1/webui.pid.tmp" && mv "$1/webui.pid.tmp" "$1/webui.pid" && shift && exec "$@"' \
  sh "$run" "$@" >"$run/webui.log" 2>&1 </dev/null &
i=0
while [ ! -f "$run/webui.pid" ] && [ "$i" -lt 40 ]; do sleep 0.05; i=$((i+1)); done
sleep 0.2
if [ -f "$run/webui.pid" ] && running "$(cat "$run/webui.pid")"; then
  echo started; exit 0
fi
# Its log is not echoed: it may hold the UI's access token (kubectl session logs shows it).
exit 3
"""
)

_ALIVE = (
    _RUNNING
    + r"""
pid="$(cat "$1/webui.pid" 2>/dev/null)" || exit 1
running "$pid"
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


def start(checkout: str, run_dir: str, port: int, command: Sequence[str]) -> Argv:
    return ["sh", "-c", _START, "sh", checkout, run_dir, str(port), *command]


def alive(run_dir: str) -> Argv:
    return ["sh", "-c", _ALIVE, "sh", run_dir]


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


@dataclass(frozen=True)
class Start:
    started: Started
    detail: str = ""  # why the start script itself failed; never the UI's own output


def read_start(result: ExecResult) -> Start:
    if result.returncode == EXITED_AT_ONCE_CODE:
        return Start(Started.FAILED)
    if not result.ok:
        return Start(Started.FAILED, detail=result.describe())
    if result.stdout.strip() == "started":
        return Start(Started.STARTED)
    return Start(Started.RUNNING)

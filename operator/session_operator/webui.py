"""argv lists that start, check and stop the web UI inside the project pod.

Detaching a process needs a shell, so the scripts below are constants and every
value (paths, port, the configured command) is passed as a positional argument:
nothing a user wrote is ever parsed by the shell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .execresult import ExecResult

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
echo "web UI exited at once; last lines of its log:" >&2
tail -n 5 "$run/webui.log" >&2 || true
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
run="$1"
pid="$(cat "$run/webui.pid" 2>/dev/null)" || { echo stopped; exit 0; }
if running "$pid"; then
  kill -TERM "$pid" 2>/dev/null || true
  i=0
  while running "$pid" && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$pid" 2>/dev/null || true
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


def stop(run_dir: str) -> Argv:
    return ["sh", "-c", _STOP, "sh", run_dir]


class Started(StrEnum):
    STARTED = "started"  # it was not running: started now
    RUNNING = "running"  # already running: nothing done
    FAILED = "failed"  # it exited at once


@dataclass(frozen=True)
class Start:
    started: Started
    detail: str = ""


def read_start(result: ExecResult) -> Start:
    if not result.ok:
        return Start(Started.FAILED, detail=result.describe())
    if result.stdout.strip() == "started":
        return Start(Started.STARTED)
    return Start(Started.RUNNING)

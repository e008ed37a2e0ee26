"""What the start script gives a real UI: port, home, database, and its project.

Both known versions of Claude Code UI are covered: 1.12 (@siteboon/claude-code-ui)
reads ``$HOME/.claude/project-config.json``; 1.37 (@cloudcli-ai/cloudcli) indexes
the ``cwd`` of ``$HOME/.claude/projects/*/*.jsonl``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rdev_api.execresult import ExecResult
from session_operator import webui
from session_operator.settings import Settings

ENV_DUMP = """
import json, os, sys, time
json.dump(dict(os.environ), open(sys.argv[1], "w"))
while True:
    time.sleep(1)
"""

HEALTH_SERVER = """
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/health"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}' if ok else b"")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["SERVER_PORT"])), H).serve_forever()
"""


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    checkout = tmp_path / "sessions" / "s1"
    checkout.mkdir(parents=True)
    run_dir = tmp_path / "sessions" / ".rdev" / "s1"
    yield checkout, run_dir
    pidfile = run_dir / "webui.pid"
    if pidfile.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def started_env(checkout: Path, run_dir: Path, tmp_path: Path) -> dict[str, str]:
    dump = tmp_path / "env.json"
    argv = webui.start(
        str(checkout), str(run_dir), 4321, [sys.executable, "-c", ENV_DUMP, str(dump)]
    )
    assert run(argv).stdout.strip() == "started"
    deadline = time.monotonic() + 10
    while not dump.exists() or not dump.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.1)
    env: dict[str, str] = json.loads(dump.read_text())
    return env


def test_the_ui_gets_its_port_home_database_and_workspace_per_session(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    checkout, run_dir = dirs
    env = started_env(checkout, run_dir, tmp_path)
    assert env["PORT"] == env["SERVER_PORT"] == "4321"  # 1.12 reads PORT, 1.37 SERVER_PORT
    assert env["HOST"] == "0.0.0.0"  # reachable through the pod's Service
    assert env["HOME"] == str(run_dir / "webui" / "home")
    assert env["DATABASE_PATH"] == str(run_dir / "webui" / "auth.db")
    assert env["WORKSPACES_ROOT"] == str(checkout)  # 1.37 bounds its file tree here


def test_claude_code_ui_1_12_lists_the_worktree_as_a_manually_added_project(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    checkout, run_dir = dirs
    env = started_env(checkout, run_dir, tmp_path)
    config = json.loads((Path(env["HOME"]) / ".claude" / "project-config.json").read_text())
    # 1.12's addProjectManually: key = absolute path with "/" as "-"
    key = str(checkout).replace("/", "-")
    assert config == {key: {"manuallyAdded": True, "originalPath": str(checkout)}}


def test_cloudcli_1_37_indexes_the_worktree_from_a_transcript_cwd(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    checkout, run_dir = dirs
    env = started_env(checkout, run_dir, tmp_path)
    folder = Path(env["HOME"]) / ".claude" / "projects" / str(checkout).replace("/", "-")
    (transcript,) = folder.glob("*.jsonl")
    first = json.loads(transcript.read_text().splitlines()[0])
    # ClaudeSessionSynchronizer.processSessionFile: a string sessionId and cwd
    assert isinstance(first["sessionId"], str) and first["sessionId"]
    assert first["cwd"] == str(checkout)


def test_seeds_are_json_whatever_the_path_holds() -> None:
    path = '/w/"quoted" $(x) `y`\\n'
    assert json.loads(webui.project_config(path))[path.replace("/", "-")]["originalPath"] == path
    assert json.loads(webui.project_seed(path))["cwd"] == path
    assert webui.project_seed(path) == webui.project_seed(path)  # same id on every start


def test_running_only_once_health_answers(dirs: tuple[Path, Path]) -> None:
    checkout, run_dir = dirs
    port = free_port()
    argv = webui.start(
        str(checkout),
        str(run_dir),
        port,
        ["sleep", "10"],
        health_path="/health",
        timeout_s=30,
    )
    first = run(argv)
    assert first.stdout.strip() == "started starting"
    start = webui.read_start(ExecResult(first.returncode, first.stdout, first.stderr))
    assert start == webui.Start(webui.Started.STARTED, healthy=False)
    os.kill(int((run_dir / "webui.pid").read_text()), signal.SIGKILL)
    serving = webui.start(
        str(checkout),
        str(run_dir),
        port,
        [sys.executable, "-c", HEALTH_SERVER],
        health_path="/health",
        timeout_s=30,
    )
    result = run(serving)
    deadline = time.monotonic() + 20
    while result.stdout.strip() != "running healthy" and "healthy" not in result.stdout:
        assert time.monotonic() < deadline, result
        result = run(serving)
    start = webui.read_start(ExecResult(result.returncode, result.stdout, result.stderr))
    assert start.healthy


def test_a_ui_that_never_answers_is_unhealthy_after_the_timeout(dirs: tuple[Path, Path]) -> None:
    checkout, run_dir = dirs
    argv = webui.start(
        str(checkout),
        str(run_dir),
        free_port(),
        ["sleep", "60"],
        health_path="/health",
        timeout_s=4,
    )
    assert run(argv).stdout.strip() == "started starting"
    deadline = time.monotonic() + 20
    result = run(argv)
    while result.returncode != webui.UNHEALTHY_CODE:
        assert time.monotonic() < deadline, result
        assert result.stdout.strip() == "running starting"
        result = run(argv)
    start = webui.read_start(ExecResult(result.returncode, result.stdout, result.stderr))
    assert start.started == webui.Started.UNHEALTHY


def test_health_settings() -> None:
    s = Settings()
    assert s.webui_health_path == "/health"
    assert s.webui_start_timeout.total_seconds() == 60
    assert Settings(webui_health_path="").webui_health_path == ""
    with pytest.raises(ValueError):
        Settings(webui_health_path="health")
    with pytest.raises(ValueError):
        Settings(webui_health_path="/a b")

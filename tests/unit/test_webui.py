"""The web UI scripts: constants run by sh, every value a positional argument."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from session_operator import webui


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20)


def _script_and_args(argv: list[str]) -> tuple[str, list[str]]:
    assert argv[:2] == ["sh", "-c"]
    assert argv[3] == "sh"  # $0
    return argv[2], argv[4:]


def test_scripts_are_constants_and_values_are_positional() -> None:
    checkout, run_dir = "/w/$(touch x); s1", "/w/.rdev/`id`"
    command = ["my-ui", "--flag", "$HOME", "a;b"]
    started = webui.start(checkout, run_dir, 3001, command)
    other = webui.start("/a", "/b", 1, ["c"])
    script, args = _script_and_args(started)
    assert script == _script_and_args(other)[0]
    assert args == [checkout, run_dir, "3001", *command]
    for value in [checkout, run_dir, *command]:
        assert value not in script
    for build in (webui.alive, webui.stop):
        script_a, args_a = _script_and_args(build(run_dir))
        assert script_a == _script_and_args(build("/other"))[0]
        assert args_a == [run_dir]
        assert run_dir not in script_a


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    # Names a shell would act on if any value were ever parsed as script text.
    checkout = tmp_path / "check out; touch pwned $(touch pwned2)"
    checkout.mkdir()
    run_dir = tmp_path / ".rdev" / "s1"
    yield checkout, run_dir
    pidfile = run_dir / "webui.pid"
    if pidfile.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_start_alive_stop_for_real(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    checkout, run_dir = dirs
    assert run(webui.alive(str(run_dir))).returncode != 0  # nothing started yet

    started = run(webui.start(str(checkout), str(run_dir), 4321, ["sleep", "30"]))
    assert started.returncode == webui.STARTED_EXIT_CODE, started.stderr
    assert started.stdout.strip() == "started"
    pidfile = run_dir / "webui.pid"
    pid = int(pidfile.read_text())
    assert pid_alive(pid)
    assert not (run_dir / "webui.pid.tmp").exists()
    assert Path(f"/proc/{pid}/cwd").resolve() == checkout.resolve()
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"PORT=4321" in env

    assert run(webui.alive(str(run_dir))).returncode == 0
    again = run(webui.start(str(checkout), str(run_dir), 4321, ["sleep", "30"]))
    assert again.returncode == 0 and again.stdout.strip() == "running"
    assert int(pidfile.read_text()) == pid  # no second process

    stopped = run(webui.stop(str(run_dir)))
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped"
    assert not pidfile.exists()
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)
    assert run(webui.alive(str(run_dir))).returncode != 0
    assert run(webui.stop(str(run_dir))).stdout.strip() == "stopped"  # idempotent
    assert not list(tmp_path.rglob("pwned*"))


def test_start_reports_a_command_that_exits_at_once(dirs: tuple[Path, Path]) -> None:
    checkout, run_dir = dirs
    result = run(
        webui.start(str(checkout), str(run_dir), 1, ["sh", "-c", "echo boom-$0 >&2; exit 1"])
    )
    assert result.returncode == webui.EXITED_AT_ONCE_CODE
    assert "exited at once" in result.stderr
    assert "boom-sh" in result.stderr  # the log's last lines


def test_stale_pid_file_is_replaced(dirs: tuple[Path, Path]) -> None:
    checkout, run_dir = dirs
    run_dir.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run_dir / "webui.pid").write_text(str(dead.pid))
    assert run(webui.alive(str(run_dir))).returncode != 0
    started = run(webui.start(str(checkout), str(run_dir), 1, ["sleep", "30"]))
    assert started.stdout.strip() == "started"
    assert int((run_dir / "webui.pid").read_text()) != dead.pid


def test_an_unreaped_exited_process_is_not_alive(dirs: tuple[Path, Path]) -> None:
    """A pod's PID 1 may never reap the orphaned web UI: its zombie must not count as alive."""
    checkout, run_dir = dirs
    run_dir.mkdir(parents=True)
    zombie = subprocess.Popen(["true"])  # not waited for: stays a zombie of this process
    try:
        deadline = time.monotonic() + 5
        while pid_alive(zombie.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        (run_dir / "webui.pid").write_text(str(zombie.pid))
        assert run(webui.alive(str(run_dir))).returncode != 0
        started = time.monotonic()
        assert run(webui.stop(str(run_dir))).stdout.strip() == "stopped"
        assert time.monotonic() - started < 2  # no wait for a process that is gone
        assert not (run_dir / "webui.pid").exists()
        (run_dir / "webui.pid").write_text(str(zombie.pid))
        again = run(webui.start(str(checkout), str(run_dir), 1, ["sleep", "30"]))
        assert again.stdout.strip() == "started"
    finally:
        zombie.wait()

"""The web UI scripts: constants run by sh, every value a positional argument."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rdev_api import names
from rdev_api.execresult import ExecResult
from session_operator import gitcmd, webui


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
    seeds = [
        webui.project_key(checkout),
        webui.project_config(checkout),
        webui.project_seed(checkout),
    ]
    log = f"{run_dir}/webui.log"
    assert args == [checkout, run_dir, log, "3001", "", "60", *seeds, *command]
    for value in [checkout, run_dir, log, *command, *seeds]:
        assert value not in script
    script_s, args_s = _script_and_args(webui.stop(run_dir, 2.5))
    assert script_s == _script_and_args(webui.stop("/other", 30))[0]
    assert args_s == [run_dir, "25"]  # the grace in tenths of a second
    assert run_dir not in script_s


def test_stop_exec_outlasts_the_grace() -> None:
    assert webui.stop_timeout_s(30, 60) > 30
    assert webui.stop(".", 0.05)[-1] == "1"  # never rounded down to no grace


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


def test_start_stop_for_real(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    checkout, run_dir = dirs
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

    again = run(webui.start(str(checkout), str(run_dir), 4321, ["sleep", "30"]))
    assert again.returncode == 0 and again.stdout.strip() == "running"
    assert int(pidfile.read_text()) == pid  # no second process

    stopped = run(webui.stop(str(run_dir), 5))
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped"
    assert not pidfile.exists()
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)
    assert run(webui.stop(str(run_dir), 5)).stdout.strip() == "stopped"  # idempotent
    assert not list(tmp_path.rglob("pwned*"))


def test_start_reports_a_command_that_exits_at_once(dirs: tuple[Path, Path]) -> None:
    """Without a line of its log: that may hold the UI's token; the log file keeps it."""
    checkout, run_dir = dirs
    command = ["sh", "-c", "echo token=ghp_SECRET123 >&2; printf '\\033[31mred\\n'; exit 1"]
    result = run(webui.start(str(checkout), str(run_dir), 1, command))
    assert result.returncode == webui.EXITED_AT_ONCE_CODE
    assert "SECRET" not in result.stdout + result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    assert "token=ghp_SECRET123" in (run_dir / "webui.log").read_text()
    started = webui.read_start(ExecResult(result.returncode, result.stdout, result.stderr))
    assert started == webui.Start(webui.Started.FAILED, detail="")


UI_SAVING_ON_TERM = """
import pathlib, signal, sys, time
def save(*_):
    time.sleep(float(sys.argv[2]))
    pathlib.Path(sys.argv[1]).write_text("saved")
    sys.exit(0)
signal.signal(signal.SIGTERM, save)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def start_python_ui(checkout: Path, run_dir: Path, code: str, *args: str) -> int:
    argv = webui.start(str(checkout), str(run_dir), 1, [sys.executable, "-c", code, *args])
    assert run(argv).stdout.strip() == "started"
    wait_for_log(run_dir, "ready")  # its TERM handler is in place
    return int((run_dir / "webui.pid").read_text())


def wait_for_log(run_dir: Path, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in (run_dir / "webui.log").read_text():
        assert time.monotonic() < deadline, f"{text!r} never in the web UI log"
        time.sleep(0.05)


def test_stop_waits_for_the_ui_to_save_and_returns_once_it_exited(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    checkout, run_dir = dirs
    saved = tmp_path / "saved"
    pid = start_python_ui(checkout, run_dir, UI_SAVING_ON_TERM, str(saved), "1.5")
    began = time.monotonic()
    stopped = run(webui.stop(str(run_dir), 15))
    took = time.monotonic() - began
    assert stopped.stdout.strip() == "stopped"
    assert saved.read_text() == "saved"  # not killed while saving
    assert not pid_alive(pid)
    assert 1.5 <= took < 10  # as soon as it exited, not the whole grace


def test_stop_kills_a_ui_that_ignores_term_after_the_grace(dirs: tuple[Path, Path]) -> None:
    checkout, run_dir = dirs
    code = UI_SAVING_ON_TERM.replace(
        "signal.signal(signal.SIGTERM, save)", "signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    )
    pid = start_python_ui(checkout, run_dir, code, "unused", "0")
    began = time.monotonic()
    stopped = run(webui.stop(str(run_dir), 1))
    took = time.monotonic() - began
    assert stopped.stdout.strip() == "stopped"
    assert not pid_alive(pid)
    assert not (run_dir / "webui.pid").exists()
    assert took >= 1.0  # TERM was given its grace first


def test_stale_pid_file_is_replaced(dirs: tuple[Path, Path]) -> None:
    checkout, run_dir = dirs
    run_dir.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run_dir / "webui.pid").write_text(str(dead.pid))
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
        started = time.monotonic()
        assert run(webui.stop(str(run_dir), 5)).stdout.strip() == "stopped"
        assert time.monotonic() - started < 2  # no wait for a process that is gone
        assert not (run_dir / "webui.pid").exists()
        (run_dir / "webui.pid").write_text(str(zombie.pid))
        again = run(webui.start(str(checkout), str(run_dir), 1, ["sleep", "30"]))
        assert again.stdout.strip() == "started"
    finally:
        zombie.wait()


def test_the_log_file_is_named_in_one_place(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start script writes, and the activity mark reads, the log that ``names`` names."""
    for script in (webui._START, gitcmd.CHANGES_SCRIPT):
        assert names.WEBUI_LOG not in script
    monkeypatch.setattr(names, "WEBUI_LOG", "elsewhere.txt")
    checkout, run_dir = dirs
    command = ["sh", "-c", "echo listening; exec sleep 30"]
    started = run(webui.start(str(checkout), str(run_dir), 1, command))
    assert started.stdout.strip() == "started", started.stderr
    log = run_dir / "elsewhere.txt"
    deadline = time.monotonic() + 5
    while "listening" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.read_text() == "listening\n"
    assert not (run_dir / "webui.log").exists()
    assert gitcmd.changes(str(checkout), str(run_dir))[-1] == str(log)
    assert run(webui.stop(str(run_dir), 5)).stdout.strip() == "stopped"

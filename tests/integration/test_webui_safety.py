"""The web UI is stopped gently, retried with backoff, and its log never leaks.

Each test points RDEV_WEBUI_COMMAND at a small script; kwok runs the project
pod's exec on this machine, so the script's files are visible to the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client

from kubehelpers import (
    GROUP,
    PLURAL,
    VERSION,
    create_project_pod,
    create_session,
    get_session,
    patch_session,
    process_alive,
    session_gone,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)

PLUGIN = Path(sys.executable).parent / "kubectl-session"
TOKEN = "ghp_SECRET123"
ESCAPE = "\x1b"


def test_crash_looping_web_ui_backs_off_and_leaks_no_log_lines(
    api, kubeconfig, namespace, repo, operator_factory, tmp_path: Path
) -> None:
    starts = tmp_path / "starts"
    crashing = tmp_path / "crashing-ui.sh"
    crashing.write_text(
        f"echo start >>'{starts}'\n"
        f"echo 'token={TOKEN}'\n"
        "printf '\\033[31mlistening on http://127.0.0.1:3001/?token=%s\\n' "
        f"'{TOKEN}' >&2\n"
        "exit 1\n"
    )
    operator_factory(RDEV_WEBUI_COMMAND=f"sh {crashing}", RDEV_RETRY_INTERVAL="1s")
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a", webUI=True))
    began = time.monotonic()

    def count() -> int:
        return len(starts.read_text().splitlines()) if starts.exists() else 0

    s = wait_condition(api, namespace, "s", "WebUIReady", "False", "WebUIFailed", timeout=90)
    assert s["status"]["webUI"] == "Failed"
    assert "kubectl session logs s" in str(s["status"]["conditions"])
    # Watch 60 s from creation; with a 1 s retry interval and no backoff it would
    # start about 50 times, with the doubling backoff 6 or 7.
    wait_for(
        lambda: count() > 10 or time.monotonic() - began >= 60,
        timeout=75,
        interval=0.5,
        what="60 s of a crash-looping web UI",
    )
    assert 3 <= count() <= 10, f"{count()} starts in 60 s"

    # One Event object counted up, not one per start.
    core = client.CoreV1Api(api)
    events = core.list_namespaced_event(namespace).items
    failed = [e for e in events if e.reason == "WebUIFailed"]
    assert len(failed) == 1, [(e.metadata.name, e.message) for e in failed]
    assert (failed[0].count or 1) >= 2
    assert "kubectl session logs s" in failed[0].message

    # Nothing of its log anywhere a person or a log collector reads.
    everything = json.dumps([api.sanitize_for_serialization(e) for e in events])
    everything += json.dumps(get_session(api, namespace, "s"))
    described = subprocess.run(
        [str(PLUGIN), "describe", "s", "-n", namespace],
        env={**os.environ, "KUBECONFIG": kubeconfig},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    everything += described.stdout + described.stderr
    assert "WebUIFailed" in described.stdout
    assert TOKEN not in everything
    assert ESCAPE not in everything and "\\u001b" not in everything
    assert TOKEN in (repo["sessions"] / ".rdev" / "s" / "webui.log").read_text()  # kept there


# A web UI that saves its work when told to stop, for longer than the old 5 s.
SAVING_UI = """
import pathlib, signal, sys, time
def save(*_):
    pathlib.Path(sys.argv[1]).write_text(str(time.time()))
    time.sleep(float(sys.argv[2]))
    pathlib.Path(sys.argv[1] + ".saved").write_text("saved")
    sys.exit(0)
signal.signal(signal.SIGTERM, save)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def _ui_pid(repo: dict[str, Path], name: str) -> int:
    pidfile = repo["sessions"] / ".rdev" / name / "webui.pid"
    return int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=30))


def _saving_ui_ready(api, namespace: str, repo: dict[str, Path]) -> int:
    """A Session whose web UI has set up its TERM handler; the UI's pid."""
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a", webUI=True))
    wait_condition(api, namespace, "s", "WebUIReady", "True", "Running", timeout=90)
    pid = _ui_pid(repo, "s")
    log = repo["sessions"] / ".rdev" / "s" / "webui.log"
    wait_for(lambda: "ready" in log.read_text(), timeout=30, what="the UI's TERM handler")
    return pid


def test_checkin_gives_the_web_ui_its_grace_to_save(
    api, namespace, repo, operator_factory, tmp_path: Path
) -> None:
    ui = tmp_path / "saving_ui.py"
    ui.write_text(SAVING_UI)
    marker = tmp_path / "term"
    operator_factory(RDEV_WEBUI_COMMAND=f"{sys.executable} {ui} {marker} 7")
    pid = _saving_ui_ready(api, namespace, repo)

    patch_session(api, namespace, "s", {"checkin": {"skipReview": True}})
    s = wait_phase(api, namespace, "s", "Ended", timeout=90)
    assert Path(f"{marker}.saved").read_text() == "saved"  # it was not SIGKILLed mid-save
    assert not process_alive(pid)
    assert s["status"]["webUI"] == "Stopped"


def test_delete_kills_a_web_ui_that_ignores_term_after_the_grace(
    api, namespace, repo, operator_factory, tmp_path: Path
) -> None:
    ui = tmp_path / "stubborn_ui.py"
    # Its TERM handler notes the time and carries on.
    ui.write_text(
        SAVING_UI.replace(
            "signal.signal(signal.SIGTERM, save)",
            "signal.signal(signal.SIGTERM, lambda *_: pathlib.Path(sys.argv[1]).write_text("
            "str(time.time())))",
        )
    )
    marker = tmp_path / "term"
    operator_factory(
        RDEV_WEBUI_COMMAND=f"{sys.executable} {ui} {marker} 0", RDEV_WEBUI_STOP_GRACE="2s"
    )
    pid = _saving_ui_ready(api, namespace, repo)

    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "s"
    )
    wait_for(lambda: not process_alive(pid), timeout=60, interval=0.05, what="UI killed")
    gone_at = time.time()
    wait_for(lambda: session_gone(api, namespace, "s"), timeout=60, what="session gone")
    term_at = float(marker.read_text())  # TERM came first
    assert gone_at - term_at >= 1.8  # and the grace was given before the KILL

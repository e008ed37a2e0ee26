"""The noisy tenant: Sessions whose git remote hangs in one namespace do not delay another's.

25 Sessions in namespace A, each on its own project whose ``origin`` never answers
(git's ``ext::`` transport running ``sleep``), hold every worker the queue lets one
namespace have; a new Session in namespace B must still reach Ready at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from kubehelpers import (
    create_project_pod,
    create_session,
    exec_output,
    git,
    make_repo,
    pod_ready,
    scratch_namespace,
    session_manifest,
    wait_condition,
    wait_for,
)

NOISY = 25  # more than the 16 workers one namespace may use
WORKERS = 16
EXEC_TIMEOUT_S = 25
HANG = "ext::sh -c sleep% 300"  # git-remote-ext: "% " is a literal space


@pytest.fixture
def other_namespace(api: client.ApiClient) -> Iterator[str]:
    with scratch_namespace(api) as name:
        yield name


def processes_under(root: Path) -> dict[int, list[str]]:
    """Processes on this machine working inside ``root`` (git, its ext helper, sleep)."""
    found: dict[int, list[str]] = {}
    prefix = str(root.resolve()) + os.sep
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (cwd + os.sep).startswith(prefix) and argv and argv[0]:
            found[int(entry.name)] = [a.decode(errors="replace") for a in argv if a]
    return found


def hanging_fetches(root: Path) -> int:
    return sum(1 for argv in processes_under(root).values() if argv[0] == "sleep")


def kill_all_under(root: Path) -> None:
    """Kill what the test's execs left, until nothing new has appeared for a second."""
    quiet_since = time.monotonic()
    deadline = quiet_since + 30
    while time.monotonic() - quiet_since < 1.0:
        assert time.monotonic() < deadline, f"processes keep appearing in {root}"
        found = processes_under(root)
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if found:
            quiet_since = time.monotonic()
        time.sleep(0.1)


def noisy_repos(base: Path, count: int) -> list[dict[str, Path]]:
    """One repository per project, cloned from one seed, whose origin hangs on fetch."""
    seed = make_repo(base / "seed")
    repos = []
    for i in range(count):
        repo = base / f"p{i}" / "repo"
        sessions = base / f"p{i}" / "sessions"
        sessions.mkdir(parents=True)
        subprocess.run(
            ["git", "clone", "-q", "--local", str(seed["repo"]), str(repo)], check=True, timeout=60
        )
        git("config", "protocol.ext.allow", "always", cwd=repo)
        git("remote", "set-url", "origin", HANG, cwd=repo)
        repos.append({"repo": repo, "sessions": sessions})
    return repos


def test_a_noisy_namespace_does_not_delay_another_namespaces_new_session(
    api, namespace, other_namespace, repo, operator_factory, tmp_path
):
    noisy_root = tmp_path / "noisy"
    repos = noisy_repos(noisy_root, NOISY)
    # The hang is real: a fetch from such an origin does not return.
    probe = subprocess.Popen(["git", "fetch", "-q", "origin"], cwd=repos[0]["repo"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            probe.wait(timeout=2)
    finally:
        probe.kill()
        probe.wait()
    kill_all_under(noisy_root)
    op = None
    try:
        for i, made in enumerate(repos):
            create_project_pod(api, namespace, f"p{i}", made, name=f"p{i}", wait=False)
        create_project_pod(api, other_namespace, "shop", repo, name="shop")
        for i, made in enumerate(repos):
            workdir = str(made["repo"].resolve())
            wait_for(lambda i=i: pod_ready(api, namespace, f"p{i}"), timeout=60, what=f"p{i}")
            wait_for(
                lambda i=i, workdir=workdir: (
                    exec_output(api, namespace, f"p{i}", ["pwd", "-P"]).strip() == workdir
                ),
                timeout=30,
                what=f"exec into p{i}",
            )

        op = operator_factory(
            RDEV_NAMESPACES=f"{namespace},{other_namespace}",
            RDEV_WORKERS=str(WORKERS),
            RDEV_EXEC_TIMEOUT=f"{EXEC_TIMEOUT_S}s",
        )
        started = time.monotonic()
        for i in range(NOISY):
            create_session(api, namespace, session_manifest(f"a{i}", f"p{i}", branch="feature-a"))
        # Namespace A holds every worker it may have, each waiting on a fetch that hangs.
        wait_for(
            lambda: hanging_fetches(noisy_root) >= WORKERS,
            timeout=EXEC_TIMEOUT_S - 10,
            interval=0.2,
            what=f"{WORKERS} hanging fetches in namespace A",
        )

        created = time.monotonic()
        create_session(api, other_namespace, session_manifest("b", "shop", branch="feature-a"))
        wait_condition(api, other_namespace, "b", "Ready", timeout=15)
        took = time.monotonic() - created
        print(f"namespace B's Session Ready after {took:.1f}s")
        assert took < 15, f"namespace B waited {took:.1f}s"
        # ... and A's fetches were still hanging all that time (none had timed out yet).
        assert time.monotonic() - started < EXEC_TIMEOUT_S
        assert hanging_fetches(noisy_root) >= WORKERS

        # No git process of these repositories outlives its exec's deadline once the
        # operator is gone (the in-pod timeout ends it, not only the operator's side).
        op.stop()
        deadline = time.monotonic() + EXEC_TIMEOUT_S + 15
        while processes_under(noisy_root) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = sorted(" ".join(argv)[:60] for argv in processes_under(noisy_root).values())
        assert not left, f"{len(left)} processes outlived their exec's deadline: {left[:6]}"
    finally:
        if op is not None:
            op.stop()  # no new execs after this
        kill_all_under(noisy_root)

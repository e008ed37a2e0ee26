"""A huge worktree costs the shared operator a few bytes: counts are made in the pod."""

from __future__ import annotations

import os
from pathlib import Path

from kubehelpers import (
    create_project_pod,
    create_session,
    session_manifest,
    wait_condition,
    wait_for,
)

FILES = 200_000


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_two_hundred_thousand_untracked_files(api, namespace, repo, operator_factory):
    op = operator_factory(RDEV_CHANGES_INTERVAL="2s")
    assert op.proc is not None
    create_project_pod(api, namespace, "shop", repo)
    create_session(api, namespace, session_manifest("s", "shop", branch="feature-a"))
    s = wait_condition(api, namespace, "s", "Ready")
    path = Path(s["status"]["checkoutPath"])
    wait_for(
        lambda: wait_condition(api, namespace, "s", "Ready")["status"].get("changes"),
        timeout=30,
        what="a first workspace reading",
    )
    before = _rss_kb(op.proc.pid)
    (path / "README.md").write_text("edited\n")  # first: a reading that sees all files sees it
    bulk = path / "node_modules_not_ignored"
    bulk.mkdir()
    for i in range(FILES // 1000):
        folder = bulk / f"d{i:03d}"
        folder.mkdir()
        for j in range(1000):
            fd = os.open(folder / f"f{j:03d}", os.O_CREAT | os.O_WRONLY, 0o644)
            os.close(fd)

    def counted() -> dict[str, int] | None:
        changes = wait_condition(api, namespace, "s", "Ready")["status"].get("changes") or {}
        return changes if changes.get("untrackedFiles") == FILES else None

    changes = wait_for(counted, timeout=180, interval=1, what=f"{FILES} untracked files counted")
    assert changes["uncommittedFiles"] == 1 and changes["unpushedCommits"] == 0
    after = _rss_kb(op.proc.pid)
    assert after - before < 20 * 1024, f"operator RSS grew {after - before} KB"
    s = wait_condition(api, namespace, "s", "Ready")
    assert s["status"]["phase"] == "Active"

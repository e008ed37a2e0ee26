"""The operator's own watches on the real API server: one per collection and namespace."""

from __future__ import annotations

import contextlib

from kubehelpers import (
    create_project_pod,
    create_session,
    scratch_namespace,
    session_manifest,
    wait_condition,
)

# One worker (and its reserve): the request pool holds max(2 + 8, 4) = 10 connections,
# fewer than the 15 watches of five namespaces (Sessions, pods and Services in each).
WORKERS = 1
NAMESPACES = 5


def test_watches_of_many_namespaces_leave_connections_for_requests(api, repo, operator_factory):
    with contextlib.ExitStack() as stack:
        spaces = [stack.enter_context(scratch_namespace(api)) for _ in range(NAMESPACES)]
        operator_factory(RDEV_NAMESPACES=",".join(spaces), RDEV_WORKERS=str(WORKERS))
        # The first namespace's watches start first, the last's wait longest for a slot.
        for i, ns in enumerate((spaces[0], spaces[-1])):
            # One repository for both pods: a worktree and a branch each.
            create_project_pod(api, ns, f"p{i}", repo)
            create_session(api, ns, session_manifest(f"s{i}", f"p{i}", newBranch=f"many/{i}"))
        for i, ns in enumerate((spaces[0], spaces[-1])):
            wait_condition(api, ns, f"s{i}", "Ready", timeout=60)

"""The operator's own watches on the real API server: one per collection and namespace."""

from __future__ import annotations

import asyncio
import contextlib

from kubernetes import client

from kubehelpers import (
    create_project_pod,
    create_session,
    scratch_namespace,
    session_manifest,
    wait_condition,
)
from rdev_api.names import PROJECT_LABEL
from session_operator.kube import LIST_PAGE, Kube, Page, login

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


def test_a_list_longer_than_a_page_is_read_whole_page_by_page(api, namespace, kubeconfig):
    """Start-up reads a collection in pages of LIST_PAGE (each page's memory goes before
    the next is read), following the server's continue token to the end."""
    count = 2 * LIST_PAGE + 7
    core = client.CoreV1Api(api)
    for i in range(count):
        core.create_namespaced_pod(
            namespace,
            {
                "metadata": {"name": f"p{i}", "labels": {PROJECT_LABEL: f"p{i}"}},
                "spec": {"containers": [{"name": "dev", "image": "project:dev"}]},
            },
        )
    pages = asyncio.run(_pages(namespace))
    assert [len(page.items) for page in pages] == [LIST_PAGE, LIST_PAGE, 7]
    names = [item["metadata"]["name"] for page in pages for item in page.items]
    assert sorted(names) == sorted(f"p{i}" for i in range(count))
    # One snapshot: every page carries the first page's resourceVersion.
    assert len({page.version for page in pages}) == 1 and pages[0].version


async def _pages(namespace: str) -> list[Page]:
    kube = Kube(login(), pool_size=2)
    try:
        return [page async for page in kube.list_pods(namespace, PROJECT_LABEL)]
    finally:
        await kube.close()

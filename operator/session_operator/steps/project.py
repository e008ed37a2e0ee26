"""Find the project's pod, and mark it as this session's (the preview Service selects it).

A session whose worktree is on a pod stays on that pod by name for good: its
uncommitted work is there. While the pod is not Ready, terminating or absent,
the session waits (keeping its phase and its turn on the project); after
RDEV_POD_GONE_GRACE without the pod it stalls for a person. It never checks out
again elsewhere by itself.
"""

from __future__ import annotations

import asyncio

from rdev_api import Body, names
from rdev_api.reasons import Reason

from .. import builders
from ..context import Ctx, Env, Halt, PodTarget
from ..turns import choose_pod, pod_ready


def placed_on(ctx: Ctx) -> str | None:
    """The pod this session's worktree is on, if it has one.

    A session still provisioning has no work anywhere yet (no one could use it),
    so it may go on on another pod if its pod goes away mid-checkout.
    """
    status = ctx.status
    return status.pod_name if status.pod_name and status.checkout_path else None


def _wait_for_pod(ctx: Ctx, env: Env, name: str) -> Body:
    """The session's own pod once Ready; until then, wait (or stall once it is long gone)."""
    pod = env.store.pods.get((ctx.namespace, name))
    where = ctx.status.checkout_path or "its worktree"
    if pod is not None:
        env.pod_absent_since.pop(ctx.key, None)
        if pod_ready(pod):
            return pod
        raise Halt(
            Reason.PROJECT_POD_NOT_READY,
            f"project pod {name} is not Ready; the session waits for it, where its work is"
            f" ({where})",
        )
    now = asyncio.get_running_loop().time()
    since = env.pod_absent_since.setdefault(ctx.key, now)
    grace = env.settings.pod_gone_grace.total_seconds()
    if now - since < grace:
        ctx.due_in(grace - (now - since))
        raise Halt(
            Reason.PROJECT_POD_NOT_READY,
            f"project pod {name} is absent; the session waits for it to come back, where its"
            f" work is ({where})",
        )
    raise Halt(
        Reason.PROJECT_POD_GONE,
        f"project pod {name} is gone; the session's work was at {where} on it. The session"
        " never moves to another pod: delete it and create a new Session to start again",
    )


def choose_target(ctx: Ctx, env: Env) -> None:
    """Pick the pod (the session's own once placed) and the container and paths in it; or wait."""
    own = placed_on(ctx)
    if own is not None:
        pod: Body | None = _wait_for_pod(ctx, env, own)
    else:
        pods = env.store.pods.by_project(ctx.namespace, ctx.spec.project)
        pod, waiting = choose_pod(pods, ctx.status.pod_name)
    if pod is None:
        message = (
            f"no pod labelled rdev.io/project={ctx.spec.project} in namespace {ctx.namespace}"
            if waiting == Reason.PROJECT_NOT_FOUND
            else f"no pod of project {ctx.spec.project} is Running and Ready"
        )
        raise Halt(waiting or Reason.PROJECT_NOT_RUNNING, message)
    name = pod["metadata"]["name"]
    container = builders.pick_container(pod, ctx.spec.container)
    if container is None:
        have = ", ".join(c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or [])
        raise Halt(
            Reason.CONTAINER_NOT_FOUND,
            f"pod {name} has no container {ctx.spec.container} (it has: {have or 'none'})",
        )
    repo, root = builders.pod_paths(pod, env.settings.repo_path, env.settings.worktree_root)
    ctx.target = PodTarget(
        pod=pod,
        name=name,
        container=container,
        repo=repo,
        root=root,
        path=ctx.status.checkout_path or names.checkout_path(root, ctx.name),
        run_dir=names.run_dir(root, ctx.name),
    )


async def ensure_pod_label(ctx: Ctx, env: Env) -> None:
    """Label the pod ``rdev.io/session=<session>``: the preview Service's selector."""
    target = ctx.target
    assert target is not None
    meta = target.pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(names.SESSION_LABEL) == ctx.name:
        return
    ctx.step("label the project pod")
    await set_session_label(env, ctx.namespace, target.pod, ctx.name)


async def set_session_label(env: Env, namespace: str, pod: Body, session: str | None) -> None:
    """Set (or, with None, remove) the pod's session label, store first.

    The store takes the new label before the patch is sent: the watch event of
    the write may arrive before its response, and must find the store already
    knowing it (mappers.map_pod then wakes nobody). A failed patch puts the
    store back; a 404 drops the pod, as its DELETED event will.
    """
    meta = pod.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != names.SESSION_LABEL}
    if session is not None:
        labels[names.SESSION_LABEL] = session
    env.store.pods.put({**pod, "metadata": {**meta, "labels": labels}})
    try:
        found = await env.kube.patch_pod(
            namespace, meta["name"], builders.pod_session_label_patch(session)
        )
    except BaseException:
        env.store.pods.put(pod)
        raise
    if not found:
        env.store.pods.remove((namespace, meta["name"]))  # 404: the pod is gone

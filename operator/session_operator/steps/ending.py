"""How a session ends, from the rule to the step: checkin, expiry, idle stop and deletion.

``end_reason`` is the rule (which of them applies now), ``end_session`` the step
that ends it, ``remove_worktree`` what deletion adds. Activity itself is read
with the workspace state (workspace.py); the idle deadline is rdev_api's.

Ending revokes the session's credential (steps/credential.py) before anything
else, so no one holding it acts on the session while it ends.

Nothing is ever lost: ending keeps the worktree and its branch, with a Warning
naming what it holds; the finalizer removes the worktree only when it holds
nothing (gitcmd's assess: no uncommitted, untracked or ignored files, no hidden
edits, no stashes, no unpushed commits), and otherwise leaves it with a Warning.
"""

from __future__ import annotations

from datetime import datetime

from rdev_api import names, timing
from rdev_api.conditions import CHECKOUT_READY, PREVIEW_READY, WEBUI_READY
from rdev_api.execresult import ExecError
from rdev_api.models import Phase, Review, WebUIState
from rdev_api.reasons import END_MESSAGES, Reason

from .. import builders, gitcmd
from ..context import Ctx, Env, PodTarget, flush, parse_ts
from ..gitcmd import Push, Removal
from ..turns import HOLDING_PHASES, pod_ready
from .checkout import record_changes
from .credential import revoke_credential
from .preview import remove_preview
from .project import set_session_label
from .webui import stop_process


def expires_in_s(ctx: Ctx) -> float:
    created = created_at(ctx)
    return ((created + ctx.spec.expires_after) - ctx.now).total_seconds()


def idle_deadline(ctx: Ctx) -> datetime | None:
    return timing.idle_deadline(ctx.status.last_activity_at, ctx.spec.idle_timeout)


def idle_now(ctx: Ctx) -> bool:
    """Idle for idleTimeout, judged by a reading in this reconcile, at or after the
    deadline, compared with an earlier one (a baseline alone proves nothing)."""
    deadline = idle_deadline(ctx)
    return deadline is not None and ctx.activity_judged and ctx.now >= deadline


def end_reason(ctx: Ctx, *, deleting: bool = False) -> str | None:
    """Why the session ends now, if it does: checkin wins over expiry over idleness
    (known only once this reconcile has read the workspace) over deletion."""
    if ctx.spec.checkin is not None:
        return Reason.CHECKED_IN
    if expires_in_s(ctx) <= 0:
        return Reason.EXPIRED
    if idle_now(ctx):
        return Reason.IDLE_TIMEOUT
    return Reason.DELETED if deleting else None


def created_at(ctx: Ctx) -> datetime:
    return parse_ts(ctx.body["metadata"].get("creationTimestamp")) or ctx.now


def _last_target(ctx: Ctx, env: Env) -> PodTarget | None:
    """The pod the session ran on, if it is still there and ready."""
    status = ctx.status
    if not status.pod_name or not status.checkout_path:
        return None
    pod = env.store.pods.get((ctx.namespace, status.pod_name))
    if pod is None or not pod_ready(pod):
        return None
    repo, root = builders.pod_paths(pod, env.settings.repo_path, env.settings.worktree_root)
    return PodTarget(
        pod=pod,
        name=status.pod_name,
        container=status.container or "",
        repo=repo,
        root=root,
        path=status.checkout_path,
        run_dir=names.run_dir(root, ctx.name),
    )


async def end_session(ctx: Ctx, env: Env, reason: str) -> None:
    """Revoke the credential, stop the web UI, drop the Service and the pod label; keep the
    worktree and branch."""
    status = ctx.status
    # First, before anything touches the worktree: whoever holds the credential loses it now.
    await revoke_credential(ctx, env)
    web_ui_up = status.web_ui not in (None, WebUIState.STOPPED)
    if status.phase != Phase.ENDING and status.phase in HOLDING_PHASES and web_ui_up:
        # Stopping the web UI is the slow part: say so while it happens.
        ctx.summary(Reason.ENDING, "ending the session")
        await flush(ctx, env)
    ctx.target = _last_target(ctx, env)
    if ctx.target is None:
        if reason != Reason.DELETED:
            _kept_unreachable(ctx)
    else:
        try:
            if web_ui_up:
                # First: a web UI that saves on SIGTERM writes into the worktree.
                await stop_process(ctx, env)
            if reason != Reason.DELETED:  # deletion reads the worktree as it removes it
                push = reason == Reason.CHECKED_IN and push_due(ctx, env)
                await settle_worktree(ctx, env, status.branch if push else None)
        except ExecError as exc:
            if not exc.pod_gone:
                raise
    await remove_preview(ctx, env)
    await _unlabel_pod(ctx, env)
    if reason == Reason.CHECKED_IN and review_requested(ctx):
        checkin = ctx.spec.checkin
        assert checkin is not None
        review = status.review or Review(requested=True, auto_merge=checkin.auto_merge)
        status.review = review.model_copy(update={"requested": True})
    status.expires_soon = None
    status.web_ui = WebUIState.STOPPED if status.web_ui is not None else None
    status.service_name = None
    status.service_port = None
    status.preview_url = None
    status.clone_url = None
    status.provisioning_since = None
    status.provisioning_step = None
    status.ended_at = status.ended_at or ctx.stamp
    ctx.summary(reason, END_MESSAGES[reason])
    if status.condition(PREVIEW_READY) is not None:
        ctx.cond(PREVIEW_READY, False, reason, "the preview Service was removed")
    if status.condition(WEBUI_READY) is not None:
        ctx.cond(WEBUI_READY, False, reason, "the web UI was stopped")
    env.webui_checked.pop(ctx.key, None)


def review_requested(ctx: Ctx) -> bool:
    checkin = ctx.spec.checkin
    return checkin is not None and not checkin.skip_review


def push_due(ctx: Ctx, env: Env) -> bool:
    """Review requested, pushing on, and no earlier attempt decided it."""
    status = ctx.status
    if not env.settings.push_on_checkin or not review_requested(ctx) or not status.branch:
        return False
    return status.review is None or status.review.pushed is None


def _record_push(ctx: Ctx, pushed: Push) -> None:
    """The review request's push: ``review.pushed`` says how it went, a Warning why not.

    A failed push ends the session all the same; the worktree keeps everything.
    """
    status = ctx.status
    assert ctx.spec.checkin is not None and status.branch
    status.review = Review(
        requested=True,
        auto_merge=ctx.spec.checkin.auto_merge,
        pushed=pushed.pushed,
        commit=pushed.commit,
        branch=status.branch,
    )
    if pushed.pushed:
        ctx.event(
            "Normal", Reason.BRANCH_PUSHED, f"branch {status.branch} pushed to origin for review"
        )
    else:
        ctx.event(
            "Warning",
            Reason.PUSH_FAILED,
            f"branch {status.branch} was not pushed for review: {pushed.detail}",
        )


async def _unlabel_pod(ctx: Ctx, env: Env) -> None:
    if not ctx.status.pod_name:
        return
    pod = env.store.pods.get((ctx.namespace, ctx.status.pod_name))
    if pod is None:
        return
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(names.SESSION_LABEL) != ctx.name:
        return
    await set_session_label(env, ctx.namespace, pod, None)


def _kept_unreachable(ctx: Ctx) -> None:
    status = ctx.status
    if status.checkout_path and status.pod_name:
        ctx.event(
            "Warning",
            Reason.WORKTREE_KEPT,
            f"project pod {status.pod_name} is not running; the worktree at"
            f" {status.checkout_path} was left in place",
        )


async def remove_worktree(ctx: Ctx, env: Env) -> None:
    """At deletion of an ended Session: look at a kept worktree again.

    Raises ExecError for a transient failure; the finalizer bounds the retries
    so that a vanished pod can never hold it forever.
    """
    if not ctx.status.checkout_path or not ctx.status.pod_name:
        return
    ctx.target = _last_target(ctx, env)
    if ctx.target is None:
        _kept_unreachable(ctx)
        return
    # A deletion may wait for its project (another Session's exec), one exec at most.
    await settle_worktree(ctx, env, remove=True, wait_s=env.settings.exec_timeout.total_seconds())


async def settle_worktree(
    ctx: Ctx,
    env: Env,
    push_branch: str | None = None,
    *,
    remove: bool = False,
    wait_s: float | None = None,
) -> None:
    """Push for review when asked, read what the worktree holds, and with ``remove``
    remove it when it holds nothing: one exec, and WorktreeKept when it holds work.

    ``wait_s``: with ``remove``, wait that long for the project's lock (the finalizer);
    None: a worker, which never waits (LockBusy requeues its key).
    """
    status, target = ctx.status, ctx.target
    assert target is not None
    if not status.checkout_path:
        return
    argv = gitcmd.end(target.repo, target.path, target.run_dir, push_branch, remove=remove)
    if remove:  # `git worktree remove` changes the repository: one at a time per project
        project = (ctx.namespace, ctx.spec.project)
        locks = env.project_locks
        lock = locks.try_acquire(project) if wait_s is None else locks.acquire(project, wait_s)
        async with lock:
            result = await env.run(ctx, argv, "remove")
    else:
        result = await env.run(ctx, argv, "push" if push_branch else "end")
    pushed, removed = gitcmd.read_end(result)
    if pushed is not None:
        _record_push(ctx, pushed)
    if removed.removal == Removal.FAILED:
        raise ExecError(f"could not read the worktree's state: {removed.detail}")
    if removed.held is not None:
        record_changes(ctx, removed.held.counts)
    path = status.checkout_path
    if removed.removal == Removal.UNTOUCHED:
        return
    if removed.removal == Removal.KEPT:
        held = removed.held.describe() if removed.held is not None else "work"
        ctx.event("Warning", Reason.WORKTREE_KEPT, f"worktree {path} kept: it holds {held}")
        return
    if removed.removal == Removal.REFUSED:
        ctx.event(
            "Warning", Reason.WORKTREE_KEPT, f"git refused to remove {path}: {removed.detail}"
        )
        return
    if removed.removal == Removal.REMOVED:
        ctx.event("Normal", Reason.WORKTREE_REMOVED, f"worktree {path} removed: it held no work")
    status.checkout_path = None
    ctx.cond(
        CHECKOUT_READY, False, Reason.WORKTREE_REMOVED, "the worktree held no work and was removed"
    )

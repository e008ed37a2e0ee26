"""Take the project's turn and check the branch out as a worktree.

A Session decides whether it may hold the project before any exec: one waiting
for its turn costs nothing in the pod (no fetch against a slow remote). With
the turn, the precheck (fetch, does the branch exist) runs first, so a Session
that cannot proceed stalls, which hands the project to the next in line.
"""

from __future__ import annotations

from rdev_api.conditions import CHECKOUT_READY, is_true
from rdev_api.execresult import ExecError
from rdev_api.models import Changes, Phase
from rdev_api.reasons import Reason

from .. import gitcmd
from ..context import Ctx, Env, Halt, flush, parse_ts
from ..gitcmd import Found, Placed
from ..turns import queue_owner


def checked_out(ctx: Ctx) -> bool:
    """The status already records this branch checked out at this pod and path."""
    target, status = ctx.target, ctx.status
    assert target is not None
    return (
        status.pod_name == target.name
        and status.checkout_path == target.path
        and status.branch == ctx.spec.wanted_branch
        and bool(status.commit)
        and is_true(status.conditions, CHECKOUT_READY)
    )


async def ensure_checkout(ctx: Ctx, env: Env) -> None:
    target = ctx.target
    assert target is not None
    if not ctx.status.provisioning_since and ctx.status.phase != Phase.ACTIVE:
        ctx.status.provisioning_since = ctx.stamp
    if checked_out(ctx):
        return
    if ctx.status.pod_name not in (None, target.name):
        # A new pod: whatever ran on the old one is not running here.
        ctx.status.web_ui = None
        env.webui_checked.pop(ctx.key, None)
    start = await _precheck_and_take_turn(ctx, env)
    await _checkout(ctx, env, start)


def _busy_message(ctx: Ctx, owner: str) -> str:
    return f"project {ctx.spec.project} is in use by session {owner}; waiting for it to end"


async def _precheck_and_take_turn(ctx: Ctx, env: Env) -> str | None:
    branch = ctx.spec.wanted_branch
    if branch in env.settings.protected_branches:
        raise Halt(
            Reason.BRANCH_PROTECTED, f"branch {branch} is protected; sessions may not check it out"
        )
    sessions = env.store.sessions.by_project(ctx.namespace, ctx.spec.project)
    owner = queue_owner(ctx.name, sessions)
    if owner not in (None, ctx.name):
        raise Halt(Reason.PROJECT_BUSY, _busy_message(ctx, str(owner)))
    ctx.step("fetch")
    assert ctx.target is not None
    argv = gitcmd.precheck(
        ctx.target.repo,
        branch,
        bool(ctx.spec.new_branch),
        ctx.spec.from_ref,
        own=_recorded(ctx),
    )
    async with env.project_locks.try_acquire((ctx.namespace, ctx.spec.project)):
        checked = gitcmd.read_precheck(await env.run(ctx, argv, "precheck"))
    if checked.found == Found.BRANCH_MISSING:
        raise Halt(Reason.BRANCH_NOT_FOUND, f"branch {branch} does not exist on origin or locally")
    if checked.found == Found.NOT_A_BRANCH:
        raise Halt(
            Reason.BRANCH_NOT_FOUND,
            f"{branch} names a {checked.named}, not a branch; a session checks out a branch"
            f" (to start one there, use newBranch with fromRef: {branch})",
        )
    if checked.found == Found.FROM_MISSING:
        raise Halt(
            Reason.BRANCH_NOT_FOUND,
            f"fromRef {checked.from_ref or ctx.spec.from_ref} does not exist",
        )
    if checked.found == Found.EXISTS:
        where = " and ".join("on origin" if w == "origin" else "locally" for w in checked.where)
        raise Halt(
            Reason.BRANCH_EXISTS,
            f"newBranch {branch} already exists {where}; a session never takes over a branch"
            " (use branch to work on an existing branch)",
        )
    if checked.found == Found.FAILED:
        raise ExecError(checked.detail)
    return checked.start


def _still_there(ctx: Ctx, env: Env) -> bool:
    """The pod the exec ran in is the one in the store, and not being deleted."""
    target = ctx.target
    assert target is not None
    now = env.store.pods.get((ctx.namespace, target.name))
    if now is None:
        return False
    meta, then = now.get("metadata") or {}, target.pod.get("metadata") or {}
    return not meta.get("deletionTimestamp") and meta.get("uid") == then.get("uid")


def _recorded(ctx: Ctx) -> bool:
    """This Session's own status records the branch on this pod: it made what is there."""
    status, target = ctx.status, ctx.target
    assert target is not None
    return status.branch == ctx.spec.wanted_branch and status.pod_name == target.name


def check_progress_deadline(ctx: Ctx, env: Env) -> None:
    since = parse_ts(ctx.status.provisioning_since)
    if since and ctx.now - since > env.settings.progress_deadline:
        step = ctx.status.provisioning_step or "provisioning"
        raise Halt(
            Reason.PROGRESS_DEADLINE,
            f"still provisioning after the progress deadline; stuck at step: {step}",
        )


async def _checkout(ctx: Ctx, env: Env, start: str | None) -> None:
    target, status = ctx.target, ctx.status
    assert target is not None
    branch = ctx.spec.wanted_branch
    # Read before the status is reset below: what this Session recorded as its own.
    mine = _recorded(ctx)
    if status.phase != Phase.PROVISIONING:
        status.provisioning_since = status.provisioning_since or ctx.stamp
        status.pod_name = target.name
        status.container = target.container
        status.branch = branch
        status.checkout_path = None
        status.commit = None
        ctx.step("checkout")
        ctx.summary(Reason.PROVISIONING, "checking out the branch")
        ctx.cond(CHECKOUT_READY, False, Reason.PROVISIONING, "checking out the branch")
        # Persist before the slow part: the progress deadline counts from here,
        # and a restarted operator sees the Session holds its project.
        await flush(ctx, env)
    check_progress_deadline(ctx, env)
    argv = gitcmd.checkout(
        target.repo,
        target.path,
        branch,
        start,
        run_dir=target.run_dir,
        uid=ctx.uid,
        own=mine,
    )
    async with env.project_locks.try_acquire((ctx.namespace, ctx.spec.project)):
        done = gitcmd.read_checkout(await env.run(ctx, argv, "checkout"))
    if not _still_there(ctx, env):
        # A checkout on a pod being deleted is no place for work: never record it, so
        # the session (which nobody could use yet) goes on on another pod.
        raise ExecError(f"project pod {target.name} went away during the checkout", pod_gone=True)
    if done.placed == Placed.HOLDS_OTHER:
        raise Halt(
            Reason.CHECKOUT_EXISTS,
            f"{target.path} already holds a worktree of branch {done.holds}",
        )
    if done.placed == Placed.PATH_TAKEN:
        raise Halt(
            Reason.CHECKOUT_EXISTS,
            f"{target.path} already exists and is not a worktree of branch {branch}",
        )
    if done.placed == Placed.LEFT_BEHIND:
        held = done.held.describe() if done.held is not None else "work"
        raise Halt(
            Reason.CHECKOUT_EXISTS,
            f"{target.path} holds a worktree of branch {branch} that an earlier session of this"
            f" name left with {held}; it is not adopted (commit or remove it there, or use"
            " another Session name)",
        )
    if done.placed == Placed.BRANCH_ELSEWHERE:
        raise Halt(
            Reason.CHECKOUT_EXISTS,
            f"branch {branch} is already checked out in another worktree",
        )
    if done.placed == Placed.FAILED:
        raise ExecError(done.detail)
    if done.added:
        ctx.event("Normal", Reason.CHECKED_OUT, f"branch {branch} checked out at {target.path}")
    if done.changes is not None:
        record_changes(ctx, done.changes)
    status.pod_name = target.name
    status.container = target.container
    status.branch = branch
    status.checkout_path = target.path
    status.commit = done.commit
    status.last_activity_at = status.last_activity_at or ctx.stamp
    ctx.fresh_checkout = True
    ctx.cond(CHECKOUT_READY, True, Reason.CHECKED_OUT, f"branch {branch} is checked out")


def record_changes(ctx: Ctx, counts: tuple[int, int, int]) -> Changes:
    uncommitted, untracked, unpushed = counts
    changes = Changes(
        uncommitted_files=uncommitted,
        untracked_files=untracked,
        unpushed_commits=unpushed,
        checked_at=ctx.stamp,
    )
    ctx.status.changes = changes
    return changes

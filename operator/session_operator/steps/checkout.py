"""Take the project's turn and check the branch out as a worktree.

A Session decides whether it may hold the project before any exec: one waiting
for its turn costs nothing in the pod (no fetch against a slow remote). With
the turn, one exec fetches, checks the branch (exists, is a branch; newBranch
does not exist yet) and only then places the worktree: a Session that cannot
proceed stalls with nothing left in the pod, which hands the project to the
next in line.
"""

from __future__ import annotations

import asyncio

from rdev_api.conditions import CHECKOUT_READY, READY, STALLED, is_true
from rdev_api.execresult import ExecError, ExecResult
from rdev_api.models import Changes, Phase
from rdev_api.reasons import Reason

from .. import gitcmd
from ..context import Ctx, Env, Halt, flush, parse_ts
from ..gitcmd import Found, Placed, Precheck
from ..turns import queue_owner

# How long a checkout may take before its Provisioning status is written, while it
# runs. Most take well under a second (a fetch from a near remote, a worktree of a
# small tree): those go from Pending straight to Active in one status write, as a
# client doing only what the contract needs would. A slower one (a far remote, a big
# tree, a hook) shows Provisioning within a second, which a person watching
# `kubectl get sessions -w` reads as "under way", and which is written long before
# any progress deadline (minutes) could pass.
PROVISIONING_WRITE_DELAY_S = 1.0


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
    _take_turn(ctx, env)
    await _checkout(ctx, env)


def _busy_message(ctx: Ctx, owner: str) -> str:
    return f"project {ctx.spec.project} is in use by session {owner}; waiting for it to end"


def _take_turn(ctx: Ctx, env: Env) -> None:
    """Halt unless this Session may hold the project now: decided before any exec."""
    branch = ctx.spec.wanted_branch
    if branch in env.settings.protected_branches:
        raise Halt(
            Reason.BRANCH_PROTECTED, f"branch {branch} is protected; sessions may not check it out"
        )
    sessions = env.store.sessions.by_project(ctx.namespace, ctx.spec.project)
    owner = queue_owner(ctx.name, sessions)
    if owner not in (None, ctx.name):
        raise Halt(Reason.PROJECT_BUSY, _busy_message(ctx, str(owner)))


def _halt_on_finding(ctx: Ctx, checked: Precheck) -> None:
    """What the checkout found before it changed anything in the pod, as a Halt."""
    branch = ctx.spec.wanted_branch
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


def _still_there(ctx: Ctx, env: Env) -> bool:
    """The pod the exec ran in is the one in the store, and not being deleted."""
    target = ctx.target
    assert target is not None
    now = env.store.pods.get((ctx.namespace, target.name))
    if now is None:
        return False
    meta, then = now.get("metadata") or {}, target.pod.get("metadata") or {}
    return not meta.get("deletionTimestamp") and meta.get("uid") == then.get("uid")


def check_progress_deadline(ctx: Ctx, env: Env) -> None:
    since = parse_ts(ctx.status.provisioning_since)
    if since and ctx.now - since > env.settings.progress_deadline:
        step = ctx.status.provisioning_step or "provisioning"
        raise Halt(
            Reason.PROGRESS_DEADLINE,
            f"still provisioning after the progress deadline; stuck at step: {step}",
        )


def _first_attempt(ctx: Ctx) -> bool:
    """Not a re-check of a stall or a retry after a failure: those keep their status while
    they run (a Provisioning write there would only flap the phase and restart the stall's
    re-check backoff), and are written once they know the outcome."""
    found = {c.get("type"): c for c in ctx.original.get("conditions") or []}
    stalled = (found.get(STALLED) or {}).get("status") == "True"
    return not stalled and (found.get(READY) or {}).get("reason") != Reason.EXEC_FAILED


async def _announce_after(ctx: Ctx, env: Env, writing: asyncio.Event) -> None:
    await asyncio.sleep(PROVISIONING_WRITE_DELAY_S)
    writing.set()  # from here on the write is not cancelled: it is awaited to its end
    try:
        await flush(ctx, env)
    except Exception:
        # Only news: the write at the end of the reconcile carries the same and more.
        ctx.log().warning("writing the Provisioning status failed", exc_info=True)


async def _run_announcing(ctx: Ctx, env: Env, argv: list[str], announce: bool) -> ExecResult:
    """Run the checkout exec; if ``announce`` and it outlasts the delay, write the
    Provisioning status meanwhile (the draft as it stands, which the exec does not touch)."""
    if not announce:
        return await env.run(ctx, argv, "checkout")
    writing = asyncio.Event()
    announcer = asyncio.create_task(_announce_after(ctx, env, writing))
    try:
        return await env.run(ctx, argv, "checkout")
    finally:
        if not writing.is_set():
            announcer.cancel()  # still asleep: a fast checkout writes nothing before its end
        try:
            await announcer
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this reconcile itself is being cancelled


async def _checkout(ctx: Ctx, env: Env) -> None:
    target, status = ctx.target, ctx.status
    assert target is not None
    branch = ctx.spec.wanted_branch
    ctx.step("fetch and checkout")
    # The status as it was: what a finding (nothing done in the pod) leaves it at.
    before = status.model_copy(deep=True)
    announce = False
    if status.phase != Phase.PROVISIONING:
        status.provisioning_since = status.provisioning_since or ctx.stamp
        status.pod_name = target.name
        status.container = target.container
        status.branch = branch
        status.checkout_path = None
        status.commit = None
        ctx.summary(Reason.PROVISIONING, "checking out the branch")
        ctx.cond(CHECKOUT_READY, False, Reason.PROVISIONING, "checking out the branch")
        announce = _first_attempt(ctx)
    check_progress_deadline(ctx, env)
    argv = gitcmd.checkout(
        target.repo,
        target.path,
        branch,
        new=bool(ctx.spec.new_branch),
        from_ref=ctx.spec.from_ref,
        run_dir=target.run_dir,
        uid=ctx.uid,
    )
    async with env.project_locks.try_acquire((ctx.namespace, ctx.spec.project)):
        result = await _run_announcing(ctx, env, argv, announce)
    checked = gitcmd.read_precheck(result)
    if checked.found != Found.OK:
        ctx.status = before
        _halt_on_finding(ctx, checked)
    done = gitcmd.read_checkout(result)
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

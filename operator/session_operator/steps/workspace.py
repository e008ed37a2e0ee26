"""The workspace state (``status.changes``) and activity (``status.lastActivityAt``).

One exec reads both: what is at stake in the worktree, and a fingerprint of
everything that counts as activity (worktree changes, commits, branch moves, web
UI output). The fingerprint is kept in memory: after a restart the first reading
only sets the baseline, so a restart never counts as activity.
"""

from __future__ import annotations

from datetime import timedelta

from .. import gitcmd
from ..context import Ctx, Env, parse_ts
from .checkout import record_changes
from .ending import idle_deadline


def changes_due_in(ctx: Ctx, env: Env) -> float:
    """Seconds until the state should be read again (0: now): periodically, and at the
    idle deadline itself, so an idle session stops on time and a busy one does not."""
    changes = ctx.status.changes
    checked = parse_ts(changes.checked_at) if changes else None
    if checked is None:
        return 0.0
    due = checked + env.settings.changes_interval
    deadline = idle_deadline(ctx)
    if deadline is not None and deadline > checked:
        due = min(due, deadline)
    return max((due - ctx.now) / timedelta(seconds=1), 0.0)


JUDGE_AGAIN_S = 60.0  # after a reading that only set the baseline


async def refresh_changes(ctx: Ctx, env: Env) -> None:
    """Read the state when due, and wake for the next reading.

    A session with an idle timeout takes its baseline right after its checkout,
    so the first reading at the deadline can tell activity from silence.
    """
    baseline_now = ctx.fresh_checkout and ctx.spec.idle_after is not None
    if changes_due_in(ctx, env) <= 0 or baseline_now:
        await read_changes(ctx, env)
    due = changes_due_in(ctx, env)
    if due <= 0:
        # The read failed, or it was only a baseline: look again soon, not in a hot loop.
        due = min(env.settings.changes_interval.total_seconds(), JUDGE_AGAIN_S)
    ctx.due_in(due)


async def read_changes(ctx: Ctx, env: Env) -> gitcmd.Workspace | None:
    target = ctx.target
    assert target is not None
    argv = gitcmd.changes(target.path, target.run_dir)
    workspace = gitcmd.read_changes(await env.run(ctx, argv, "changes"))
    if workspace is None:
        return None
    record_changes(ctx, workspace.counts)
    previous = env.activity.get(ctx.key)
    env.activity[ctx.key] = workspace.activity
    ctx.activity_judged = previous is not None
    if ctx.status.last_activity_at is None or (
        previous is not None and previous != workspace.activity
    ):
        ctx.status.last_activity_at = ctx.stamp
    return workspace

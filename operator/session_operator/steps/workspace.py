"""The workspace state (``status.changes``): what is at stake in the worktree."""

from __future__ import annotations

from datetime import timedelta

from .. import gitcmd
from ..context import Ctx, Env, parse_ts
from .checkout import record_changes


def changes_due_in(ctx: Ctx, env: Env) -> float:
    """Seconds until the state should be refreshed (0: now)."""
    changes = ctx.status.changes
    checked = parse_ts(changes.checked_at) if changes else None
    if checked is None:
        return 0.0
    due = checked + env.settings.changes_interval - ctx.now
    return max(due / timedelta(seconds=1), 0.0)


async def refresh_changes(ctx: Ctx, env: Env) -> None:
    """Refresh when due, and wake for the next refresh."""
    due = changes_due_in(ctx, env)
    if due <= 0:
        await read_changes(ctx, env)
        due = env.settings.changes_interval.total_seconds()  # also after a failed read
    ctx.due_in(due)


async def read_changes(ctx: Ctx, env: Env) -> None:
    assert ctx.target is not None
    counts = gitcmd.read_changes(await env.run(ctx, gitcmd.changes(ctx.target.path), "changes"))
    if counts is not None:
        record_changes(ctx, counts)

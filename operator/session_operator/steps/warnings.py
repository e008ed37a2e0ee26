"""``ExpiringSoon``: one Warning before a session stops, and ``status.expiresSoon``.

The nearer of the two deadlines (expiry, idle stop) counts. The Warning is
posted when the session enters the warning window; a deadline moved out of it
clears ``expiresSoon``, so coming close again warns again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rdev_api.reasons import Reason

from ..context import Ctx, Env, iso
from .ending import created_at, idle_deadline


def nearest_deadline(ctx: Ctx) -> tuple[str, datetime]:
    expiry = created_at(ctx) + ctx.spec.expires_after
    idle = idle_deadline(ctx)
    if idle is not None and idle < expiry:
        return "idle", idle
    return "expiry", expiry


def warn_before_stop(ctx: Ctx, env: Env) -> None:
    warning = env.settings.expiry_warning
    if warning <= timedelta(0):
        return
    which, deadline = nearest_deadline(ctx)
    window_opens = deadline - warning
    if ctx.now < window_opens:
        if ctx.status.expires_soon:
            ctx.status.expires_soon = False
        ctx.due_in((window_opens - ctx.now) / timedelta(seconds=1))
        return
    if ctx.status.expires_soon:
        return
    ctx.status.expires_soon = True
    extend = f"kubectl session extend {ctx.name} -n {ctx.namespace} --by 1h"
    if which == "idle":
        message = (
            f"session {ctx.name} will stop at {iso(deadline)} after idleTimeout"
            f" {ctx.spec.idle_timeout} without activity; any change in the worktree or web UI"
            " output postpones it"
        )
    else:
        message = (
            f"session {ctx.name} expires at {iso(deadline)} (expiresIn {ctx.spec.expires_in});"
            f" extend it with: {extend}"
        )
    ctx.event("Warning", Reason.EXPIRING_SOON, message)

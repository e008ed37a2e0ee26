"""Start, check and stop the browser coding UI in the project pod.

A UI that exits at once is retried through the work queue's rate-limited
requeue (per Session, growing from RDEV_RETRY_INTERVAL, capped): no other
wake-up (a watch event, the echo of our own status write) starts it in between.
A UI that runs but never answers its health path (RDEV_WEBUI_HEALTH_PATH)
within RDEV_WEBUI_START_TIMEOUT is stopped and takes the same retry; until it
answers it is ``Starting``, re-checked every STARTING_RECHECK_S.
Its log never goes into an Event or a condition: it may hold the UI's token.
"""

from __future__ import annotations

import asyncio

from rdev_api.conditions import WEBUI_READY
from rdev_api.execresult import ExecError, ExecResult
from rdev_api.models import WebUIState
from rdev_api.reasons import Reason

from .. import metrics, webui
from ..context import Ctx, Env
from ..webui import Started

STARTING_RECHECK_S = 1.0


async def ensure_web_ui(ctx: Ctx, env: Env) -> None:
    """Make the web UI match ``spec.webUI``; schedule its next liveness check."""
    if not ctx.spec.web_ui:
        await stop_web_ui(ctx, env)
        return
    status = ctx.status
    interval = env.settings.webui_check_interval.total_seconds()
    now = asyncio.get_running_loop().time()
    last = env.webui_checked.get(ctx.key)
    if status.web_ui == WebUIState.RUNNING:
        if last is None:
            # Resumed after a restart: trust the status now, check on schedule.
            env.webui_checked[ctx.key] = now
            ctx.due_in(interval)
            return
        if now - last < interval:
            ctx.due_in(interval - (now - last))
            return
    retry_in = env.retry_due.get(ctx.key, now) - now
    if status.web_ui == WebUIState.FAILED and retry_in > 0:
        ctx.backing_off = True  # the rate-limited retry starts it, nothing sooner
        ctx.due_in(retry_in)
        return
    await start_web_ui(ctx, env)


def failed_message(name: str) -> str:
    """The same words every time, so that repeats count up on one Event."""
    return f"the web UI command exited at once; see its log with: kubectl session logs {name}"


def unhealthy_message(name: str, env: Env) -> str:
    """Settings, not measurements: the words stay the same on every repeat."""
    s = env.settings
    return (
        f"the web UI did not answer {s.webui_health_path} on port {s.webui_port} within "
        f"{s.webui_start_timeout.total_seconds():g}s; stopped it; "
        f"see its log with: kubectl session logs {name}"
    )


async def start_web_ui(ctx: Ctx, env: Env) -> None:
    """Start it, unless it runs: the start script doubles as the liveness check."""
    target, status = ctx.target, ctx.status
    assert target is not None
    ctx.step("start the web UI")
    was_running = status.web_ui == WebUIState.RUNNING
    settings = env.settings
    argv = webui.start(
        target.path,
        target.run_dir,
        settings.webui_port,
        settings.webui_command,
        health_path=settings.webui_health_path,
        timeout_s=settings.webui_start_timeout.total_seconds(),
    )
    started = webui.read_start(await env.run(ctx, argv, "webui-start"))
    env.webui_checked[ctx.key] = asyncio.get_running_loop().time()
    if started.started in (Started.FAILED, Started.UNHEALTHY):
        if started.started == Started.UNHEALTHY:
            stopped = await stop_process(ctx, env)
            if not stopped.ok:
                raise ExecError(f"stopping the web UI failed with {stopped.describe()}")
            reason, message = Reason.WEBUI_UNHEALTHY, unhealthy_message(ctx.name, env)
        else:
            reason, message = Reason.WEBUI_FAILED, failed_message(ctx.name)
        status.web_ui = WebUIState.FAILED
        ctx.cond(WEBUI_READY, False, reason, message)
        detail = f" ({started.detail})" if started.detail else ""
        ctx.event("Warning", reason, message + detail)
        ctx.retry = True
        return
    if started.started == Started.STARTED:
        if was_running:
            status.web_ui_restarts = (status.web_ui_restarts or 0) + 1
            metrics.bound().webui_restarts.inc()
            ctx.event("Warning", Reason.WEBUI_RESTARTED, "the web UI had exited; started it again")
        else:
            ctx.event("Normal", Reason.WEBUI_STARTED, "web UI started")
    if not started.healthy:
        # Not yet an answer either way: keep the retry count, so a UI that never answers
        # backs off (a start that reads as a success would reset it every other try).
        ctx.backing_off = True
        status.web_ui = WebUIState.STARTING
        message = f"waiting for the web UI to answer {settings.webui_health_path}"
        ctx.cond(WEBUI_READY, False, Reason.STARTING, message)
        ctx.due_in(STARTING_RECHECK_S)
        return
    status.web_ui = WebUIState.RUNNING
    ctx.cond(WEBUI_READY, True, Reason.RUNNING, "web UI is running")
    ctx.due_in(env.settings.webui_check_interval.total_seconds())


async def stop_process(ctx: Ctx, env: Env) -> ExecResult:
    """SIGTERM the UI and give it RDEV_WEBUI_STOP_GRACE to save before SIGKILL."""
    assert ctx.target is not None
    grace = env.settings.webui_stop_grace.total_seconds()
    timeout = webui.stop_timeout_s(grace, env.settings.exec_timeout.total_seconds())
    argv = webui.stop(ctx.target.run_dir, grace)
    return await env.run(ctx, argv, "webui-stop", timeout_s=timeout)


async def stop_web_ui(ctx: Ctx, env: Env) -> None:
    status = ctx.status
    if status.web_ui not in (None, WebUIState.STOPPED):
        assert ctx.target is not None
        ctx.step("stop the web UI")
        stopped = await stop_process(ctx, env)
        if not stopped.ok:
            raise ExecError(f"stopping the web UI failed with {stopped.describe()}")
        ctx.event("Normal", Reason.WEBUI_STOPPED, "web UI stopped")
    status.web_ui = WebUIState.STOPPED
    ctx.cond(WEBUI_READY, True, Reason.STOPPED, "web UI not requested")
    env.webui_checked.pop(ctx.key, None)

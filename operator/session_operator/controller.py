"""The reconcile of one key, the finalizer included (workers.py drives it off the queue).

A reconcile is level-based: it reads the Session from the store, runs the steps
in order (end? -> pod -> turn and checkout -> label -> web UI -> preview ->
workspace state), writes one status patch if anything changed, and returns when
to look again. It may be interrupted at any line and re-run: every step checks
before it acts, and every write is idempotent (409 on create and 404 on delete
mean done).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from rdev_api import FINALIZER, Body
from rdev_api.conditions import READY, STALLED, without
from rdev_api.execresult import ExecError
from rdev_api.models import TERMINAL_PHASES, Phase, SessionSpec
from rdev_api.names import CREATED_BY_ANNOTATION, clone_url
from rdev_api.reasons import Reason, lookup

from . import metrics
from .context import (
    Ctx,
    Env,
    Halt,
    StallMarks,
    draft_status,
    flush,
    iso,
    parse_ts,
    post_events,
)
from .kube import Stale
from .locks import LockBusy
from .queue import WorkQueue
from .steps import checkout, credential, ending, preview, project, warnings, webui, workspace
from .store import Key, key_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    requeue_after: float | None = None
    failed: bool = False  # retry with this key's growing backoff
    backing_off: bool = False  # a retry is pending: neither grow nor reset the backoff
    wrote_status: bool = False
    # A project lock was taken: run again as soon as it is free (no backoff).
    blocked_on: Key | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_ctx(body: Body, spec: SessionSpec, now: datetime) -> Ctx:
    status, original = draft_status(body)
    meta = body["metadata"]
    return Ctx(
        key=key_of(body),
        body=body,
        spec=spec,
        status=status,
        original=original,
        generation=int(meta.get("generation") or 1),
        now=now,
    )


def recheck_delay(stalled_for_s: float, interval_s: float, max_s: float) -> float:
    """Wait as long as the stall has lasted, within [interval, max].

    Checked at interval, 2x, 4x, ... after it began, the gap doubles each time
    until it reaches max; derived from the stall's start, so a restart keeps it.
    An interval longer than max wins (the rechecks never come sooner than asked).
    """
    return max(min(stalled_for_s, max_s), interval_s)


def stall_since(ctx: Ctx, reason: str, marks: StallMarks) -> datetime:
    """When this stall (this reason, for this spec) began; ``now`` if it begins now.

    A stall that only changes its reason keeps the Stalled condition's
    lastTransitionTime, so ``marks`` remembers when this process saw such a
    change (lost on restart: then the older transition time counts).
    """
    before = next(
        (c for c in ctx.original.get("conditions") or [] if c.get("type") == STALLED), None
    )
    same = (reason, ctx.generation)
    if before is None or before.get("status") != "True":
        return ctx.now
    if (before.get("reason"), before.get("observedGeneration")) != same:
        marks[ctx.key] = (same, ctx.now)
        return ctx.now
    since = parse_ts(before.get("lastTransitionTime")) or ctx.now
    mark = marks.get(ctx.key)
    if mark is not None and mark[0] == same:
        since = max(since, mark[1])
    return since


def set_clone_url(ctx: Ctx) -> None:
    """status.cloneURL exactly while the session is Active (level-based, from the phase)."""
    active = ctx.status.phase == Phase.ACTIVE
    ctx.status.clone_url = clone_url(ctx.namespace, ctx.name) if active else None


def apply_halt(ctx: Ctx, halt: Halt, env: Env) -> None:
    """Record why the steps stopped; waiting on others or a person is not slow provisioning."""
    if halt.reason != Reason.PROGRESS_DEADLINE:
        ctx.status.provisioning_since = None
        ctx.status.provisioning_step = None
    ctx.summary(halt.reason, halt.message)
    if lookup(halt.reason).recheck:
        since = stall_since(ctx, halt.reason, env.stalls)  # reads the status as it was
        settings = env.settings
        ctx.due_in(
            recheck_delay(
                (ctx.now - since).total_seconds(),
                settings.stalled_recheck_interval.total_seconds(),
                settings.stalled_recheck_max.total_seconds(),
            )
        )


class Controller:
    def __init__(self, env: Env, queue: WorkQueue[Key], clock: Any = utcnow) -> None:
        self.env = env
        self.queue = queue
        self.clock = clock

    def schedule(self, key: Key, result: Result) -> None:
        locks = self.env.project_locks
        if result.blocked_on is not None:
            # Level-based: the next run redoes what this one left, when its turn comes.
            locks.when_free(result.blocked_on, key, lambda: self.queue.add(key))
        locks.ran(key)
        if result.blocked_on is not None:
            return  # neither a failure nor a success: the backoff stays as it is
        if result.failed:
            delay = self.queue.add_rate_limited(key)
            self.env.retry_due[key] = asyncio.get_running_loop().time() + delay
        elif not result.backing_off:
            self.queue.forget(key)
            self.env.retry_due.pop(key, None)
        if result.requeue_after is not None:
            self.queue.add_after(key, result.requeue_after)

    def forget(self, key: Key) -> None:
        """The Session is gone from the API (also one whose finalizer someone removed by
        hand): no timers, retries or remembered state are left for it."""
        self.queue.discard(key)
        self.env.forget(key)

    # Reconcile --------------------------------------------------------------
    async def reconcile(self, key: Key) -> Result:
        """Bring one Session closer to its spec; never raises (a bug is reported and retried)."""
        body = self.env.store.sessions.get(key)
        if body is None:
            self.forget(key)
            return Result()
        meta = body["metadata"]
        ours = FINALIZER in (meta.get("finalizers") or ())
        if meta.get("deletionTimestamp") and not ours:
            return Result()  # nothing of this operator holds it: it goes
        log.debug("reconcile %s/%s", *key)
        started = time.monotonic()
        outcome = "ok"
        try:
            if meta.get("deletionTimestamp"):
                return await self._finalize_step(body)
            if not ours:
                # Before anything is made for it: a deletion then always comes here first.
                added = await self.env.kube.add_finalizer(body, FINALIZER)
                if added is None:
                    return Result()  # gone meanwhile
                self.env.store.sessions.put(added)
                body = self.env.store.sessions.get(key) or body
            return await self._reconcile(body)
        except LockBusy as busy:
            outcome = "busy"
            return Result(blocked_on=busy.key)
        except Stale as exc:
            outcome = "stale"  # a finalizer patch found a newer Session: read it again
            log.info("%s/%s changed meanwhile, read again: %s", *key, exc)
            return Result(failed=True)
        except Exception as exc:
            outcome = "error"
            logging.LoggerAdapter(log, {}).exception("reconcile of %s/%s failed", *key)
            await self.env.events.post_event(
                body, "Warning", Reason.RECONCILE_ERROR, str(exc)[:500]
            )
            return Result(failed=True)
        finally:
            metrics.bound().reconcile_duration.observe(time.monotonic() - started)
            metrics.bound().reconciled(outcome).inc()

    async def _reconcile(self, body: Body) -> Result:
        now = self.clock()
        try:
            spec = SessionSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            ctx = new_ctx(body, SessionSpec.model_construct(project=""), now)
            problems = "; ".join(str(e["msg"]) for e in exc.errors())
            ctx.summary(Reason.INVALID_SPEC, f"invalid spec: {problems}")
            ctx.status.observed_generation = ctx.generation
            return Result(wrote_status=await flush(ctx, self.env))
        ctx = new_ctx(body, spec, now)
        ctx.status.expires_at = iso(ending.created_at(ctx) + spec.expires_after)
        ctx.status.observed_generation = ctx.generation
        annotations = body["metadata"].get("annotations") or {}
        ctx.status.created_by = annotations.get(CREATED_BY_ANNOTATION) or None
        if ctx.status.phase in TERMINAL_PHASES:
            # Level-based: an ended Session has no Ready (Ctx.summary), also one ended
            # by an operator from before that rule.
            ctx.status.conditions = without(ctx.status.conditions, READY)
            set_clone_url(ctx)
            return Result(wrote_status=await flush(ctx, self.env))
        reason = ending.end_reason(ctx)
        if reason is not None:
            await ending.end_session(ctx, self.env, reason)
            await flush(ctx, self.env)
            return Result(wrote_status=ctx.wrote)
        failed = False
        try:
            await self._provision(ctx)
            reason = ending.end_reason(ctx)  # idleness is known once the workspace was read
            if reason is not None:
                await ending.end_session(ctx, self.env, reason)
                await flush(ctx, self.env)
                return Result(wrote_status=ctx.wrote)
        except Halt as halt:
            apply_halt(ctx, halt, self.env)
        except ExecError as exc:
            failed = True
            ctx.summary(Reason.EXEC_FAILED, str(exc))
            try:
                checkout.check_progress_deadline(ctx, self.env)
            except Halt as halt:
                apply_halt(ctx, halt, self.env)
        ctx.due_in(ending.expires_in_s(ctx))
        warnings.warn_before_stop(ctx, self.env)
        set_clone_url(ctx)
        await flush(ctx, self.env)
        requeue = min(ctx.deadlines) if ctx.deadlines else None
        return Result(
            requeue_after=requeue,
            failed=failed or ctx.retry,
            backing_off=ctx.backing_off,
            wrote_status=ctx.wrote,
        )

    async def _provision(self, ctx: Ctx) -> None:
        env = self.env
        project.choose_target(ctx, env)
        await checkout.ensure_checkout(ctx, env)
        await project.ensure_pod_label(ctx, env)
        await webui.ensure_web_ui(ctx, env)
        await preview.ensure_preview(ctx, env)
        await credential.ensure_credential(ctx, env)
        ctx.status.provisioning_since = None
        ctx.status.provisioning_step = None
        ctx.summary(Reason.ACTIVE, "session is active")
        await workspace.refresh_changes(ctx, env)

    # Finalizer --------------------------------------------------------------
    async def _finalize_step(self, body: Body) -> Result:
        """Finalize a deleted Session, then let it go; failures retry with the key's backoff.

        Never holds the finalizer for ever: after ``RDEV_DELETE_RETRIES`` failed
        attempts the worktree stays where it is (a WorktreeKept Event says why) and
        the Session goes.
        """
        key = key_of(body)
        try:
            await self.finalize(body)
        except LockBusy:
            raise  # its project's turn is busy: not a failed attempt
        except Exception as exc:  # any failure counts: the retries are bounded
            attempts = self.queue.backoff.failures(key) + 1
            if attempts < self.env.settings.delete_retries:
                log.info("finalizing %s/%s failed (attempt %d): %s", *key, attempts, exc)
                return Result(failed=True)
            message = f"giving up on cleaning the worktree after {attempts} attempts: {exc}"
            log.warning("%s/%s: %s", *key, message)
            await self.env.events.post_event(body, "Warning", Reason.WORKTREE_KEPT, message)
        await self.env.kube.remove_finalizer(body, FINALIZER)  # None: gone already
        self.forget(key)
        return Result()

    async def finalize(self, body: Body) -> None:
        """End the session if needed, then remove the worktree only if nothing would be lost.

        Runs on a worker that holds the key, so never alongside a reconcile of the
        same Session. Raises for a failure (the caller bounds the retries).
        """
        try:
            spec = SessionSpec.model_validate(body.get("spec") or {})
            valid = True
        except ValidationError:
            project_name = str((body.get("spec") or {}).get("project") or "")
            spec = SessionSpec.model_construct(project=project_name)
            valid = False
        ctx = new_ctx(body, spec, self.clock())
        if valid and ctx.status.phase not in TERMINAL_PHASES:
            reason = ending.end_reason(ctx, deleting=True)
            assert reason is not None
            await ending.end_session(ctx, self.env, reason)
            await flush(ctx, self.env)
        # An ended session's credential is gone already; this finds nothing then.
        await credential.revoke_credential(ctx, self.env)
        await ending.remove_worktree(ctx, self.env)
        await post_events(ctx, self.env)
